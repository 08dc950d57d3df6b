"""Validation of rendered Kubernetes manifests and Helm values.

Custom resources are checked against the openAPIV3Schema of the operators'
CRDs (copied byte for byte in shared/fixtures/k8s, see SOURCES.md there);
built-in kinds against the Kubernetes API schemas that kubernetes-validate
ships; Helm values against the chart's default values.yaml (every key we set
must exist there, with the same type where the chart gives one).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

K8S_FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "k8s"
CRD_FILES = (
    "gpu-operator/nvidia.com_clusterpolicies.yaml",
    "gpu-operator/nvidia.com_nvidiadrivers.yaml",
    "network-operator/mellanox.com_nicclusterpolicies.yaml",
    "network-operator/mellanox.com_hostdevicenetworks.yaml",
    "network-operator/mellanox.com_ipoibnetworks.yaml",
    "network-operator/k8s.cni.cncf.io_networkattachmentdefinitions_crd.yaml",
)


def load_crd_schemas(root: Path = K8S_FIXTURES) -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> openAPIV3Schema of every served version of the fixture CRDs."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for rel in CRD_FILES:
        crd = yaml.safe_load((root / rel).read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for v in crd["spec"]["versions"]:
            if v.get("served", True):
                out[(f"{group}/{v['name']}", kind)] = v["schema"]["openAPIV3Schema"]
    return out


def documents(path: Path) -> Iterator[dict[str, Any]]:
    for doc in yaml.safe_load_all(path.read_text()):
        if doc is not None:
            yield doc


def validate_manifest(doc: dict[str, Any], crds: dict[tuple[str, str], dict[str, Any]],
                      k8s_version: str) -> list[str]:
    """Problems of one document: [] when it is valid."""
    key = (doc.get("apiVersion", ""), doc.get("kind", ""))
    name = f"{key[1]}/{doc.get('metadata', {}).get('name', '?')}"
    if key in crds:
        validator = jsonschema.Draft7Validator(crds[key])
        return [f"{name}: {'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
                for e in validator.iter_errors(doc)]
    try:
        kubernetes_validate.validate(doc, k8s_version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{name}: {exc.message}"]
    return []


def unknown_helm_keys(ours: Any, chart: Any, path: str = "") -> list[str]:
    """Dotted paths we set that the chart's values.yaml does not have.

    A chart mapping that is empty ({}) is free-form (labels, nodeSelector):
    anything below it is accepted.
    """
    if not isinstance(ours, dict):
        return []
    if not isinstance(chart, dict):
        return [path or "<root>"]
    if not chart and path:
        return []
    problems: list[str] = []
    for key, value in ours.items():
        sub = f"{path}.{key}" if path else str(key)
        if key not in chart:
            problems.append(sub)
        else:
            problems.extend(unknown_helm_keys(value, chart[key], sub))
    return problems


def helm_type_mismatches(ours: Any, chart: Any, path: str = "") -> list[str]:
    """Leaves whose type differs from the chart default (a string where a bool belongs...)."""
    if isinstance(ours, dict) and isinstance(chart, dict):
        out: list[str] = []
        for key, value in ours.items():
            if key in chart:
                out.extend(helm_type_mismatches(value, chart[key], f"{path}.{key}" if path else key))
        return out
    if chart is None or ours is None:
        return []
    kinds = (bool, int, float, str, list, dict)
    ours_kind = next(k for k in kinds if isinstance(ours, k))
    chart_kind = next(k for k in kinds if isinstance(chart, k))
    numeric = {int, float}
    if ours_kind == chart_kind or {ours_kind, chart_kind} <= numeric:
        return []
    return [f"{path}: {type(ours).__name__} {ours!r}, chart default is {type(chart).__name__} {chart!r}"]

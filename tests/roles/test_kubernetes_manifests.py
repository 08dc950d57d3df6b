"""The kubernetes role's manifests and Helm values, rendered by Ansible from
inventories that forge renders, validated against the Kubernetes API schemas
and the GPU/Network Operator CRDs and default values (shared/fixtures/k8s)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from .k8s_schemas import (
    K8S_FIXTURES,
    documents,
    helm_type_mismatches,
    load_crd_schemas,
    unknown_helm_keys,
    validate_manifest,
)

K8S_VERSION = "1.31.0"   # forge_versions.kubernetes of the fixture specs
CHART_VALUES = {
    "gpu-operator-values.yaml": K8S_FIXTURES / "gpu-operator" / "values.yaml",
    "network-operator-values.yaml": K8S_FIXTURES / "network-operator" / "values.yaml",
}
MANIFESTS = ("namespaces.yaml", "whereabouts.yaml", "nic-cluster-policy.yaml", "secondary-network.yaml")


@pytest.fixture(scope="module")
def crds() -> dict:
    return load_crd_schemas()


def _problems(directory: Path, crds: dict) -> list[str]:
    problems: list[str] = []
    for name in MANIFESTS:
        path = directory / name
        if path.exists():
            for doc in documents(path):
                problems += [f"{name}: {p}" for p in validate_manifest(doc, crds, K8S_VERSION)]
    for name, chart in CHART_VALUES.items():
        ours = yaml.safe_load((directory / name).read_text())
        defaults = yaml.safe_load(chart.read_text())
        problems += [f"{name}: unknown key {k}" for k in unknown_helm_keys(ours, defaults)]
        problems += [f"{name}: {m}" for m in helm_type_mismatches(ours, defaults)]
    return problems


@pytest.mark.parametrize("site,variant", [("k8s-ib", "default"), ("k8s-ib", "ipoib"),
                                          ("k8s-roce", "mirror")])
def test_rendered_files_pass_every_schema(rendered: dict[str, Path], crds: dict,
                                          site: str, variant: str) -> None:
    directory = rendered[site] / variant
    assert sorted(p.name for p in directory.glob("*.yaml")) >= sorted(
        ["namespaces.yaml", "nic-cluster-policy.yaml", "secondary-network.yaml",
         "gpu-operator-values.yaml", "network-operator-values.yaml", "calico-values.yaml"])
    assert _problems(directory, crds) == []


def test_the_validation_catches_bad_values(rendered: dict[str, Path], crds: dict) -> None:
    problems = _problems(rendered["k8s-ib"] / "broken", crds)
    assert "gpu-operator-values.yaml: unknown key drvier" in problems
    assert any(p.startswith("gpu-operator-values.yaml: toolkit.enabled: str 'yes'") for p in problems)
    assert any("NicClusterPolicy/nic-cluster-policy: spec.sriovDevicePlugin.version" in p
               and "is not of type 'string'" in p for p in problems)


def test_host_device_network_mode_is_the_reference_architecture(rendered: dict[str, Path]) -> None:
    directory = rendered["k8s-ib"] / "default"
    (policy,) = documents(directory / "nic-cluster-policy.yaml")
    spec = policy["spec"]
    assert set(spec) == {"sriovDevicePlugin", "secondaryNetwork"}   # no driver container, no nv-ipam
    assert set(spec["secondaryNetwork"]) == {"cniPlugins", "multus"}
    pool = yaml.safe_load(spec["sriovDevicePlugin"]["config"])["resourceList"]
    assert len(pool) == 1 and pool[0]["resourceName"] == "hostdev"
    # the compute ports by PCI address (the profile's rail map), never vendor/device alone:
    # the storage adapter is a ConnectX-7 (15b3:1021) too
    assert pool[0]["selectors"] == {"vendors": ["15b3"], "devices": ["1021", "101e"],
                                    "rootDevices": ["0000:1a:00.0", "0000:3c:00.0", "0000:4d:00.0",
                                                    "0000:5e:00.0", "0000:9c:00.0", "0000:bc:00.0",
                                                    "0000:cc:00.0", "0000:dc:00.0"],
                                    "linkTypes": ["infiniband"], "isRdma": True}
    (network,) = documents(directory / "secondary-network.yaml")
    assert network["kind"] == "HostDeviceNetwork"
    assert network["spec"]["resourceName"] == "hostdev"
    assert yaml.safe_load(network["spec"]["ipam"]) == {"type": "whereabouts", "range": "10.250.0.0/16"}
    kinds = [(d["kind"], d["metadata"]["name"]) for d in documents(directory / "whereabouts.yaml")]
    assert ("CustomResourceDefinition", "ippools.whereabouts.cni.cncf.io") in kinds
    assert ("DaemonSet", "whereabouts") in kinds
    # One node-feature-discovery: the Network Operator's.
    gpu_values = yaml.safe_load((directory / "gpu-operator-values.yaml").read_text())
    net_values = yaml.safe_load((directory / "network-operator-values.yaml").read_text())
    assert gpu_values["nfd"]["enabled"] is False and net_values["nfd"]["enabled"] is True
    assert gpu_values["driver"]["enabled"] is False   # the host driver from the nvidia_driver role


def test_ipoib_variant_uses_ipoib_network_and_nv_ipam(rendered: dict[str, Path]) -> None:
    directory = rendered["k8s-ib"] / "ipoib"
    (network,) = documents(directory / "secondary-network.yaml")
    assert network["kind"] == "IPoIBNetwork"
    assert network["spec"]["master"] == "ibp26s0"   # rail 0's netdev from the rail map
    (policy,) = documents(directory / "nic-cluster-policy.yaml")
    assert "ipoib" in policy["spec"]["secondaryNetwork"] and "nvIpam" in policy["spec"]
    assert not (directory / "whereabouts.yaml").exists()


def test_roce_site_selects_ethernet_ports(rendered: dict[str, Path]) -> None:
    (policy,) = documents(rendered["k8s-roce"] / "mirror" / "nic-cluster-policy.yaml")
    pool = yaml.safe_load(policy["spec"]["sriovDevicePlugin"]["config"])["resourceList"][0]
    assert pool["selectors"]["linkTypes"] == ["ether"]


PUBLIC = re.compile(r"(?<![\w./-])(nvcr\.io|ghcr\.io|quay\.io|docker\.io|registry\.k8s\.io|"
                    r"helm\.ngc\.nvidia\.com|docs\.tigera\.io|github\.com|get\.helm\.sh)")


def test_mirror_replaces_every_public_source(rendered: dict[str, Path]) -> None:
    directory = rendered["k8s-roce"] / "mirror"
    for path in sorted(directory.glob("*.yaml")):
        body = "\n".join(line for line in path.read_text().splitlines() if not line.startswith("#"))
        assert PUBLIC.findall(body) == [], f"{path.name} still names a public source"
    values = yaml.safe_load((directory / "gpu-operator-values.yaml").read_text())
    assert values["operator"]["repository"] == "registry.site.internal:5000/nvcr.io/nvidia"
    (policy,) = documents(directory / "nic-cluster-policy.yaml")
    assert policy["spec"]["secondaryNetwork"]["multus"]["repository"] == (
        "registry.site.internal:5000/nvcr.io/nvidia/mellanox")


def test_validation_messages_name_the_variable(rendered: dict[str, Path]) -> None:
    assert (rendered["k8s-ib"] / "default" / "validate.txt").read_text() == "ok\n"
    broken = (rendered["k8s-ib"] / "broken" / "validate.txt").read_text()
    assert "kubernetes_settings.network_operator.ipam must be whereabouts or nv-ipam, got dhcp" in broken
    assert "pod_subnet" not in broken   # one message per failed condition, none for the others
    removed = (rendered["k8s-ib"] / "removed" / "validate.txt").read_text()
    assert removed.startswith("kubernetes_version is no longer read by the kubernetes role: "
                              "use forge_versions.kubernetes")
    # The spec's sources have no kubernetes_repo key yet: mirror mode says what is missing.
    mirror = (rendered["k8s-roce"] / "mirror" / "validate.txt").read_text()
    assert "forge_package_sources.kubernetes_repo" in mirror

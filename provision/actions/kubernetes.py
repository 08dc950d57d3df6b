"""Kubernetes: cordon and taint a node forge finds unhealthy, through the official client.

forge marks what it did on the node itself: the taint ``forge.io/unhealthy``
and the annotation ``forge.io/drain-reason`` (``forge:<check>:<run id>: ...``).
A node cordoned without that annotation was cordoned by someone else and is
never uncordoned by forge. Tested against kmock, an in-memory API emulator
(no real API server can run in CI), which needs the node objects seeded.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from provision.actions.policy import REASON_PREFIX, NodeState
from provision.errors import DeployError


def kube_api() -> Any:
    """The Kubernetes API client: in-cluster credentials, else the user's kubeconfig."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.CoreV1Api()

TAINT_KEY = "forge.io/unhealthy"
REASON_ANNOTATION = "forge.io/drain-reason"
EFFECT = "NoSchedule"


def taint_value(reason: str) -> str:
    """The check name from a forge reason, as a valid label value (<= 63 chars)."""
    check = reason[len(REASON_PREFIX):].split(":", 1)[0] if reason.startswith(
        REASON_PREFIX) else reason
    value = re.sub(r"[^A-Za-z0-9_.-]", "-", check).strip("-_.")[:63].strip("-_.")
    return value or "unhealthy"


def _as_dict(obj: Any) -> dict[str, Any]:
    if isinstance(obj, dict):
        return obj
    to_dict = getattr(obj, "to_dict", None)
    return to_dict() if to_dict else {}


def node_state(name: str, node: Any) -> NodeState:
    """A node object (client model or dict) -> NodeState."""
    d = _as_dict(node)
    spec = d.get("spec") or {}
    meta = d.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    taints = spec.get("taints") or []
    cordoned = bool(spec.get("unschedulable"))
    ours = any((t or {}).get("key") == TAINT_KEY for t in taints)
    reason = annotations.get(REASON_ANNOTATION) if ours else None
    if cordoned and reason is None:
        reason = "cordoned (not by forge)"
    state = "cordoned" if cordoned else "schedulable"
    return NodeState(name, state, cordoned or ours, reason)


def drain_patch(node: Any, reason: str) -> dict[str, Any]:
    d = _as_dict(node)
    taints = [t for t in (d.get("spec") or {}).get("taints") or []
              if (t or {}).get("key") != TAINT_KEY]
    taints.append({"key": TAINT_KEY, "value": taint_value(reason), "effect": EFFECT})
    return {"spec": {"unschedulable": True, "taints": taints},
            "metadata": {"annotations": {REASON_ANNOTATION: reason}}}


def resume_patch(node: Any) -> dict[str, Any]:
    d = _as_dict(node)
    taints = [t for t in (d.get("spec") or {}).get("taints") or []
              if (t or {}).get("key") != TAINT_KEY]
    return {"spec": {"unschedulable": False, "taints": taints},
            "metadata": {"annotations": {REASON_ANNOTATION: None}}}


class KubernetesScheduler:
    """Cordon + taint / uncordon + untaint through a ``kubernetes.client.CoreV1Api``."""

    name = "kubernetes"

    def __init__(self, api: Any) -> None:
        self.api = api

    def _read(self, name: str) -> Any:
        from kubernetes.client.exceptions import ApiException

        try:
            return self.api.read_node(name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise DeployError(f"kubernetes: read node {name}: {exc.status} {exc.reason}") \
                from None

    def states(self, nodes: Sequence[str]) -> dict[str, NodeState]:
        out = {}
        for name in nodes:
            obj = self._read(name)
            if obj is not None:
                out[name] = node_state(name, obj)
        return out

    def _patch(self, name: str, body: dict[str, Any]) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            self.api.patch_node(name, body)
        except ApiException as exc:
            raise DeployError(f"kubernetes: patch node {name}: {exc.status} {exc.reason}") \
                from None

    def drain(self, node: str, reason: str) -> None:
        obj = self._read(node)
        if obj is None:
            raise DeployError(f"kubernetes: node {node} not found")
        self._patch(node, drain_patch(obj, reason))

    def resume(self, node: str) -> None:
        obj = self._read(node)
        if obj is None or not node_state(node, obj).forge_owned:
            raise DeployError(f"{node}: not cordoned by forge: not uncordoning")
        self._patch(node, resume_patch(obj))

    def describe(self, node: str, action: str, reason: str) -> str:
        if action == "drain":
            return (f"cordon {node}; taint {TAINT_KEY}={taint_value(reason)}:{EFFECT}; "
                    f"annotate {REASON_ANNOTATION}={reason!r}")
        return f"uncordon {node}; remove taint {TAINT_KEY}; remove annotation"

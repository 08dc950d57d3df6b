"""What a sweep expects of one node, compiled from the spec into a small JSON document.

The node-local health check reads this file instead of the site spec, so it
starts in milliseconds and needs nothing but the Python standard library on
the node. Limits are copied from the acceptance plan: each is
``fraction x physical figure`` with the figure's source, so a report shows both.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provision import judge
from provision.errors import InputError

if TYPE_CHECKING:
    from provision.expectations import SitePlan
    from provision.spec.model import Node, Site

SCHEMA_VERSION = 1
#: acceptance thresholds a sweep re-checks (light, counters and link state only)
SWEEP_LIMITS = ("pcie_link_gen", "pcie_link_width", "nic_port_rate", "gpu_count", "nic_count",
                "host_memory", "cpu_count")


@dataclass(frozen=True)
class Limit:
    metric: str
    limit: float
    describe: str         # "1.0 x gpu.pcie_gen = 5 gen (NVIDIA H100 NVL product brief ...)"

    def fields(self) -> dict[str, Any]:
        """The record field this limit fills (``min`` or ``max``, by the metric's direction)."""
        return judge.limit_fields(self.metric, self.limit)


@dataclass(frozen=True)
class NodeExpectation:
    node: str
    profile: str
    gpu_model: str | None = None
    gpu_count: int = 0
    rdma_ports: int = 0
    rdma_adapters: int = 0
    driver_branch: str | None = None
    nic_firmware: str | None = None
    dcgm: bool = False
    #: NVLink links per GPU where the profile bridges GPUs (0: no NVLink to read)
    nvlink_links: int = 0
    #: the lossless (PFC) priority of a RoCE fabric; None on InfiniBand or none
    roce_pfc_priority: int | None = None
    limits: tuple[Limit, ...] = field(default_factory=tuple)

    def limit(self, metric: str) -> Limit | None:
        return next((lim for lim in self.limits if lim.metric == metric), None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict[str, Any], *, source: str = "<config>") -> NodeExpectation:
        try:
            # better: configs written before the direction came from the metric registry
            limits = tuple(Limit(**{k: v for k, v in x.items() if k != "better"})
                           for x in d.get("limits", ()))
            # xid_window_s: configs written before Xids were tracked per boot
            kw = {k: v for k, v in d.items() if k not in ("limits", "xid_window_s")}
            return NodeExpectation(limits=limits, **kw)
        except (TypeError, AttributeError) as exc:
            raise InputError(f"{source}: node {d.get('node', '?')!r}: {exc}") from None


def for_node(site: Site, node: Node, plan: SitePlan | None = None) -> NodeExpectation:
    """What a sweep expects of ``node``; pass the site's ``plan`` when asking for many nodes
    (the plan reads the golden baseline: once per command, not once per node)."""
    from provision.expectations import plan_site

    node_plan = (plan or plan_site(site)).for_node(node.name)
    limits = tuple(
        Limit(t.metric, t.limit, t.describe())
        for t in node_plan.thresholds if t.name in SWEEP_LIMITS and t.metric in SWEEP_LIMITS)
    p = node.profile
    rdma = [n for n in p.nics if n.model.startswith(("ConnectX", "BlueField"))]
    versions = site.stack.version_map
    return NodeExpectation(
        node=node.name, profile=p.name, gpu_model=p.gpu.model if p.gpu else None,
        gpu_count=p.gpu.count if p.gpu else 0,
        rdma_ports=sum(n.ports for n in rdma), rdma_adapters=sum(n.count for n in rdma),
        driver_branch=versions.get("driver_branch"),
        nic_firmware=_nic_firmware(site), dcgm="dcgm" in versions,
        nvlink_links=p.gpu.nvlink_links_per_gpu if p.gpu and p.gpu.nvlink_pairs else 0,
        roce_pfc_priority=site.fabric.roce.pfc_priority
        if site.fabric.type == "roce" and site.fabric.roce else None,
        limits=limits)


def _nic_firmware(site: Site) -> str | None:
    """The NIC firmware baseline: a ``bmc.firmware_baseline`` entry naming ConnectX/NIC."""
    for component, version in site.bmc.firmware_baseline:
        if any(w in component.lower() for w in ("connectx", "nic", "mellanox")):
            return version
    return None


def site_config(site: Site, nodes: list[Node] | None = None) -> dict[str, Any]:
    """The node-local config document for every node (or ``nodes``)."""
    from provision.expectations import plan_site

    plan = plan_site(site)
    return {
        "schema_version": SCHEMA_VERSION, "kind": "forge-sweep-config", "site": site.name,
        "scheduler": site.stack.scheduler,
        "nodes": {n.name: for_node(site, n, plan).to_dict()
                  for n in (nodes or list(site.nodes))},
    }


def load_config(path: Path, node: str) -> NodeExpectation:
    """Read a node-local config and pick ``node`` out of it."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read sweep config: {exc.strerror}",
                         hint="write it with `forge sweep install SPEC`") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: not JSON ({exc.msg})") from None
    if not isinstance(doc, dict) or doc.get("kind") != "forge-sweep-config":
        raise InputError(f"{path}: not a forge sweep config (kind is not forge-sweep-config)")
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise InputError(f"{path}: schema_version {doc.get('schema_version')!r} is not "
                         f"{SCHEMA_VERSION}", hint="re-run `forge sweep install`")
    entry = (doc.get("nodes") or {}).get(node)
    if entry is None:
        raise InputError(f"{path}: node {node!r} is not in this sweep config",
                         hint="pass --node NAME if the host name differs from the spec's")
    return NodeExpectation.from_dict(entry, source=str(path))

"""What every node must show, and the limit each acceptance check will judge it by.

This is the contract between the spec and the checks: a :class:`Threshold` is
always ``fraction x physical figure`` with the figure's source, so a report
can show both. Fractions come from the acceptance policy (forge defaults,
then the spec's ``acceptance.thresholds``, then ``profile_thresholds``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from provision import judge, metrics
from provision.errors import InputError
from provision.spec.model import HardwareProfile, Node, Site


@dataclass(frozen=True)
class Rule:
    name: str
    metric: str
    check: str
    fraction: float
    figure: str
    why: str


#: forge's default acceptance policy. Each fraction is a judgement about how
#: close a healthy part gets to its physical figure; the reason is printed. The
#: side of the limit (a floor or a ceiling) follows the metric's direction in
#: provision.metrics: a rule never states it.
DEFAULT_RULES: tuple[Rule, ...] = (
    Rule("gpu_count", "gpu_count", "conformance", 1.0, "gpu.count",
         "every GPU of the profile is visible"),
    Rule("gpu_memory_total", "gpu_memory_total", "conformance", 0.97, "gpu.memory_mib",
         "the driver reserves a little memory; more missing means a wrong part"),
    Rule("pcie_link_gen", "pcie_link_gen", "conformance", 1.0, "gpu.pcie_gen",
         "a GPU link trained below its generation loses bandwidth"),
    Rule("pcie_link_width", "pcie_link_width", "conformance", 1.0, "gpu.pcie_width",
         "a down-trained link (x8 instead of x16) halves host and NIC traffic"),
    Rule("nic_count", "nic_count", "conformance", 1.0, "nic.count",
         "every adapter of the profile is present"),
    Rule("nic_port_rate", "nic_port_rate", "conformance", 1.0, "nic.rate_gbps",
         "every compute port negotiates its full rate"),
    Rule("host_memory", "host_memory", "conformance", 0.95, "node.memory_gib",
         "the kernel and firmware reserve under 5 % of installed memory"),
    Rule("cpu_count", "cpu_count", "conformance", 1.0, "node.cpu_cores",
         "at least one logical CPU per physical core is online"),
    Rule("nvlink_links_up", "nvlink_links_up", "nvlink", 1.0, "gpu.nvlink_links_per_gpu",
         "every link of every bridge is up"),
    Rule("nvlink_link_speed", "nvlink_link_speed", "nvlink", 1.0, "gpu.nvlink_link_speed_gbs",
         "every link runs at full speed"),
    Rule("nvlink_p2p_bandwidth", "nvlink_p2p_bandwidth", "nvlink", 0.80,
         "gpu.nvlink_bridge_bandwidth_gbs",
         "nvbandwidth copy-engine read per bridged pair reaches 80-90 % of the bridge's "
         "per-direction rate"),
    Rule("hbm_bandwidth", "hbm_bandwidth", "hbm", 0.75, "gpu.memory_bandwidth_gbs",
         "sanity floor: copy kernels reach ~80-90 % of HBM peak on Hopper, so 0.75 leaves "
         "margin; a golden baseline (0.95 x golden) is the real floor"),
    Rule("pcie_h2d_bw", "pcie_h2d_bw", "hbm", 0.80, "gpu.pcie_bandwidth_gbs",
         "pinned host-to-device copy: Gen5 x16 measures ~52-55 GB/s of 63 (Azure "
         "nc80adis_h100_v5 check_gpu_bw 52); x8 or Gen4 halves it"),
    Rule("pcie_d2h_bw", "pcie_d2h_bw", "hbm", 0.80, "gpu.pcie_bandwidth_gbs",
         "pinned device-to-host copy, as host-to-device"),
    Rule("pcie_link_gen_load", "pcie_link_gen_load", "hbm", 1.0, "gpu.pcie_gen",
         "the link generation sampled while a host copy runs (an idle link drops to Gen1 "
         "by design, nvidia-smi(1))"),
    Rule("pcie_link_width_load", "pcie_link_width_load", "hbm", 1.0, "gpu.pcie_width",
         "the link width sampled while a host copy runs"),
    Rule("gemm_tflops", "gemm_tflops", "sdc", 0.60, "gpu.bf16_dense_tflops",
         "sustained BF16 GEMM under power and thermal limits stays above 60 % of dense peak"),
    Rule("gpu_power_fraction", "gpu_power", "sdc", 0.85, "gpu.power_limit_w",
         "the mean power of a full burn-in is close to the board limit; far below means a "
         "cap"),
    Rule("gpudirect_bw", "gpudirect_bw", "gpudirect", 0.92, "nic.rate_gbps",
         "GPUDirect RDMA writes reach 190-197 of 200 Gb/s per NDR200 port; Azure expects "
         "375 of 400 (94 %) on NDR400"),
    Rule("ib_write_bw", "ib_write_bw", "gpudirect", 0.92, "nic.rate_gbps",
         "node-to-node RDMA writes per rail, as GPUDirect"),
    Rule("nccl_busbw_intra", "nccl_busbw", "nccl", 0.40, "gpu.pcie_bandwidth_gbs",
         "sanity floor: the 8-GPU ring alternates NVLink and PCIe hops through the host "
         "bridges, so PCIe bounds it (~30-45 GB/s expected); golden baseline is the floor"),
    Rule("nccl_busbw_pair", "nccl_busbw_pair", "nccl", 0.30,
         "gpu.nvlink_bridge_bandwidth_gbs",
         "all-reduce -g 2 on one bridged pair: H100 PCIe pairs measure ~116 GB/s bus "
         "bandwidth (NVIDIA/nccl#1161), 0.39 of the bridge; a degraded bridge falls below"),
    Rule("nccl_busbw_inter", "nccl_busbw", "nccl-multinode", 0.35, "gpu.pcie_bandwidth_gbs",
         "a ring's bus bandwidth is bounded by its slowest hop: the intra-node "
         "PCIe hops (shared with NIC traffic), not the 8 NICs"),
    Rule("nccl_alltoall_inter", "nccl_busbw_alltoall", "nccl-multinode", 0.70,
         "nic.port_bandwidth_gbs",
         "all-to-all across nodes moves each GPU's data over its own NDR200 port: "
         "bounded by 25 GB/s per GPU"),
)

RULES_BY_NAME = {r.name: r for r in DEFAULT_RULES}


@dataclass(frozen=True)
class Threshold:
    name: str
    metric: str
    check: str
    fraction: float
    figure: str
    figure_value: float
    unit: str
    source: str
    why: str
    #: a performance floor from physics alone, waiting for a golden node's figure
    provisional: bool = False

    @property
    def limit(self) -> float:
        return round(self.fraction * self.figure_value, 6)

    @property
    def better(self) -> metrics.Better:
        """The good direction of the metric, from the registry (provision.metrics)."""
        return metrics.direction(self.metric)

    def describe(self) -> str:
        op = judge.operator(self.metric)
        mark = " [provisional: physics, no golden baseline]" if self.provisional else ""
        return (f"{op} {self.limit:g} {self.unit} = {self.fraction:g} x {self.figure_value:g} "
                f"{self.unit} {self.figure} ({self.source}){mark}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["limit"] = self.limit
        d["better"] = self.better
        return d


@dataclass(frozen=True)
class NodePlan:
    node: str
    group: str
    profile: str
    gpu_model: str | None
    gpu_count: int
    gpu_memory_gb: float
    nvlink_pairs: tuple[tuple[int, int], ...]
    nics: tuple[dict[str, Any], ...]
    fabric_devices: tuple[str, ...]
    thresholds: tuple[Threshold, ...]
    #: every compute port of the node from its fabric addresses: device (the HCA name
    #: the spec's rail map gives), port, rail, address (the rail IP), netdev
    fabric: tuple[dict[str, Any], ...] = ()
    cpu_cores: int = 0
    #: the golden node's topology fingerprint (provision.checks.baseline), when calibrated
    golden_fingerprint: dict[str, Any] | None = None
    golden_node: str | None = None

    @property
    def roce(self) -> bool:
        return any(n["link_layer"] == "Ethernet" for n in self.nics if n["purpose"] == "compute")

    def hca_ports(self) -> list[tuple[str, int]]:
        return [(f["device"], int(f["port"])) for f in self.fabric]

    def threshold(self, name: str) -> Threshold | None:
        for t in self.thresholds:
            if t.name == name:
                return t
        return None

    def for_metric(self, metric: str, check: str | None = None) -> list[Threshold]:
        return [t for t in self.thresholds
                if t.metric == metric and (check is None or t.check == check)]


@dataclass(frozen=True)
class SitePlan:
    site: str
    nodes: tuple[NodePlan, ...]

    def for_node(self, name: str) -> NodePlan:
        for p in self.nodes:
            if p.node == name:
                return p
        raise KeyError(name)


def fractions_for(site: Site, profile: str) -> dict[str, float]:
    acc = site.acceptance_map
    out = {r.name: r.fraction for r in DEFAULT_RULES}
    out.update(acc.get("thresholds", {}))
    out.update(acc.get("profile_thresholds", {}).get(profile, {}))
    return out


# --- golden calibration: a golden node's figures replace physics where a rule allows it
BASELINE_KIND = "forge-baseline"
#: floor = fraction x golden figure, per calibrated rule: a healthy node of the same build
#: repeats its golden node's figures within run-to-run noise (a few %); NCCL varies more
GOLDEN_FRACTIONS: dict[str, float] = {
    "hbm_bandwidth": 0.95, "pcie_h2d_bw": 0.95, "pcie_d2h_bw": 0.95,
    "nvlink_p2p_bandwidth": 0.95, "gemm_tflops": 0.95, "gpu_power_fraction": 0.95,
    "gpudirect_bw": 0.97, "ib_write_bw": 0.97, "nccl_busbw_intra": 0.90,
    "nccl_busbw_pair": 0.90, "nccl_busbw_inter": 0.90, "nccl_alltoall_inter": 0.90,
}


def load_baseline(path: Path) -> dict[str, Any]:
    """A golden baseline document (`forge baseline`), checked for its kind."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read baseline: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: not JSON ({exc.msg})") from None
    if not isinstance(doc, dict) or doc.get("kind") != BASELINE_KIND:
        raise InputError(f"{path}: not a forge baseline (kind is not {BASELINE_KIND})",
                         hint="write one with `forge baseline SPEC RUN_DIR --node NODE`")
    return doc


def calibrate(t: Threshold, doc: Mapping[str, Any]) -> Threshold:
    """``t`` as ``fraction x golden figure``, bounded by the physical figure (pure)."""
    fig = (doc.get("figures") or {}).get(t.name)
    if fig is None or t.name not in GOLDEN_FRACTIONS:
        return t
    golden = min(float(fig["value"]), t.figure_value)
    return replace(t, fraction=GOLDEN_FRACTIONS[t.name], figure=f"golden {doc['node']}",
                   figure_value=golden, provisional=False,
                   source=f"golden node {doc['node']} ({doc.get('created', '?')}, "
                          f"{fig.get('samples', '?')} readings); physics {t.figure_value:g} "
                          f"{t.unit} {t.figure} ({t.source})")


def thresholds_for(profile: HardwareProfile, fractions: dict[str, float],
                   baseline: dict[str, Any] | None = None) -> tuple[Threshold, ...]:
    out = []
    for rule in DEFAULT_RULES:
        fig = profile.figure(rule.figure)
        if fig is None or fig.value == 0:
            continue  # the profile has no such part: the check does not apply
        t = Threshold(rule.name, rule.metric, rule.check, fractions[rule.name],
                      rule.figure, fig.value, fig.unit, fig.source, rule.why,
                      provisional=rule.name in GOLDEN_FRACTIONS)
        out.append(calibrate(t, baseline) if baseline else t)
    return tuple(out)


def site_baseline(site: Site) -> dict[str, Any] | None:
    """The spec's golden baseline (``acceptance.baseline``, relative to the spec), or None."""
    name = site.acceptance_map.get("baseline")
    if not name:
        return None
    path = Path(str(name))
    return load_baseline(path if path.is_absolute() else Path(site.base_dir) / path)


def plan_node(site: Site, node: Node, cache: dict[str, tuple[Threshold, ...]],
              baseline: dict[str, Any] | None = None) -> NodePlan:
    p = node.profile
    golden = baseline if baseline and baseline.get("profile") == p.name else None
    if p.name not in cache:
        cache[p.name] = thresholds_for(p, fractions_for(site, p.name), golden)
    nics = tuple({"model": n.model, "count": n.count, "ports": n.ports_per_nic,
                  "rate_gbps": n.rate_gbps, "link_layer": n.link_layer, "purpose": n.purpose,
                  "pcie_gen": n.pcie_gen, "pcie_width": n.pcie_width,
                  "gpu_affinity": [list(a) for a in n.gpu_affinity]} for n in p.nics)
    return NodePlan(
        node=node.name, group=node.group, profile=p.name,
        gpu_model=p.gpu.model if p.gpu else None, gpu_count=p.gpu.count if p.gpu else 0,
        gpu_memory_gb=p.gpu.memory_gb if p.gpu else 0.0,
        nvlink_pairs=p.gpu.nvlink_pairs if p.gpu else (),
        nics=nics, fabric_devices=tuple(a.device for a in node.fabric_addresses),
        thresholds=cache[p.name],
        fabric=tuple({"device": a.device, "port": a.port, "rail": a.rail,
                      "address": a.address, "netdev": a.netdev}
                     for a in node.fabric_addresses),
        cpu_cores=_cores(p),
        golden_fingerprint=golden.get("fingerprint") if golden else None,
        golden_node=golden.get("node") if golden else None,
    )


def _cores(profile: HardwareProfile) -> int:
    fig = profile.figure("node.cpu_cores")
    return int(fig.value) if fig is not None else 0


def plan_site(site: Site) -> SitePlan:
    cache: dict[str, tuple[Threshold, ...]] = {}
    baseline = site_baseline(site)
    return SitePlan(site.name, tuple(plan_node(site, n, cache, baseline) for n in site.nodes))

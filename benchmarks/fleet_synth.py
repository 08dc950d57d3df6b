"""Synthetic GPU fleets with injected faults and their ground truth.

A fleet is a list of measurement records (the public JSONL format) for
SR675 V3-like nodes: per-GPU bandwidth, compute, clocks, temperatures and
health counters, node-level inventory, NVLink bridge pairs, and node-to-node
pair tests (NCCL and ib_write_bw over random pairings). Healthy readings are
Gaussian around a per-model mean with a per-node effect (cooling, BIOS); the
spreads are stated in ``MODELS`` and are the honest limit of what any
comparison can find (see docs/analyzer.md).

Faults are applied to the readings of one entity and recorded as
:class:`Fault` with the locations a correct finding may name.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Location = tuple[Any, ...]   # ("gpu", node, gpu) | ("node", node) | ("link", frozenset)
Key = tuple[str, int | None, str, str | None]   # (node, gpu, metric, peer)


@dataclass(frozen=True)
class MetricGen:
    metric: str
    unit: str
    mean: float
    sd_rel: float = 0.0        # per-reading spread, fraction of the mean
    sd_abs: float = 0.0        # per-reading spread, absolute
    node_rel: float = 0.0      # per-node effect, fraction of the mean
    node_abs: float = 0.0      # per-node effect, absolute
    kind: str = "gauss"        # gauss | const | poisson | rare
    rate: float = 0.0          # poisson rate, or share of readings that are not 0 for "rare"
    check: str = "burn-in"
    decimals: int = 2


@dataclass(frozen=True)
class ModelSpec:
    model: str
    profile: str
    gpus: int
    nvlink_pairs: tuple[tuple[int, int], ...]
    gpu_metrics: tuple[MetricGen, ...]
    node_metrics: tuple[MetricGen, ...]
    nvlink: MetricGen | None
    nccl: MetricGen
    ib: MetricGen


def _bw(metric: str, unit: str, mean: float, check: str, sd: float = 0.003,
        node: float = 0.0015) -> MetricGen:
    return MetricGen(metric, unit, mean, sd_rel=sd, node_rel=node, check=check)


H100 = ModelSpec(
    model="NVIDIA H100 NVL", profile="sr675v3-h100nvl-ib", gpus=8,
    nvlink_pairs=((0, 1), (2, 3), (4, 5), (6, 7)),
    gpu_metrics=(
        _bw("hbm_bandwidth", "GB/s", 3350.0, "hbm"),
        _bw("gemm_tflops", "TFLOP/s", 690.0, "burn-in", sd=0.004),
        _bw("gpu_sm_clock", "MHz", 1755.0, "burn-in", sd=0.002, node=0.001),
        _bw("gpudirect_bw", "Gb/s", 194.0, "gpudirect", sd=0.002, node=0.001),
        MetricGen("gpu_temperature", "C", 62.0, sd_abs=1.8, node_abs=2.5, decimals=0),
        MetricGen("gpu_memory_temperature", "C", 71.0, sd_abs=1.8, node_abs=2.5, decimals=0),
        MetricGen("gpu_power", "W", 385.0, sd_abs=4.0, node_abs=2.0, decimals=1),
        MetricGen("clocks_event_thermal", "ratio", 0.0, kind="rare", rate=0.02, sd_abs=0.01),
        MetricGen("clocks_event_power", "ratio", 0.0, kind="rare", rate=0.05, sd_abs=0.015),
        MetricGen("ecc_corrected_volatile", "count", 0.0, kind="poisson", rate=0.02,
                  check="health"),
        MetricGen("ecc_uncorrected_volatile", "count", 0.0, kind="const", check="health"),
        MetricGen("remapped_rows_pending", "count", 0.0, kind="const", check="health"),
        MetricGen("xid_events", "count", 0.0, kind="const", check="health"),
        MetricGen("sdc_mismatch", "count", 0.0, kind="const", check="burn-in"),
        MetricGen("pcie_link_gen", "gen", 5.0, kind="const", check="inventory"),
        MetricGen("pcie_link_width", "lanes", 16.0, kind="const", check="inventory"),
        MetricGen("pcie_replay_count", "count", 0.0, kind="poisson", rate=0.03, check="health"),
        MetricGen("gpu_memory_total", "MiB", 95830.0, kind="const", check="inventory"),
        MetricGen("nvlink_links_up", "count", 12.0, kind="const", check="nvlink"),
    ),
    node_metrics=(
        MetricGen("gpu_count", "count", 8.0, kind="const", check="inventory"),
        MetricGen("nic_count", "count", 5.0, kind="const", check="inventory"),
        MetricGen("host_memory", "GiB", 1511.0, kind="const", check="inventory"),
        MetricGen("cpu_count", "count", 256.0, kind="const", check="inventory"),
    ),
    nvlink=_bw("nvlink_p2p_bandwidth", "GB/s", 265.0, "nvlink", sd=0.003, node=0.001),
    nccl=_bw("nccl_busbw", "GB/s", 182.0, "nccl-pairs", sd=0.003, node=0.0),
    ib=_bw("ib_write_bw", "Gb/s", 196.0, "ib-pairs", sd=0.002, node=0.0),
)

L40S = ModelSpec(
    model="NVIDIA L40S", profile="sr675v3-l40s-roce", gpus=8, nvlink_pairs=(),
    gpu_metrics=(
        _bw("hbm_bandwidth", "GB/s", 780.0, "hbm"),
        _bw("gemm_tflops", "TFLOP/s", 330.0, "burn-in", sd=0.004),
        _bw("gpu_sm_clock", "MHz", 2490.0, "burn-in", sd=0.002, node=0.001),
        _bw("gpudirect_bw", "Gb/s", 188.0, "gpudirect", sd=0.002, node=0.001),
        MetricGen("gpu_temperature", "C", 68.0, sd_abs=1.8, node_abs=2.5, decimals=0),
        MetricGen("gpu_memory_temperature", "C", 74.0, sd_abs=1.8, node_abs=2.5, decimals=0),
        MetricGen("gpu_power", "W", 342.0, sd_abs=4.0, node_abs=2.0, decimals=1),
        MetricGen("clocks_event_thermal", "ratio", 0.0, kind="rare", rate=0.02, sd_abs=0.01),
        MetricGen("clocks_event_power", "ratio", 0.0, kind="rare", rate=0.05, sd_abs=0.015),
        MetricGen("ecc_corrected_volatile", "count", 0.0, kind="poisson", rate=0.02,
                  check="health"),
        MetricGen("ecc_uncorrected_volatile", "count", 0.0, kind="const", check="health"),
        MetricGen("remapped_rows_pending", "count", 0.0, kind="const", check="health"),
        MetricGen("xid_events", "count", 0.0, kind="const", check="health"),
        MetricGen("sdc_mismatch", "count", 0.0, kind="const", check="burn-in"),
        MetricGen("pcie_link_gen", "gen", 4.0, kind="const", check="inventory"),
        MetricGen("pcie_link_width", "lanes", 16.0, kind="const", check="inventory"),
        MetricGen("pcie_replay_count", "count", 0.0, kind="poisson", rate=0.03, check="health"),
        MetricGen("gpu_memory_total", "MiB", 46068.0, kind="const", check="inventory"),
    ),
    node_metrics=(
        MetricGen("gpu_count", "count", 8.0, kind="const", check="inventory"),
        MetricGen("nic_count", "count", 3.0, kind="const", check="inventory"),
        MetricGen("host_memory", "GiB", 1511.0, kind="const", check="inventory"),
        MetricGen("cpu_count", "count", 336.0, kind="const", check="inventory"),
    ),
    nvlink=None,
    nccl=_bw("nccl_busbw", "GB/s", 88.0, "nccl-pairs", sd=0.003, node=0.0),
    ib=_bw("ib_write_bw", "Gb/s", 191.0, "ib-pairs", sd=0.002, node=0.0),
)

MODELS = {"h100": H100, "l40s": L40S}

#: fault classes; "continuous" ones take a magnitude (the fraction lost)
CONTINUOUS = ("slow_hbm", "thermal_throttle", "nvlink_bridge", "gpu_nic_path",
              "slow_nccl_node", "slow_link", "node_wide_slow")
DISCRETE = ("ecc_storm", "pcie_downtrain", "sdc_mismatch")
FAULT_CLASSES = CONTINUOUS + DISCRETE
#: the metrics a finding must be on to count against a class (for per-class precision)
CLASS_METRICS = {
    "slow_hbm": ("hbm_bandwidth",),
    "thermal_throttle": ("gpu_sm_clock", "gemm_tflops", "gpu_temperature", "clocks_event_thermal",
                         "gpu_power", "gpu_memory_temperature"),
    "nvlink_bridge": ("nvlink_p2p_bandwidth",),
    "gpu_nic_path": ("gpudirect_bw",),
    "slow_nccl_node": ("nccl_busbw",),
    "slow_link": ("ib_write_bw",),
    "node_wide_slow": ("gemm_tflops",),
    "ecc_storm": ("ecc_corrected_volatile",),
    "pcie_downtrain": ("pcie_link_width",),
    "sdc_mismatch": ("sdc_mismatch",),
}


@dataclass(frozen=True)
class Fault:
    cls: str
    node: str
    gpu: int | None
    magnitude: float | None
    locations: frozenset[Location]
    peer: str | None = None


@dataclass
class Fleet:
    records: list[dict[str, Any]]
    faults: list[Fault] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)


#: noise shape of healthy readings: "gauss", or "t5" (Student t, 5 degrees of freedom, scaled
#: to the same standard deviation: heavier tails, as real fleets sometimes show)
NOISE = {"shape": "gauss"}


def _noise(rng: np.random.Generator, sd: float, n: int) -> np.ndarray:
    if NOISE["shape"] == "t5":
        return sd * rng.standard_t(5, n) / np.sqrt(5 / 3)
    return rng.normal(0, sd, n)


def _value(g: MetricGen, rng: np.random.Generator, n: int, node_eff: np.ndarray) -> np.ndarray:
    if g.kind == "const":
        return np.full(n, g.mean)
    if g.kind == "poisson":
        return rng.poisson(g.rate, n).astype(float)
    if g.kind == "rare":
        hit = rng.random(n) < g.rate
        return np.where(hit, np.abs(rng.normal(0, g.sd_abs, n)), 0.0)
    sd = g.sd_rel * g.mean + g.sd_abs
    return g.mean + node_eff + _noise(rng, sd, n)


def _node_effect(g: MetricGen, rng: np.random.Generator, n_nodes: int) -> np.ndarray:
    return rng.normal(0, g.node_rel * g.mean + g.node_abs, n_nodes)


def _rec(node: str, gpu: int | None, g: MetricGen, v: float, spec: ModelSpec,
         peer: str | None = None, compact: bool = False) -> dict[str, Any]:
    r: dict[str, Any] = {"node": node, "gpu": gpu, "metric": g.metric,
                         "value": round(float(v), g.decimals), "unit": g.unit,
                         "model": spec.model, "check": g.check}
    if not compact:
        r["profile"] = spec.profile
        r["ts"] = "2025-03-01T12:00:00Z"
    if peer is not None:
        r["peer"] = peer
    return r


def _pairings(nodes: list[str], rounds: int, rng: random.Random) -> list[tuple[str, str]]:
    """``rounds`` random perfect matchings: every node gets ``rounds`` partners."""
    out: set[tuple[str, str]] = set()
    for _ in range(rounds):
        order = nodes[:]
        rng.shuffle(order)
        for a, b in zip(order[::2], order[1::2], strict=False):
            out.add((a, b) if a < b else (b, a))
    return sorted(out)


def generate(n_nodes: int = 512, *, models: Iterable[str] = ("h100",), seed: int = 1,
             faults_per_class: int = 0, magnitude: tuple[float, float] = (0.10, 0.30),
             classes: Iterable[str] = FAULT_CLASSES, pair_rounds: int = 4,
             prefix: str = "gpu", compact: bool = False) -> Fleet:
    """A fleet of ``n_nodes`` split evenly over ``models`` with faults on distinct nodes."""
    rng = np.random.default_rng(seed)
    prng = random.Random(seed)
    specs = [MODELS[m] for m in models]
    width = max(3, len(str(n_nodes)))
    nodes = [f"{prefix}{i + 1:0{width}d}" for i in range(n_nodes)]
    spec_of = {n: specs[i * len(specs) // n_nodes] for i, n in enumerate(nodes)}
    # readings[(node, gpu, metric, peer)] -> value; built per model with numpy, then faulted
    vals: dict[Key, float] = {}
    meta: dict[Key, tuple[MetricGen, ModelSpec]] = {}
    key: Key
    for spec in specs:
        mnodes = [n for n in nodes if spec_of[n] is spec]
        nn, ng = len(mnodes), spec.gpus
        for g in spec.gpu_metrics:
            eff = np.repeat(_node_effect(g, rng, nn), ng)
            v = _value(g, rng, nn * ng, eff)
            for k, x in enumerate(v.tolist()):
                key = (mnodes[k // ng], k % ng, g.metric, None)
                vals[key] = x
                meta[key] = (g, spec)
        for g in spec.node_metrics:
            v = _value(g, rng, nn, np.zeros(nn))
            for k, x in enumerate(v.tolist()):
                key = (mnodes[k], None, g.metric, None)
                vals[key] = x
                meta[key] = (g, spec)
        if spec.nvlink is not None:
            g = spec.nvlink
            eff = _node_effect(g, rng, nn)
            for k, n in enumerate(mnodes):
                for a, b in spec.nvlink_pairs:
                    for x, y in ((a, b), (b, a)):
                        key = (n, x, g.metric, f"{n}:{y}")
                        vals[key] = float(g.mean + eff[k] + _noise(rng, g.sd_rel * g.mean, 1)[0])
                        meta[key] = (g, spec)
        for g in (spec.nccl, spec.ib):
            for na, nb in _pairings(mnodes, pair_rounds, prng):
                key = (na, None, g.metric, nb)
                vals[key] = float(g.mean + _noise(rng, g.sd_rel * g.mean, 1)[0])
                meta[key] = (g, spec)

    fleet = Fleet(records=[], nodes=nodes)
    free = nodes[:]
    prng.shuffle(free)
    for cls in classes:
        for _ in range(faults_per_class):
            if not free:
                break
            usable = [n for n in free if cls != "nvlink_bridge" or spec_of[n].nvlink_pairs]
            if not usable:
                break
            node = usable[-1]
            free.remove(node)
            spec = spec_of[node]
            m = prng.uniform(*magnitude) if cls in CONTINUOUS else None
            fault = _inject(cls, node, spec, m, vals, prng)
            if fault is not None:
                fleet.faults.append(fault)
    fleet.records = [_rec(k[0], k[1], meta[k][0], v, meta[k][1], k[3], compact)
                     for k, v in vals.items()]
    return fleet


def _inject(cls: str, node: str, spec: ModelSpec, m: float | None,
            vals: dict[Key, float],
            rng: random.Random) -> Fault | None:
    gpu = rng.randrange(spec.gpus)
    loss = 1.0 - (m or 0.0)

    def scale(metric: str, g: int | None, factor: float, peer: str | None = None) -> None:
        vals[(node, g, metric, peer)] *= factor

    gpu_loc = frozenset({("gpu", node, gpu)})
    if cls == "slow_hbm":
        scale("hbm_bandwidth", gpu, loss)
    elif cls == "thermal_throttle":
        assert m is not None
        scale("gpu_sm_clock", gpu, loss)
        scale("gemm_tflops", gpu, loss)
        vals[(node, gpu, "gpu_temperature", None)] += 5 + 100 * m
        vals[(node, gpu, "clocks_event_thermal", None)] = min(1.0, 0.1 + 3 * m)
        scale("gpu_power", gpu, 1 - m / 2)
    elif cls == "gpu_nic_path":
        scale("gpudirect_bw", gpu, loss)
    elif cls == "ecc_storm":
        vals[(node, gpu, "ecc_corrected_volatile", None)] = float(rng.randint(200, 50000))
    elif cls == "pcie_downtrain":
        vals[(node, gpu, "pcie_link_width", None)] = 8.0
    elif cls == "sdc_mismatch":
        vals[(node, gpu, "sdc_mismatch", None)] = 1.0
    elif cls == "nvlink_bridge":
        a, b = spec.nvlink_pairs[rng.randrange(len(spec.nvlink_pairs))]
        scale("nvlink_p2p_bandwidth", a, loss, f"{node}:{b}")
        scale("nvlink_p2p_bandwidth", b, loss, f"{node}:{a}")
        link = ("link", frozenset({f"{node}:{a}", f"{node}:{b}"}))
        return Fault(cls, node, a, m, frozenset({link, ("gpu", node, a), ("gpu", node, b)}),
                     peer=f"{node}:{b}")
    elif cls == "node_wide_slow":
        for g in range(spec.gpus):
            scale("gemm_tflops", g, loss)
        return Fault(cls, node, None, m, frozenset({("node", node)}))
    elif cls == "slow_nccl_node":
        hit = [k for k in vals if k[2] == "nccl_busbw" and node in (k[0], k[3])]
        if len(hit) < 2:
            return None
        for k in hit:
            vals[k] *= loss
        return Fault(cls, node, None, m, frozenset({("node", node)}))
    elif cls == "slow_link":
        hit = [k for k in vals if k[2] == "ib_write_bw" and node in (k[0], k[3])]
        if not hit:
            return None
        slow = hit[rng.randrange(len(hit))]
        vals[slow] *= loss
        end_a, end_b = slow[0], slow[3]
        assert end_b is not None
        return Fault(cls, end_a, None, m, frozenset({("link", frozenset({end_a, end_b}))}),
                     peer=end_b)
    else:
        raise ValueError(f"unknown fault class {cls}")
    return Fault(cls, node, gpu, m, gpu_loc)


def location(f: Any) -> Location:
    """Where a finding points: a GPU, a node, or a link between two endpoints."""
    if f.kind == "pair-link":
        a = f.node if f.gpu is None else f"{f.node}:{f.gpu}"
        return ("link", frozenset({a, f.peer}))
    if f.kind == "node-group" or f.gpu is None:
        return ("node", f.node)
    return ("gpu", f.node, f.gpu)


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    found: int = 0
    faults: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.found / self.faults if self.faults else 1.0


def score(findings: Iterable[Any], faults: list[Fault]) -> tuple[dict[str, Score], list[Any]]:
    """Per fault class: flagged locations right/wrong and faults found; plus the false findings."""
    per: dict[str, Score] = {c: Score() for c in {f.cls for f in faults}}
    truth: dict[Location, str] = {}
    for fault in faults:
        per[fault.cls].faults += 1
        for loc in fault.locations:
            truth[loc] = fault.cls
    metric_class = {m: c for c, ms in CLASS_METRICS.items() for m in ms}
    flagged: dict[Location, Any] = {}
    for f in findings:
        flagged.setdefault(location(f), f)
    false: list[Any] = []
    for loc, f in flagged.items():
        cls = truth.get(loc)
        if cls is not None:
            per[cls].tp += 1
        else:
            false.append(f)
            c = metric_class.get(f.metric, "other")
            per.setdefault(c, Score()).fp += 1
    for fault in faults:
        if any(loc in flagged for loc in fault.locations):
            per[fault.cls].found += 1
    return per, false

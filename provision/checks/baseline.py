"""Golden-node calibration: a node the operator declares good becomes the reference.

``forge baseline SPEC RUN_DIR --node NODE`` reads a check run directory of that
node and records

- its *topology fingerprint*: the GPU-GPU and GPU-NIC matrix of ``nvidia-smi
  topo -m`` (NVLink counts per bridged pair, PCIe distance of every GPU to every
  NIC, by HCA name), the NUMA node of every GPU, the HCA behind each NIC column;
- its *measured figures*: the median, over its GPUs, ports or runs, of every
  reading a performance floor judges (HBM, H2D/D2H, GEMM, power, NCCL per
  collective and path, GPUDirect, NVLink P2P).

A figure is accepted only between two bounds: above the physical figure it is a
measurement error (a copy cannot beat its bus), below the provisional physics
floor it is a bad golden node; both are refused with the figure named.

With ``acceptance.baseline: FILE`` in the spec, :func:`provision.expectations.plan_site`
shows each calibrated floor as ``fraction x golden figure`` (bounded by
physics) and conformance compares every node's fingerprint with the golden one
for equality. Without a baseline the floors stay physics-based, marked
provisional.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provision import judge
from provision.errors import InputError

# the golden calibration of thresholds is the plan's (provision.expectations); kept
# importable from here, where the baseline is built
from provision.expectations import BASELINE_KIND, GOLDEN_FRACTIONS, calibrate
from provision.expectations import load_baseline as load

__all__ = ["GOLDEN_FRACTIONS", "PHYSICS_SLACK", "build", "calibrate", "differences",
           "fingerprint", "load", "refusals"]

if TYPE_CHECKING:
    from provision.expectations import NodePlan
    from provision.measurement import Measurement

SCHEMA_VERSION = 1
KIND = BASELINE_KIND
#: a measured figure may exceed its physical figure by rounding only
PHYSICS_SLACK = 1.02


@dataclass(frozen=True)
class Golden:
    node: str
    value: float
    unit: str
    samples: int
    run: str


def fingerprint(topo_text: str, node: str) -> dict[str, Any]:
    """The topology fingerprint of one node from ``nvidia-smi topo -m`` (pure)."""
    from provision.parsers import nvidia_smi_topo as topo

    m = topo.parse(topo_text, node=node, source_name=f"{node}:topo")
    nic = dict(m.nic_names)
    gpu_gpu: dict[str, str] = {}
    gpu_nic: dict[str, str] = {}
    for lk in m.links:
        if not lk.a.startswith("GPU"):
            continue
        if lk.b.startswith("GPU"):
            if int(lk.a[3:]) < int(lk.b[3:]):
                gpu_gpu[f"{lk.a}-{lk.b}"] = lk.kind
        else:
            gpu_nic[f"{lk.a}-{nic.get(lk.b, lk.b)}"] = lk.kind
    return {"gpu_gpu": gpu_gpu, "gpu_nic": gpu_nic,
            "numa": {f"GPU{g.index}": g.numa_node for g in m.gpus},
            "nics": {k: v for k, v in m.nic_names}}


def differences(golden: Mapping[str, Any], mine: Mapping[str, Any], limit: int = 5) \
        -> list[str]:
    """Where a node's fingerprint differs from the golden one (equality, every key)."""
    out = []
    for section in sorted(set(golden) | set(mine)):
        g, m = golden.get(section) or {}, mine.get(section) or {}
        for key in sorted(set(g) | set(m)):
            if g.get(key) != m.get(key):
                out.append(f"{section} {key}: {m.get(key, 'absent')} "
                           f"(golden {g.get(key, 'absent')})")
    return out[:limit] + ([f"and {len(out) - limit} more"] if len(out) > limit else [])


def measured(records: Iterable[Measurement], plan: NodePlan) -> dict[str, tuple[float, int]]:
    """Median and count of the golden node's readings for every calibrated threshold."""
    by: dict[tuple[str, str], list[float]] = {}
    for r in records:
        if r.node == plan.node and r.check:
            by.setdefault((r.metric, r.check), []).append(r.value)
    out = {}
    for t in plan.thresholds:
        if t.name in GOLDEN_FRACTIONS:
            vals = by.get((t.metric, t.check))
            if vals:
                out[t.name] = (statistics.median(vals), len(vals))
    return out


def refusals(figures: Mapping[str, tuple[float, int]], plan: NodePlan) -> list[str]:
    """Golden figures that cannot be right: above physics, or below the physics floor."""
    bad = []
    for name, (value, _) in sorted(figures.items()):
        t = plan.threshold(name)
        if t is None:
            continue
        if judge.breach(value, None, t.figure_value * PHYSICS_SLACK):
            bad.append(f"{name} = {value:g} {t.unit} is above its physical figure "
                       f"{t.figure_value:g} {t.unit} ({t.figure}): a measurement error")
        elif judge.crosses(t.metric, value, t.limit):
            bad.append(f"{name} = {value:g} {t.unit} is below the physics floor "
                       f"{t.limit:g} {t.unit} ({t.fraction:g} x {t.figure}): not a golden node")
    return bad


def build(run_dir: Path, plan: NodePlan) -> dict[str, Any]:
    """The baseline document of ``plan.node`` from a check run directory (raises on
    refusal, naming every figure that cannot be right)."""
    from provision.analyze.load import read_records, resolve
    from provision.measurement import from_dict

    path = Path(run_dir)
    if not path.is_dir():
        raise InputError(f"{path}: not a forge check run directory")
    records = [from_dict(r) for r in read_records(resolve(path), strict=False)]
    figures = measured(records, plan)
    if not figures:
        raise InputError(f"{path}: no performance reading of {plan.node} to calibrate from",
                         hint="run the hbm, sdc, nccl, gpudirect checks on it first")
    bad = refusals(figures, plan)
    if bad:
        raise InputError(f"{plan.node} refused as a golden node: " + "; ".join(bad))
    topo = _raw_topo(path, plan.node)
    return {"schema_version": SCHEMA_VERSION, "kind": KIND, "node": plan.node,
            "profile": plan.profile, "run": str(path), "created": time.strftime(
                "%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "fingerprint": fingerprint(topo, plan.node) if topo else None,
            "figures": {name: {"value": round(v, 4), "samples": n,
                               "unit": _unit(plan, name)} for name, (v, n) in
                        sorted(figures.items())}}


def _unit(plan: NodePlan, name: str) -> str:
    t = plan.threshold(name)
    return t.unit if t else ""


def _raw_topo(run_dir: Path, node: str) -> str | None:
    """``nvidia-smi topo -m`` as the conformance or nvlink collector kept it."""
    from provision.runs import safe_name

    for check in ("conformance", "nvlink"):
        out = run_dir / "raw" / check / f"{safe_name(node)}.out"
        if not out.exists():
            continue
        try:
            doc = json.loads(out.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            continue
        text = ((doc.get("commands") or {}).get("topo") or {}).get("stdout")
        if text:
            return str(text)
    return None

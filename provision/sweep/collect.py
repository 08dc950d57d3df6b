"""Collect one node's probes: locally (``forge sweep --local``) or from a launcher's result.

Both paths run the same probe script and read the same marker-delimited
output, so a node checked by its own health check and one checked from the
fan-out are judged alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from provision import proc
from provision.measurement import Measurement
from provision.parsers.base import record
from provision.remote.base import Result
from provision.sweep import probes as P
from provision.sweep.expect import NodeExpectation
from provision.sweep.result import NodeResult, node_result

NODE_MARGIN_S = 15.0


def node_timeout(probes: list[P.Probe]) -> float:
    """The per-node budget: every probe's own timeout, plus connection set-up."""
    return sum(p.timeout_s + 2 for p in probes) + NODE_MARGIN_S


def from_output(exp: NodeExpectation, probes: list[P.Probe], stdout: str, *,
                connected: bool, why: str = "", seconds: float = 0.0,
                now: float | None = None) -> NodeResult:
    """Judge a node from its probe script's (possibly partial) output.

    ``connected`` False means the connection failed or dropped: the node is
    unreachable, and every probe that did finish before that is kept.
    """
    now = time.time() if now is None else now
    sections = P.split_sections(stdout)
    records: list[Measurement] = []
    for p in probes:
        records.extend(P.evaluate(p, sections.get(p.name), exp, now))
    finished = all(s.rc is not None for s in sections.values()) and len(sections) == len(probes)
    reachable = connected and finished
    if connected and not finished:
        why = why or "the probe script stopped before its end"
    records.append(record(exp.node, "node_reachable", 1 if reachable else 0, check="reach",
                          min=1.0, detail="ok" if reachable else why))
    return node_result(exp.node, records, reachable=reachable, why_unreachable=why,
                       seconds=seconds)


def nvml_gpu(exp: NodeExpectation) -> list[Measurement] | None:
    """GPU records read in-process through NVML, or None when NVML cannot be used here
    (pynvml missing, no driver): then the nvidia-smi probe runs instead."""
    try:
        from provision.node_programs.gpu.nvml import NvmlUnavailable, snapshot
    except ImportError:
        return None
    try:
        snap = snapshot()
    except NvmlUnavailable:
        return None
    return [*P.nvml_records(snap, exp),
            record(exp.node, "probe_ok", 1, check="gpu", min=1.0, detail="gpu: ok (NVML)")]


def run_local(exp: NodeExpectation, profile: str, *, use_nvml: bool = True,
              keep: Callable[[str, Result], None] | None = None) -> NodeResult:
    """Run the probes on this machine (the node-local health check).

    GPU counters come from NVML in-process when it is usable (no nvidia-smi
    process per check), else from the same nvidia-smi probe the fan-out runs.
    """
    probes = P.selected(profile, exp)
    start = time.monotonic()
    gpu = nvml_gpu(exp) if use_nvml and any(p.name == "gpu" for p in probes) else None
    if gpu is not None:
        probes = [p for p in probes if p.name != "gpu"]
    script = P.script(probes, exp)
    done = proc.run(["sh", "-s"], timeout=node_timeout(probes), input_text=script)
    if keep is not None:
        keep(exp.node, Result(exp.node, ("sh", "-s"), "timeout" if done.timed_out else (
            "ok" if done.returncode == 0 else "failed"), None if done.timed_out else
            done.returncode, done.stdout, done.stderr, done.duration_s,
            "timed out" if done.timed_out else ""))
    res = from_output(exp, probes, done.stdout, connected=True,
                      why="timed out" if done.timed_out else "",
                      seconds=time.monotonic() - start)
    if gpu is None:
        return res
    return node_result(exp.node, [*gpu, *res.records], reachable=res.reachable,
                       why_unreachable=res.reason, seconds=res.seconds)

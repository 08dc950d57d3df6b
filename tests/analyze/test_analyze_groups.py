"""Node grouping, pair/link attribution and drift."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from conftest import gpu_fleet, set_value

from provision.analyze import Baseline, analyze
from provision.errors import InputError


def _slow_node(recs: list[dict[str, Any]], node: str, factor: float) -> None:
    for r in recs:
        if r["node"] == node:
            r["value"] *= factor


def test_a_node_with_all_gpus_slightly_slow_is_one_finding() -> None:
    recs = gpu_fleet("gemm_tflops", nodes=32, mean=690.0, sd_rel=0.002, unit="TFLOP/s")
    _slow_node(recs, "gpu017", 0.975)             # 2.5 %: under the per-GPU threshold
    fs = analyze(recs).findings
    assert [(f.kind, f.node, f.gpu, f.gpus) for f in fs] == [
        ("node-group", "gpu017", None, tuple(range(8)))]
    assert "8 of 8 GPUs off the same way" in fs[0].reason


def test_a_node_with_all_gpus_very_slow_is_one_finding_not_eight() -> None:
    recs = gpu_fleet("gemm_tflops", nodes=32, mean=690.0, unit="TFLOP/s")
    _slow_node(recs, "gpu009", 0.85)
    fs = analyze(recs).findings
    assert [(f.kind, f.node, f.severity, len(f.gpus)) for f in fs] == [
        ("node-group", "gpu009", "fail", 8)]


def test_one_bad_gpu_is_not_a_bad_node() -> None:
    recs = gpu_fleet("gemm_tflops", nodes=32, mean=690.0, unit="TFLOP/s")
    set_value(recs, "gpu009", 3, 0.5)
    assert [(f.kind, f.gpu) for f in analyze(recs).findings] == [("outlier", 3)]


def test_node_effects_of_healthy_fleets_are_not_findings() -> None:
    rng = np.random.default_rng(5)
    recs = gpu_fleet("gpu_temperature", nodes=128, mean=62.0, sd_rel=0.03, unit="C")
    effect = {f"gpu{n:03d}": rng.normal(0, 2.5) for n in range(1, 129)}
    for r in recs:
        r["value"] += effect[r["node"]]
    assert analyze(recs).findings == ()


def _pairs(nodes: int, rounds: int = 4, seed: int = 3) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    names = [f"gpu{i + 1:03d}" for i in range(nodes)]
    seen: set[tuple[str, str]] = set()
    for _ in range(rounds):
        order = list(rng.permutation(names))
        for a, b in zip(order[::2], order[1::2], strict=True):
            seen.add((min(a, b), max(a, b)))
    return [{"node": a, "gpu": None, "metric": "nccl_busbw", "peer": b, "unit": "GB/s",
             "value": float(182 * (1 + rng.normal(0, 0.003))), "check": "nccl-pairs"}
            for a, b in sorted(seen)]


def test_slow_node_in_pair_tests_is_the_node_not_the_links() -> None:
    recs = _pairs(32)
    for r in recs:
        if "gpu007" in (r["node"], r["peer"]):
            r["value"] *= 0.8
    fs = analyze(recs).findings
    assert [(f.kind, f.node, f.gpu) for f in fs] == [("pair-node", "gpu007", None)]
    assert len(fs[0].peers) >= 3 and "the node is the common factor" in fs[0].reason


def test_one_slow_pair_is_the_link() -> None:
    recs = _pairs(32)
    bad = recs[10]
    bad["value"] *= 0.85
    fs = analyze(recs).findings
    assert [(f.kind, f.node, f.peer) for f in fs] == [("pair-link", bad["node"], bad["peer"])]
    assert "only this pair is slow" in fs[0].reason
    assert set(fs[0].nodes) == {bad["node"], bad["peer"]}


def test_nvlink_bridge_between_two_gpus_is_a_link_finding() -> None:
    recs = []
    rng = np.random.default_rng(1)
    for n in range(1, 9):
        node = f"gpu{n:03d}"
        for a, b in ((0, 1), (2, 3), (4, 5), (6, 7)):
            for x, y in ((a, b), (b, a)):
                recs.append({"node": node, "gpu": x, "metric": "nvlink_p2p_bandwidth",
                             "peer": f"{node}:{y}", "unit": "GB/s",
                             "value": float(265 * (1 + rng.normal(0, 0.003)))})
    for r in recs:
        if r["node"] == "gpu004" and r["gpu"] in (2, 3):
            r["value"] *= 0.66                    # one of three bridges down
    fs = analyze(recs).findings
    assert [(f.kind, f.node, f.gpu, f.peer) for f in fs] == [
        ("pair-link", "gpu004", 2, "gpu004:3")]
    assert fs[0].count == 2 and "cannot be told apart" in fs[0].reason


def test_drift_against_a_baseline() -> None:
    old = gpu_fleet(seed=1)
    new = gpu_fleet(seed=1)
    set_value(new, "gpu002", 6, 0.975)            # 2.5 % under the median: within the cohort
    set_value(old, "gpu002", 6, 1.03)             # but it was a fast part: 5.3 % worse than itself
    assert [f.kind for f in analyze(new).findings] == []
    fs = analyze(new, baseline=Baseline.from_records(old)).findings
    assert [(f.kind, f.node, f.gpu, f.severity) for f in fs] == [("drift", "gpu002", 6, "warn")]
    assert fs[0].baseline is not None and fs[0].value < fs[0].baseline
    assert not analyze(new, baseline=Baseline.from_records(old)).failed


def test_baseline_from_history_values() -> None:
    new = gpu_fleet()
    ref = {(r["node"], r["gpu"], r["metric"]): r["value"] for r in new}
    ref[("gpu001", 0, "hbm_bandwidth")] *= 1.08
    fs = analyze(new, baseline=Baseline.from_values(ref)).findings
    assert [(f.kind, f.node, f.gpu) for f in fs] == [("drift", "gpu001", 0)]
    with pytest.raises(InputError, match="expected"):
        Baseline.from_values({("gpu001",): 1.0})


def test_all_pairs_with_both_directions() -> None:
    names = [f"gpu{i:03d}" for i in range(1, 9)]
    recs = [{"node": a, "gpu": None, "metric": "ib_write_bw", "peer": b, "unit": "Gb/s",
             "value": 196.0 * (0.7 if "gpu005" in (a, b) else 1.0) * (0.8 if {a, b} == {
                 "gpu001", "gpu002"} else 1.0)}
            for a in names for b in names if a != b]
    got = sorted((f.kind, f.node, f.peer) for f in analyze(recs).findings)
    assert got == [("pair-link", "gpu001", "gpu002"), ("pair-node", "gpu005", None)]
    node = next(f for f in analyze(recs).findings if f.kind == "pair-node")
    assert len(node.peers) == 7 and node.count == 7

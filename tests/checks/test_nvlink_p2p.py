"""NVLink P2P bandwidth per bridged pair, from nvbandwidth (real matrix output)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from provision.checks import registry
from provision.checks.base import Context, Raw
from provision.expectations import plan_site
from provision.judge import failed
from provision.spec import load_site

ROOT = Path(__file__).resolve().parents[2]
MATRIX = ROOT.parent / "shared/fixtures/real/nvbandwidth/readme-8gpu-d2d-write-ce-matrix.txt"


@pytest.mark.skipif(not MATRIX.exists(), reason="real fixtures not present")
def test_each_bridged_pair_is_measured_and_judged_against_the_bridge() -> None:
    site = load_site(ROOT / "site-specs/small.yaml")
    plan = plan_site(site).for_node("gpu001")
    ctx = Context(site, ("gpu001",), "gpu001", plan, sys.executable, "ssh")
    check = registry.get("nvlink")
    cmds = check.request(ctx)["commands"]
    pairs = [k for k in cmds if k.startswith("p2p:")]
    assert pairs == ["p2p:0-1", "p2p:2-3", "p2p:4-5", "p2p:6-7"]
    assert cmds["p2p:2-3"]["env"] == {"CUDA_VISIBLE_DEVICES": "2,3"}
    # the published 8-GPU matrix (~276 GB/s per cell) stands in for one pair's run
    doc = {"schema_version": 1, "hostname": "gpu001", "facts": {}, "tools": {},
           "commands": {"p2p:0-1": {"argv": ["nvbandwidth"], "missing": None,
                                    "returncode": 0, "stdout": MATRIX.read_text(),
                                    "stderr": ""}}}
    data = check.parse(Raw("gpu001", json.dumps(doc), "", 0))
    rec = check._p2p(data, plan)[0]  # type: ignore[attr-defined]
    assert rec.metric == "nvlink_p2p_bandwidth" and rec.value == 274.89   # the slowest cell
    assert rec.min == 240.0 and not failed(rec)   # provisional 0.8 x 300 GB/s

"""``python -m provision.node_programs.gpu.proof`` on this machine: what runs without a GPU, and says so."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from provision.node_programs.gpu import proof


def test_proof_runs_as_far_as_it_can_and_names_what_it_skipped() -> None:
    done = subprocess.run([sys.executable, "-m", "provision.node_programs.gpu.proof", "--burnin-seconds", "1"],
                          capture_output=True, text=True, timeout=120, check=False)
    doc = json.loads(done.stdout)
    assert doc["kind"] == "forge-gpu-proof" and doc["steps"]["cpu_core"]["passed"]
    assert all(doc["steps"]["cpu_core"]["checks"].values())
    ran = set(doc["steps"])
    skipped = set(doc["skipped"])
    # every GPU step either ran or is named as skipped, with a reason
    assert {"nvml", "hbm", "burnin", "sdc_injected"} <= ran | skipped
    assert all(doc["skipped"][k] for k in skipped)
    if not {"hbm", "burnin", "sdc_injected"} & ran:
        assert done.returncode == 0 and doc["passed"] and doc["failed"] == []


@pytest.mark.parametrize(("name", "model"), [("NVIDIA H100 NVL", "H100 NVL"),
                                             ("NVIDIA H200 NVL", "H200 NVL"),
                                             ("NVIDIA H200", "H200 SXM"),
                                             ("NVIDIA L40S", "L40S")])
def test_datasheet_figures_come_from_the_catalog(name: str, model: str) -> None:
    sheet = proof.datasheet(name)
    assert sheet is not None and sheet["model"] == model and sheet["memory_bandwidth_gbs"] > 0
    assert sheet["source"]


def test_a_model_the_catalog_lacks_gets_no_fraction() -> None:
    assert proof.datasheet("NVIDIA GeForce RTX 4090") is None

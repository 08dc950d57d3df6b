"""GPU state left behind and firmware sameness, judged from real nvidia-smi output."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import pytest

from provision.checks import gpu_state
from provision.checks.base import Context
from provision.checks.collected import Collected
from provision.checks.conformance import Conformance, ConformanceOptions
from provision.expectations import NodePlan, plan_site
from provision.judge import failed
from provision.measurement import Measurement
from provision.parsers import nvidia_smi_q
from provision.spec import load_site

ROOT = Path(__file__).resolve().parents[2]
REAL = ROOT.parent / "shared" / "fixtures" / "real"
H100 = REAL / "nvidia-smi-query-gpu" / "exporter-h100-590.48.01-all-fields-load.txt"
L40S = REAL / "nvidia-smi-query-gpu" / "exporter-l40s-595.80-all-fields-idle.txt"
H100_MIG = ROOT / "tests" / "checks" / "fixtures" / "h100-mig" / \
    "nvidia-smi-query-gpu-all-fields-idle.txt"
#: what nvidia-smi prints for a field its driver does not know (its words, as quoted in
#: public reports of `--query-gpu=cuda_version`), here for the recovery action
UNKNOWN_FIELD = 'Field "gpu_recovery_action" is not a valid field to query.\n'


#: what a collector reads from /proc and /sys of an SR675 V3 (synthesized: no such node here)
HOST_FACTS = {"cpu": {"logical": 256, "online": 256, "models": ["AMD EPYC 9554"], "sockets": 2},
              "memory": {"mem_total_kib": 1584000000}, "rdma": [], "pci_gpus": [], "modules": {}}


def _plan() -> NodePlan:
    return plan_site(load_site(ROOT / "site-specs" / "small.yaml")).for_node("gpu001")


def _records(stdout: str, returncode: int = 0, **expect: Any) -> list[Measurement]:
    data = Collected("gpu001", "gpu001", {}, {},
                     {gpu_state.COMMAND: {"argv": [], "stdout": stdout, "stderr": "",
                                          "returncode": returncode, "missing": None}},
                     {"expect": {"mig": "disabled", "power_limit": "default", **expect}})
    return gpu_state.records(data, _plan(), "conformance")


def _one(records: list[Measurement], metric: str) -> Measurement:
    (r,) = [r for r in records if r.metric == metric]
    return r


def test_a_clean_h100_passes_every_state_reading() -> None:
    recs = _records(H100.read_text())
    assert {r.metric for r in recs} == {"gpu_ecc_mode_pending", "gpu_mig_mode",
                                        "gpu_mig_mode_pending", "gpu_power_limit",
                                        "gpu_recovery_action", "gpu_remap_banks_none"}
    banks = _one(recs, "gpu_remap_banks_none")
    assert banks.detail == "banks by spare rows left: 2560 max, 0 high, 0 partial, 0 low, 0 none"
    assert not [r for r in recs if failed(r)]
    power = _one(recs, "gpu_power_limit")
    assert power.value == 700 and power.min == power.max == 700
    assert "default 700 W" in (power.detail or "")
    assert _one(recs, "gpu_recovery_action").detail == "driver asks for: None"


def test_a_gpu_left_in_mig_mode_fails_unless_the_partition_wants_it() -> None:
    text = H100_MIG.read_text()
    recs = _records(text)
    mig = [r for r in recs if r.metric.startswith("gpu_mig_mode")]
    assert len(mig) == 2 and all(failed(r) for r in mig)
    assert _one(recs, "gpu_mig_mode").detail == "MIG enabled now"
    assert not [r for r in _records(text, mig="enabled") if failed(r)]
    recorded = [r for r in _records(text, mig="record") if r.metric.startswith("gpu_mig")]
    assert [r.value for r in recorded] == [1.0, 1.0]
    assert all(r.min is None and r.max is None and not failed(r) for r in recorded)


def test_a_gpu_without_mig_gets_no_mig_reading() -> None:
    recs = _records(L40S.read_text())
    assert not [r for r in recs if r.metric.startswith("gpu_mig")]       # [N/A] on an L40S
    assert _one(recs, "gpu_power_limit").value == 350


def _changed(text: str, **cells: str) -> str:
    """The real H100 CSV with some cells changed, as named nvidia-smi settings would."""
    head, row = text.splitlines()[:2]
    names, values = head.split(", "), row.split(", ")
    for name, value in cells.items():
        values[names.index(name)] = value
    return f"{head}\n{', '.join(values)}\n"


def test_a_lowered_power_limit_or_pending_ecc_off_fails() -> None:
    text = H100.read_text()
    # as after `nvidia-smi -pl 500` (requested and enforced) and `nvidia-smi -e 0`
    capped = _changed(text, **{"power.limit [W]": "500.00 W",
                               "enforced.power.limit [W]": "500.00 W",
                               "ecc.mode.pending": "Disabled"})
    recs = _records(capped)
    power = _one(recs, "gpu_power_limit")
    assert failed(power) and power.value == 500 and power.min == 700
    assert power.detail == "enforced 500 W (requested 500 W), the driver's default 700 W"
    ecc = _one(recs, "gpu_ecc_mode_pending")
    assert failed(ecc) and ecc.detail == "ECC enabled now, disabled after the next reboot"
    recorded = _one(_records(capped, power_limit="record"), "gpu_power_limit")
    assert recorded.value == 500 and not failed(recorded)
    # a site that caps at 500 W by design says so, and is held to it
    assert not failed(_one(_records(capped, power_limit="500"), "gpu_power_limit"))
    assert failed(_one(_records(text, power_limit="500"), "gpu_power_limit"))


def test_a_cap_from_another_limiter_fails_though_software_asked_for_the_default() -> None:
    """enforced.power.limit is "the minimum of various power limiters" (--help-query-gpu)."""
    other = _changed(H100.read_text(), **{"enforced.power.limit [W]": "450.00 W"})
    power = _one(_records(other), "gpu_power_limit")
    assert failed(power) and power.value == 450
    assert power.detail == "enforced 450 W (requested 700 W), the driver's default 700 W"


def test_a_bank_with_no_spare_row_left_fails() -> None:
    """The histogram as it would read after three banks used up their reserved rows."""
    worn = _changed(H100.read_text(), **{"remapped_rows.histogram.max": "2555",
                                         "remapped_rows.histogram.low": "2",
                                         "remapped_rows.histogram.none": "3"})
    banks = _one(_records(worn), "gpu_remap_banks_none")
    assert failed(banks) and banks.value == 3 and banks.max == 0
    assert banks.detail == "banks by spare rows left: 2555 max, 0 high, 0 partial, 2 low, 3 none"


def test_a_recovery_action_nvidia_smi_could_not_read_fails_the_reading() -> None:
    """--help-query-gpu: "An error message indicates that retrieving the field failed"."""
    recs = _records(_changed(H100.read_text(), gpu_recovery_action="[Unknown Error]"))
    assert not [r for r in recs if r.metric == "gpu_recovery_action"]
    (unread,) = [r for r in recs if r.metric == "tool_ran_ok"]
    assert failed(unread) and unread.detail == "gpu_recovery_action not read: [Unknown Error]"
    na = _records(_changed(H100.read_text(), gpu_recovery_action="[N/A]"))
    assert not [r for r in na if r.metric in ("gpu_recovery_action", "tool_ran_ok")]


def test_a_driver_that_lacks_a_field_fails_the_reading_not_the_inventory() -> None:
    (rec,) = _records(UNKNOWN_FIELD, returncode=2)
    assert rec.metric == "tool_ran_ok" and failed(rec)
    assert 'exit 2: Field "gpu_recovery_action" is not a valid field' in (rec.detail or "")
    # the whole check: the inventory query's records are all there beside the failed one
    data = Collected("gpu001", "gpu001", HOST_FACTS, {}, {
        "query-gpu": {"argv": [], "stdout": H100.read_text(), "stderr": "", "returncode": 0,
                      "missing": None},
        gpu_state.COMMAND: {"argv": [], "stdout": UNKNOWN_FIELD, "stderr": "",
                            "returncode": 2, "missing": None}},
        {"expect": {"driver_branch": "590", "mig": "disabled", "power_limit": "default"}})
    recs = Conformance().measurements(data, _plan())
    assert {"gpu_count", "gpu_model_ok", "gpu_memory_total", "gpu_driver_ok"} <= {
        r.metric for r in recs}
    assert [r.detail for r in recs if r.metric == "tool_ran_ok"] == [rec.detail]


def test_vbios_against_the_spec_baseline() -> None:
    text = H100.read_text()
    assert not failed(_one(_records(text, gpu_vbios="96.00.A5.00.01"), "gpu_vbios_match"))
    other = _one(_records(text, gpu_vbios="96.00.74.00.01"), "gpu_vbios_match")
    assert failed(other) and other.detail == "VBIOS 96.00.A5.00.01"


def test_a_vbios_nvidia_smi_could_not_read_is_no_version() -> None:
    """"[N/A]" is not a second VBIOS: the field is filtered like every unread value."""
    text = H100.read_text()
    head, row = text.splitlines()[:2]
    unread = _changed(text, vbios_version="[N/A]").splitlines()[1]
    recs = _records(f"{head}\n{row}\n{unread.replace('00000000:00:09.0', '00000000:00:0A.0')}\n")
    assert not [r for r in recs if r.metric == "gpu_vbios_uniform"]     # one version known


def test_sameness_across_a_node_names_the_odd_board() -> None:
    # two real 8x H100 nodes (gpud's fixtures: VBIOS 96.00.74.00.01 and 96.00.74.00.0D),
    # seven GPUs of one and the eighth of the other put together as one node
    a = nvidia_smi_q.parse((REAL / "nvidia-smi-q" / "gpud-8x-h100-535.183.01.txt").read_text(),
                           node="a").gpus
    b = nvidia_smi_q.parse((REAL / "nvidia-smi-q" /
                            "gpud-8x-h100-535.161.08-hw-slowdown.txt").read_text(),
                           node="b").gpus
    assert len(a) == len(b) == 8
    same = gpu_state.uniform(_plan(), a, "conformance", "gpu_vbios_uniform", "VBIOS",
                             lambda g: g.vbios)
    assert [r.value for r in same] == [1.0] and not failed(same[0])
    mixed = gpu_state.uniform(_plan(), (*a[:7], b[7]), "conformance", "gpu_vbios_uniform",
                              "VBIOS", lambda g: g.vbios)
    assert failed(mixed[0]) and mixed[0].gpu is None
    assert mixed[0].detail == ("96.00.74.00.01 on GPU 0,1,2,3,4,5,6; "
                               "96.00.74.00.0D on GPU 7")
    rom = gpu_state.uniform(_plan(), (*a[:7], b[7]), "conformance", "gpu_inforom_uniform",
                            "infoROM image", lambda g: g.inforom_image)
    assert not failed(rom[0])                       # both nodes: G520.0200.00.05
    assert gpu_state.uniform(_plan(), a[:1], "conformance", "gpu_vbios_uniform", "VBIOS",
                             lambda g: g.vbios) == []


def test_conformance_asks_for_the_state_with_the_spec_baseline() -> None:
    site = load_site(ROOT / "site-specs" / "small.yaml")
    site = dataclasses.replace(site, bmc=dataclasses.replace(
        site.bmc, firmware_baseline=(("gpu_vbios", "96.00.A5.00.01"),)))
    plan = plan_site(site).for_node("gpu001")
    check = Conformance()
    ctx = Context(site, ("gpu001",), "gpu001", plan, sys.executable, "ssh",
                  ConformanceOptions(mig="enabled"))
    req = check.request(ctx)
    assert req["commands"][gpu_state.COMMAND]["argv"] == [
        "nvidia-smi", f"--query-gpu={gpu_state.FIELDS}", "--format=csv"]
    assert req["expect"]["mig"] == "enabled" and req["expect"]["power_limit"] == "default"
    assert req["expect"]["gpu_vbios"] == "96.00.A5.00.01"


@pytest.mark.parametrize("fixture", [H100, L40S, H100_MIG])
def test_every_state_field_is_in_the_real_captures(fixture: Path) -> None:
    header = {c.strip().split(" [")[0] for c in fixture.read_text().splitlines()[0].split(",")}
    assert set(gpu_state.FIELDS.split(",")) <= header


@pytest.mark.parametrize("driver", ["580.173.02-excerpt", "590.48.01"])
def test_every_state_field_is_one_the_driver_lists(driver: str) -> None:
    """A field the driver does not know makes nvidia-smi refuse the whole query."""
    import re

    text = (ROOT / "tests/checks/fixtures/help-query-gpu" / f"{driver}.txt").read_text()
    names = {n for line in text.splitlines() for n in re.findall(r'"([\w.]+)"', line)
             if line.startswith('"')}
    assert set(gpu_state.FIELDS.split(",")) <= names


def test_the_sweep_records_pending_ecc_from_a_real_nvml_snapshot() -> None:
    """The NVML snapshot an H200 gave (forge's own GPU proof, tests/checks/fixtures)."""
    import json

    from provision.sweep.expect import NodeExpectation
    from provision.sweep.probes import nvml_records

    proof = json.loads((ROOT / "tests/checks/fixtures/h200-sxm/proof.json").read_text())
    nvml = proof["steps"]["nvml"]
    exp = NodeExpectation(node="h200", profile="real", gpu_model="NVIDIA H200", gpu_count=1)
    recs = nvml_records({"driver": nvml["driver"], "gpus": [nvml["gpu"]]}, exp)
    assert _one(recs, "gpu_ecc_mode_pending").value == 1
    assert _one(recs, "gpu_recovery_action").value == 0
    # captured before the snapshot read the MIG mode and the default power limit
    assert not [r for r in recs if r.metric in ("gpu_mig_mode", "gpu_power_default_limit")]

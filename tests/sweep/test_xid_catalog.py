"""Xids judged by NVIDIA's Xid catalog, on real kernel logs other people published."""

from __future__ import annotations

from pathlib import Path

import pytest

from provision.parsers import xid_catalog as cat
from provision.spec import load_site
from provision.sweep import probes as P
from provision.sweep.expect import NodeExpectation, for_node

REAL = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "real" / "dmesg-xid"
ROOT = Path(__file__).resolve().parents[2]
needs_fixtures = pytest.mark.skipif(not REAL.is_dir(), reason="real fixtures not present")


@pytest.fixture(scope="module")
def node() -> NodeExpectation:
    site = load_site(ROOT / "site-specs/small.yaml")
    return for_node(site, site.node("gpu001"))


def fatal(recs: list) -> float:  # type: ignore[type-arg]
    return next(r for r in recs if r.metric == "xid_fatal_events").value


@pytest.mark.parametrize("code", [13, 31, 43, 45, 8, 68, 69, 109])
def test_application_xids_never_fail_a_node(code: int) -> None:
    assert not cat.is_hardware(cat.judge(code))


@pytest.mark.parametrize("code", [48, 63, 64, 74, 79, 92, 94, 95, 119, 120, 140, 143])
def test_hardware_xids_fail_a_node(code: int) -> None:
    assert cat.is_hardware(cat.judge(code))


def test_unknown_code_is_recorded_not_fatal() -> None:
    assert cat.judge(9999) == "unknown" and not cat.is_hardware("unknown")


def test_xid_154_names_its_action() -> None:
    msg = "GPU recovery action changed from 0x0 (None) to 0x2 (Reboot)"
    assert cat.judge(154, msg) == "reboot"
    assert cat.judge(154, "GPU recovery action changed from 0x1 (Reset) to 0x0 (None)") == \
        "ignore"


def test_nvml_recovery_action_wins(node: NodeExpectation) -> None:
    recs = P.nvml_records({"driver": "570.1", "gpus": [
        {"index": 0, "uuid": "GPU-a", "recovery_action": 1},
        {"index": 1, "uuid": "GPU-b", "recovery_action": 0},
        {"index": 2, "uuid": "GPU-c", "recovery_action": None}]}, node)
    got = {r.gpu: r.value for r in recs if r.metric == "gpu_recovery_action"}
    assert got == {0: 1.0, 1: 0.0}  # GPU 2: the driver does not report it


@needs_fixtures
def test_user_kernel_faults_xid13_43_do_not_drain(node: NodeExpectation) -> None:
    # leptonai/gpud: 629 Xid 13 + 7 Xid 43 lines, application faults
    recs = P.parse_xid((REAL / "gpud-dmesg-decode-iso-xid13-xid43-long.txt").read_text(),
                       node, 0)
    assert fatal(recs) == 0
    counted = {r.detail.split(" on ")[0]: r.value for r in recs if r.metric == "xid_events"}
    assert counted["Xid 13"] == 629 and counted["Xid 43"] == 7
    assert all(r.max is None for r in recs if r.metric == "xid_events")


@needs_fixtures
def test_gsp_timeout_xid119_drains(node: NodeExpectation) -> None:
    text = (REAL / "gpud-h100-xe9680-xid119-gsp-timeout.txt").read_text()
    recs = P.parse_xid(text, node, 0)
    assert fatal(recs) == text.count("Xid (PCI:0000:9b:00): 119") > 0


@needs_fixtures
def test_nvlink5_fatality_comes_from_the_message(node: NodeExpectation) -> None:
    # leptonai/gpud#1160: one 144 Nonfatal, two 149 Fatal
    recs = P.parse_xid((REAL / "gpud1160-xid144-149-nvlink-sawnetir.txt").read_text(), node, 0)
    assert fatal(recs) == 2


@needs_fixtures
def test_high_water_mark_of_this_boot(node: NodeExpectation) -> None:
    log = (REAL / "gpud-dmesg-iso-xid48-63-94.txt").read_text()
    same = P.parse_xid("@@boot b1\n@@ack b1 11\n" + log, node, 0)
    assert fatal(same) == 0 and "re-qualified" in next(
        r.detail for r in same if r.metric == "xid_fatal_events")
    # one more hardware Xid after the re-qualification counts again
    more = log + "2024-11-15T06:00:00,000000+00:00 NVRM: Xid (PCI:0000:9b:00): 74, NVLink\n"
    assert fatal(P.parse_xid("@@boot b1\n@@ack b1 11\n" + more, node, 0)) == 1
    # an acknowledgement from another boot counts for nothing
    assert fatal(P.parse_xid("@@boot b2\n@@ack b1 11\n" + log, node, 0)) == 11


def test_dead_driver_is_fatal_at_once(node: NodeExpectation) -> None:
    text = ("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
            "Make sure that the latest NVIDIA driver is installed and running.\n")
    recs = P.parse_gpu(text, node, 0)
    assert [(r.metric, r.value) for r in recs] == [("gpu_missing", 8.0)]

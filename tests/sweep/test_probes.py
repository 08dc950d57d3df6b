"""Sweep probes on real recorded tool output, and the marker protocol on a real shell."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from provision.history.timeparse import parse_since
from provision.spec import load_site
from provision.sweep import probes as P
from provision.sweep.collect import from_output, run_local
from provision.sweep.expect import NodeExpectation, for_node

REAL = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "real"
ROOT = Path(__file__).resolve().parents[2]
needs_fixtures = pytest.mark.skipif(not REAL.is_dir(), reason="real fixtures not present")


@pytest.fixture(scope="module")
def gpu001() -> NodeExpectation:
    site = load_site(ROOT / "site-specs/small.yaml")
    return for_node(site, site.node("gpu001"))


def by(records: list, metric: str) -> list:  # type: ignore[type-arg]
    return [r for r in records if r.metric == metric]


@needs_fixtures
def test_xid_recording_with_dbe_row_remap_and_contained_errors(gpu001: NodeExpectation) -> None:
    # recording: leptonai/gpud dmesg --time-format iso, Xid 48 DBE, 63 row remap, 94 contained
    text = (REAL / "dmesg-xid/gpud-dmesg-iso-xid48-63-94.txt").read_text()
    now = parse_since("2024-11-15T13:00:00Z")
    recs = P.parse_xid(text, gpu001, now)
    counts = {r.detail.split(" on ")[0]: r.value for r in by(recs, "xid_events")}
    assert counts["Xid 48"] == 1 and counts["Xid 63"] == 1 and counts["Xid 94"] == 9
    fatal = by(recs, "xid_fatal_events")[0]
    assert fatal.value == 11 and fatal.max == 0  # grep -c Xid: 11 lines, all fatal codes
    assert "48,63,94" in (fatal.detail or "")
    # no time window: a day later the same boot's events still count (the drain is
    # sticky until a re-qualification acknowledges them)
    later = P.parse_xid(text, gpu001, parse_since("2024-11-17T00:00:00Z"))
    assert by(later, "xid_fatal_events")[0].value == 11


@needs_fixtures
def test_xid_without_iso_time_always_counts(gpu001: NodeExpectation) -> None:
    text = (REAL / "dmesg-xid/stas-xid63-row-remapper-line.txt").read_text()
    recs = P.parse_xid(text, gpu001, parse_since("2030-01-01"))
    assert by(recs, "xid_fatal_events")[0].value == 1


def test_clean_kernel_log_has_zero_xids(gpu001: NodeExpectation) -> None:
    recs = P.parse_xid("[    0.000000] Linux version 6.1.0\n", gpu001, 0)
    assert [(r.metric, r.value) for r in recs] == [("xid_events", 0), ("xid_fatal_events", 0)]


@needs_fixtures
def test_gpu_query_recording_against_the_profile(gpu001: NodeExpectation) -> None:
    # recording: nvidia_gpu_exporter, 1x H100 under load, driver 590.48.01, every field
    text = (REAL / "nvidia-smi-query-gpu/exporter-h100-590.48.01-all-fields-load.txt").read_text()
    recs = P.parse_gpu(text, gpu001, 0)
    count = by(recs, "gpu_count")[0]
    assert count.value == 1 and count.min == 8          # the profile expects 8 GPUs
    assert by(recs, "gpu_missing")[0].value == 7
    gen = by(recs, "pcie_link_gen_max")[0]
    assert gen.min == 5.0 and "gpu.pcie_gen" in (gen.detail or "")
    assert by(recs, "ecc_uncorrected_volatile")[0].max == 0.0


@needs_fixtures
def test_ibstat_recording_with_ports_down(gpu001: NodeExpectation) -> None:
    # recording: leptonai/gpud ibstat 47.0 on an H100 host, 3 ports Down/Disabled
    text = (REAL / "ibstat/gpud-h100-some-ports-down-0.txt").read_text()
    recs = P.parse_nic(text, gpu001, 0)
    up = by(recs, "nic_port_up")
    assert len(up) == 12 and sum(1 for r in up if r.value == 0) == 3
    rates = by(recs, "nic_port_rate")
    assert {r.value for r in rates} == {400.0, 100.0} and all(r.min == 200.0 for r in rates)
    assert by(recs, "nic_port_count")[0].value == 12


def test_sysfs_port_lines() -> None:
    exp = NodeExpectation(node="n1", profile="p", rdma_ports=2)
    text = ("dev=mlx5_0\tport=1\tstate=4: ACTIVE\tphys=5: LinkUp\trate=200 Gb/sec (2X NDR)\t"
            "layer=InfiniBand\tfw=28.39.1002\tsymbol_error=0\tlink_downed=3\tport_rcv_errors=0\n"
            "dev=mlx5_1\tport=1\tstate=1: DOWN\tphys=3: Disabled\trate=10 Gb/sec (4X SDR)\t"
            "layer=InfiniBand\tfw=28.39.1002\tsymbol_error=\tlink_downed=\tport_rcv_errors=\n")
    recs = P.parse_nic(text, exp, 0)
    assert [r.value for r in by(recs, "nic_port_up")] == [1, 0]
    assert [r.value for r in by(recs, "nic_port_rate")] == [200.0]   # a down port has no rate
    assert [r.value for r in by(recs, "nic_link_downed")] == [3.0]


@needs_fixtures
def test_dcgm_recording_row_remap_failure(gpu001: NodeExpectation) -> None:
    # recording: stas00/ml-engineering, dcgmi diag -r 3 deployment error, row remap pending
    text = (REAL / "dcgmi-diag/stas-r3-deployment-error-row-remap-fragment.txt").read_text()
    recs = P.parse_dcgm(text, gpu001, 0)
    assert any(r.value == 0 and r.check == "dcgm" for r in by(recs, "dcgm_test_pass"))


def test_sections_keep_finished_probes_when_the_node_vanishes() -> None:
    exp = NodeExpectation(node="n1", profile="p", gpu_count=0, rdma_ports=0)
    probes = [P.PROBES["xid"], P.PROBES["gpu"]]
    # xid finished, gpu started and never ended: the connection dropped
    out = (f"{P.BEGIN} xid\n[ 1.0 ] boot\n{P.END} xid 0\n{P.BEGIN} gpu\nindex, uuid\n")
    res = from_output(exp, probes, out, connected=False, why="connection lost")
    assert res.status == "unreachable"
    assert by(list(res.records), "xid_events")[0].value == 0      # kept
    gpu_ok = next(r for r in res.records if r.metric == "probe_ok" and r.check == "gpu")
    assert gpu_ok.value == 0 and "no result" in (gpu_ok.detail or "")


def test_timeout_exit_and_missing_tool_are_probe_failures() -> None:
    exp = NodeExpectation(node="n1", profile="p")
    xid = P.PROBES["xid"]
    timed = P.evaluate(xid, P.ProbeOutput("xid", "", 124), exp)
    assert timed[-1].value == 0 and "timed out" in (timed[-1].detail or "")
    missing = P.evaluate(xid, P.ProbeOutput("xid", "sh: 1: dmesg: not found", 127), exp)
    assert "not installed" in (missing[-1].detail or "")
    failed = P.evaluate(xid, P.ProbeOutput("xid", "cat: /x: No such file", 1), exp)
    assert failed[-1].value == 0 and "exit 1" in (failed[-1].detail or "")


@needs_fixtures
def test_local_run_replays_a_recorded_failure_through_the_test_hook(
        monkeypatch: pytest.MonkeyPatch, gpu001: NodeExpectation) -> None:
    # the real probe script runs in a real shell; only the kernel log is the recording
    monkeypatch.setenv("FORGE_SWEEP_XID_FILE", str(REAL / "dmesg-xid/stas-xid63-row-remapper-line.txt"))
    exp = replace(gpu001, gpu_count=0, rdma_ports=0, limits=())  # this host is no SR675 V3
    res = run_local(exp, "quick")
    assert res.status == "failing"
    assert res.findings[0].fatal and res.findings[0].metric == "xid_fatal_events"
    monkeypatch.setenv("FORGE_SWEEP_XID_FILE", "/nonexistent/recording.txt")
    res = run_local(exp, "quick")
    assert res.status == "failing"
    assert [(f.check, f.metric) for f in res.findings] == [("xid", "probe_ok")]


def test_probe_timeout_inside_the_script(monkeypatch: pytest.MonkeyPatch) -> None:
    slow = P.Probe("slow", "sleeps", 1.0, lambda e: True, lambda e: "sleep 30",
                   lambda t, e, n: [])
    exp = NodeExpectation(node="n1", profile="p")
    from provision import proc

    done = proc.run(["sh", "-s"], timeout=20, input_text=P.script([slow], exp))
    res = from_output(exp, [slow], done.stdout, connected=True)
    assert done.duration_s < 10
    assert [r.detail for r in res.records if r.metric == "probe_ok"] == [
        "slow: timed out after 1 s"]


@needs_fixtures
def test_nvml_path_judges_like_the_nvidia_smi_path(gpu001: NodeExpectation) -> None:
    """The in-process NVML snapshot and the nvidia-smi probe yield the same verdict.

    No GPU here: the snapshot is built from the recorded nvidia-smi output (named as
    such) in the shape provision.node_programs.gpu.nvml.snapshot() returns on a real GPU.
    """
    from provision.parsers import nvidia_smi_query_gpu as q

    text = (REAL / "nvidia-smi-query-gpu/exporter-h100-590.48.01-all-fields-load.txt").read_text()
    g = q.parse(text, node="gpu001").gpus[0]
    recorded_snapshot = {"driver": g.driver_version, "gpus": [{
        "index": g.index, "name": g.name, "uuid": g.uuid, "serial": g.serial,
        "pci_bus_id": g.bus_id, "persistence_mode": int(bool(g.persistence_mode)),
        "pcie_gen": g.pcie_gen, "pcie_gen_max": g.pcie_gen_max, "pcie_width": g.pcie_width,
        "pcie_width_max": g.pcie_width_max,
        "ecc_uncorrected_volatile": g.ecc_uncorrected_volatile,
        "remapped_rows_pending": int(bool(g.remapped_rows_pending)),
        "remapped_rows_failed": int(bool(g.remapped_rows_failed)),
        "temperature_c": g.temperature_c, "power_w": g.power_draw_w,
        "power_limit_w": g.power_limit_w, "clocks_events": []}]}
    via_nvml = P.nvml_records(recorded_snapshot, gpu001)
    via_smi = P.parse_gpu(text, gpu001, 0)
    keys = ("gpu_count", "gpu_missing", "pcie_link_gen_max", "pcie_link_width",
            "ecc_uncorrected_volatile", "remapped_rows_failed", "gpu_temperature")

    def pick(recs: list) -> dict:  # type: ignore[type-arg]
        return {r.metric: (r.value, r.min, r.max) for r in recs if r.metric in keys}

    assert pick(via_nvml) == pick(via_smi)
    assert pick(via_nvml)["gpu_missing"] == (7.0, None, 0.0)
    match = by(via_nvml, "driver_version_match")[0]
    assert match.value == 0 and "590.48.01, spec branch 580" in (match.detail or "")


@pytest.mark.gpu
def test_local_sweep_reads_nvml_on_a_real_gpu() -> None:
    from provision.node_programs.gpu.nvml import NvmlUnavailable, snapshot

    try:
        n = len(snapshot()["gpus"])
    except NvmlUnavailable as exc:
        pytest.skip(f"no usable GPU here: {exc}")
    exp = NodeExpectation(node="self", profile="real", gpu_model="any", gpu_count=n)
    res = run_local(exp, "quick")
    gpu_ok = next(r for r in res.records if r.metric == "probe_ok" and r.check == "gpu")
    assert gpu_ok.detail == "gpu: ok (NVML)"
    assert by(list(res.records), "gpu_count")[0].value == n
    assert by(list(res.records), "gpu_missing")[0].value == 0
    assert len(by(list(res.records), "ecc_uncorrected_volatile")) in (0, n)


def test_a_probe_output_without_a_final_newline_keeps_its_end_marker() -> None:
    """`cat` of a recording without a final newline glues the end marker to its last line."""
    text = (f"{P.BEGIN} xid\nline one\nlast line{P.END} xid 0\n"
            f"{P.BEGIN} host\nok\n{P.END} host 0\n")
    sections = P.split_sections(text)
    assert sections["xid"].rc == 0 and sections["xid"].text == "line one\nlast line"
    assert sections["host"].rc == 0 and sections["host"].text == "ok"

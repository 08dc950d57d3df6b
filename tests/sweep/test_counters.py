"""IB port error counters judged by their increase between two sweeps, through the real
history store: the sysfs port lines are what the nic probe's script prints (kernel counter
values), read by the real probe parser, stored, and judged on the next sweep."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from provision.history.store import HistoryStore
from provision.parsers import ib_counters
from provision.remote.base import Command, Result
from provision.remote.local import LocalLauncher
from provision.spec import load_site
from provision.sweep import probes as P
from provision.sweep.collect import from_output
from provision.sweep.counters import with_increases
from provision.sweep.expect import NodeExpectation
from provision.sweep.result import SweepResult, node_result
from provision.sweep.run import SweepOptions, finish, sweep_site

ROOT = Path(__file__).resolve().parents[2]

STATE = "state=4: ACTIVE\tphys=5: LinkUp\trate=200 Gb/sec (2X NDR)\tlayer=InfiniBand\tfw=28.39.1002"


GUIDS = {"mlx5_0": "b83f:d203:0012:ab34", "mlx5_1": "b83f:d203:0012:ab35"}


def _port(dev: str, guid: str | None = None, **counters: int) -> str:
    values = {c: 0 for c in ib_counters.COUNTERS} | counters
    return (f"dev={dev}\tport=1\t{STATE}\tguid={guid or GUIDS[dev]}\t"
            + "".join(f"{c}={v}\t" for c, v in values.items()))


def _sweep(db: Path, started: float, nodes: dict[str, list[str]]) -> SweepResult:
    """One sweep of ``nodes`` (node -> its port lines), judged against and stored in ``db``
    as ``forge sweep`` does."""
    results = []
    for node, ports in nodes.items():
        exp = NodeExpectation(node=node, profile="p", rdma_ports=len(ports))
        out = f"{P.BEGIN} nic\n" + "\n".join(ports) + f"\n{P.END} nic 0\n"
        results.append(from_output(exp, [P.PROBES["nic"]], out, connected=True, now=started))
    result = with_increases(SweepResult(f"sweep-{started:.0f}", "quick", started, started + 1,
                                        tuple(results)), db)
    return finish(result, SweepOptions(db=db), None, kind="sweep")


def _increases(result: SweepResult, node: str) -> dict[str, tuple[float, str]]:
    n = next(x for x in result.nodes if x.node == node)
    return {re.sub(r" guid \S+", "", r.detail.split(": ")[0]): (r.value, r.detail)
            for r in n.records if r.metric == "nic_counter_increase" and r.detail}


def test_a_link_flap_between_two_sweeps_fails_the_next_sweep_only(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    first = _sweep(db, 1_000_000.0, {"n1": [_port("mlx5_0", link_downed=3, symbol_error=12),
                                           _port("mlx5_1")],
                                     "n2": [_port("mlx5_0", link_downed=9)]})
    # counts since the driver loaded are not judged: nothing to compare with yet
    assert [n.status for n in first.nodes] == ["healthy", "healthy"]
    assert _increases(first, "n1") == {}

    second = _sweep(db, 1_000_900.0, {"n1": [_port("mlx5_0", link_downed=4, symbol_error=12),
                                            _port("mlx5_1")],
                                      "n2": [_port("mlx5_0", link_downed=9)]})
    n1, n2 = second.nodes
    assert n1.status == "failing" and n2.status == "healthy"
    assert [(f.metric, f.value) for f in n1.findings] == [("nic_counter_increase", 1.0)]
    assert (f"mlx5_0 port 1 guid {GUIDS['mlx5_0']} link_downed: 3 -> 4 since "
            "1970-01-12T13:46:40Z; limit 0: any increase is a link flap") in n1.reason
    assert _increases(second, "n1")["mlx5_0 port 1 symbol_error"][0] == 0.0
    assert len(_increases(second, "n1")) == 2 * len(ib_counters.COUNTERS)  # every counter

    # the newest earlier reading is the one compared with: 4 -> 4 is no flap
    third = _sweep(db, 1_001_800.0, {"n1": [_port("mlx5_0", link_downed=4, symbol_error=12),
                                           _port("mlx5_1")]})
    assert third.nodes[0].status == "healthy"
    assert _increases(third, "n1")["mlx5_0 port 1 link_downed"][0] == 0.0

    # counters cleared (perfquery -R) or the driver reloaded: a new baseline, not judged
    fourth = _sweep(db, 1_002_700.0, {"n1": [_port("mlx5_0", symbol_error=2),
                                            _port("mlx5_1")]})
    value, detail = _increases(fourth, "n1")["mlx5_0 port 1 symbol_error"]
    assert value == 2.0 and "cleared or reset since (12 before): a new baseline" in detail
    assert fourth.nodes[0].status == "healthy"


def test_symbol_errors_are_judged_as_a_rate_and_flaps_at_any_count(tmp_path: Path) -> None:
    # PAM4 links take raw symbol errors all the time: 120 an hour is the IBTA's maximum, so
    # 900 s between sweeps allow 30; receive errors have no public rate and are not judged
    db = tmp_path / "history.db"
    _sweep(db, 3_000_000.0, {"n1": [_port("mlx5_0", symbol_error=100)],
                             "n2": [_port("mlx5_0", symbol_error=100)]})
    second = _sweep(db, 3_000_900.0, {
        "n1": [_port("mlx5_0", symbol_error=130, link_error_recovery=75, port_rcv_errors=900)],
        "n2": [_port("mlx5_0", symbol_error=131)]})
    n1, n2 = second.nodes
    assert n1.status == "healthy" and n2.status == "failing"
    assert [(f.metric, f.value) for f in n2.findings] == [("nic_counter_increase", 31.0)]
    assert "100 -> 131" in n2.reason and "limit 30: 120 per hour" in n2.reason
    assert "not judged" not in _increases(second, "n1")["mlx5_0 port 1 symbol_error"][1]
    rcv = _increases(second, "n1")["mlx5_0 port 1 port_rcv_errors"]
    assert rcv[0] == 900.0 and "no public rate" in rcv[1]


def test_a_roce_port_is_not_judged_by_infiniband_counters(tmp_path: Path) -> None:
    roce = _port("mlx5_0", link_downed=5).replace("layer=InfiniBand", "layer=Ethernet")
    first = _sweep(tmp_path / "h.db", 4_000_000.0, {"n1": [roce]})
    assert not [r for r in first.nodes[0].records if r.metric in ib_counters.COUNTER_OF_METRIC]


def test_a_counter_stuck_at_its_maximum_is_reported_and_not_read_as_no_increase(
        tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    stuck = _port("mlx5_0", local_link_integrity_errors=15)  # a 4-bit field: 15 is its top
    first = _sweep(db, 2_000_000.0, {"n1": [stuck]})
    flag = [r for r in first.nodes[0].records if r.metric == "ib_counter_saturated"]
    assert [(r.value, r.max) for r in flag] == [(1.0, None)]  # reported, drains nothing
    assert "clear the counters (perfquery -R)" in (flag[0].detail or "")
    assert first.nodes[0].status == "healthy"
    second = _sweep(db, 2_000_900.0, {"n1": [stuck]})
    assert "mlx5_0 port 1 local_link_integrity_errors" not in _increases(second, "n1")


def test_no_store_yet_judges_no_increase(tmp_path: Path) -> None:
    result = with_increases(SweepResult("s", "quick", 0.0, 1.0, (from_output(
        NodeExpectation(node="n1", profile="p", rdma_ports=1), [P.PROBES["nic"]],
        f"{P.BEGIN} nic\n{_port('mlx5_0', link_downed=7)}\n{P.END} nic 0\n",
        connected=True),)), tmp_path / "absent.db")
    assert result.nodes[0].status == "healthy" and not (tmp_path / "absent.db").exists()


def test_the_increase_rules_follow_the_field_widths() -> None:
    assert [ib_counters.top(c) for c in ("symbol_error", "link_downed",
                                         "excessive_buffer_overrun_errors")] == [65535, 255, 15]
    assert ib_counters.increase("link_downed", 3, 5) == ib_counters.Increase(2)
    assert ib_counters.increase("link_downed", 5, 1).value == 1
    assert ib_counters.increase("link_downed", 250, 255).value == 5
    assert ib_counters.increase("link_downed", 255, 255).value is None


class SysfsLauncher(LocalLauncher):
    """Runs each node's real probe script in a real shell here, with
    ``/sys/class/infiniband`` pointed at a directory laid out as the kernel lays it out
    (no InfiniBand adapter on this machine): the nic probe's script reads those files."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root

    def run_one(self, node: str, cmd: Command) -> Result:
        stdin = (cmd.stdin or "").replace("/sys/class/infiniband", str(self.root / node))
        return super().run_one(node, replace(cmd, stdin=stdin))


def _sysfs(root: Path, node: str, **counters: int) -> None:
    port = root / node / "mlx5_0" / "ports" / "1"
    (port / "counters").mkdir(parents=True, exist_ok=True)
    for name, text in (("state", "4: ACTIVE"), ("phys_state", "5: LinkUp"),
                       ("rate", "200 Gb/sec (2X NDR)"), ("link_layer", "InfiniBand")):
        (port / name).write_text(text + "\n")
    (root / node / "mlx5_0" / "fw_ver").write_text("28.39.1002\n")
    (root / node / "mlx5_0" / "node_guid").write_text(GUIDS["mlx5_0"] + "\n")
    for c in ib_counters.COUNTERS:
        (port / "counters" / c).write_text(f"{counters.get(c, 0)}\n")


def test_a_fan_out_sweep_judges_what_the_counters_did_since_the_last_one(tmp_path: Path) -> None:
    site = load_site(ROOT / "site-specs/small.yaml")
    opts = SweepOptions(nodes="gpu001", db=tmp_path / "h.db")
    launcher = SysfsLauncher(tmp_path / "sys")
    _sysfs(tmp_path / "sys", "gpu001", link_downed=2, symbol_error=7)
    sweep_site(site, opts, launcher=launcher)
    _sysfs(tmp_path / "sys", "gpu001", link_downed=3, symbol_error=7)
    second = sweep_site(site, opts, launcher=launcher)
    node = second.nodes[0]
    flaps = [f for f in node.findings if f.metric == "nic_counter_increase"]
    assert [(f.value, (f.detail or "").split(" since ")[0]) for f in flaps] == [
        (1.0, f"mlx5_0 port 1 guid {GUIDS['mlx5_0']} link_downed: 2 -> 3")]
    assert _increases(second, "gpu001")["mlx5_0 port 1 symbol_error"][0] == 0.0
    with HistoryStore(tmp_path / "h.db") as store:  # stored, for trends and the next sweep
        kept = store.samples(nodes=["gpu001"], metric="nic_counter_increase")
    assert sorted(s.value for s in kept) == [0.0] * 5 + [1.0]


def test_an_adapter_numbered_anew_starts_a_new_baseline(tmp_path: Path) -> None:
    # mlx5_0 drops out; the kernel names the adapter that was mlx5_1 (40 symbol errors since
    # it loaded) mlx5_0: its counters are not read as 0 -> 40 on the old mlx5_0
    db = tmp_path / "history.db"
    _sweep(db, 5_000_000.0, {"n1": [_port("mlx5_0"), _port("mlx5_1", symbol_error=40)]})
    second = _sweep(db, 5_000_900.0, {"n1": [_port("mlx5_0", GUIDS["mlx5_1"], symbol_error=40)]})
    assert _increases(second, "n1") == {}
    assert not [f for f in second.nodes[0].findings if f.metric == "nic_counter_increase"]


def _gpu_sweep(db: Path, started: float, replays: dict[str | None, int]) -> SweepResult:
    """One local sweep of a node whose GPUs (UUID -> PCIe replay counter; Gen5 x16 links) are
    read through NVML. No GPU here: the snapshot stands in for what
    provision.node_programs.gpu.nvml.snapshot() returns on one (its keys, its types)."""
    snapshot = {"driver": "580.95.05", "gpus": [
        {"index": i, "name": "NVIDIA H100 NVL", "uuid": uuid, "pcie_replay_counter": n,
         "pcie_gen": 1, "pcie_gen_max": 5, "pcie_width": 16, "pcie_width_max": 16}
        for i, (uuid, n) in enumerate(replays.items())]}
    exp = NodeExpectation(node="n1", profile="p", gpu_model="NVIDIA H100 NVL",
                          gpu_count=len(replays))
    node = node_result("n1", P.nvml_records(snapshot, exp))
    result = with_increases(SweepResult(f"health-{started:.0f}", "quick", started,
                                        started + 1, (node,)), db)
    return finish(result, SweepOptions(db=db), None, kind="local")


def _replays(result: SweepResult) -> dict[int | None, tuple[float, float | None, str]]:
    return {r.gpu: (r.value, r.max, r.detail or "") for r in result.nodes[0].records
            if r.metric == "gpu_pcie_replay_increase"}


def test_pcie_replays_between_sweeps_are_judged_at_the_pcie_bit_error_rate(
        tmp_path: Path) -> None:
    # 1e-12 of Gen5's 32 GT/s on 16 lanes is 0.512 replays a second (DCGM's expected rate,
    # 31 a minute), so 900 s between sweeps allow 460; at idle the link runs at Gen1, yet
    # the limit is the link's maximum speed (the replays came while it was busy)
    db = tmp_path / "history.db"
    a, b, c = "GPU-0a1b", "GPU-1c2d", "GPU-2e3f"
    first = _gpu_sweep(db, 6_000_000.0, {a: 10, b: 10, c: 500})
    assert _replays(first) == {}
    second = _gpu_sweep(db, 6_000_900.0, {a: 470, b: 471, c: 3})
    got = _replays(second)
    assert (got[0][0], got[0][1]) == (460.0, 460.0)                 # at the limit: passes
    assert (got[1][0], got[1][1]) == (461.0, 460.0)                 # one more: fails
    assert "GPU1 PCIe replays: 10 -> 471" in got[1][2] and "Gen5 x16" in got[1][2]
    assert got[2][1] is None and "a new baseline" in got[2][2]      # reset: not judged
    findings = [(f.metric, f.gpu) for f in second.nodes[0].findings]
    assert ("gpu_pcie_replay_increase", 1) in findings
    assert ("gpu_pcie_replay_increase", 0) not in findings
    # two days later: a rate over that long says nothing about a burst, so no judgement
    late = _gpu_sweep(db, 6_000_900.0 + 2 * 86400, {a: 100_000, b: 471, c: 3})
    assert _replays(late)[0][1] is None and "more than a day" in _replays(late)[0][2]


def test_a_gpu_without_its_uuid_is_not_judged(tmp_path: Path) -> None:
    # without the UUID every GPU's counter would share one key: GPU1 compared with GPU0's
    db = tmp_path / "history.db"
    _gpu_sweep(db, 9_000_000.0, {None: 0})
    assert _replays(_gpu_sweep(db, 9_000_900.0, {None: 5000})) == {}


def test_a_replaced_gpu_starts_a_new_baseline(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    _gpu_sweep(db, 7_000_000.0, {"GPU-old": 0})
    second = _gpu_sweep(db, 7_000_900.0, {"GPU-new": 5000})  # same index 0, another GPU
    assert _replays(second) == {}


#: recording: stas00/ml-engineering (shared fixtures' SOURCES.md), nvidia-smi nvlink -e on an
#: H100 80GB HBM3 (SXM; the nvlink -e format is the same on H100 NVL's bridges): every counter
#: 0, links 2-16 elided
NVLINK_E = (ROOT.parent / "shared" / "fixtures" / "real" / "nvidia-smi-nvlink"
            / "stas-h100-nvlink-errors-elided.txt")


def _nvlink_sweep(db: Path, started: float, text: str) -> SweepResult:
    exp = NodeExpectation(node="n1", profile="p", gpu_model="NVIDIA H100 NVL", gpu_count=1,
                          nvlink_links=18)
    out = f"{P.BEGIN} nvlink\n{text}\n{P.END} nvlink 0\n"
    node = from_output(exp, [P.PROBES["nvlink"]], out, connected=True, now=started)
    result = with_increases(SweepResult(f"sweep-{started:.0f}", "quick", started, started + 1,
                                        (node,)), db)
    return finish(result, SweepOptions(db=db), None, kind="sweep")


def _set(text: str, link: int, counter: str, value: int) -> str:
    return text.replace(f"Link {link}: {counter} Errors: 0", f"Link {link}: {counter} Errors: "
                                                             f"{value}")


@pytest.mark.skipif(not NVLINK_E.is_file(), reason="real fixtures not present")
def test_nvlink_errors_between_sweeps_are_judged_as_dcgm_does(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    text = NVLINK_E.read_text()
    first = _nvlink_sweep(db, 8_000_000.0, text)
    read = [r for r in first.nodes[0].records if r.check == "nvlink" and r.metric != "probe_ok"]
    assert len(read) == 3 * 3 + 1 and {r.uuid for r in read} == {   # 3 links, the GPU's CRC
        "GPU-abcdefab-cdef-abdc-abcd-abababababab"}
    assert all(r.max is None for r in read)        # counts since the driver loaded: recorded
    assert first.nodes[0].status == "healthy"
    # one replay error on link 1; CRC errors on link 17 below 100 a second (900 s: 90,000)
    second = _nvlink_sweep(db, 8_000_900.0, _set(_set(text, 1, "Replay", 1), 17, "CRC", 90000))
    node = second.nodes[0]
    assert [(f.metric, f.value) for f in node.findings] == [("nvlink_error_increase", 1.0)]
    assert "GPU0 link 1 replay errors: 0 -> 1" in node.reason
    crc = [r for r in node.records if r.metric == "nvlink_error_increase"
           and "CRC errors (all links)" in (r.detail or "")]
    assert [(r.value, r.max) for r in crc] == [(90000.0, 90000.0)]
    third = _nvlink_sweep(db, 8_001_800.0, _set(_set(text, 1, "Replay", 1), 17, "CRC", 180001))
    assert [(f.metric, f.value) for f in third.nodes[0].findings] == [
        ("nvlink_error_increase", 90001.0)]


def test_an_nvlink_output_without_known_counters_fails_the_probe_not_silently() -> None:
    # NVLink5 drivers print other counter names: reading nothing must not pass as clean
    exp = NodeExpectation(node="n1", profile="p", gpu_count=1, nvlink_links=18)
    text = ("GPU 0: NVIDIA B300 (UUID: GPU-b300)\n\t Link 0: Link recovery failed events: 7\n")
    res = from_output(exp, [P.PROBES["nvlink"]], f"{P.BEGIN} nvlink\n{text}{P.END} nvlink 0\n",
                      connected=True)
    ok = [r for r in res.records if r.metric == "probe_ok"]
    assert [r.value for r in ok] == [0.0] and "no NVLink error counter" in (ok[0].detail or "")


def test_a_dead_driver_is_the_gpu_probes_finding_not_a_second_one() -> None:
    exp = NodeExpectation(node="n1", profile="p", gpu_count=1, nvlink_links=18)
    dead = ("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
            "Make sure that the latest NVIDIA driver is installed and running.\n")
    res = from_output(exp, [P.PROBES["nvlink"]], f"{P.BEGIN} nvlink\n{dead}{P.END} nvlink 9\n",
                      connected=True)
    assert [(r.metric, r.value) for r in res.records if r.check == "nvlink"] == [
        ("probe_ok", 1.0)]
    garbage = from_output(exp, [P.PROBES["nvlink"]],
                          f"{P.BEGIN} nvlink\nSegmentation fault\n{P.END} nvlink 139\n",
                          connected=True)
    assert [r.value for r in garbage.records if r.metric == "probe_ok"] == [0.0]


#: `ethtool -S` lines as a ConnectX-4 Lx printed them (`ethtool -S eth03 | grep -i -e disc ...`
#: and the pause lines, quoted in a public note on mlx5 ethtool counters that the code
#: search finds by "rx_prio3_discards"; its repository is not named there), with the
#: counts this test needs put in, and the lines mlx5 adds where PFC is on priority 3 and for
#: link events, named as the kernel's
#: Documentation/networking/device_drivers/ethernet/mellanox/mlx5/counters.rst names them
ETHTOOL_S = """     rx_out_of_buffer: 0
     rx_steer_missed_packets: 24627
     rx_out_of_range_len_phy: 0
     rx_discards_phy: {phy}
     tx_discards_phy: 0
     rx_buffer_passed_thres_phy: 0
     rx_prio0_discards: 0
     rx_prio1_discards: 0
     rx_prio2_discards: 0
     rx_prio3_discards: {prio3}
     rx_prio4_discards: 0
     rx_prio5_discards: 0
     rx_prio6_discards: 0
     rx_prio7_discards: 0
     rx_pause_ctrl_phy: 0
     tx_pause_ctrl_phy: 1266552
     link_down_events_phy: {down}
     tx_pause_storm_error_events: 0
"""
PFC3 = """     rx_prio3_pause: 10
     rx_prio3_pause_duration: 55
     tx_prio3_pause: 1266552
     tx_prio3_pause_duration: 555665182
"""


def _roce_node(tmp_path: Path, *, prio3: int = 0, phy: int = 0, seq: int = 0, down: int = 0,
               pfc: bool = True, ethtool: bool = True) -> str:
    """The nic probe's real script, run here by sh, over a directory laid out as sysfs lays
    out a RoCE port (no RDMA adapter on this machine), with `ethtool` on PATH replaying the
    recording above (no mlx5 netdev here either; `ethtool=False`: none on PATH at all)."""
    import subprocess

    sys_ib = tmp_path / "sys" / "class" / "infiniband"
    port = sys_ib / "mlx5_0" / "ports" / "1"
    for sub in ("counters", "hw_counters"):
        (port / sub).mkdir(parents=True, exist_ok=True)
    for name, text in (("state", "4: ACTIVE"), ("phys_state", "5: LinkUp"),
                       ("rate", "200 Gb/sec (4X HDR)"), ("link_layer", "Ethernet")):
        (port / name).write_text(text + "\n")
    (sys_ib / "mlx5_0" / "node_guid").write_text(GUIDS["mlx5_0"] + "\n")
    (sys_ib / "mlx5_0" / "device" / "net" / "ens1f0np0").mkdir(parents=True, exist_ok=True)
    for c, v in (("out_of_sequence", seq), ("packet_seq_err", 0), ("out_of_buffer", 0),
                 ("np_cnp_sent", 17), ("rp_cnp_handled", 3)):
        (port / "hw_counters" / c).write_text(f"{v}\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    recording = tmp_path / "ethtool-S.txt"
    recording.write_text(ETHTOOL_S.format(prio3=prio3, phy=phy, down=down) + (PFC3 if pfc else ""))
    tool = bin_dir / "ethtool"
    tool.unlink(missing_ok=True)
    if ethtool:
        tool.write_text(f'#!/bin/sh\n[ "$1" = -S ] && [ "$2" = ens1f0np0 ] && cat {recording}\n')
        tool.chmod(0o755)
    script = P.NIC_SYSFS.replace("/sys/class/infiniband", str(sys_ib))
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True,
                          env={"PATH": f"{bin_dir}:/usr/bin:/bin"})
    return done.stdout


def _roce_sweep(db: Path, started: float, text: str, uptime: float | None = None
                ) -> SweepResult:
    exp = NodeExpectation(node="n1", profile="p", rdma_ports=1, roce_pfc_priority=3)
    out = f"{P.BEGIN} nic\n{text}{P.END} nic 0\n"
    probes = [P.PROBES["nic"]]
    if uptime is not None:  # the host probe's lines: nproc --all, nproc, MemTotal, uname -r
        out += f"{P.BEGIN} host\n8\n8\n16000000\n6.8.0\n{uptime}\n{P.END} host 0\n"
        probes.append(P.PROBES["host"])
    node = from_output(exp, probes, out, connected=True, now=started)
    result = with_increases(SweepResult(f"sweep-{started:.0f}", "quick", started, started + 1,
                                        (node,)), db)
    return finish(result, SweepOptions(db=db), None, kind="sweep")


def test_drops_in_the_lossless_roce_priority_fail_the_next_sweep(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    first = _roce_sweep(db, 10_000_000.0, _roce_node(tmp_path, seq=40))
    read = {r.metric: r.value for r in first.nodes[0].records if r.metric.startswith("roce_")}
    assert read == {"roce_out_of_sequence": 40.0, "roce_packet_seq_err": 0.0,
                    "roce_out_of_buffer": 0.0, "roce_cnp_sent": 17.0, "roce_cnp_handled": 3.0,
                    "roce_rx_discards_phy": 0.0, "roce_lossless_discards": 0.0,
                    "roce_lossless_pause_rx": 10.0, "roce_lossless_pause_tx": 1266552.0,
                    "roce_link_down_events": 0.0, "roce_pause_storm_errors": 0.0,
                    "roce_pfc_enabled": 1.0}
    assert first.nodes[0].status == "healthy"
    # PFC should have paused the sender: 5 drops in priority 3 fail; reordering (adaptive
    # routing makes it too) and drops in other priorities are recorded, not judged
    second = _roce_sweep(db, 10_000_900.0, _roce_node(tmp_path, prio3=5, phy=9, seq=400))
    node = second.nodes[0]
    assert [(f.metric, f.value) for f in node.findings] == [("nic_counter_increase", 5.0)]
    assert "prio 3 drops in the lossless priority: 0 -> 5" in node.reason
    recorded = {d.split(": ")[0].split(" prio 3 ")[-1]: (v, m)
                for v, m, d in ((r.value, r.max, r.detail or "") for r in node.records
                                if r.metric == "nic_counter_increase")}
    assert recorded["out-of-sequence packets"] == (360.0, None)
    assert recorded["drops at the port, all priorities"] == (9.0, None)
    # a link flap fails too; after a reboot (uptime 120 s) nothing is judged: a new baseline
    third = _roce_sweep(db, 10_001_800.0, _roce_node(tmp_path, prio3=5, phy=9, seq=400, down=1))
    assert [f.value for f in third.nodes[0].findings] == [1.0]
    assert "link down events: 0 -> 1" in third.nodes[0].reason
    rebooted = _roce_sweep(db, 10_002_700.0, _roce_node(tmp_path, prio3=50, down=3), uptime=120.0)
    assert rebooted.nodes[0].status == "healthy"
    assert all("rebooted since" in (r.detail or "") for r in rebooted.nodes[0].records
               if r.metric == "nic_counter_increase")


def test_a_roce_port_without_pfc_on_its_lossless_priority_fails(tmp_path: Path) -> None:
    # mlx5 counts rx_prio3_pause only where PFC is enabled on priority 3
    node = _roce_sweep(tmp_path / "h.db", 11_000_000.0, _roce_node(tmp_path, pfc=False)).nodes[0]
    assert [(f.metric, f.value) for f in node.findings] == [("roce_pfc_enabled", 0.0)]
    assert "PFC on priority 3 on 0 of 1 netdevs (ens1f0np0" in node.reason


def test_a_roce_port_whose_counters_cannot_be_read_says_so(tmp_path: Path) -> None:
    node = _roce_sweep(tmp_path / "h.db", 12_000_000.0,
                       _roce_node(tmp_path, ethtool=False)).nodes[0]
    assert [(f.metric, f.value) for f in node.findings] == [("tool_ran_ok", 0.0)]
    assert "ethtool -S gave no counters for ens1f0np0" in node.reason

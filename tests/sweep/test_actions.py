"""The drain/resume policy (pure), its memory in the history store, and the Kubernetes side.

Kubernetes is exercised against kmock, an in-memory API emulator on PyPI: no
real API server can run here. kmock serves stateful CRUD, but node objects
must be seeded into it first (``emulator.objects[...]``), which these tests do.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provision.actions.apply import apply, requalified
from provision.actions.kubernetes import REASON_ANNOTATION, TAINT_KEY, KubernetesScheduler
from provision.actions.policy import (
    Failure,
    NodeHealth,
    NodeState,
    PolicyConfig,
    decide,
    drain_reason,
)
from provision.actions.slurm import drain_argv, parse_show_node, parse_sinfo, sinfo_argv
from provision.errors import InputError
from provision.history.store import HistoryStore

CFG = PolicyConfig(fail_after=3, resume_after=2)
IDLE = NodeState("n1", "idle", False)
XID = Failure("xid", "xid_events=2 Xid 13", fatal=False)
ECC = Failure("gpu", "ecc_uncorrected_volatile=1", fatal=True)


def test_fatal_drains_at_once_non_fatal_after_n() -> None:
    d = decide(NodeHealth("n1", True, (ECC,)), IDLE, {}, CFG, "r1")
    assert d.action == "drain" and d.reason.startswith("forge:gpu:r1: ")
    streak: dict[str, int] = {}
    actions = []
    for run in ("r1", "r2", "r3"):
        d = decide(NodeHealth("n1", True, (XID,)), IDLE, streak, CFG, run)
        streak = dict(d.streaks)
        actions.append(d.action)
    assert actions == ["none", "none", "drain"]
    assert d.reason == "forge:xid:r3: xid_events=2 Xid 13"


def test_one_clean_sweep_resets_the_failing_streak() -> None:
    d = decide(NodeHealth("n1", True, (XID,)), IDLE, {"fail:xid": 2}, CFG, "r")
    assert d.streaks == {"fail:xid": 3}
    clean = decide(NodeHealth("n1", True, ()), IDLE, {"fail:xid": 2}, CFG, "r")
    assert clean.streaks == {"clean": 1} and clean.action == "none"


def test_resume_only_forge_drains_after_m_clean() -> None:
    ours = NodeState("n1", "drained", True, "forge:xid:r3: xid_events=2")
    theirs = NodeState("n1", "drained", True, "bad fan, ticket 4711")
    healthy = NodeHealth("n1", True, ())
    assert decide(healthy, ours, {}, CFG, "r").action == "none"            # 1 of 2
    assert decide(healthy, ours, {"clean": 1}, CFG, "r").action == "resume"
    d = decide(healthy, theirs, {"clean": 9}, CFG, "r")
    assert d.action == "none" and "left alone" in d.why
    d = decide(NodeHealth("n1", True, (ECC,)), theirs, {}, CFG, "r")
    assert d.action == "none" and "left alone" in d.why                 # never re-drained


def test_unreachable_is_neither_drained_nor_clean() -> None:
    d = decide(NodeHealth("n1", False, ()), IDLE, {"clean": 1, "x": 0}, CFG, "r")
    assert d.action == "none" and d.streaks == {"clean": 1, "x": 0}
    assert "unreachable" in d.why


def test_reason_is_one_short_line() -> None:
    r = drain_reason("xid", "sweep-1", "a\nb   c" + "x" * 500)
    assert "\n" not in r and len(r) <= 180 and r.startswith("forge:xid:sweep-1: a b c")
    with pytest.raises(InputError, match="fail-after"):
        PolicyConfig(fail_after=0)


def test_slurm_argv_and_state_parsing() -> None:
    assert drain_argv("gpu001", "forge:xid:r1: x y") == [
        "scontrol", "update", "nodename=gpu001", "state=drain", "reason=forge:xid:r1: x y"]
    assert sinfo_argv(["a1", "a2"])[:3] == ["sinfo", "-n", "a[1-2]"]
    # sinfo -h -N -o '%N|%T|%E' as Slurm 22.05 prints it (a node in two partitions twice)
    text = ("lab-n1|idle|none\nlab-n2|drained|forge:xid:r1: Xid 63\n"
            "lab-n3|draining|fan broken\nlab-n3|draining|fan broken\n")
    st = parse_sinfo(text)
    assert st["lab-n1"].drained is False
    assert st["lab-n2"].forge_owned and not st["lab-n3"].forge_owned and st["lab-n3"].drained
    line = ("NodeName=lab-n2 Arch=x86_64 CoresPerSocket=1 State=IDLE+DRAIN ThreadsPerCore=1 "
            "Reason=forge:xid:r1: Xid 63 on PCI:0000:10:1c [root@2026-11-22T04:00:00]")
    s = parse_show_node(line)
    assert s.drained and s.reason == "forge:xid:r1: Xid 63 on PCI:0000:10:1c"


class FakeSlurm:
    """Stands in for Slurm in this pure-policy test; the real one is in tests/sweep/test_lab.py."""

    name = "slurm"

    def __init__(self) -> None:
        self.state = {"n1": NodeState("n1", "idle", False)}
        self.calls: list[str] = []

    def states(self, nodes: Any) -> dict[str, NodeState]:
        return dict(self.state)

    def drain(self, node: str, reason: str) -> None:
        self.calls.append(f"drain {node}")
        self.state[node] = NodeState(node, "drained", True, reason)

    def resume(self, node: str) -> None:
        self.calls.append(f"resume {node}")
        self.state[node] = NodeState(node, "idle", False)

    def describe(self, node: str, action: str, reason: str) -> str:
        return f"{action} {node}"


def test_streaks_live_in_the_history_store(tmp_path: Path) -> None:
    sched = FakeSlurm()
    cfg = PolicyConfig(fail_after=2, resume_after=2)
    failing = [NodeHealth("n1", True, (XID,))]
    with HistoryStore(tmp_path / "h.db") as store:
        # dry runs neither act nor advance the counters
        for _ in range(3):
            res = apply(failing, sched, store, cfg, "dry", dry_run=True)
        assert res[0].outcome == "" and store.streaks("n1") == {}
    for run in ("r1", "r2"):   # a fresh process per sweep, like cron
        with HistoryStore(tmp_path / "h.db") as store:
            res = apply(failing, sched, store, cfg, run, dry_run=False)
    assert sched.calls == ["drain n1"] and res[0].outcome == "done"
    for run in ("r3", "r4"):
        with HistoryStore(tmp_path / "h.db") as store:
            res = apply([NodeHealth("n1", True, ())], sched, store, cfg, run, dry_run=False)
    assert sched.calls == ["drain n1", "resume n1"]
    with HistoryStore(tmp_path / "h.db") as store:
        assert [a["action"] for a in store.actions("n1")] == ["drain", "resume"]


# --- Kubernetes against kmock ---------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def kube() -> Iterator[tuple[Any, Any]]:
    kmock = pytest.importorskip("kmock")
    from kubernetes import client

    port = _free_port()
    ready = threading.Event()
    stop: dict[str, Any] = {}
    holder: dict[str, Any] = {}

    async def serve() -> None:
        async with kmock.KubernetesEmulator() as emu, kmock.Server(emu, port=port):
            nodes = kmock.resource("", "v1", "nodes")
            for name, spec in (("gpu001", {}), ("gpu002", {"unschedulable": True})):
                emu.objects[nodes, None, name] = {
                    "apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
                    "spec": spec}
            holder["emu"] = emu
            stop["event"] = asyncio.Event()
            stop["loop"] = asyncio.get_running_loop()
            ready.set()
            await stop["event"].wait()

    t = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    t.start()
    assert ready.wait(20), "kmock did not start"
    cfg = client.Configuration()
    cfg.host = f"http://127.0.0.1:{port}"
    api = client.CoreV1Api(client.ApiClient(cfg))
    yield api, holder["emu"]
    stop["loop"].call_soon_threadsafe(stop["event"].set)
    t.join(10)


def test_kubernetes_cordon_taint_and_uncordon(kube: tuple[Any, Any], tmp_path: Path) -> None:
    api, _ = kube
    sched = KubernetesScheduler(api)
    st = sched.states(["gpu001", "gpu002", "missing"])
    assert set(st) == {"gpu001", "gpu002"}
    assert st["gpu002"].drained and not st["gpu002"].forge_owned   # cordoned by someone else
    cfg = PolicyConfig(fail_after=1, resume_after=1)
    bad = [NodeHealth("gpu001", True, (ECC,)), NodeHealth("gpu002", True, (ECC,))]
    with HistoryStore(tmp_path / "h.db") as store:
        res = apply(bad, sched, store, cfg, "r1", dry_run=False)
    assert [(r.node, r.action, r.outcome) for r in res] == [
        ("gpu001", "drain", "done"), ("gpu002", "none", "")]
    node = api.read_node("gpu001")
    assert node.spec.unschedulable is True
    assert [(t.key, t.value, t.effect) for t in node.spec.taints] == [
        (TAINT_KEY, "gpu", "NoSchedule")]
    assert node.metadata.annotations[REASON_ANNOTATION].startswith("forge:gpu:r1: ")
    ok = [NodeHealth("gpu001", True, ()), NodeHealth("gpu002", True, ())]
    with HistoryStore(tmp_path / "h.db") as store:
        res = apply(ok, sched, store, cfg, "r2", dry_run=False)
        # uncorrectable ECC is a hardware fault: clean sweeps do not lift the drain
        assert [(r.node, r.action) for r in res] == [("gpu001", "none"), ("gpu002", "none")]
        assert "sticky drain (gpu)" in res[0].why
        res = [requalified("gpu001", sched, store, "q1", dry_run=False),
               requalified("gpu002", sched, store, "q1", dry_run=False)]
    assert [(r.node, r.action) for r in res] == [("gpu001", "resume"), ("gpu002", "none")]
    node = api.read_node("gpu001")
    assert node.spec.unschedulable is False and not node.spec.taints
    assert REASON_ANNOTATION not in (node.metadata.annotations or {})
    assert api.read_node("gpu002").spec.unschedulable is True          # still theirs


def test_hardware_drain_is_sticky_across_clean_sweeps_after_a_reboot() -> None:
    fell = Failure("xid", "xid_fatal_events=1 Xid 79 fallen off the bus", fatal=True)
    d = decide(NodeHealth("n1", True, (fell,)), IDLE, {}, CFG, "r1")
    assert d.action == "drain" and d.streaks.get("sticky:xid") == 1
    ours = NodeState("n1", "drained", True, d.reason)
    streak = dict(d.streaks)
    for run in ("r2", "r3", "r4", "r5"):  # rebooted: the kernel log is clean again
        d = decide(NodeHealth("n1", True, ()), ours, streak, CFG, run)
        streak = dict(d.streaks)
        assert d.action == "none" and "forge requalify n1" in d.why
    assert streak["clean"] == 4 and streak["sticky:xid"] == 1


def test_operator_resume_clears_the_sticky_mark() -> None:
    d = decide(NodeHealth("n1", True, ()), IDLE, {"sticky:xid": 1}, CFG, "r")
    assert d.action == "none" and "operator cleared" in d.why
    assert "sticky:xid" not in d.streaks

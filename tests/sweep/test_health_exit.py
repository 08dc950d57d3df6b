"""forge-health's exit code: 0 for findings that only count toward --fail-after."""

from __future__ import annotations

from provision import judge
from provision.errors import ExitCode
from provision.finding import Finding
from provision.measurement import Measurement
from provision.node_programs.health import health_exit_code
from provision.sweep.result import NodeResult, SweepResult


def _result(*findings: Finding, actions: tuple[dict[str, str], ...] = ()) -> SweepResult:
    status = "failing" if findings else "healthy"
    node = NodeResult("n1", status, (), findings, findings[0].line() if findings else "")
    return SweepResult("r1", "quick", 0.0, 1.0, (node,), actions)


def _judged(r: Measurement) -> Finding:
    f = judge.finding(r)
    assert f is not None
    return f


SLOW = _judged(Measurement("n1", "gpu_persistence_mode", 0.0, gpu=0, check="persistence",
                           min=1.0))
XID = _judged(Measurement("n1", "xid_fatal_events", 1.0, check="xid", max=0.0,
                          detail="Xid 79"))


def test_the_judge_reads_fatality_and_the_limit_from_the_record_and_registry() -> None:
    assert not SLOW.fatal and XID.fatal
    assert SLOW.line() == "n1 gpu0: persistence/gpu_persistence_mode=0 (>= 1)"
    assert XID.line() == "n1: FATAL xid/xid_fatal_events=1 (<= 0) Xid 79"


def test_healthy_is_zero() -> None:
    assert health_exit_code(_result()) == ExitCode.OK


def test_non_fatal_finding_still_lets_the_node_register() -> None:
    r = _result(SLOW)
    assert r.exit_code() == ExitCode.CHECKS_FAILED          # what `forge sweep` reports
    assert health_exit_code(r) == ExitCode.OK               # what slurmd sees at start-up


def test_fatal_finding_fails() -> None:
    assert health_exit_code(_result(XID, SLOW)) == ExitCode.CHECKS_FAILED


def test_the_run_that_drains_fails() -> None:
    drain = {"node": "n1", "action": "drain", "reason": "forge:persistence", "why": "3/3",
             "command": "scontrol update ...", "outcome": "done"}
    assert health_exit_code(_result(SLOW, actions=(drain,))) == ExitCode.CHECKS_FAILED

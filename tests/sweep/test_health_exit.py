"""forge-health's exit code: 0 for findings that only count toward --fail-after."""

from __future__ import annotations

from provision.errors import ExitCode
from provision.node_programs.health import health_exit_code
from provision.sweep.result import Finding, NodeResult, SweepResult


def _result(*findings: Finding, actions: tuple[dict[str, str], ...] = ()) -> SweepResult:
    status = "failing" if findings else "healthy"
    node = NodeResult("n1", status, (), findings, findings[0].line() if findings else "")
    return SweepResult("r1", "quick", 0.0, 1.0, (node,), actions)


SLOW = Finding("n1", "persistence", "gpu_persistence_mode", 0, ">= 1", "", fatal=False, gpu=0)
XID = Finding("n1", "xid", "xid_fatal_events", 1, "<= 0", "Xid 79", fatal=True)


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

"""A sweep's result: per node, its status, measurement records and failing checks.

The verdict is pure: a record fails when it is outside its own limits (``min``
/ ``max``, which the probes copy from the spec's thresholds), and a failure is
fatal when the metric registry says one bad reading proves a broken part; both
are :mod:`provision.judge`'s to decide, and a failure is a
:class:`provision.finding.Finding`. A
node that could not be reached, or stopped answering mid-run, is
``unreachable``: never healthy, and what it had already answered is kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from provision import judge
from provision.actions.policy import Failure, NodeHealth, failures_from
from provision.errors import ExitCode, combine
from provision.finding import Finding
from provision.measurement import Measurement, from_dict, problem

SCHEMA_VERSION = 1
Status = Literal["healthy", "failing", "unreachable"]


def finding_dict(f: Finding) -> dict[str, Any]:
    """A finding as a sweep result document keeps it (``limit`` as text: ``>= 5``)."""
    return {"node": f.node, "check": f.check or "?", "metric": f.metric, "value": f.value,
            "limit": f.limit_text, "detail": f.detail or "", "fatal": f.fatal, "gpu": f.gpu}


@dataclass(frozen=True)
class NodeResult:
    node: str
    status: Status
    records: tuple[Measurement, ...] = ()
    findings: tuple[Finding, ...] = ()
    reason: str = ""          # one line: why unreachable, or the first finding
    seconds: float = 0.0

    @property
    def reachable(self) -> bool:
        return self.status != "unreachable"

    def health(self) -> NodeHealth:
        rows = [(f.check or "?", f"{f.metric}={f.value:g} {f.detail or ''}".strip(), f.fatal)
                for f in self.findings]
        return NodeHealth(self.node, self.reachable, failures_from(rows))

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.node, "status": self.status, "reason": self.reason,
                "seconds": round(self.seconds, 3),
                "findings": [finding_dict(f) for f in self.findings],
                "records": [r.to_dict() for r in self.records]}


def node_result(node: str, records: Iterable[Measurement], *, reachable: bool = True,
                why_unreachable: str = "", seconds: float = 0.0) -> NodeResult:
    recs = tuple(records)
    findings = tuple(f for r in recs if (f := judge.finding(r)) is not None)
    findings = tuple(sorted(findings, key=lambda f: (not f.fatal, f.check, f.metric)))
    if not reachable:
        return NodeResult(node, "unreachable", recs, findings, why_unreachable, seconds)
    if findings:
        return NodeResult(node, "failing", recs, findings, findings[0].line(), seconds)
    return NodeResult(node, "healthy", recs, (), "", seconds)


@dataclass(frozen=True)
class SweepResult:
    run_id: str
    profile: str
    started: float
    finished: float
    nodes: tuple[NodeResult, ...]
    actions: tuple[dict[str, str], ...] = field(default=())

    @property
    def records(self) -> list[Measurement]:
        return [r for n in self.nodes for r in n.records]

    def by_status(self, status: Status) -> list[NodeResult]:
        return [n for n in self.nodes if n.status == status]

    def exit_code(self) -> ExitCode:
        """4 when a node was unreachable, 3 when a drain/resume failed, 1 when a node
        fails a check, else 0 (the precedence of :func:`provision.errors.combine`)."""
        return combine([
            ExitCode.DEPLOY_FAILED
            if any(a.get("outcome", "").startswith("failed") for a in self.actions)
            else ExitCode.OK,
            ExitCode.CHECKS_FAILED if self.by_status("failing") else ExitCode.OK,
            ExitCode.HOSTS_UNREACHABLE if self.by_status("unreachable") else ExitCode.OK])

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, "kind": "forge-sweep-result",
                "run_id": self.run_id, "profile": self.profile, "started": self.started,
                "finished": self.finished, "exit_code": int(self.exit_code()),
                "nodes": [n.to_dict() for n in self.nodes], "actions": list(self.actions)}


def from_document(doc: dict[str, Any], *, source: str) -> SweepResult:
    """A sweep result document (``forge sweep --json``) back into a SweepResult."""
    from provision.errors import InputError

    if not isinstance(doc, dict) or doc.get("kind") != "forge-sweep-result":
        raise InputError(f"{source}: not a forge sweep result (kind != forge-sweep-result)")
    nodes = []
    for i, n in enumerate(doc.get("nodes") or []):
        recs = []
        for j, r in enumerate(n.get("records") or []):
            why = problem(r)
            if why:
                raise InputError(f"{source}: nodes[{i}].records[{j}]: {why}")
            recs.append(from_dict(r))
        nodes.append(node_result(str(n.get("node")), recs,
                                 reachable=n.get("status") != "unreachable",
                                 why_unreachable=str(n.get("reason") or ""),
                                 seconds=float(n.get("seconds") or 0)))
    missing = [k for k in ("run_id", "started", "nodes") if not doc.get(k)]
    if missing:
        raise InputError(f"{source}: sweep result without {', '.join(missing)}")
    return SweepResult(str(doc.get("run_id")), str(doc.get("profile")),
                       float(doc.get("started") or 0), float(doc.get("finished") or 0),
                       tuple(nodes))


def failures(nodes: Sequence[NodeResult]) -> list[Failure]:
    return [f for n in nodes for f in n.health().failures]

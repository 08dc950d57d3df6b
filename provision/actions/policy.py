"""The drain/resume policy as a pure function.

- A fatal finding (the metric registry's ``fatal``: uncorrectable ECC, SDC
  mismatch, a GPU missing, failed row remapping) drains at once.
- A non-fatal finding drains only after ``fail_after`` consecutive failing
  sweeps of the same check: one flaky reading never drains a node.
- forge resumes a node only if the drain reason starts with ``forge:`` and
  after ``resume_after`` consecutive clean sweeps, and never after a fatal
  (hardware) finding: that drain is *sticky* (a ``sticky:<check>`` key in the
  node's streaks) until ``forge requalify NODE`` passes on the node or an
  operator resumes the node themselves. A reboot, or a kernel log that rolled
  over, makes sweeps clean but lifts nothing.
- A drain somebody else set is never touched, whatever forge finds.
- An unreachable node is neither drained nor counted clean: the scheduler
  has its own liveness checks, and "no answer" is not "healthy".
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from provision.errors import InputError

REASON_PREFIX = "forge:"
MAX_REASON = 180
CLEAN_KEY = "clean"
STICKY_PREFIX = "sticky:"

Action = Literal["drain", "resume", "none"]


@dataclass(frozen=True)
class PolicyConfig:
    fail_after: int = 3      # N consecutive failing sweeps before a non-fatal finding drains
    resume_after: int = 2    # M consecutive clean sweeps before a forge drain is lifted

    def __post_init__(self) -> None:
        if self.fail_after < 1:
            raise InputError(f"--fail-after {self.fail_after}: must be 1 or more")
        if self.resume_after < 1:
            raise InputError(f"--resume-after {self.resume_after}: must be 1 or more")


@dataclass(frozen=True)
class Failure:
    """One failing check on a node, as the sweep's verdict reports it."""

    check: str
    detail: str
    fatal: bool = False


@dataclass(frozen=True)
class NodeHealth:
    node: str
    reachable: bool
    failures: tuple[Failure, ...] = ()


@dataclass(frozen=True)
class NodeState:
    """What the scheduler says about a node now."""

    node: str
    state: str                     # idle, allocated, drained, draining, down*, cordoned, ...
    drained: bool                  # not schedulable by an operator's (or forge's) decision
    reason: str | None = None

    @property
    def forge_owned(self) -> bool:
        return self.drained and (self.reason or "").startswith(REASON_PREFIX)


@dataclass(frozen=True)
class Decision:
    node: str
    action: Action
    reason: str                     # the drain reason to set (empty unless draining)
    why: str                        # one line for the report: why this action or none
    streaks: Mapping[str, int] = field(default_factory=dict)


def drain_reason(check: str, run_id: str, detail: str) -> str:
    """``forge:<check>:<run id>: <detail>`` on one line, short enough for Slurm."""
    text = re.sub(r"\s+", " ", f"{REASON_PREFIX}{check}:{run_id}: {detail}").strip()
    return text if len(text) <= MAX_REASON else text[:MAX_REASON - 3] + "..."


def next_streaks(health: NodeHealth, previous: Mapping[str, int]) -> dict[str, int]:
    """Counters after this sweep: ``fail:<check>`` per failing check, ``clean`` otherwise."""
    if not health.reachable:
        return dict(previous)
    out: dict[str, int] = sticky(previous)
    if not health.failures:
        out[CLEAN_KEY] = previous.get(CLEAN_KEY, 0) + 1
        return out
    for f in health.failures:
        key = f"fail:{f.check}"
        out[key] = previous.get(key, 0) + 1
    return out


def sticky(streaks: Mapping[str, int]) -> dict[str, int]:
    """The sticky-drain marks among a node's streak counters."""
    return {k: v for k, v in streaks.items() if k.startswith(STICKY_PREFIX)}


def decide(health: NodeHealth, state: NodeState | None, previous: Mapping[str, int],
           cfg: PolicyConfig, run_id: str) -> Decision:
    streaks = next_streaks(health, previous)
    node = health.node

    def none(why: str) -> Decision:
        return Decision(node, "none", "", why, streaks)

    if not health.reachable:
        return none("unreachable: no action (not counted as clean)")
    if state is None:
        return none("not known to the scheduler: no action")
    if health.failures:
        fatal = [f for f in health.failures if f.fatal]
        due = fatal or [f for f in health.failures
                        if streaks.get(f"fail:{f.check}", 0) >= cfg.fail_after]
        if not due:
            worst = max(health.failures, key=lambda f: streaks.get(f"fail:{f.check}", 0))
            n = streaks.get(f"fail:{worst.check}", 0)
            return none(f"{worst.check} failing {n}/{cfg.fail_after} consecutive sweeps")
        first = due[0]
        for f in fatal:  # a hardware fault: the drain outlives the evidence
            streaks[f"{STICKY_PREFIX}{f.check}"] = 1
        if state.drained and not state.forge_owned:
            return none(f"drained by someone else ({state.reason or 'no reason'}): left alone")
        if state.drained:
            return none(f"already drained by forge ({state.reason})")
        kind = "fatal" if first.fatal else (
            f"{streaks.get(f'fail:{first.check}', 0)} consecutive failing sweeps")
        return Decision(node, "drain", drain_reason(first.check, run_id, first.detail),
                        f"{first.check}: {kind}", streaks)
    clean = streaks[CLEAN_KEY]
    marks = sticky(streaks)
    if not state.drained:
        for k in marks:  # an operator resumed the node: their decision clears the mark
            del streaks[k]
        return none("healthy" + (" (an operator cleared the sticky drain)" if marks else ""))
    if not state.forge_owned:
        return none(f"drained by someone else ({state.reason or 'no reason'}): left alone")
    if marks:
        checks = ", ".join(sorted(k[len(STICKY_PREFIX):] for k in marks))
        return none(f"sticky drain ({checks}): stays until `forge requalify {node}` passes "
                    f"or an operator resumes the node")
    if clean < cfg.resume_after:
        return none(f"clean {clean}/{cfg.resume_after} sweeps before resume")
    return Decision(node, "resume", "", f"clean for {clean} consecutive sweeps", streaks)


def failures_from(rows: Sequence[tuple[str, str, bool]]) -> tuple[Failure, ...]:
    """(check, detail, fatal) rows -> Failures, one per check (fatal wins, first detail kept)."""
    by_check: dict[str, Failure] = {}
    for check, detail, fatal in rows:
        old = by_check.get(check)
        if old is None or (fatal and not old.fatal):
            by_check[check] = Failure(check, detail, fatal)
    return tuple(by_check.values())

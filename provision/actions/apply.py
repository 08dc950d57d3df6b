"""Carry the policy out: read scheduler state, decide per node, act (or show), remember streaks.

Streak counters live in the history store so that consecutive sweeps, from
cron or from several hosts, share one memory. A dry run reads them but writes
nothing and changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from provision.actions.policy import Decision, NodeHealth, NodeState, PolicyConfig, decide
from provision.errors import ForgeError
from provision.history.store import HistoryStore


class Scheduler(Protocol):
    name: str

    def states(self, nodes: Sequence[str]) -> dict[str, NodeState]: ...
    def drain(self, node: str, reason: str) -> None: ...
    def resume(self, node: str) -> None: ...
    def describe(self, node: str, action: str, reason: str) -> str: ...


@dataclass(frozen=True)
class ActionResult:
    node: str
    action: str          # drain | resume | none
    reason: str
    why: str
    command: str         # what was (or would be) run; empty for none
    outcome: str         # done | dry-run | failed: ... | "" for none

    def to_dict(self) -> dict[str, str]:
        return {"node": self.node, "action": self.action, "reason": self.reason,
                "why": self.why, "command": self.command, "outcome": self.outcome}


def apply(healths: Sequence[NodeHealth], scheduler: Scheduler, store: HistoryStore,
          cfg: PolicyConfig, run_id: str, *, dry_run: bool) -> list[ActionResult]:
    states = scheduler.states([h.node for h in healths])
    results = []
    for h in healths:
        d: Decision = decide(h, states.get(h.node), store.streaks(h.node), cfg, run_id)
        if not dry_run:
            store.set_streaks(h.node, dict(d.streaks), run_id)
        if d.action == "none":
            results.append(ActionResult(h.node, "none", "", d.why, "", ""))
            continue
        command = scheduler.describe(h.node, d.action, d.reason)
        if dry_run:
            outcome = "dry-run"
        else:
            try:
                if d.action == "drain":
                    scheduler.drain(h.node, d.reason)
                else:
                    scheduler.resume(h.node)
                outcome = "done"
            except ForgeError as exc:
                outcome = f"failed: {exc.message}"
            store.log_action(run_id, h.node, d.action, d.reason or d.why, outcome)
        results.append(ActionResult(h.node, d.action, d.reason, d.why, command, outcome))
    return results


def requalified(node: str, scheduler: Scheduler, store: HistoryStore, run_id: str, *,
                dry_run: bool) -> ActionResult:
    """A re-qualification passed on ``node``: clear its sticky marks and resume it if the
    drain is forge's (someone else's drain is never touched)."""
    from provision.actions.policy import sticky

    state = scheduler.states([node]).get(node)
    streaks = store.streaks(node)
    marks = sticky(streaks)
    why = "re-qualified" + (f" (clears sticky {', '.join(sorted(marks))})" if marks else "")
    if not dry_run:
        store.set_streaks(node, {k: v for k, v in streaks.items() if k not in marks}, run_id)
    if state is None or not state.forge_owned:
        who = "not drained" if state is None or not state.drained else \
            f"drained by someone else ({state.reason or 'no reason'}): left alone"
        return ActionResult(node, "none", "", f"{why}; {who}", "", "")
    command = scheduler.describe(node, "resume", "")
    outcome = "dry-run"
    if not dry_run:
        try:
            scheduler.resume(node)
            outcome = "done"
        except ForgeError as exc:
            outcome = f"failed: {exc.message}"
        store.log_action(run_id, node, "resume", why, outcome)
    return ActionResult(node, "resume", "", why, command, outcome)

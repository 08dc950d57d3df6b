"""Fold ansible-runner events into per-host results (pure: no I/O, tested on recorded events).

A failed playbook does not raise: the outcome of a run is read from these
results, host by host.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Outcome = Literal["ok", "changed", "failed", "unreachable", "not run"]

MAX_MESSAGE = 600


@dataclass(frozen=True)
class Failure:
    host: str
    play: str
    task: str
    action: str
    message: str
    unreachable: bool


@dataclass
class HostProgress:
    """Mutable while a run is live; frozen into :class:`HostResult` at the end."""

    play: str = ""
    task: str = ""
    ok: int = 0
    changed: int = 0
    skipped: int = 0
    failed: bool = False
    unreachable: bool = False
    finished: bool = False
    failure: Failure | None = None
    log: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class HostResult:
    host: str
    outcome: Outcome
    ok: int
    changed: int
    skipped: int
    failure: Failure | None


def message_of(res: Mapping[str, Any]) -> str:
    """The most useful one-paragraph message from a module result."""
    # A loop's own message is only "One or more items failed": the failed item says why.
    for item in res.get("results") or ():
        if isinstance(item, Mapping) and item.get("failed"):
            label = item.get("_ansible_item_label", item.get("item"))
            inner = message_of(item)
            return inner if label is None else f"(item {label}) {inner}"[:MAX_MESSAGE]
    parts: list[str] = []
    for key in ("msg", "stderr", "module_stderr", "reason"):
        value = res.get(key)
        if isinstance(value, str) and value.strip() and value.strip() not in parts:
            parts.append(value.strip())
    text = " | ".join(parts) or "no message"
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


class Tracker:
    """Feed events one at a time (live) or all at once (replay from artifacts)."""

    def __init__(self, hosts: Iterable[str]) -> None:
        self.hosts: dict[str, HostProgress] = {h: HostProgress() for h in hosts}
        self.play = ""
        self.stats: dict[str, dict[str, int]] | None = None

    def _host(self, name: str) -> HostProgress:
        return self.hosts.setdefault(name, HostProgress())

    def feed(self, event: Mapping[str, Any]) -> None:
        kind = event.get("event", "")
        data = event.get("event_data") or {}
        if kind == "playbook_on_play_start":
            self.play = str(data.get("name") or data.get("play") or "")
            return
        if kind == "playbook_on_stats":
            self.stats = {k: dict(data.get(k) or {}) for k in
                          ("ok", "changed", "failures", "dark", "skipped", "processed",
                           "rescued", "ignored")}
            for host in self.stats["processed"]:
                self._host(host).finished = True
            return
        host = str(data.get("host") or "")
        if not host or not kind.startswith("runner_on_"):
            return
        hp = self._host(host)
        task = str(data.get("task") or "")
        hp.play = str(data.get("play") or self.play)
        hp.task = task
        res: Mapping[str, Any] = data.get("res") or {}
        if kind == "runner_on_start":
            return
        if kind == "runner_on_ok":
            hp.ok += 1
            if res.get("changed"):
                hp.changed += 1
                hp.log.append(f"changed  {hp.play} / {task}")
        elif kind == "runner_on_skipped":
            hp.skipped += 1
        elif kind == "runner_on_failed" and not data.get("ignore_errors"):
            hp.failed = True
            hp.failure = Failure(host, hp.play, task, str(data.get("task_action") or ""),
                                 message_of(res), unreachable=False)
            hp.log.append(f"FAILED   {hp.play} / {task}: {hp.failure.message}")
        elif kind == "runner_on_unreachable":
            hp.unreachable = True
            hp.failure = Failure(host, hp.play, task, str(data.get("task_action") or ""),
                                 message_of(res), unreachable=True)
            hp.log.append(f"UNREACHABLE {hp.play} / {task}: {hp.failure.message}")

    def state_text(self, host: str) -> str:
        """One line for the live view (hosts with equal lines are shown as one node set)."""
        hp = self.hosts[host]
        if hp.unreachable:
            return f"UNREACHABLE at {hp.task}"
        if hp.failed:
            return f"FAILED at {hp.task}"
        if not hp.play:
            return "waiting"
        return f"{hp.play} / {hp.task}"

    def results(self) -> list[HostResult]:
        out = []
        for host, hp in self.hosts.items():
            outcome: Outcome
            if hp.unreachable or (self.stats and host in self.stats["dark"]):
                outcome = "unreachable"
            elif hp.failed or (self.stats and host in self.stats["failures"]):
                outcome = "failed"
            elif self.stats is not None and host in self.stats["processed"]:
                outcome = "changed" if hp.changed else "ok"
            else:
                outcome = "not run"
            out.append(HostResult(host, outcome, hp.ok, hp.changed, hp.skipped, hp.failure))
        return out


def replay(events: Iterable[Mapping[str, Any]], hosts: Iterable[str]) -> Tracker:
    tracker = Tracker(hosts)
    for ev in events:
        tracker.feed(ev)
    return tracker

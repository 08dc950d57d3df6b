"""Live progress per host and phase: a rich table on a terminal, plain lines otherwise.

Hosts in the same state share one line (``lab-n[2-3]  Slurm / Config | gres.conf``),
so the view stays readable at hundreds of nodes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from provision.deploy.events import Tracker
from provision.nodes import group_by_text


class PlainView:
    """One line per play, and one per host failure as it happens."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def event(self, event: Mapping[str, Any], tracker: Tracker) -> None:
        kind = event.get("event")
        data = event.get("event_data") or {}
        if kind == "playbook_on_play_start":
            self.console.print(f"== {data.get('name') or data.get('play')}")
        elif kind in ("runner_on_failed", "runner_on_unreachable") \
                and not data.get("ignore_errors"):
            what = "UNREACHABLE" if kind == "runner_on_unreachable" else "FAILED"
            self.console.print(f"   {data.get('host')}: {what} at {data.get('task')}")


class LiveView:
    """A table refreshed on every event; use as a context manager."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.live = Live(console=console, refresh_per_second=4, transient=False)

    def __enter__(self) -> LiveView:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.__exit__(None, None, None)

    def event(self, event: Mapping[str, Any], tracker: Tracker) -> None:
        if not str(event.get("event", "")).startswith(("runner_on", "playbook_on_play")):
            return
        table = Table(box=None, show_header=True, header_style="bold")
        table.add_column("hosts")
        table.add_column("phase / task")
        table.add_column("ok", justify="right")
        table.add_column("changed", justify="right")
        states = {h: tracker.state_text(h) for h in tracker.hosts}
        for nodeset, text in group_by_text(states):
            hosts = [h for h, s in states.items() if s == text]
            ok = sum(tracker.hosts[h].ok for h in hosts)
            changed = sum(tracker.hosts[h].changed for h in hosts)
            style = "red" if text.startswith(("FAILED", "UNREACHABLE")) else ""
            table.add_row(nodeset, text, str(ok), str(changed), style=style)
        self.live.update(table)

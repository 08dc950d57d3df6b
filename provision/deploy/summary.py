"""The end-of-run summary: hosts grouped by node set, then each failed host's task, message, log."""

from __future__ import annotations

from pathlib import Path

from provision.deploy import rundir
from provision.deploy.driver import DeployResult
from provision.deploy.events import HostResult
from provision.nodes import group_by_text


def outcome_text(outcome: str, changed: int) -> str:
    if outcome == "changed":
        return "ok, changed"
    if outcome == "ok":
        return "ok, no changes"
    return outcome


def failure_text(r: HostResult) -> str:
    f = r.failure
    if f is None:
        return r.outcome
    what = "unreachable" if f.unreachable else "failed"
    where = f'play "{f.play}"' + (f", {f.action}" if f.action else "")
    return f'{what} at task "{f.task}" ({where})\n    {f.message}'


def summary_lines(result: DeployResult, *, spec: str = "SPEC") -> list[str]:
    """Plain lines (pure): the CLI prints them, tests assert on them."""
    counts: dict[str, int] = {}
    for r in result.results:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    tally = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no hosts"
    lines = [f"deploy: {len(result.targets)} hosts ({tally}), {result.changed} changes, "
             f"{result.seconds:.1f} s; run directory {result.run_dir}"]
    if result.resumed_from is not None:
        lines.append(f"  resumed from {result.resumed_from.name}")
    per_host = {r.host: outcome_text(r.outcome, r.changed) for r in result.results}
    width = max((len(ns) for ns, _ in group_by_text(per_host)), default=0)
    for nodeset, text in group_by_text(per_host):
        lines.append(f"  {nodeset:<{width}}  {text}")
    failed = [r for r in result.results if r.failure is not None]
    if failed:
        lines.append("failures:")
    texts = {r.host: failure_text(r) for r in failed}
    for nodeset, text in group_by_text(texts):
        lines.append(f"  {nodeset}: {text}")
        for r in failed:
            if texts[r.host] == text:
                log = _rel(rundir.host_log_path(result.run_dir, r.host))
                lines.append(f"    log {r.host}: {log}")
    not_run = result.hosts("not run")
    if failed or not_run:
        lines.append(f"next: fix the cause, then `forge deploy {spec} --resume` reruns only "
                     "the hosts that failed or never ran")
    return lines


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)

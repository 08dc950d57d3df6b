"""What ``--resume`` reruns: the last run's hosts that failed, were unreachable or never ran."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provision import runs
from provision.deploy import rundir
from provision.deploy.events import replay
from provision.errors import InputError


@dataclass(frozen=True)
class ResumePlan:
    previous: Path
    hosts: tuple[str, ...]            # to rerun, in the previous run's order
    done: tuple[str, ...]             # finished cleanly last time
    options: dict[str, Any]           # tags / check / playbook of the previous run


def hosts_to_rerun(record: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(rerun, done) from a run record (pure)."""
    outcomes = {r["host"]: r["outcome"] for r in record.get("results", [])}
    rerun: list[str] = []
    done: list[str] = []
    for host in record.get("targets", []):
        (done if outcomes.get(host) in ("ok", "changed") else rerun).append(host)
    return rerun, done


def _record_from_artifacts(run_dir: Path, record: dict[str, Any]) -> dict[str, Any]:
    """A run killed before it wrote results: rebuild them from the runner's job events."""
    events = []
    for path in sorted(run_dir.glob("artifacts/*/job_events/*.json"),
                       key=lambda p: int(p.name.split("-", 1)[0])
                       if p.name.split("-", 1)[0].isdigit() else 0):
        try:
            events.append(json.loads(path.read_text(encoding="utf-8")))
        except json.JSONDecodeError:
            continue
    tracker = replay(events, record.get("targets", []))
    return {**record, "results": rundir.result_dicts(tracker.results())}


def plan(root: Path, site_name: str) -> ResumePlan:
    for run_dir in runs.previous_runs(root, "deploy"):
        record = runs.read_record(run_dir)
        if record is None or record.get("site") != site_name:
            continue
        if not record.get("results"):
            record = _record_from_artifacts(run_dir, record)
        rerun, done = hosts_to_rerun(record)
        options = {k: record.get(k) for k in ("playbook", "tags", "check", "profile")}
        return ResumePlan(run_dir, tuple(rerun), tuple(done), options)
    raise InputError(f"--resume: no earlier deploy of site {site_name!r} under {root}",
                     hint="run forge deploy without --resume first")

"""What a deploy keeps in its run directory (made by :mod:`provision.runs`).

``runs/deploy-<UTC time>-<id>/``: ``spec.yaml`` (the spec file as given),
``spec.json`` (merged, presets applied), ``inventory/`` (rendered),
``artifacts/`` (ansible-runner: stdout, job events, status, rc),
``ansible-env.json`` (the Ansible settings), ``hosts/<host>.log`` and
``forge-run.json`` (targets, options, per-host results, exit code; schema versioned).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from provision.deploy.events import HostResult
from provision.fsutil import atomic_write_text


def result_dicts(results: list[HostResult]) -> list[dict[str, Any]]:
    return [asdict(r) for r in results]


def host_log_path(run_dir: Path, host: str) -> Path:
    return run_dir / "hosts" / f"{host}.log"


def write_host_logs(run_dir: Path, logs: dict[str, list[str]]) -> None:
    for host, lines in logs.items():
        atomic_write_text(host_log_path(run_dir, host), "\n".join(lines) + "\n")

"""The run directory: one per deploy, kept, holding everything needed to understand it.

``runs/deploy-<UTC timestamp>/``: ``spec.yaml`` (the spec file used),
``spec.json`` (merged, presets applied), ``inventory/`` (rendered),
``artifacts/`` (ansible-runner: stdout, job events, status, rc),
``ansible-env.json`` (the Ansible settings), ``hosts/<host>.log`` and
``forge-run.json`` (targets, options, per-host results; schema versioned).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from provision.deploy.events import HostResult
from provision.fsutil import atomic_write_text

SCHEMA_VERSION = 1
RECORD = "forge-run.json"


def runs_root(explicit: Path | None = None) -> Path:
    if explicit is not None:
        return explicit
    return Path(os.environ.get("FORGE_RUNS_DIR") or Path.cwd() / "runs")


def new_run_dir(root: Path, kind: str = "deploy") -> Path:
    """A fresh directory named by UTC time (with a counter when two start in one second)."""
    root.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for n in range(1000):
        path = root / (f"{kind}-{stamp}" if n == 0 else f"{kind}-{stamp}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"cannot create a run directory under {root}")


def write_record(run_dir: Path, record: dict[str, Any]) -> None:
    atomic_write_text(run_dir / RECORD,
                      json.dumps({"schema_version": SCHEMA_VERSION, **record}, indent=2,
                                 sort_keys=True, default=str) + "\n")


def read_record(run_dir: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads((run_dir / RECORD).read_text(encoding="utf-8"))
        return data
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def result_dicts(results: list[HostResult]) -> list[dict[str, Any]]:
    return [asdict(r) for r in results]


def host_log_path(run_dir: Path, host: str) -> Path:
    return run_dir / "hosts" / f"{host}.log"


def write_host_logs(run_dir: Path, logs: dict[str, list[str]]) -> None:
    for host, lines in logs.items():
        atomic_write_text(host_log_path(run_dir, host), "\n".join(lines) + "\n")


def previous_runs(root: Path, kind: str = "deploy") -> list[Path]:
    """Earlier run directories, newest first."""
    if not root.is_dir():
        return []
    return sorted((p for p in root.glob(f"{kind}-*") if p.is_dir()), reverse=True)

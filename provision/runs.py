"""Run directories: where every check, deploy and sweep keeps what it used and produced.

One directory per run, ``<root>/<kind>-<UTC time>-<short id>/``; the root is
``--runs-dir``, else ``$FORGE_RUNS_DIR``, else ``./runs`` (a sweep's: ``runs/``
beside its history store, so that an installed sweep that systemd or cron
starts in ``/`` keeps them in ``/var/lib/forge/runs``). A run directory is
created exclusively (``os.mkdir``; a name taken by a run that started in the
same second is retried with a new id), so two runs never share one. Each holds:

- ``forge-run.json``: the versioned record (``schema_version``, ``kind``,
  forge's version, start and end time, the command line with secrets
  scrubbed, the exit code, plus what the kind adds);
- ``spec.yaml``: the user's spec file, byte for byte as given, and
  ``spec.json``/``plan.json`` for what forge resolved from it;
- what the kind writes: raw outputs under ``raw/``, ``measurements.jsonl`` (or
  ``.parquet``/``.arrow`` with ``--table``),
  ``verdict.json`` (checks and sweeps), ``actions.json`` (sweeps),
  ``inventory/`` and ``artifacts/`` (deploys).

Nothing here holds a secret: a spec names secrets by reference
(``{env: ...}``, ``{file: ...}``, ``{vault: ...}``), never by value, and the
command line is scrubbed (:func:`scrub_argv`).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import stat
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provision import __version__
from provision.errors import InputError
from provision.fsutil import atomic_write_bytes, atomic_write_text

if TYPE_CHECKING:
    from provision.remote.base import Result

SCHEMA_VERSION = 1
RECORD = "forge-run.json"
ENV = "FORGE_RUNS_DIR"
ATTEMPTS = 100
_SAFE = re.compile(r"[^A-Za-z0-9_.+\-\[\],]")
#: an option (or ``key=value`` word) whose value must never be written
_SECRET_WORD = re.compile(r"pass(word|wd|phrase)?|secret|token|credential|api[-_]?key|"
                          r"private[-_]?key", re.IGNORECASE)
_URL_AUTH = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]+@", re.IGNORECASE)
SCRUBBED = "***"


def runs_root(explicit: Path | None = None, default: Path | None = None) -> Path:
    """Where run directories go: ``--runs-dir``, else ``$FORGE_RUNS_DIR``, else the
    command's ``default`` (sweeps: beside their history store), else ``./runs``."""
    if explicit is not None:
        return Path(explicit)
    return Path(os.environ.get(ENV) or default or Path.cwd() / "runs")


def stamp(now: float | None = None) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))


def iso(now: float) -> str:
    """UTC time with microseconds: orders runs that started in the same second."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"


def safe_name(text: str) -> str:
    """A file name for a node or pair key (no path separators)."""
    return _SAFE.sub("_", text) or "_"


def new_run_dir(kind: str, root: Path | None = None) -> Path:
    """A fresh, empty ``<root>/<kind>-<UTC time>-<short id>``, created exclusively."""
    base = runs_root(root)
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"runs directory {base}: {exc.strerror or exc}",
                         hint="--runs-dir or FORGE_RUNS_DIR names another") from None
    for _ in range(ATTEMPTS):
        path = base / f"{kind}-{stamp()}-{secrets.token_hex(3)}"
        try:
            os.mkdir(path)
            return path
        except FileExistsError:
            continue
    raise InputError(f"cannot create a new run directory under {base} "
                     f"({ATTEMPTS} names taken)")


def claim_dir(out: Path, flag: str = "-o") -> Path:
    """An explicit run directory (``-o DIR``): created, or an existing empty one; a
    directory that already holds anything is refused, never reused."""
    try:
        out.mkdir(parents=True)
        return out
    except FileExistsError:
        pass
    except OSError as exc:
        raise InputError(f"{flag} {out}: {exc.strerror or exc}") from None
    if not out.is_dir() or any(out.iterdir()):
        raise InputError(f"{flag} {out}: exists and is not an empty directory",
                         hint="choose a new run directory; forge never overwrites one")
    return out


def scrub_argv(argv: Sequence[str]) -> list[str]:
    """The command line with every secret-looking value replaced by ``***``:
    ``--password X``, ``--bmc-token=X``, ``password=X`` and ``https://user:pw@host``."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            out.append(SCRUBBED)
            hide_next = False
            continue
        arg = _URL_AUTH.sub(lambda m: f"{m.group('scheme')}{SCRUBBED}@", arg)
        key, eq, _value = arg.partition("=")
        if eq and _SECRET_WORD.search(key):
            out.append(f"{key}={SCRUBBED}")
        elif arg.startswith("-") and _SECRET_WORD.search(arg):
            out.append(arg)
            hide_next = True
        else:
            out.append(arg)
    return out


def read_record(run_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((run_dir / RECORD).read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def previous_runs(root: Path, kind: str) -> list[Path]:
    """Earlier run directories of ``kind`` under ``root``, newest first."""
    if not root.is_dir():
        return []

    def started(p: Path) -> tuple[str, str]:
        record = read_record(p) or {}
        return (p.name[len(kind) + 1:len(kind) + 17], str(record.get("started", "")))
    return sorted((p for p in root.glob(f"{kind}-*") if p.is_dir()), key=started, reverse=True)


def prune(root: Path, kind: str, keep: int, *, spare: Iterable[Path] = ()) -> list[Path]:
    """Remove all but the ``keep`` newest run directories of ``kind`` that forge made
    (those with a ``forge-run.json`` of that kind); the removed paths."""
    if keep < 0:
        raise InputError(f"--keep {keep}: must be 0 or more")
    kept = {p.resolve() for p in spare}
    ours = [p for p in previous_runs(root, kind)
            if (read_record(p) or {}).get("kind") == kind and p.resolve() not in kept]
    removed = ours[max(0, keep - len(kept)):]
    for p in removed:
        shutil.rmtree(p, ignore_errors=True)
    return removed


@dataclass
class Run:
    """One run directory and its ``forge-run.json`` (rewritten atomically on each change)."""

    path: Path
    kind: str
    record: dict[str, Any] = field(default_factory=dict)
    started: float = 0.0

    @classmethod
    def create(cls, kind: str, *, root: Path | None = None, out: Path | None = None,
               argv: Sequence[str] | None = None, **fields: Any) -> Run:
        """A new run: ``out`` when the user named one (``-o``), else a fresh directory
        under the runs root. Its record says ``status: running`` until :meth:`finish`."""
        path = claim_dir(out) if out is not None else new_run_dir(kind, root)
        now = time.time()
        run = cls(path, kind, {}, now)
        run.record = {"kind": kind, "forge_version": __version__, "started": iso(now),
                      "finished": None, "status": "running", "exit_code": None,
                      "command": scrub_argv(sys.argv if argv is None else argv), **fields}
        run.save()
        return run

    @property
    def name(self) -> str:
        return self.path.name

    def save(self) -> None:
        atomic_write_text(self.path / RECORD, json.dumps(
            {"schema_version": SCHEMA_VERSION, **self.record}, indent=2, sort_keys=True,
            default=str) + "\n")

    def update(self, **fields: Any) -> None:
        self.record.update(fields)
        self.save()

    def finish(self, exit_code: int, status: str | None = None, **fields: Any) -> None:
        now = time.time()
        self.update(finished=iso(now), seconds=round(now - self.started, 3),
                    exit_code=int(exit_code),
                    status=status or ("ok" if int(exit_code) == 0 else "failed"), **fields)

    def abandon(self, exc: BaseException) -> None:
        """Record a run that an exception ended (unless it was already finished):
        130 for Ctrl-C, else the error's own exit code (70 for a bug)."""
        if self.record.get("exit_code") is not None:
            return
        if isinstance(exc, KeyboardInterrupt):
            self.finish(130, status="interrupted")
        else:
            self.finish(int(getattr(exc, "exit_code", 70)), status="error",
                        error=type(exc).__name__)

    # --- what a run keeps
    def keep_spec(self, source: Path | str, name: str = "spec.yaml") -> None:
        """The user's input file, byte for byte as given."""
        src = Path(source)
        atomic_write_bytes(self.path / name, src.read_bytes(),
                           mode=stat.S_IMODE(src.stat().st_mode) & 0o644)

    def write_text(self, rel: str, text: str) -> None:
        atomic_write_text(self.path / rel, text)

    def write_json(self, rel: str, obj: Any) -> None:
        atomic_write_text(self.path / rel, json.dumps(obj, indent=2, sort_keys=True,
                                                      default=str) + "\n")

    def write_raw(self, group: str, key: str, *, stdout: str, stderr: str, ended: str,
                  meta: dict[str, Any]) -> None:
        """What one program printed: ``raw/<group>/<key>.out|.err|.rc|.json``."""
        d = f"raw/{safe_name(group)}" if group else "raw"
        name = safe_name(key)
        self.write_text(f"{d}/{name}.out", stdout)
        self.write_text(f"{d}/{name}.err", stderr)
        self.write_text(f"{d}/{name}.rc", f"{ended}\n")
        self.write_json(f"{d}/{name}.json", {"schema_version": SCHEMA_VERSION, **meta})

    def write_result(self, group: str, key: str, result: Result) -> None:
        """A launcher's result for ``key`` (a node, or a pair ``a+b``), kept as it came."""
        self.write_raw(group, key, stdout=result.stdout, stderr=result.stderr,
                       ended=str(result.returncode) if result.ran else result.status,
                       meta={"status": result.status, "returncode": result.returncode,
                             "detail": result.detail, "seconds": round(result.duration_s, 3),
                             "argv": scrub_argv(result.argv)})

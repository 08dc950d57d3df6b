"""Finding and reading measurement files: a JSONL file, or a run directory holding one."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from provision.errors import InputError
from provision.measurement import BadLine, read_dicts

RUN_FILE = "measurements.jsonl"


def resolve(path: Path) -> Path:
    """A measurements file: ``path`` itself, or ``path/measurements.jsonl`` for a run directory."""
    p = Path(path)
    if p.is_dir():
        inner = p / RUN_FILE
        if not inner.is_file():
            raise InputError(f"{p}: a run directory must hold {RUN_FILE}",
                             hint="pass the measurements file itself, or a run directory")
        return inner
    if not p.exists():
        raise InputError(f"{p}: no such file or directory")
    return p


def load(paths: Sequence[Path], *, strict: bool) -> tuple[list[dict[str, Any]], list[BadLine],
                                                           list[str]]:
    """Records of every input, the bad lines skipped, and the files read."""
    records: list[dict[str, Any]] = []
    bad: list[BadLine] = []
    files: list[str] = []
    for p in paths:
        f = resolve(p)
        files.append(str(f))
        records.extend(read_dicts(f, strict=strict, bad=bad))
    return records, bad, files

"""Finding and reading measurement files: a file, or a run directory holding one.

A run directory keeps its measurements in one file, ``measurements.jsonl`` by default or
``measurements.parquet`` / ``measurements.arrow`` when the run was asked for a columnar
table (``forge check --table parquet``); :func:`resolve` finds whichever is there.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from provision.errors import InputError
from provision.measurement import TABLE_FORMATS, BadLine, read_dicts, run_file

RUN_FILE = run_file("jsonl")


def resolve(path: Path) -> Path:
    """A measurements file: ``path`` itself, or the measurements file of a run directory."""
    p = Path(path)
    if p.is_dir():
        inner = [p / run_file(f) for f in TABLE_FORMATS if (p / run_file(f)).is_file()]
        if not inner:
            raise InputError(f"{p}: a run directory must hold {RUN_FILE} (or "
                             f"{run_file('parquet')}, {run_file('arrow')})",
                             hint="pass the measurements file itself, or a run directory")
        if len(inner) > 1:
            raise InputError(f"{p}: holds {' and '.join(i.name for i in inner)}",
                             hint="pass the measurements file to read")
        return inner[0]
    if not p.exists():
        raise InputError(f"{p}: no such file or directory")
    return p


def read_records(path: Path, *, strict: bool,
                 bad: list[BadLine] | None = None) -> list[dict[str, Any]]:
    """The valid records of one measurements file (JSONL, Parquet or Arrow) as dicts."""
    from provision.analyze.table import is_columnar, read_rows

    if is_columnar(path):
        return read_rows(path, strict=strict, bad=bad)
    return read_dicts(path, strict=strict, bad=bad)


def load(paths: Sequence[Path], *, strict: bool) -> tuple[list[dict[str, Any]], list[BadLine],
                                                           list[str]]:
    """Records of every input, the bad lines skipped, and the files read."""
    records: list[dict[str, Any]] = []
    bad: list[BadLine] = []
    files: list[str] = []
    for p in paths:
        f = resolve(p)
        files.append(str(f))
        records.extend(read_records(f, strict=strict, bad=bad))
    return records, bad, files

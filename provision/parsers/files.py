"""Tool output files read for ``forge ingest``: one file, or 10,000s of job logs on every CPU.

A directory of per-job logs is the common case (one Slurm job, one nccl-tests log):
read one by one, 18,672 such logs (50 MB) keep one CPU busy for seconds. When the
files are many and large together, they are cut into one run of consecutive files per
CPU (:mod:`provision.forked`), and the results come back in file order. What the
user sees is the same either way: each file's parts in order, and the error of the
first file (in order) that does not read, after the files before it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from functools import partial

from provision.errors import InputError, named_number_error
from provision.forked import PARALLEL_BYTES, map_forked, workers
from provision.parsers import Part, ingest_parts

STDIN = "-"


def read_input(path: str) -> tuple[str, str]:
    """(text, display name) of a file, or of stdin for ``-``; undecodable input is refused."""
    if path == STDIN:
        data, name = sys.stdin.buffer.read(), "<stdin>"
    else:
        try:
            with open(path, "rb") as fh:  # no Path per file: 10,000s of them
                data, name = fh.read(), path
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return data.decode("utf-8"), name
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(f"{name}:{line}: not UTF-8 text (byte {exc.start}); "
                         "is this tool output?") from None


def ingest_files(tool: str, paths: Sequence[str], *, node: str | None = None,
                 check: str | None = None) -> Iterator[tuple[str, list[Part]]]:
    """(display name, parts) of each file in order, as :func:`ingest_parts` gives them;
    the first file that does not read raises its error after the files before it."""
    runs = _runs_of_files(paths)
    got = map_forked(partial(_read_files, tool, node, check), [(r,) for r in runs]) \
        if len(runs) > 1 else None
    for item in (x for r in got for x in r) if got is not None else _each_file(
            tool, node, check, paths):
        if isinstance(item, Exception):
            raise item
        yield item


def _each_file(tool: str, node: str | None, check: str | None, paths: Sequence[str]
               ) -> Iterator[tuple[str, list[Part]] | Exception]:
    """Each file's parts in order, up to and with what the first that does not read raised
    (a value, so that a forked process hands it back in its place)."""
    for path in paths:
        try:
            text, name = read_input(path)
            yield name, ingest_parts(tool, text, node=node, source_name=name, check=check)
        except Exception as exc:  # raised by the caller, in file order
            yield named_number_error(exc, "<stdin>" if path == STDIN else path) or exc
            return


def _read_files(tool: str, node: str | None, check: str | None, paths: Sequence[str]
                ) -> list[tuple[str, list[Part]] | Exception]:
    return list(_each_file(tool, node, check, paths))


def _runs_of_files(paths: Sequence[str]) -> list[Sequence[str]]:
    """The files cut into one run of consecutive files per process, of about equal bytes;
    one run when they are few, small together or stdin is among them, and when one file
    holds more than a run's share (read alone, a log over 8 MB is cut into pieces on every
    CPU instead: :mod:`provision.parsers.nccl_bulk`)."""
    n = workers()
    if n < 2 or len(paths) < 2 or STDIN in paths:
        return [paths]
    sizes = []
    for p in paths:
        try:
            sizes.append(os.stat(p).st_size)
        except OSError:
            sizes.append(0)  # its reading names the problem, in order
    total = sum(sizes)
    if total < PARALLEL_BYTES or max(sizes) * n >= total:
        return [paths]  # small, or one file would be most of a run: it is cut in pieces
    runs: list[Sequence[str]] = []
    start = done = 0
    for i, size in enumerate(sizes):
        done += size
        if done >= total * (len(runs) + 1) / n and len(runs) < n - 1 and i + 1 < len(paths):
            runs.append(paths[start:i + 1])
            start = i + 1
    runs.append(paths[start:])
    return runs


__all__ = ["ingest_files", "read_input"]

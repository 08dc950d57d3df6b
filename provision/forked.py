"""Work cut into pieces and done by forked processes: every CPU for one large input.

The work function, with what the pieces share bound to it (``functools.partial``),
reaches the processes by fork: only each piece's arguments and its result are pickled.
The calling process does the first piece itself, and the results come back in the
pieces' order. A process that runs a piece, or the caller while it runs the first one,
forks no further: pieces never nest.

Where processes cannot be forked, a process cannot start or one dies (killed when out of
memory), :func:`map_forked` answers None and the caller does the work in one process.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_all_start_methods, get_context
from typing import Any, TypeVar

T = TypeVar("T")

#: processes that share one input at most: past 4 the joining costs more than it saves
MAX_WORKERS = 4

_WORK: Callable[..., Any] | None = None  # what the forked processes call (set before fork)
_IN_PIECE = False  # this process is doing a piece: it forks no further


def workers() -> int:
    """How many processes may share a large input: the CPUs this process may run on, at
    most :data:`MAX_WORKERS`; 1 where processes cannot be forked or within a piece."""
    if _IN_PIECE or "fork" not in get_all_start_methods():
        return 1
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(
        os.cpu_count() or 1)
    return max(1, min(MAX_WORKERS, len(cpus)))


def _piece(work: Callable[..., T], args: tuple[Any, ...]) -> T:
    global _IN_PIECE
    was, _IN_PIECE = _IN_PIECE, True
    try:
        return work(*args)
    finally:
        _IN_PIECE = was


def _forked_piece(args: tuple[Any, ...]) -> Any:
    assert _WORK is not None
    return _piece(_WORK, args)


def map_forked(work: Callable[..., T], pieces: Sequence[tuple[Any, ...]]) -> list[T] | None:
    """``work(*piece)`` of each piece, in order: the first by this process, the others by
    forked ones. None when a process could not be forked or died."""
    global _WORK
    if len(pieces) < 2:
        return [_piece(work, p) for p in pieces]
    _WORK = work
    try:
        with ProcessPoolExecutor(len(pieces) - 1, mp_context=get_context("fork")) as pool:
            rest = [pool.submit(_forked_piece, p) for p in pieces[1:]]
            first = _piece(work, pieces[0])
            return [first, *(f.result() for f in rest)]
    except (OSError, BrokenProcessPool):  # no process to fork, or one killed
        return None
    finally:
        _WORK = None


__all__ = ["MAX_WORKERS", "map_forked", "workers"]

"""Work cut into pieces and done by forked processes: every CPU for one large input.

The work function, with what the pieces share bound to it (``functools.partial``),
reaches the processes by fork: only each piece's arguments and its result are pickled.
The calling process does the first piece itself, and the results come back in the
pieces' order. Where Linux has ``memfd_create``, a forked piece writes its pickled result
into an anonymous in-memory file made for it before the fork, and only its size goes
through the pool's pipe: 25 MB of JSON lines came back in 0.13 s instead of 0.16-0.20 s
through the pipe, whose reader thread also competes with the caller's own piece for the
GIL. Large buffers in a result (pickle protocol 5's out-of-band buffers: a
:class:`~provision.parsers.lines.JsonLines` gives its text as one) follow the pickle in
that file as they are, and come back as views of the file mapped into this process, not
copied: the caller writes them out from there. Nothing is written to any file system. A
process that runs a piece, or the caller while it runs the first one, forks no further:
pieces never nest.

Where processes cannot be forked, a process cannot start or one dies (killed when out of
memory), :func:`map_forked` answers None and the caller does the work in one process.
What a piece raises is raised. The forked processes die with the caller: on Ctrl-C or
SIGTERM they are killed at once (the caller leaves with its own exit code, not after
the pieces end), and on Linux the kernel kills them if the caller is killed outright.
One thread at a time: the work function reaches the processes through module state.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import sys
from collections.abc import Callable, Sequence
from multiprocessing import get_all_start_methods
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from concurrent.futures import Future

T = TypeVar("T")

#: processes that share one input at most: past 4 the joining costs more than it saves
MAX_WORKERS = 4
#: an input smaller than this (bytes or characters) is read by one process: forking and
#: copying the results back cost more than they save
PARALLEL_BYTES = 8_000_000
#: how much longer a forked piece takes than the same piece done by the caller: it starts
#: after the fork and hands its result back (0.015 s and 0.04 s for a 0.65 s piece of a
#: 50 MB nccl-tests log here, against the caller's 0.025 s to pack its own)
FORKED_LAG = 0.05
_PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent dies

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


def first_share(n: int) -> float:
    """The caller's share of an input cut into ``n`` pieces, the rest shared equally, such
    that the pieces end together: each forked one takes :data:`FORKED_LAG` longer."""
    return (1 + FORKED_LAG) / (n + FORKED_LAG) if n > 1 else 1.0


def _piece(work: Callable[..., T], args: tuple[Any, ...]) -> T:
    global _IN_PIECE
    was, _IN_PIECE = _IN_PIECE, True
    try:
        return work(*args)
    finally:
        _IN_PIECE = was


class _InFile(tuple[int, ...]):
    """A forked piece's result in its in-memory file: the sizes of its pickle and of the
    out-of-band buffers that follow it, in order."""


def _forked_piece(args: tuple[Any, ...], fd: int | None = None) -> Any:
    assert _WORK is not None
    result = _piece(_WORK, args)
    if fd is None:
        return result
    buffers: list[pickle.PickleBuffer] = []
    data = pickle.dumps(result, protocol=5, buffer_callback=buffers.append)
    sizes = [len(data)]
    at = _write_at(fd, memoryview(data), 0)
    for buf in buffers:
        with buf.raw() as raw:
            sizes.append(raw.nbytes)
            at = _write_at(fd, raw, at)
    return _InFile(sizes)


def _write_at(fd: int, data: memoryview, at: int) -> int:
    """Write ``data`` at offset ``at`` of ``fd``; where it ends."""
    done = 0
    while done < len(data):
        done += os.pwrite(fd, data[done:], at + done)
    return at + done


def _result_files(n: int) -> list[int | None]:
    """One anonymous in-memory file per forked piece, or None each where there are none."""
    make = getattr(os, "memfd_create", None)
    if make is None:
        return [None] * n
    fds: list[int | None] = []
    try:
        for _ in range(n):
            fds.append(make("forge-piece", getattr(os, "MFD_CLOEXEC", 0)))
    except OSError:  # out of file descriptors: the pipe carries the results
        _close(fds)
        return [None] * n
    return fds


def _taken(got: Any, fd: int | None) -> Any:
    """A forked piece's result, read back from its in-memory file when it went there (its
    out-of-band buffers as read-only views of the file mapped here)."""
    if fd is None or not isinstance(got, _InFile):
        return got
    total = sum(got)
    if os.fstat(fd).st_size < total:
        raise OSError(f"forked piece result cut short: {os.fstat(fd).st_size} of {total} bytes")
    import mmap

    view = memoryview(mmap.mmap(fd, total, prot=mmap.PROT_READ)).toreadonly()
    parts, at = [], 0
    for size in got:
        parts.append(view[at:at + size])
        at += size
    return pickle.loads(parts[0], buffers=parts[1:])


def _close(fds: Sequence[int | None]) -> None:
    for fd in fds:
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


def _in_forked_process() -> None:
    """A forked process: Ctrl-C and SIGTERM end it quietly (the caller reports them), and
    it dies with the caller (Linux)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.platform == "linux":
        import ctypes

        with contextlib.suppress(OSError, AttributeError):  # a libc without prctl
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def map_forked(work: Callable[..., T], pieces: Sequence[tuple[Any, ...]]) -> list[T] | None:
    """``work(*piece)`` of each piece, in order: the first by this process, the others by
    forked ones. None when a process could not be forked or died."""
    global _WORK
    if len(pieces) < 2:
        return [_piece(work, p) for p in pieces]
    # not at import time: the pool's modules are 0.02 s of every start of the parsers' users
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool
    from multiprocessing import active_children, get_context

    _WORK = work
    before = set(active_children())
    fds = _result_files(len(pieces) - 1)
    try:
        pool = ProcessPoolExecutor(len(pieces) - 1, mp_context=get_context("fork"),
                                   initializer=_in_forked_process)
        rest: list[Future[T]] = [pool.submit(_forked_piece, p, fd)
                                 for p, fd in zip(pieces[1:], fds, strict=True)]
    except OSError:  # no process to fork
        _WORK = None
        _close(fds)
        return None
    try:
        first = _piece(work, pieces[0])
        got = [first, *(_taken(f.result(), fd) for f, fd in zip(rest, fds, strict=True))]
    except BrokenProcessPool:  # one was killed (out of memory, a signal)
        pool.shutdown(wait=True, cancel_futures=True)
        return None
    except BaseException:  # a piece raised, Ctrl-C, SIGTERM: the others are not waited for
        pool.shutdown(wait=False, cancel_futures=True)  # it starts no process from here on
        for child in set(active_children()) - before:
            child.kill()  # reaped by the pool's thread or here, whichever comes first
        raise
    finally:
        _WORK = None
        _close(fds)
    pool.shutdown(wait=True)
    return got


__all__ = ["FORKED_LAG", "MAX_WORKERS", "PARALLEL_BYTES", "first_share", "map_forked", "workers"]

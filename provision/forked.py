"""Work cut into pieces and done by forked processes: every CPU for one large input.

The work function, with what the pieces share bound to it (``functools.partial``), reaches
the processes by ``fork``: nothing but each piece's result is copied. The calling process
does the first piece itself, and the results come back in the pieces' order. Each forked
piece writes its pickled result into an anonymous in-memory file (Linux ``memfd_create``)
made for it before the fork; the large buffers in a result (pickle protocol 5's
out-of-band buffers: a :class:`~provision.parsers.lines.JsonLines` gives its text as one)
follow the pickle there as they are and come back as read-only views of that file mapped
into this process, not copied: the caller writes them out from there. Nothing is written
to any file system.

The processes are forked directly, not through :mod:`concurrent.futures`: its pool cost a
50 MB ingest 0.03 s before the first forked piece started (its modules' import, its
threads), more than the piece gained by its fork. A process that runs a piece, or the
caller while it runs the first one, forks no further: pieces never nest.

Where processes cannot be forked or Linux's in-memory files are missing, a process cannot
start or one dies (killed when out of memory), :func:`map_forked` answers None and the
caller does the work in one process. What a piece raises is raised. The forked processes
die with the caller: on Ctrl-C or SIGTERM (or when the caller's own piece raises) they are
killed at once, not waited for, and on Linux the kernel kills them if the caller is
killed outright. A mapped result holds a file descriptor while it lives; where they run
out, the result is read into memory instead. One thread at a time: the pieces and the
processes left to reap are module state.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import struct
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TypeVar

T = TypeVar("T")

#: processes that share one input at most: past 4 the joining costs more than it saves
MAX_WORKERS = 4
#: an input smaller than this (bytes or characters) is read by one process: forking and
#: copying the results back cost more than they save
PARALLEL_BYTES = 8_000_000
#: how much longer a forked piece takes than the same piece done by the caller: it starts
#: after the fork and hands its result back (0.005 s and 0.05 s for a 0.65 s piece of a
#: 50 MB nccl-tests log here, against the caller's 0.025 s to pack its own)
FORKED_LAG = 0.1
_PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent dies
_FAILED = 70  # a forked piece's exit code when it could not hand its result back
_HEADER = struct.Struct("<I")  # how many parts (the pickle, then its buffers) follow
_WHOLE = b"\x01"  # what a forked piece writes on its pipe once its result is whole

_EXITING: list[int] = []  # forked pieces that handed their results back, reaped later
_STOPPING = {signal.SIGINT, signal.SIGTERM}

_IN_PIECE = False  # this process is doing a piece: it forks no further


def workers() -> int:
    """How many processes may share a large input: the CPUs this process may run on, at
    most :data:`MAX_WORKERS`; 1 where processes cannot be forked or within a piece."""
    if _IN_PIECE or not hasattr(os, "fork") or not hasattr(os, "memfd_create"):
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


def map_forked(work: Callable[..., T], pieces: Sequence[tuple[Any, ...]]) -> list[T] | None:
    """``work(*piece)`` of each piece, in order: the first by this process, the others by
    forked ones. None when a process could not be forked or died."""
    if len(pieces) < 2:
        return [_piece(work, p) for p in pieces]
    _reap(_EXITING, wait=False)
    fds = _result_files(len(pieces) - 1)
    if fds is None:
        return None
    running: list[int] = []  # forked and not yet reaped
    done: list[int] = []  # each forked piece's pipe: one byte once its result is whole
    parent = os.getpid()
    try:
        try:
            for args, fd in zip(pieces[1:], fds, strict=True):
                read, write = os.pipe()
                done.append(read)
                # Ctrl-C and SIGTERM wait until the new process is on the list of those to kill
                mask = signal.pthread_sigmask(signal.SIG_BLOCK, _STOPPING)
                try:
                    pid = os.fork()
                    if pid == 0:
                        _run_forked(work, args, fd, write, parent, mask)
                    running.append(pid)
                finally:
                    os.close(write)  # the forked piece holds the only write end: EOF if it dies
                    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        except OSError:  # no process to fork, no pipe
            return None
        got = [_piece(work, pieces[0])]
        for fd, read in zip(fds, done, strict=True):
            if os.read(read, 1) != _WHOLE:  # it died (out of memory, a signal)
                return None
            ok, value = _taken(fd)
            if not ok:
                raise value  # what the piece raised
            got.append(value)
        _EXITING.extend(running)  # reaped later: their exit (freeing their memory) takes a while
        running.clear()
        return got
    finally:  # the caller's piece raised, Ctrl-C, SIGTERM, one died: the others are killed
        _reap(running, kill=True)
        _close(done)
        _close(fds)


def _run_forked(work: Callable[..., Any], args: tuple[Any, ...], fd: int, done: int,
                parent: int, mask: set[int | signal.Signals]) -> NoReturn:
    """The forked process: do the piece, put its result (or what it raised) into ``fd``, say
    so on ``done``, and leave without running anything of the caller's (its exit handlers,
    its buffers)."""
    code = _FAILED
    try:
        _in_forked_process(parent, mask)
        try:
            outcome: tuple[bool, Any] = (True, _piece(work, args))
        except Exception as exc:  # raised in the caller
            outcome = (False, exc)
        _put(fd, outcome)
        os.write(done, _WHOLE)
        code = 0
    finally:
        os._exit(code)


def _in_forked_process(parent: int, mask: set[int | signal.Signals]) -> None:
    """A forked process: Ctrl-C and SIGTERM end it quietly (the caller reports them), and
    it dies with the caller (Linux; and at once where the caller died before that held)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    if sys.platform == "linux":
        import ctypes

        with contextlib.suppress(OSError, AttributeError):  # a libc without prctl
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(_FAILED)


def _put(fd: int, outcome: tuple[bool, Any]) -> None:
    """Write ``outcome`` into ``fd``: how many parts, each part's size, the pickle, then
    each out-of-band buffer as it is."""
    buffers: list[pickle.PickleBuffer] = []
    data = pickle.dumps(outcome, protocol=5, buffer_callback=buffers.append)
    raws = [b.raw() for b in buffers]
    parts = [memoryview(data), *raws]
    head = _HEADER.pack(len(parts)) + struct.pack(f"<{len(parts)}Q", *(p.nbytes for p in parts))
    at = _write_at(fd, memoryview(head), 0)
    for part in parts:
        at = _write_at(fd, part, at)


def _write_at(fd: int, data: memoryview, at: int) -> int:
    """Write ``data`` at offset ``at`` of ``fd``; where it ends."""
    done = 0
    while done < len(data):
        done += os.pwrite(fd, data[done:], at + done)
    return at + done


def _taken(fd: int) -> tuple[bool, Any]:
    """What a forked piece put into ``fd``: its out-of-band buffers are read-only views of
    the file mapped here."""
    import mmap

    size = os.fstat(fd).st_size
    if size < _HEADER.size:
        raise OSError("a forked piece left no result")
    try:
        view = memoryview(mmap.mmap(fd, size, prot=mmap.PROT_READ)).toreadonly()
    except OSError:  # out of file descriptors (a mapping holds one while its lines live)
        view = memoryview(_read_all(fd, size))
    (n,) = _HEADER.unpack_from(view)
    sizes = struct.unpack_from(f"<{n}Q", view, _HEADER.size)
    at = _HEADER.size + 8 * n
    if at + sum(sizes) > size:
        raise OSError(f"a forked piece's result is cut short: {size} of {at + sum(sizes)} bytes")
    parts = []
    for part in sizes:
        parts.append(view[at:at + part])
        at += part
    outcome: tuple[bool, Any] = pickle.loads(parts[0], buffers=parts[1:])
    return outcome


def _read_all(fd: int, size: int) -> bytes:
    chunks, at = [], 0
    while at < size:
        chunk = os.pread(fd, size - at, at)
        if not chunk:
            raise OSError(f"a forked piece's result is cut short at {at} of {size} bytes")
        chunks.append(chunk)
        at += len(chunk)
    return b"".join(chunks)


def _result_files(n: int) -> list[int] | None:
    """One anonymous in-memory file per forked piece; None where there are none."""
    make = getattr(os, "memfd_create", None)
    if make is None:
        return None
    fds: list[int] = []
    try:
        for _ in range(n):
            fds.append(make("forge-piece", getattr(os, "MFD_CLOEXEC", 0)))
    except OSError:  # out of file descriptors
        _close(fds)
        return None
    return fds


def _reap(pids: list[int], *, kill: bool = False, wait: bool = True) -> None:
    """Reap the forked processes in ``pids`` (killed first with ``kill``; without ``wait``
    only those that have exited), and forget them."""
    if kill:
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    for pid in list(pids):
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, 0 if wait else os.WNOHANG)[0] == 0:
                continue  # still exiting
        pids.remove(pid)


def _close(fds: Sequence[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


__all__ = ["FORKED_LAG", "MAX_WORKERS", "PARALLEL_BYTES", "first_share", "map_forked", "workers"]

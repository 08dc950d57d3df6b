"""Reading inputs and writing outputs safely.

Writes are atomic (temp file + rename) and never replace what is not a plain
file: a symbolic link is written through (the link stays, its target gets the
new content atomically), a character device or named pipe (``-o /dev/stdout``,
``/dev/null``) is written into, and anything else (a directory, a block device,
a socket) is refused. Reads refuse what is not a regular file (a FIFO would
block, ``/dev/zero`` never ends) and stop at a size limit.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from provision.errors import InputError


def sha256_bytes(data: bytes) -> str:
    import hashlib  # not at start-up: `forge validate` hashes nothing

    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISFIFO, "a named pipe"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def read_input_bytes(path: str | Path, max_bytes: int, what: str) -> bytes:
    """The bytes of ``path`` (``-``: standard input), refusing special files and oversize input."""
    if str(path) == "-":
        data = sys.stdin.buffer.read(max_bytes + 1)
    else:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            raise InputError(f"{path}: no such file") from None
        except IsADirectoryError:
            raise InputError(f"{path}: is a directory, expected a {what} file") from None
        except OSError as exc:
            raise InputError(f"{path}: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as f:
            mode = os.fstat(fd).st_mode
            if not stat.S_ISREG(mode):
                raise InputError(f"{path}: is {_kind(mode)}, expected a {what} file",
                                 hint="use - to read standard input")
            data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise InputError(f"{path}: larger than {max_bytes // 2**20} MiB; not a {what}")
    return data


def read_input_text(path: str | Path, max_bytes: int, what: str) -> str:
    data = read_input_bytes(path, max_bytes, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start})") from None


def _write_target(path: Path) -> tuple[Path, bool]:
    """(where to write, whether to write straight into it instead of replacing it)."""
    try:
        real = Path(os.path.realpath(path))
        mode = os.stat(real).st_mode
    except FileNotFoundError:
        return real, False
    if stat.S_ISREG(mode):
        return real, False
    if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode):
        return real, True
    raise InputError(f"{path}: is {_kind(mode)}; forge writes regular files only")


@contextlib.contextmanager
def atomic_open(path: Path, mode: int = 0o644, *, binary: bool = False,
                fsync: bool = True) -> Iterator[IO]:
    """Write to a temporary file beside ``path`` and rename it into place on success.

    The file gets ``mode`` before any byte is written, so a 0600 secret is
    never readable by others, not even for an instant. Bulk writers (an
    inventory of thousands of files) pass ``fsync=False`` and call
    :func:`fsync_all` once at the end: the rename keeps each file whole either way.
    """
    target, stream = _write_target(Path(path))
    try:
        if stream:
            with open(target, "wb" if binary else "w",
                      encoding=None if binary else "utf-8") as f:
                yield f
            return
        with _replacing(target, mode, binary=binary, fsync=fsync) as f:
            yield f
    except OSError as exc:
        if exc.filename is not None:
            raise
        raise InputError(f"{path}: {exc.strerror or exc}") from None  # a write: ENOSPC, EIO


@contextlib.contextmanager
def _replacing(target: Path, mode: int, *, binary: bool, fsync: bool) -> Iterator[IO]:
    import tempfile  # not at import time: `forge validate` never writes

    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb" if binary else "w", encoding=None if binary else "utf-8") as f:
            yield f
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str, mode: int = 0o644, *, fsync: bool = True) -> None:
    with atomic_open(path, mode, fsync=fsync) as f:
        f.write(text)


def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o644) -> None:
    with atomic_open(path, mode, binary=True) as f:
        f.write(data)


def start_writeback(fd: int) -> None:
    """Let the kernel start writing a new file's data now, without waiting for it.

    A later :func:`fsync_all` over thousands of files then mostly waits for I/O already
    under way instead of starting one write and one journal commit per file.
    """
    advise = getattr(os, "posix_fadvise", None)
    if advise is not None:
        with contextlib.suppress(OSError):
            advise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # Linux: starts writeback of dirty pages


def fsync_all(paths: Iterable[Path | str], dirs: Iterable[Path | str] = ()) -> None:
    """Flush exactly these files, then these directories (their entries), to disk.

    Unlike :func:`os.sync`, nothing else on the machine is flushed. Thousands of files
    are flushed from a few threads at once: each ``fsync`` waits for a journal commit,
    and waits that overlap share one.
    """
    files = list(paths)
    if len(files) < _FSYNC_ALONE:
        for p in files:
            _fsync(p, os.O_RDONLY)
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=_FSYNC_THREADS) as pool:
            for _ in pool.map(_fsync, files, [os.O_RDONLY] * len(files), chunksize=64):
                pass  # re-raises the first error
    for d in dirs:
        _fsync(d, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))


_FSYNC_ALONE = 256  # fewer files than this: one after the other
_FSYNC_THREADS = 8


def _fsync(path: Path | str, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

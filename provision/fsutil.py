"""Atomic, mode-aware file writes: nothing a user has is half-written or silently replaced."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@contextlib.contextmanager
def atomic_open(path: Path, mode: int = 0o644, *, binary: bool = False,
                fsync: bool = True) -> Iterator[IO]:
    """Write to a temporary file beside ``path`` and rename it into place on success.

    The file gets ``mode`` before any byte is written, so a 0600 secret is
    never readable by others, not even for an instant. Bulk writers (an
    inventory of thousands of files) pass ``fsync=False`` and call
    :func:`fsync_all` once at the end: the rename keeps each file whole either way.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb" if binary else "w", encoding=None if binary else "utf-8") as f:
            yield f
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
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


def fsync_all(paths: Iterable[Path], dirs: Iterable[Path] = ()) -> None:
    """Flush exactly these files, then these directories (their entries), to disk.

    Unlike :func:`os.sync`, nothing else on the machine is flushed.
    """
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    for d in dirs:
        fd = os.open(d, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

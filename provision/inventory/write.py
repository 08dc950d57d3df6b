"""Write rendered files without destroying a user's edits, all or nothing.

forge records the sha256 of every file it writes in ``.forge-manifest.json``.
On the next render a file is replaced only if it is still exactly what forge
wrote; a file forge did not write, or one changed since, is kept and
reported, unless ``force``.

Every render is all or nothing: the new tree is built in a hidden sibling
directory (a re-render starts from hard links of the current tree, so kept
and unknown files come along) and swapped in with one atomic exchange of the
two directories. An interrupted or failed render (full disk, SIGINT, SIGTERM)
leaves the old inventory whole and no staging directory behind. Every path
written or deleted, manifest entries included, is proven to lie inside the
output directory first.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import json
import os
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from provision.errors import InputError
from provision.fsutil import fsync_all, sha256_bytes, sha256_file
from provision.inventory.render import render_files
from provision.spec.model import Site

MANIFEST = ".forge-manifest.json"
RENAME_EXCHANGE = 2  # linux/fs.h
_PLAIN_RELATIVE = re.compile(r"(?:[A-Za-z0-9_-][A-Za-z0-9._-]*/)*[A-Za-z0-9_-][A-Za-z0-9._-]*")
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


@dataclass
class WriteReport:
    out_dir: Path
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)       # user's edits preserved
    removed: list[str] = field(default_factory=list)
    overwritten: list[str] = field(default_factory=list)  # user's edits replaced (--force)

    def to_dict(self) -> dict[str, object]:
        return {"out_dir": str(self.out_dir), "written": self.written,
                "unchanged": self.unchanged, "kept": self.kept, "removed": self.removed,
                "overwritten": self.overwritten}


def safe_relative(rel: str) -> bool:
    """True when ``rel`` names a path strictly inside a directory (no '..', no absolute path)."""
    if _PLAIN_RELATIVE.fullmatch(rel):  # the usual name: no part starts with a dot
        return True
    p = PurePosixPath(rel)
    return (bool(rel) and "\\" not in rel and "\0" not in rel and not p.is_absolute()
            and all(part not in ("", ".", "..") for part in p.parts) and len(p.parts) > 0)


def _load_manifest(out: Path) -> dict[str, str]:
    """The manifest's entries that lie inside ``out`` (others are never acted on)."""
    path = out / MANIFEST
    if path.is_dir() or path.is_symlink():
        raise InputError(f"{path}: not forge's manifest (a directory or a link)",
                         hint="move it away, then render again")
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (FileNotFoundError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    files = data.get("files", {}) if isinstance(data, dict) else {}
    if not isinstance(files, dict):
        return {}
    return {str(k): str(v) for k, v in files.items() if safe_relative(str(k))}


def _regular_or_absent(path: Path, rel: str) -> bool:
    """True when ``path`` is a regular file, False when absent; refuse anything else."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return False
    if stat.S_ISREG(mode):
        return True
    raise InputError(f"{path}: is not a regular file where forge writes {rel}",
                     hint="move it away, then render again")


def _libc_rename_exchange(a: Path, b: Path) -> bool:
    """Atomically swap two directories (Linux renameat2); False where unsupported."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    fn = getattr(libc, "renameat2", None)
    if fn is None:
        return False
    at_fdcwd = -100
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(a), None, str(b))


def _link_tree(src: Path, dst: Path) -> None:
    """Mirror ``src`` into ``dst`` with hard links (copies where links are not possible)."""
    for root, dirs, files in os.walk(src):
        rel = Path(root).relative_to(src)
        for d in dirs:
            target = dst / rel / d
            target.mkdir()
            shutil.copymode(Path(root) / d, target)
        for f in files:
            source = Path(root) / f
            if source.is_symlink():
                os.symlink(os.readlink(source), dst / rel / f)
                continue
            try:
                os.link(source, dst / rel / f)
            except OSError:
                shutil.copy2(source, dst / rel / f)


def _stage(out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists() and not os.access(out, os.W_OK | os.X_OK):
        raise InputError(f"{out}: directory is not writable")
    return Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))


class _Writer:
    """New files in the staging tree: plain system calls, each directory made once."""

    def __init__(self, stage: Path) -> None:
        self.stage = str(stage)
        self.made: set[str] = set()
        self.written: list[str] = []

    def write(self, rel: str, data: bytes) -> None:
        path = os.path.join(self.stage, rel)
        parent = os.path.dirname(path)
        if parent not in self.made:
            os.makedirs(parent, exist_ok=True)
            self.made.add(parent)
        try:
            fd = os.open(path, _CREATE, 0o666)
        except FileExistsError:  # a hard link to the old tree's file: never write through it
            os.unlink(path)
            fd = os.open(path, _CREATE, 0o666)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        self.written.append(path)


def _swap_in(stage: Path, out: Path, mode: int, written: list[str]) -> None:
    """Make ``stage`` the new ``out`` in one step; the old tree goes away after.

    Only the files written here and their directories are flushed first (hard links
    into the old tree are on disk already), never every file system of the machine.
    """
    os.chmod(stage, mode)
    fsync_all(written, sorted({os.path.dirname(p) for p in written} | {str(stage)},
                              reverse=True))
    if not out.exists() or not any(out.iterdir()):
        if out.exists():
            out.rmdir()
        os.rename(stage, out)
    elif _libc_rename_exchange(stage, out):
        shutil.rmtree(stage, ignore_errors=True)  # now the old tree
    else:
        old = stage.with_name(stage.name + ".old")
        os.rename(out, old)
        os.rename(stage, out)
        shutil.rmtree(old, ignore_errors=True)
    fsync_all((), [out.parent])  # the rename itself


def write_files(out: Path, files: dict[str, str], *, force: bool = False) -> WriteReport:
    for rel in files:
        if not safe_relative(rel) or rel == MANIFEST:
            raise InputError(f"refusing to write {rel!r}: not a path inside {out}")
    given, out = Path(out), Path(os.path.realpath(out))  # OUT may link to the real directory
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a directory")
    existing = out.exists() and any(out.iterdir())
    manifest = _load_manifest(out) if existing else {}
    report = WriteReport(given)
    new_manifest: dict[str, str] = {}
    changes: dict[str, bytes | None] = {}   # rel -> new content, or None to delete
    for rel in sorted(files):
        data = files[rel].encode()
        digest = sha256_bytes(data)
        if existing and _regular_or_absent(path := out / rel, rel):
            current = sha256_file(path)
            if current == digest:
                report.unchanged.append(rel)
                new_manifest[rel] = digest
                continue
            ours = manifest.get(rel) == current
            if not ours and not force:
                report.kept.append(rel)
                if rel in manifest:
                    new_manifest[rel] = manifest[rel]
                continue
            (report.written if ours else report.overwritten).append(rel)
        else:
            report.written.append(rel)
        changes[rel] = data
        new_manifest[rel] = digest
    for rel, digest in sorted(manifest.items()):
        if rel in files or not _regular_or_absent(out / rel, rel):
            continue
        if sha256_file(out / rel) == digest or force:
            changes[rel] = None
            report.removed.append(rel)
        else:
            report.kept.append(rel)
            new_manifest[rel] = digest
    manifest_text = json.dumps({"schema_version": 1, "files": new_manifest}, indent=1,
                               sort_keys=True) + "\n"
    if existing and not changes and manifest == new_manifest \
            and (out / MANIFEST).is_file() and (out / MANIFEST).read_text() == manifest_text:
        return report  # nothing to do: not even the manifest is rewritten
    mode = stat.S_IMODE(out.stat().st_mode) if out.exists() else 0o755
    stage = _stage(out)
    try:
        if existing:
            _link_tree(out, stage)
        writer = _Writer(stage)
        for rel, content in sorted(changes.items()):
            if content is None:
                (stage / rel).unlink()
                _prune_empty((stage / rel).parent, stage)
            else:
                writer.write(rel, content)
        writer.write(MANIFEST, manifest_text.encode())
        _swap_in(stage, out, mode, writer.written)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return report


def _prune_empty(directory: Path, stop: Path) -> None:
    while directory != stop and directory.is_dir() and not any(directory.iterdir()):
        os.rmdir(directory)
        directory = directory.parent


def render_inventory(site: Site, out_dir: Path, *, spec_text: str | None = None,
                     force: bool = False) -> WriteReport:
    """Render ``site`` into ``out_dir`` (the API the deploy driver and the lab use)."""
    return write_files(Path(out_dir), render_files(site, spec_text), force=force)

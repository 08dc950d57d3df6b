"""Write rendered files without destroying a user's edits.

forge records the sha256 of every file it writes in ``.forge-manifest.json``.
On the next render a file is replaced only if it is still exactly what forge
wrote; a file forge did not write, or one changed since, is kept and
reported, unless ``force``. Every write is atomic (temp file + rename).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from provision.fsutil import (
    atomic_write_text,
    fsync_all,
    sha256_bytes,
    sha256_file,
    start_writeback,
)
from provision.inventory.render import render_files
from provision.spec.model import Site

MANIFEST = ".forge-manifest.json"


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


def _load_manifest(out: Path) -> dict[str, str]:
    try:
        data = json.loads((out / MANIFEST).read_text())
        files = data.get("files", {})
        return {str(k): str(v) for k, v in files.items()} if isinstance(files, dict) else {}
    except (FileNotFoundError, json.JSONDecodeError, AttributeError):
        return {}


def _write_fresh(out: Path, files: dict[str, str]) -> WriteReport:
    """First render: build the whole tree in a hidden sibling and rename it into place.

    The directory rename is the atomic step, so files inside need no temporary
    names of their own: half the file-system operations of per-file renames,
    which matters for inventories of thousands of hosts.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        made: set[Path] = {stage}
        written: list[Path] = []
        for rel in sorted(files):
            path = stage / rel
            if path.parent not in made:
                path.parent.mkdir(parents=True, exist_ok=True)
                made.add(path.parent)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                os.write(fd, files[rel].encode())
                start_writeback(fd)
            finally:
                os.close(fd)
            written.append(path)
        manifest = {rel: sha256_bytes(text.encode()) for rel, text in files.items()}
        (stage / MANIFEST).write_text(json.dumps(
            {"schema_version": 1, "files": manifest}, indent=1, sort_keys=True) + "\n")
        os.chmod(stage, 0o755)
        # the files forge wrote and their directories, not every file system of the machine
        fsync_all([*written, stage / MANIFEST], sorted(made, reverse=True))
        if out.exists():
            out.rmdir()  # only ever an empty directory here
        os.rename(stage, out)
        fsync_all((), [out.parent])
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return WriteReport(out, written=sorted(files))


def write_files(out: Path, files: dict[str, str], *, force: bool = False) -> WriteReport:
    out = Path(out)
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return _write_fresh(out, files)
    out.mkdir(parents=True, exist_ok=True)
    manifest = _load_manifest(out)
    report = WriteReport(out)
    new_manifest: dict[str, str] = {}
    flushed: list[Path] = []
    for rel in sorted(files):
        data = files[rel].encode()
        digest = sha256_bytes(data)
        path = out / rel
        if path.exists():
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
        atomic_write_text(path, files[rel], 0o644, fsync=False)
        flushed.append(path)
        new_manifest[rel] = digest
    for rel, digest in sorted(manifest.items()):
        if rel in files:
            continue
        path = out / rel
        if not path.exists():
            continue
        if sha256_file(path) == digest or force:
            path.unlink()
            report.removed.append(rel)
            _prune_empty(path.parent, out)
        else:
            report.kept.append(rel)
            new_manifest[rel] = digest
    fsync_all(flushed, sorted({p.parent for p in flushed} | {out}, reverse=True))
    atomic_write_text(out / MANIFEST, json.dumps(
        {"schema_version": 1, "files": new_manifest}, indent=1, sort_keys=True) + "\n")
    return report


def _prune_empty(directory: Path, stop: Path) -> None:
    while directory != stop and directory.is_dir() and not any(directory.iterdir()):
        os.rmdir(directory)
        directory = directory.parent


def render_inventory(site: Site, out_dir: Path, *, spec_text: str = "",
                     force: bool = False) -> WriteReport:
    """Render ``site`` into ``out_dir`` (the API the deploy driver and the lab use)."""
    return write_files(Path(out_dir), render_files(site, spec_text), force=force)

"""A render flushes exactly the files it wrote: from a thread pool when there are many."""

from __future__ import annotations

from pathlib import Path

import pytest

from provision import fsutil


@pytest.mark.parametrize("count", [3, fsutil._FSYNC_ALONE + 5])  # alone, then pooled
def test_fsync_all_flushes_every_file_and_reports_a_missing_one(tmp_path: Path,
                                                                count: int) -> None:
    files = [tmp_path / f"f{i}.yml" for i in range(count)]
    for f in files:
        f.write_text("x\n")
    fsutil.fsync_all(files, [tmp_path])  # every file opened and flushed: no error
    files[count // 2].unlink()
    with pytest.raises(FileNotFoundError) as err:
        fsutil.fsync_all(files, [tmp_path])
    assert err.value.filename == str(files[count // 2])

"""Many tool output files read on several CPUs give what one process gives, in file order."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from parsers_support import all_fixture_files

from provision import forked
from provision.errors import InputError
from provision.parsers import files


@pytest.fixture
def logs(tmp_path: Path) -> list[str]:
    """Every real output of every tool, twice, one file each (auto detection per file)."""
    sources = all_fixture_files()
    if not sources:
        pytest.skip("no real fixtures found (set FORGE_REAL_FIXTURES)")
    out = []
    for i, src in enumerate(sources * 2):
        dst = tmp_path / f"{i:04d}-{src.parent.name}-{src.name}"
        dst.write_bytes(src.read_bytes())
        out.append(str(dst))
    return out


def _read(paths: list[str]) -> list[tuple[str, list[tuple[Any, ...]]]]:
    return [(name, [(p.tool, p.where, p.runs, p.lines, p.skipped) for p in parts])
            for name, parts in files.ingest_files("auto", paths, node="gpu001")]


def _in_processes(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    monkeypatch.setattr(files, "PARALLEL_BYTES", 0)
    monkeypatch.setattr(files, "workers", lambda: n)


def _until_error(paths: list[str]) -> tuple[list[str], str]:
    seen = []
    with pytest.raises(InputError) as exc:
        for name, _ in files.ingest_files("auto", paths, node="gpu001"):
            seen.append(name)
    return seen, str(exc.value)


@pytest.mark.parametrize("n", [2, 3, 4])
def test_files_read_in_several_processes_give_what_one_gives(
        monkeypatch: pytest.MonkeyPatch, logs: list[str], n: int) -> None:
    monkeypatch.setattr(files, "workers", lambda: 1)
    one = _read(logs)
    assert [name for name, _ in one] == logs and sum(len(p) for _, p in one) > len(logs) // 2
    _in_processes(monkeypatch, n)
    assert len(files._runs_of_files(logs)) == n
    assert _read(logs) == one


def test_the_first_bad_file_fails_after_the_files_before_it(
        monkeypatch: pytest.MonkeyPatch, logs: list[str], tmp_path: Path) -> None:
    bad = tmp_path / "not-text.txt"
    bad.write_bytes(b"# nThread 1\n\xff\xfe\n")
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    at = len(logs) * 3 // 5  # in a later process's run of files, not the first
    paths = [*logs[:at], str(bad), *logs[at:-3], str(empty), *logs[-3:]]
    monkeypatch.setattr(files, "workers", lambda: 1)
    one = _until_error(paths)
    assert one[0] == logs[:at] and "not-text.txt:2: not UTF-8" in one[1]
    _in_processes(monkeypatch, 3)
    assert files._runs_of_files(paths)[0][-1] != str(bad)
    assert _until_error(paths) == one


def test_a_reader_that_dies_leaves_the_files_to_one_process(
        monkeypatch: pytest.MonkeyPatch, logs: list[str]) -> None:
    monkeypatch.setattr(files, "workers", lambda: 1)
    one = _read(logs)
    parent, read = os.getpid(), files._read_files

    def dies_when_forked(*args: Any) -> Any:
        if os.getpid() != parent:
            os._exit(9)
        return read(*args)

    monkeypatch.setattr(files, "_read_files", dies_when_forked)
    _in_processes(monkeypatch, 2)
    assert _read(logs) == one


def _pid_and_workers() -> tuple[int, int]:
    return os.getpid(), forked.workers()


def test_pieces_run_in_forked_processes_that_fork_no_further() -> None:
    got = forked.map_forked(_pid_and_workers, [(), (), ()])
    assert got is not None
    pids = [pid for pid, _ in got]
    assert pids[0] == os.getpid() and os.getpid() not in pids[1:]  # one worker may do both
    assert [w for _, w in got] == [1, 1, 1]  # within a piece: one process

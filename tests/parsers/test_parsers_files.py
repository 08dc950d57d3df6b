"""Many tool output files read on several CPUs give what one process gives, in file order."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from parsers_support import all_fixture_files

from provision import forked
from provision.errors import InputError
from provision.parsers import files, nccl_bulk


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
    nccl_bulk._SHAPES.clear()  # each reading builds its line templates itself
    return [(name, [(p.tool, p.where, p.runs, p.lines, p.skipped) for p in parts])
            for name, parts in files.ingest_files("auto", paths, node="gpu001")]


def _in_processes(monkeypatch: pytest.MonkeyPatch, n: int) -> list[int]:
    """Files read by ``n`` processes from here on; the processes that read them, once read
    (none when the reading fell back to this process)."""
    monkeypatch.setattr(files, "PARALLEL_BYTES", 0)
    monkeypatch.setattr(files, "workers", lambda: n)
    pids: list[int] = []

    def recording(work: Any, pieces: Any) -> Any:
        got = forked.map_forked(lambda *a: (os.getpid(), work(*a)), pieces)
        if got is None:
            return None
        pids.extend(pid for pid, _ in got)
        return [result for _, result in got]

    monkeypatch.setattr(files, "map_forked", recording)
    return pids


@pytest.mark.parametrize("n", [2, 3, 4])
def test_files_read_in_several_processes_give_what_one_gives(
        monkeypatch: pytest.MonkeyPatch, logs: list[str], n: int) -> None:
    monkeypatch.setattr(files, "workers", lambda: 1)
    one = _read(logs)
    assert [name for name, _ in one] == logs and sum(len(p) for _, p in one) > len(logs) // 2
    pids = _in_processes(monkeypatch, n)
    assert len(files._runs_of_files(logs)) == n
    assert _read(logs) == one
    assert len(pids) == n and pids[0] == os.getpid() and os.getpid() not in pids[1:]


@pytest.mark.parametrize("first", ["not text", "thousands of digits", "a bug"])
def test_the_first_bad_file_fails_after_the_files_before_it(
        monkeypatch: pytest.MonkeyPatch, logs: list[str], tmp_path: Path, first: str) -> None:
    """Whatever the first bad file raises (bad input, or an error of another kind) is raised
    after the files before it, never what a later file raised."""
    not_text = tmp_path / "not-text.txt"
    not_text.write_bytes(b"# nThread 1\n\xff\xfe\n")
    digits = tmp_path / "digits.txt"
    nccl = Path(next(p for p in logs if "-nccl-tests-oci-bm-gpu4.8-a100-1node" in p)).read_text()
    digits.write_text(nccl.replace("\n 10737418240 ", f"\n {'9' * 5000} ", 1))
    assert "9" * 5000 in digits.read_text()
    bug = tmp_path / "bug.txt"
    bug.write_text(nccl)
    real = files.ingest_parts

    def buggy(tool: str, text: str, **kw: Any) -> Any:
        if kw["source_name"] == str(bug):
            raise ZeroDivisionError("a bug")
        return real(tool, text, **kw)

    monkeypatch.setattr(files, "ingest_parts", buggy)
    bad, later = {"not text": (not_text, digits), "thousands of digits": (digits, not_text),
                  "a bug": (bug, not_text)}[first]
    at = len(logs) * 3 // 5  # in a later process's run of files, not the first
    paths = [*logs[:at], str(bad), *logs[at:-3], str(later), *logs[-3:]]
    monkeypatch.setattr(files, "workers", lambda: 1)
    one = _until_error(paths)
    assert one[0] == logs[:at]
    assert one[1].startswith({"not text": f"InputError: {not_text}:2: not UTF-8",
                              "thousands of digits": f"InputError: {digits}: a number in the "
                                                     "input has more digits",
                              "a bug": "ZeroDivisionError: a bug"}[first]), one[1]
    _in_processes(monkeypatch, 3)
    assert str(bad) not in files._runs_of_files(paths)[0]
    assert _until_error(paths) == one


def _until_error(paths: list[str]) -> tuple[list[str], str]:
    seen = []
    with pytest.raises((InputError, ZeroDivisionError)) as exc:
        for name, _ in files.ingest_files("auto", paths, node="gpu001"):
            seen.append(name)
    return seen, f"{type(exc.value).__name__}: {exc.value}"


def test_one_large_file_among_others_is_read_in_pieces_not_with_them(
        monkeypatch: pytest.MonkeyPatch, logs: list[str], tmp_path: Path) -> None:
    monkeypatch.setattr(files, "PARALLEL_BYTES", 0)
    monkeypatch.setattr(files, "workers", lambda: 2)
    assert len(files._runs_of_files(logs)) == 2
    large = tmp_path / "large.log"
    large.write_bytes(b"".join(Path(p).read_bytes() for p in logs))  # more than half
    assert files._runs_of_files([*logs, str(large)]) == [[*logs, str(large)]]


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


def _raise_here_sleep_there(parent: int, pids: Path) -> None:
    if os.getpid() == parent:
        time.sleep(0.5)  # the others have started
        raise RuntimeError("the first piece failed")
    with pids.open("a") as fh:
        fh.write(f"{os.getpid()}\n")
    time.sleep(120)


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie is dead, waiting to be reaped


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_a_failing_piece_kills_the_others_instead_of_waiting(tmp_path: Path) -> None:
    """What the caller's piece raises (or Ctrl-C, SIGTERM) comes out at once: the forked
    processes are killed, not waited for."""
    pids = tmp_path / "pids"
    pids.touch()
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="first piece failed"):
        forked.map_forked(_raise_here_sleep_there, [(os.getpid(), pids)] * 3)
    assert time.monotonic() - started < 60  # the others would sleep 120 s
    forked_pids = [int(p) for p in pids.read_text().split()]
    assert forked_pids and os.getpid() not in forked_pids
    deadline = time.monotonic() + 10
    while any(map(_running, forked_pids)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(map(_running, forked_pids))


def _lines(k: int) -> tuple[int, list[str]]:
    return os.getpid(), [f'{{"n": {k}, "i": {i}, "pad": "{"x" * 100}"}}' for i in range(50_000)]


def test_large_results_come_back_whole_through_in_memory_files(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A forked piece's result comes back whole through its anonymous in-memory file; where
    Linux's in-memory files are missing, nothing is forked and the caller does the work."""
    got = forked.map_forked(_lines, [(0,), (1,), (2,)])
    assert got is not None and [lines for _, lines in got] == [_lines(k)[1] for k in range(3)]
    assert got[0][0] == os.getpid() and os.getpid() not in (got[1][0], got[2][0])
    monkeypatch.delattr(os, "memfd_create")
    assert forked.map_forked(_lines, [(0,), (1,), (2,)]) is None and forked.workers() == 1


def test_results_come_back_read_where_no_file_descriptor_is_left(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A mapped result holds a file descriptor while its lines live: where none is left to
    map one, the result is read into memory instead, whole."""
    import mmap

    def no_descriptor(*a: Any, **k: Any) -> Any:
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(mmap, "mmap", no_descriptor)
    got = forked.map_forked(_json_lines, [(0,), (1,), (2,)])
    assert got is not None and got == [_lines(k)[1] for k in range(3)]


def _raise_there(k: int) -> int:
    if k:
        raise InputError(f"piece {k} does not read")
    return k


def test_what_a_forked_piece_raises_is_raised_here() -> None:
    with pytest.raises(InputError, match="piece 1 does not read"):
        forked.map_forked(_raise_there, [(0,), (1,), (2,)])


def _json_lines(k: int) -> Any:
    from provision.parsers.lines import JsonLines
    return JsonLines(_lines(k)[1])


def test_json_lines_come_back_as_views_of_the_in_memory_file() -> None:
    """A forked piece's JSON lines are not copied into this process: its text block is a
    read-only view of the piece's in-memory file, and reads as the lines it held."""
    got = forked.map_forked(_json_lines, [(0,), (1,), (2,)])
    assert got is not None and got == [_lines(k)[1] for k in range(3)]
    if hasattr(os, "memfd_create"):
        assert [type(g._blocks[0]).__name__ for g in got] == ["list", "memoryview", "memoryview"]
        assert all(g._blocks[0].readonly for g in got[1:])

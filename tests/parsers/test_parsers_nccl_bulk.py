"""The bulk nccl-tests reader writes exactly the records of the tolerant one, run for run.

Every nccl-tests fixture (real outputs, fragments, failures), alone and concatenated, and
logs altered the ways operators' pastes are (warnings among rows, lost indentation, a cut
table, an error message, CRLF, colliding ranks, N/A cells) must give the same JSON lines,
run count, kept-out lines and errors both ways; clean runs must really be read in bulk.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from parsers_support import EXTRA, REAL, fixture_text

from provision import parsers
from provision.errors import InputError
from provision.parsers import nccl_bulk, nccl_tests

#: the six table-bearing real runs that benchmarks/ingest_bench.py concatenates
CLEAN = ("cscs-gh200-2node-8gpu-v2.17.1-no-ofi-plugin-slow.txt",
         "gcm-a100-sxm4-80gb-1node-8gpu-nccl2.16.2-hostname-placeholder.txt",
         "gcm-a100-sxm4-80gb-2node-16gpu-nccl2.12.12-hostname-placeholder.txt",
         "oci-bm-gpu4.8-a100-1node-8gpu-10G.txt",
         "oci-bm-gpu4.8-a100-2node-16gpu-10G-docker-older.txt",
         "oci-bm-gpu4.8-a100-2node-16gpu-10G-ubuntu.txt")


def _files() -> list[Path]:
    return sorted(p for base in (REAL, EXTRA) for p in (base / "nccl-tests").glob("*.txt"))


def _tolerant(text: str, node: str | None, check: str | None) -> object:
    try:
        results = nccl_tests.parse_runs(text, node=node, source_name="x")
    except InputError as exc:
        return ("error", str(exc))
    lines = [m.to_json() for r in results for m in nccl_tests.measurements(r, check=check)]
    return lines, len(results), tuple(s for r in results for s in r.skipped)


def _bulk(text: str, node: str | None, check: str | None) -> tuple[object, int]:
    try:
        got = nccl_bulk.jsonl_runs(text, node=node, source_name="x", check=check)
    except InputError as exc:
        return ("error", str(exc)), 0
    return (got.lines, got.runs, got.skipped), got.bulk


def _same(text: str, node: str | None = "n1", check: str | None = None) -> int:
    """Assert both readers agree on ``text``; how many runs went the bulk way."""
    got, bulk = _bulk(text, node, check)
    assert got == _tolerant(text, node, check)
    return bulk


def _clean() -> list[str]:
    return [fixture_text(f"nccl-tests/{n}").rstrip("\n") + "\n" for n in CLEAN]


@pytest.mark.parametrize("path", _files(), ids=lambda p: p.name)
def test_every_fixture_gives_the_same_records(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    for node, check in ((None, None), ("n1", 'acc "2"\\x')):
        _same(text, node, check)
    _same("\n".join([text] * 3))
    _same(text.replace("\n", "\r\n"))


def test_all_fixtures_concatenated(processes: int) -> None:
    texts = [p.read_text(encoding="utf-8") for p in _files()]
    _same("".join(texts))
    _same("\n".join(reversed(texts)))


def test_clean_runs_are_read_in_bulk() -> None:
    texts = _clean()
    assert _same("".join(texts * 3), node=None) == 18
    for t in texts:
        assert _same(t, node=None) == 1


def _lines_of(text: str, word: str) -> list[int]:
    return [i for i, ln in enumerate(text.split("\n")) if word in ln]


def _insert(text: str, at: int, line: str) -> str:
    lines = text.split("\n")
    return "\n".join([*lines[:at], line, *lines[at:]])


@pytest.fixture(params=[1, 3], ids=["one process", "three processes"])
def processes(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """Large logs are read in pieces by forked processes: here small ones are too."""
    monkeypatch.setattr(nccl_bulk, "_workers", lambda size: request.param)
    return int(request.param)


def test_altered_runs_fall_back_and_agree(processes: int) -> None:
    log = "".join(_clean() * 2)
    row = _lines_of(log, "    float     sum ")[3]
    rank = _lines_of(log, "#  Rank  1 ")[0]
    altered = {
        "warning among rows": _insert(log, row, "nid005471: NCCL INFO Channel 00/0 : 0[0] -> 1"),
        "error among rows": _insert(log, row, "node1: Test NCCL failure common.cu:958 'internal'"),
        "lost indentation": log.replace("\n    33554432 ", "\n33554432 ", 1),
        "row cut short": _insert(log, row, "  4096  1024  float  sum  -1  55.95  0.07"),
        "older error columns": log.replace("#wrong", "error", 2),
        "rank collision": log.replace("#  Rank  1 Group  0 Pid  50782 on {host1}",
                                      "#  Rank  0 Group  0 Pid  50782 on {host1}", 1),
        "rank line unread": _insert(log, rank, "#  Rank  9 on"),
        "N/A in place": log.replace("   0.00      0\n", "    N/A    N/A\n", 3),
        "leading zeros": log.replace("\n        8 ", "\n        008 ", 1),
        "unicode digits": log.replace("Out of bounds values : 0", "Out of bounds values : 0\u0663", 1),
        "truncated": log[: log.rindex("Avg bus") - 40],
        "avg of a word": log.replace("Avg bus bandwidth    : 1.58767", "Avg bus bandwidth : x", 1),
        # a run without 'Collective test starting' takes its name from its lines, not a row
        "test name in a row": "".join(t.replace("float", "x_perf", 1) if "{hostname}" in t
                                      else t for t in _clean() * 2),
        "no trailing newline": log.rstrip("\n"),
        "blank lines": log.replace("\n#\n", "\n\n#\n\n"),
        "tabs": log.replace("     float     sum", "\tfloat\tsum"),
        "no-break spaces in a row": log.replace("     float     sum", "\u00a0float\u00a0sum", 1),
        "form feed in a rank line": log.replace(" Group  0 Pid", "\x0cGroup  0 Pid", 1),
    }
    got = {name: _same(text) for name, text in altered.items()}
    # the run holding what the bulk reader does not read goes to the tolerant one, alone
    falls_back = {"warning among rows", "error among rows", "row cut short",
                  "older error columns", "rank collision", "rank line unread", "unicode digits",
                  "truncated", "no-break spaces in a row", "form feed in a rank line"}
    assert got == {name: 11 if name in falls_back else 12 for name in altered}


def test_ingest_auto_uses_the_bulk_reader_for_nccl_tests() -> None:
    text = "".join(_clean() * 2)
    part, = parsers.ingest_parts("auto", text, source_name="x")
    assert part.runs == 12 and part.lines == _tolerant(text, None, None)[0]  # type: ignore[index]


def test_pieces_read_apart_join_to_the_whole() -> None:
    """Cut at every run's first line, the pieces read in forked processes give what the
    whole log gives; a cut that the reading of the whole would not start a run at is
    refused (the whole log is then read in one process)."""
    text = "".join(_clean() * 2)
    job = nccl_bulk._Job(text, None, "x", "nccl-tests")
    whole = job.piece(0, len(text), whole=True)
    cuts = nccl_bulk._bounds(text, 12)[1:-1]
    assert len(cuts) == 11
    for cut in cuts:
        got = nccl_bulk._in_parallel(job, [0, cut, len(text)])
        assert got is not None and got == whole
    inside = text.index("#  Rank  1 ")
    assert nccl_bulk._in_parallel(job, [0, inside, len(text)]) is None


def test_a_reader_that_dies_leaves_the_log_to_one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """A forked reader killed (out of memory, a signal) loses nothing: the whole log is read
    again by the process that forked it."""
    parent, read = os.getpid(), nccl_bulk._Job.piece

    def dies_when_forked(job: nccl_bulk._Job, start: int, end: int, **kw: bool) -> object:
        if os.getpid() != parent:
            os._exit(9)
        return read(job, start, end, **kw)

    monkeypatch.setattr(nccl_bulk._Job, "piece", dies_when_forked)
    monkeypatch.setattr(nccl_bulk, "_workers", lambda size: 2)
    text = "".join(_clean() * 2)
    job = nccl_bulk._Job(text, None, "x", "nccl-tests")
    assert nccl_bulk._in_parallel(job, nccl_bulk._bounds(text, 2)) is None
    assert _same(text, node=None) == 12


def _auto(text: str, monkeypatch: pytest.MonkeyPatch, *, alone: bool) -> tuple[object, bool]:
    """``ingest_parts("auto", text)`` in 3 pieces, its large-log path for logs of runs alone
    on or off; and whether the text was scanned line by line first."""
    monkeypatch.setattr(parsers, "PARALLEL_BYTES", 0 if alone else 1 << 62)
    monkeypatch.setattr(nccl_bulk, "_workers", lambda size: 3)
    scanned, real = [], parsers.scan

    def scan(t: str) -> object:
        scanned.append(1)
        return real(t)

    monkeypatch.setattr(parsers, "scan", scan)
    try:
        got: object = [(p.tool, p.where, p.runs, list(p.lines), p.skipped)
                       for p in parsers.ingest_parts("auto", text, node="n1", source_name="x")]
    except InputError as exc:
        got = ("error", str(exc))
    return got, bool(scanned)


def test_a_large_log_of_runs_alone_is_read_in_pieces_without_a_scan(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A log of nccl-tests runs and nothing else: each piece makes sure of that itself, and
    the records are those the scan and the split give."""
    log = "".join(_clean() * 3)
    assert _auto(log, monkeypatch, alone=True) == (_auto(log, monkeypatch, alone=False)[0],
                                                   False)


def test_a_large_log_holding_more_than_runs_is_scanned_and_split(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Another tool's output or a kernel-log line anywhere (between runs, in a run's own
    comment lines, before the first run) sends the log to the scan and the split, which
    give what they give without the large-log path."""
    log = "".join(_clean() * 3)
    starts = [i for i, ln in enumerate(log.split("\n")) if ln.startswith("# nThread")]
    comment = _lines_of(log, "# Using devices")[10]
    xid = "[ 5136.881543] NVRM: Xid (PCI:0000:17:00): 79, pid=0, GPU has fallen off the bus."
    ibstat = fixture_text("ibstat/gpud-h100-some-ports-down-0.txt").rstrip("\n")
    # a line laid out as a row, of a 5,000-digit number: int() refuses it where nccl-tests
    # reads it; after an ibstat output it is ibstat's, which ignores it
    odd = "  " + "9" * 5000 + "  1  float  sum  -1  1.0  0.0  0.0  0  1.0  0.0  0.0  0"
    more = {
        "ibstat between runs": _insert(log, starts[13], ibstat),
        "ibstat and a row that does not read as nccl-tests": _insert(
            log, starts[14], ibstat + "\n" + odd),
        "ibstat first": ibstat + "\n" + log,
        "kernel line between runs": _insert(log, starts[9], xid),
        "kernel words in a run's comment line": _insert(log, comment, "# " + xid),
    }
    for name, text in more.items():
        got, scanned = _auto(text, monkeypatch, alone=True)
        assert scanned, name
        assert got == _auto(text, monkeypatch, alone=False)[0], name
        assert len(got) > 1, name  # type: ignore[arg-type]  # the other tool's part is there


def test_pieces_tell_each_other_whether_they_hold_runs_alone(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The bytes the pieces share: a piece that holds more says so; one that holds runs
    alone waits for the others' answers (a while at most), and gives up before the rest of
    its reading when another said it holds more."""
    import mmap

    text = "".join(_clean() * 2)
    job = nccl_bulk._Job.of(text, None, "x", None)
    end = len(job.text)
    said = mmap.mmap(-1, 2)
    monkeypatch.setattr(nccl_bulk, "AGREE_WITHIN", 0.05)  # piece 1 never answers here
    assert nccl_bulk._read_piece_alone(job, lambda *a: True, said, 0, 0, end) is not None
    assert said[:] == b"\x01\x00"
    assert nccl_bulk._read_piece_alone(job, lambda *a: False, said, 1, 0, end) is None
    assert said[:] == b"\x01\x02"                                    # told the others

    def never(*a: object) -> set[int]:
        raise AssertionError("read on after another piece said it holds more")

    monkeypatch.setattr(nccl_bulk._Writer, "runs", never)
    monkeypatch.setattr(nccl_bulk, "AGREE_WITHIN", 60.0)  # another's "more" ends the wait
    assert nccl_bulk._read_piece_alone(job, lambda *a: True, said, 0, 0, end) is None

    def raises(*a: object) -> bool:
        raise ValueError("Exceeds the limit (4300 digits) for integer string conversion")

    said[:] = b"\x00\x00"  # a piece that raises (not what the caller's reading may raise)
    assert nccl_bulk._read_piece_alone(job, raises, said, 1, 0, end) is None
    assert said[:] == b"\x00\x02"                               # the others stop waiting

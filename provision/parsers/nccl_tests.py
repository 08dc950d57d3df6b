"""nccl-tests (all_reduce_perf, all_gather_perf, sendrecv_perf, ...) output.

Columns are read from the column header, so the 2018-2022 layout (``error``
columns, no ``root``) and the current one (``root``, ``#wrong``, ``N/A`` for
in-place sendrecv) both parse. Launch and NCCL failures (``Test NCCL
failure``, ``NCCL WARN``, mpirun refusing to start, every process claiming
rank 0) become failure records, not parse errors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

from provision.measurement import Measurement
from provision.parsers.base import (
    fold_hosts,
    parse_error,
    record,
    require_text,
    resolve_node,
    to_float,
)

TOOL = "nccl-tests"

# 'Pid' came in 2018: the NCCL 1.x era printed '#   Rank  0 on node03 device  0 [0x00] ...'
_RANK = re.compile(
    r"^#\s+Rank\s+(\d+)\s+(?:Group\s+\d+\s+)?(?:Pid\s+(\d+)\s+)?on\s+(\S+)\s+device\s+"
    r"(\d+)\s+\[([^\]]*)\]\s*(.*)$")
_TEST = re.compile(r"\b(\w+_perf)\b")
_ERROR = re.compile(
    r"Test (?:NCCL|CUDA) failure|NCCL failure|Test failure|NCCL WARN|"
    r"There are not enough slots|mpirun (?:noticed|was unable|detected)|srun: error|"
    r"PMIX ERROR|ORTE_ERROR")
_AVG = re.compile(r"Avg bus bandwidth\s*:\s*(\S+)")
_OOB = re.compile(r"Out of bounds values\s*:\s*(\d+)")
_STARTING = re.compile(r"Collective test starting:\s*(\S+)")
_VERSION = re.compile(r"NCCL version\s+(\S+)")
_HOST_PREFIX = re.compile(r"^\s*(?:\.\.\s+)?([A-Za-z0-9][\w.-]*)(?::|\s+pid\s)")


class NcclDevice(NamedTuple):
    """One '#  Rank N ... on HOST device D [bus] model' line (a tuple: 100,000s in a big log)."""

    rank: int
    pid: int
    host: str
    device: int
    bus: str
    model: str


class NcclRow(NamedTuple):
    """One result row (a tuple: a 50 MB log has 100,000s of them)."""

    size: int
    count: int  # type: ignore[assignment]  # the column's name; shadows tuple.count
    dtype: str
    redop: str
    oop_time_us: float | None
    oop_algbw: float | None
    oop_busbw: float | None
    oop_wrong: int | None
    ip_time_us: float | None
    ip_algbw: float | None
    ip_busbw: float | None
    ip_wrong: int | None
    line: int


@dataclass(frozen=True)
class NcclResult:
    node: str
    test: str | None
    devices: tuple[NcclDevice, ...]
    rows: tuple[NcclRow, ...]
    avg_busbw: float | None
    out_of_bounds: int | None
    errors: tuple[str, ...]
    nccl_version: str | None
    #: lines that looked like result rows but did not fit the header (kept out, not guessed)
    skipped: tuple[int, ...] = ()
    #: the run's first and last line in the file (a log can hold several runs)
    first_line: int = 1
    last_line: int = 1

    @property
    def hosts(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for d in self.devices:
            seen.setdefault(d.host, None)
        return tuple(seen)

    @property
    def largest(self) -> NcclRow | None:
        return max(self.rows, key=lambda r: r.size) if self.rows else None

    @property
    def wrong_total(self) -> int | None:
        vals = [w for r in self.rows for w in (r.oop_wrong, r.ip_wrong) if w is not None]
        return sum(vals) if vals else None


def detect(text: str) -> bool:
    return bool(re.search(
        r"^# nThread|Avg bus bandwidth|^#\s+Rank\s+\d+|Test (?:NCCL|CUDA) failure|NCCL WARN|"
        r"NCCL failure|\b(?:all_reduce|all_gather|alltoall|reduce_scatter|sendrecv|broadcast|"
        r"reduce|gather|scatter|hypercube)_perf\b", text, re.M)) or bool(_BARE_ROW.search(text))


#: a result row of a fragment pasted without its header: size count type redop ...
_BARE_ROW = re.compile(r"^[^\S\n]*\d+\s+\d+\s+(?:float|double|half|bfloat16|int8|uint8|int32|"
                       r"uint32|int64|uint64|fp8_e4m3|fp8_e5m2)\s+(?:sum|prod|min|max|avg|none)\s+\S",
                       re.M)


def _columns(header: str) -> dict[str, int] | None:
    """Column positions from the ``# size count type ...`` header line."""
    toks = header.lstrip("#").split()
    if not toks or toks[0] not in ("size", "bytes") or "time" not in toks:
        return None  # 'bytes N type op ... res' is the 2017 layout
    cols: dict[str, int] = {"size": 0, "count": 1, "type": 2}
    if "redop" in toks:
        cols["redop"] = toks.index("redop")
    times = [i for i, t in enumerate(toks) if t == "time"]
    for prefix, start in zip(("oop", "ip"), times, strict=False):
        cols[f"{prefix}_time"] = start
        for j in range(start + 1, min(start + 4, len(toks))):
            name = {"algbw": "algbw", "busbw": "busbw", "#wrong": "wrong",
                    "error": "error"}.get(toks[j])
            if name:
                cols[f"{prefix}_{name}"] = j
    cols["_width"] = len(toks)
    return cols


#: layouts by field count, for a fragment whose column header was not pasted
def _layout(header: str) -> dict[str, int]:
    cols = _columns(header)
    assert cols is not None
    return cols


_HEADERLESS = {
    13: _layout("# size count type redop root time algbw busbw #wrong time algbw busbw #wrong"),
    12: _layout("# size count type redop time algbw busbw error time algbw busbw error"),
    11: _layout("# size count type time algbw busbw error time algbw busbw error"),
}
_DEFAULT_COLS = _HEADERLESS[13]


def _num(t: str) -> float | None:
    """A number cell; ``N/A`` and other words are None."""
    try:
        return float(t) if t[0] in "0123456789.-+" else None
    except ValueError:
        return None


def _row(toks: list[str], cols: dict[str, int], line: int) -> NcclRow:
    g = cols.get

    def f(key: str) -> float | None:
        i = g(key)
        return _num(toks[i]) if i is not None and i < len(toks) else None

    def w(key: str) -> int | None:
        v = f(key)
        return int(v) if v is not None else None

    r = g("redop")
    return NcclRow(int(toks[0]), int(toks[1]), toks[2], toks[r] if r is not None else "-",
                   f("oop_time"), f("oop_algbw"), f("oop_busbw"), w("oop_wrong"),
                   f("ip_time"), f("ip_algbw"), f("ip_busbw"), w("ip_wrong"), line)


def _fast_row(t: list[str], line: int) -> NcclRow:
    """A row of the current layout (size count type redop root time algbw busbw #wrong x2)."""
    n = _num
    ow, iw = n(t[8]), n(t[12])
    return NcclRow(int(t[0]), int(t[1]), t[2], t[3], n(t[5]), n(t[6]), n(t[7]),
                   None if ow is None else int(ow), n(t[9]), n(t[10]), n(t[11]),
                   None if iw is None else int(iw), line)


_HEADER_START = ("# nThread", "# Collective test starting")


class _Run:
    """What one run has shown so far, while the file is read top to bottom."""

    def __init__(self, first: int, cols: dict[str, int]) -> None:
        self.first = first
        self.last = first
        self.devices: list[NcclDevice] = []
        self.rows: list[NcclRow] = []
        self.errors: list[str] = []
        self.skipped: list[int] = []
        self.error_host: str | None = None
        self.cols = cols
        self.headerless = True
        self.avg: float | None = None
        self.oob: int | None = None
        self.test: str | None = None
        self.version: str | None = None

    @property
    def has_output(self) -> bool:
        return bool(self.rows or self.avg is not None or self.errors)

    @property
    def anything(self) -> bool:
        return self.has_output or bool(self.devices)


def parse_runs(text: str, *, node: str | None = None,
               source_name: str = "<stdin>") -> list[NcclResult]:
    """Every run in ``text``, in order: a log of several ``*_perf`` runs (one Slurm job
    running them one after another, or files concatenated) is several results."""
    lines = require_text(TOOL, text, source_name)
    last = len(lines) - 1
    while last > 0 and not lines[last].strip():
        last -= 1
    runs = [_Run(1, _DEFAULT_COLS)]
    read_lines(lines, 0, last, runs)
    return [_result(r, node, source_name) for r in kept_runs(runs, last, source_name)]


def read_lines(lines: list[str], base: int, last: int, runs: list[_Run]) -> None:
    """Read ``lines`` (the file's lines from 0-based index ``base`` on) into ``runs``,
    continuing its last run and appending the runs that start in them. ``last`` is the index
    of the file's last non-blank line (a row cut there is a truncated paste)."""
    fast_cols = _DEFAULT_COLS
    run = runs[-1]
    rows = run.rows
    width = run.cols["_width"]
    for j, raw in enumerate(lines):
        ln = raw.strip()
        if not ln:
            continue
        i = base + j
        c = ln[0]
        if "0" <= c <= "9":  # most lines of a log are result rows: read those first
            toks = ln.split()
            if len(toks) == width and toks[1].isdigit() and toks[0].isdigit():
                cols = run.cols
                rows.append(_fast_row(toks, i + 1) if cols is fast_cols
                            else _row(toks, cols, i + 1))
                run.last = i + 1
                continue
            if run.headerless and len(toks) in _HEADERLESS and toks[0].isdigit():
                run.cols = _HEADERLESS[len(toks)]
                width = len(toks)
                if toks[1].isdigit():
                    rows.append(_row(toks, run.cols, i + 1))
                    run.last = i + 1
                    continue
            if len(toks) >= 3 and toks[0].isdigit() and toks[1].isdigit():
                if i != last:  # a cut last row is a truncated paste, not a bad row
                    run.skipped.append(i + 1)
                continue
        if c == "#":
            if len(ln) < 4:
                continue
            if ln.startswith(_HEADER_START) and run.has_output:
                run = _Run(i + 1, run.cols)  # the previous run is complete: a new one starts
                runs.append(run)
                rows = run.rows
                width = run.cols["_width"]
            if "Rank" in ln and (m := _RANK.match(ln)):
                run.devices.append(NcclDevice(int(m[1]), int(m[2] or 0), m[3], int(m[4]), m[5],
                                              m[6].rstrip()))
            elif ("size" in ln or "bytes" in ln) and (cols2 := _columns(ln)) is not None \
                    and len(cols2) > 5:
                run.cols = fast_cols if cols2 == fast_cols else cols2
                width = run.cols["_width"]
                run.headerless = False
            elif "Avg bus" in ln and (m := _AVG.search(ln)):
                run.avg = to_float(m[1])
            elif "Out of bounds" in ln and (m := _OOB.search(ln)):
                run.oob = int(m[1])
            elif "test starting" in ln and (m := _STARTING.search(ln)):
                run.test = m[1]
        elif ln.startswith("NCCL version") and (m := _VERSION.match(ln)):
            run.version = m[1]
        elif _ERROR.search(ln):
            run.errors.append(ln)
            if run.error_host is None and (h := _HOST_PREFIX.match(ln)):
                run.error_host = h[1]
        if run.test is None and "_perf" in ln and (m := _TEST.search(ln)):
            run.test = m[1]
        run.last = i + 1


def kept_runs(runs: list[_Run], last: int, source_name: str) -> list[_Run]:
    """The runs that give records (a run without results counts only when it is the file's
    only one); a file with no results at all is refused naming its last line."""
    for r in runs:
        ranks = [d.rank for d in r.devices]
        if len(set(ranks)) < len(ranks) and len({d.host for d in r.devices}) > 1:
            r.errors.append(SAME_RANK)
    found = [r for r in runs if r.anything]
    if not any(r.has_output for r in found):
        # the file was cut before the first result: nothing to judge
        raise parse_error(TOOL, source_name, last + 1,
                          "no result rows and no error message (truncated before the first "
                          "result?)" if found else
                          "no nccl-tests header, result rows or NCCL error found")
    return [r for r in found if r.has_output or len(found) == 1]


SAME_RANK = ("several processes report the same rank (nccl-tests built without MPI support "
             "but launched by mpirun?)")


def _result(run: _Run, node: str | None, source_name: str) -> NcclResult:
    devices = run.devices
    hosts = list(dict.fromkeys(d.host for d in devices))
    found = run.error_host if run.errors and run.error_host else (hosts[0] if hosts else None)
    return NcclResult(resolve_node(TOOL, source_name, found, node), run.test, tuple(devices),
                      tuple(run.rows), run.avg, run.oob, tuple(run.errors), run.version,
                      tuple(run.skipped), run.first, run.last)


def parse(text: str, *, node: str | None = None, source_name: str = "<stdin>") -> NcclResult:
    """The first run in ``text`` (see :func:`parse_runs` for logs of several runs)."""
    return parse_runs(text, node=node, source_name=source_name)[0]


def measurements(result: NcclResult, check: str | None = None) -> list[Measurement]:
    check = check or TOOL
    name = result.test or "nccl-tests"
    peer = run_peer(result.hosts, result.node)
    big = result.largest
    out = [record(result.node, r.metric, r.value, check=check, detail=r.detail, peer=r.peer,
                  min=r.min, max=r.max)
           for r in summary(name, peer, result.errors, len(result.devices),
                            None if big is None else (big.size, big.oop_busbw, big.oop_algbw),
                            result.avg_busbw, result.wrong_total, len(result.rows),
                            result.out_of_bounds)]
    # the bulk of a log: one record per size and placement, the shared fields looked up once
    unit = _BY_SIZE_UNIT
    node = result.node
    add = out.append
    for r in result.rows:
        if r.oop_busbw is not None:
            add(Measurement(node, "nccl_busbw_by_size", r.oop_busbw, unit=unit, peer=peer,
                            check=check, detail=by_size_detail(name, r.size, OUT_OF_PLACE)))
        if r.ip_busbw is not None:
            add(Measurement(node, "nccl_busbw_by_size", r.ip_busbw, unit=unit, peer=peer,
                            check=check, detail=by_size_detail(name, r.size, IN_PLACE)))
    return out


def run_peer(hosts: tuple[str, ...], node: str) -> str | None:
    """The run's other hosts, folded: a record's ``peer``."""
    others = [h for h in hosts if h != node]
    return fold_hosts(others) if others else None


class RunRecord(NamedTuple):
    """One of a run's records other than the per-size ones (the fields a record takes)."""

    metric: str
    value: float
    detail: str
    peer: str | None = None
    min: float | None = None
    max: float | None = None


def summary(name: str, peer: str | None, errors: tuple[str, ...] | list[str], ranks: int,
            largest: tuple[int, float | None, float | None] | None, avg: float | None,
            wrong: int | None, sizes: int, out_of_bounds: int | None) -> list[RunRecord]:
    """A run's records other than the per-size ones, from what the run printed (shared by
    the tolerant reader and the bulk one, so both write the same records). ``largest`` is
    the largest size with its out-of-place bus and algorithm bandwidths."""
    out: list[RunRecord] = []
    # a failure is the run's, not a link's: no peer (the hosts are named in the detail)
    with_hosts = f" (with {peer})" if peer else ""
    if errors:
        out.append(RunRecord("tool_ran_ok", 0.0, f"{name}{with_hosts}: {errors[0]}"[:300],
                             min=1.0))
    if largest is not None:
        size, busbw, algbw = largest
        where = f"{name} {size} B, {ranks or '?'} ranks, out-of-place"
        if busbw is not None:
            out.append(RunRecord("nccl_busbw", busbw, where, peer))
        if algbw is not None:
            out.append(RunRecord("nccl_algbw", algbw, where, peer))
    if avg is not None:
        out.append(RunRecord("nccl_avg_busbw", avg, name, peer))
    if wrong is not None:
        out.append(RunRecord("nccl_wrong", float(wrong),
                             f"{name}{with_hosts}: sum of #wrong over {sizes} sizes", max=0.0))
    if out_of_bounds is not None:
        out.append(RunRecord("nccl_out_of_bounds", float(out_of_bounds), f"{name}{with_hosts}",
                             max=0.0))
    return out


OUT_OF_PLACE, IN_PLACE = "out-of-place", "in-place"


def by_size_detail(name: str, size: int | str, place: str) -> str:
    return f"{name} {size} B {place}"


_BY_SIZE_UNIT = record("-", "nccl_busbw_by_size", 0).unit

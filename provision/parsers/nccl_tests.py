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

_RANK = re.compile(
    r"^#\s+Rank\s+(\d+)\s+(?:Group\s+\d+\s+)?Pid\s+(\d+)\s+on\s+(\S+)\s+device\s+(\d+)\s+"
    r"\[([^\]]*)\]\s*(.*)$")
_TEST = re.compile(r"\b(\w+_perf)\b")
_ERROR = re.compile(
    r"Test (?:NCCL|CUDA) failure|NCCL failure|Test failure|NCCL WARN|"
    r"There are not enough slots|mpirun (?:noticed|was unable|detected)|srun: error|"
    r"PMIX ERROR|ORTE_ERROR")
_HOST_PREFIX = re.compile(r"^\s*(?:\.\.\s+)?([A-Za-z0-9][\w.-]*)(?::|\s+pid\s)")


@dataclass(frozen=True)
class NcclDevice:
    rank: int
    pid: int
    host: str
    device: int
    bus: str
    model: str


@dataclass(frozen=True)
class NcclRow:
    size: int
    count: int
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
        r"reduce|gather|scatter|hypercube)_perf\b", text, re.M))


def _columns(header: str) -> dict[str, int] | None:
    """Column positions from the ``# size count type ...`` header line."""
    toks = header.lstrip("#").split()
    if not toks or toks[0] != "size" or "time" not in toks:
        return None
    cols: dict[str, int] = {}
    times = [i for i, t in enumerate(toks) if t == "time"]
    for prefix, start in zip(("oop", "ip"), times, strict=False):
        cols[f"{prefix}_time"] = start
        for j in range(start + 1, min(start + 4, len(toks))):
            name = {"algbw": "algbw", "busbw": "busbw", "#wrong": "wrong"}.get(toks[j])
            if name:
                cols[f"{prefix}_{name}"] = j
    cols["_width"] = len(toks)
    return cols


_DEFAULT_COLS = _columns("# size count type redop root time algbw busbw #wrong "
                         "time algbw busbw #wrong")


def _row(toks: list[str], cols: dict[str, int], line: int) -> NcclRow:
    def f(key: str) -> float | None:
        i = cols.get(key)
        return to_float(toks[i]) if i is not None and i < len(toks) else None

    def w(key: str) -> int | None:
        v = f(key)
        return int(v) if v is not None else None

    return NcclRow(int(toks[0]), int(toks[1]), toks[2], toks[3],
                   f("oop_time"), f("oop_algbw"), f("oop_busbw"), w("oop_wrong"),
                   f("ip_time"), f("ip_algbw"), f("ip_busbw"), w("ip_wrong"), line)


def parse(text: str, *, node: str | None = None, source_name: str = "<stdin>") -> NcclResult:
    lines = require_text(TOOL, text, source_name)
    devices: list[NcclDevice] = []
    rows: list[NcclRow] = []
    errors: list[str] = []
    error_host: str | None = None
    cols = _DEFAULT_COLS
    assert cols is not None
    avg = oob = None
    test = version = None
    last = max((i for i, ln in enumerate(lines) if ln.strip()), default=0)
    for i, raw in enumerate(lines):
        ln = raw.strip()
        if not ln:
            continue
        if m := _RANK.match(ln):
            devices.append(NcclDevice(int(m[1]), int(m[2]), m[3], int(m[4]), m[5], m[6].strip()))
        elif ln.startswith("#"):
            if (c := _columns(ln)) is not None and len(c) > 3:
                cols = c
            elif m := re.search(r"Avg bus bandwidth\s*:\s*(\S+)", ln):
                avg = to_float(m[1])
            elif m := re.search(r"Out of bounds values\s*:\s*(\d+)", ln):
                oob = int(m[1])
            elif m := re.search(r"Collective test starting:\s*(\S+)", ln):
                test = m[1]
        elif m := re.match(r"NCCL version\s+(\S+)", ln):
            version = m[1]
        elif _ERROR.search(ln):
            errors.append(ln)
            if error_host is None and (h := _HOST_PREFIX.match(ln)):
                error_host = h[1]
        elif re.match(r"\d+\s", ln):
            toks = ln.split()
            if len(toks) != cols["_width"] or not toks[1].isdigit():
                if i == last:  # the file was cut inside its last row: keep what is complete
                    continue
                raise parse_error(TOOL, source_name, i + 1,
                                  f"result row has {len(toks)} fields, the header "
                                  f"names {cols['_width']}")
            rows.append(_row(toks, cols, i + 1))
        if test is None and (m := _TEST.search(ln)):
            test = m[1]
    ranks = [d.rank for d in devices]
    if len(set(ranks)) < len(ranks) and len({d.host for d in devices}) > 1:
        errors.append("several processes report the same rank (nccl-tests built without "
                      "MPI support but launched by mpirun?)")
    if not rows and not errors:
        raise parse_error(TOOL, source_name, last + 1,
                          "no result rows and no error message (truncated before the first "
                          "result?)" if devices or avg is not None else
                          "no nccl-tests header, result rows or NCCL error found")
    hosts = list(dict.fromkeys(d.host for d in devices))
    found = error_host if errors and error_host else (hosts[0] if hosts else None)
    return NcclResult(resolve_node(TOOL, source_name, found, node), test, tuple(devices),
                      tuple(rows), avg, oob, tuple(errors), version)


def measurements(result: NcclResult, check: str | None = None) -> list[Measurement]:
    check = check or TOOL
    others = [h for h in result.hosts if h != result.node]
    peer = fold_hosts(others) if others else None
    name = result.test or "nccl-tests"
    out: list[Measurement] = []
    # a failure is the run's, not a link's: no peer (the hosts are named in the detail)
    with_hosts = f" (with {peer})" if peer else ""
    if result.errors:
        out.append(record(result.node, "tool_ran_ok", 0, check=check, min=1.0,
                          detail=f"{name}{with_hosts}: {result.errors[0]}"[:300]))
    big = result.largest
    if big is not None:
        where = f"{name} {big.size} B, {len(result.devices) or '?'} ranks"
        if big.oop_busbw is not None:
            out.append(record(result.node, "nccl_busbw", big.oop_busbw, check=check, peer=peer,
                              detail=f"{where}, out-of-place"))
        if big.oop_algbw is not None:
            out.append(record(result.node, "nccl_algbw", big.oop_algbw, check=check, peer=peer,
                              detail=f"{where}, out-of-place"))
    if result.avg_busbw is not None:
        out.append(record(result.node, "nccl_avg_busbw", result.avg_busbw, check=check,
                          peer=peer, detail=name))
    wrong = result.wrong_total
    if wrong is not None:
        out.append(record(result.node, "nccl_wrong", wrong, check=check, max=0.0,
                          detail=f"{name}{with_hosts}: sum of #wrong over "
                                 f"{len(result.rows)} sizes"))
    if result.out_of_bounds is not None:
        out.append(record(result.node, "nccl_out_of_bounds", result.out_of_bounds, check=check,
                          max=0.0, detail=f"{name}{with_hosts}"))
    for r in result.rows:
        for place, bw in (("out-of-place", r.oop_busbw), ("in-place", r.ip_busbw)):
            if bw is not None:
                out.append(record(result.node, "nccl_busbw_by_size", bw, check=check, peer=peer,
                                  detail=f"{name} {r.size} B {place}"))
    return out

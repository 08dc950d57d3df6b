"""perftest output: ib_write_bw / ib_read_bw / ib_send_bw / ib_atomic_bw and the *_lat tests.

The test is named by its banner (``RDMA_Write BW Test``), the columns by the
result header, whose unit is ``Gb/sec`` with ``--report_gbits`` and
``MB/sec`` (2^20 bytes, perftest's own definition) otherwise; bandwidth is
recorded in Gb/s either way. ``--use_cuda`` runs (GPUDirect RDMA) are
recognised by their CUDA preamble and recorded as ``gpudirect_bw`` for the
GPU perftest picked. Stray lines between the header and the rows (CPU
frequency warnings, prose) are ignored; repeated rows of one size
(``--run_infinitely``) are averaged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from provision.measurement import Measurement
from provision.parsers.base import parse_error, record, require_text, resolve_node, to_float

TOOL = "perftest"
# 'RDMA_Write Post List BW Test' (--post_list), 'Send BW Test' ...: words between op and kind
_BANNER = re.compile(r"^\s*(RDMA_Write_imm|RDMA_Write|RDMA_Read|Send|Atomic(?: \w+)?)\s+"
                     r"(?:[A-Z][\w ]*?\s+)?(BW|Latency) Test\s*$")
_COLUMNS = re.compile(r"#bytes|#iterations|BW peak|BW average|MsgRate|t_min|t_max|t_typical|"
                      r"t_avg|t_stdev|99% percentile|99\.9% percentile")
_ERROR = re.compile(r"Couldn't|Unable to|Failed to|failed to|\bERROR\b|Error:|Conflicting "
                    r"parameters|No IB devices found")
_MB_TO_GBIT = 1048576 * 8 / 1e9
_OPS = {"RDMA_Write": "write", "RDMA_Read": "read", "Send": "send", "RDMA_Write_imm": "write"}


@dataclass(frozen=True)
class PerftestRow:
    size: int
    iterations: int
    values: tuple[tuple[str, float], ...]  # column -> value, bandwidth already in Gb/s
    line: int

    def get(self, column: str) -> float | None:
        return dict(self.values).get(column)


@dataclass(frozen=True)
class PerftestResult:
    node: str
    op: str  # write, read, send, atomic
    kind: str  # "bw" or "lat"
    device: str | None
    settings: tuple[tuple[str, str], ...]
    rows: tuple[PerftestRow, ...]
    cuda_gpu: int | None  # the GPU a --use_cuda run used
    cuda_gpu_name: str | None
    peer: str | None  # remote IP (from a RoCE GID) when the output shows it
    errors: tuple[str, ...]

    @property
    def test(self) -> str:
        return f"ib_{self.op}_{self.kind}"

    def setting(self, key: str) -> str | None:
        return dict(self.settings).get(key)


def detect(text: str) -> bool:
    return bool(re.search(r"(?:BW|Latency) Test\s*$|^[^\S\n]*#bytes\s+#iterations", text,
                          re.M))


def _gid_ip(gid: str) -> str | None:
    parts = gid.strip().split(":")
    if len(parts) == 16 and parts[10:12] == ["255", "255"]:
        return ".".join(str(int(p)) for p in parts[12:])
    return None


def parse(text: str, *, node: str | None = None,
          source_name: str = "<stdin>") -> PerftestResult:
    lines = require_text(TOOL, text, source_name)
    op = kind = None
    settings: list[tuple[str, str]] = []
    columns: list[str] | None = None
    gbit = True
    raw_rows: list[tuple[int, list[str]]] = []
    errors: list[str] = []
    cuda_gpu = cuda_name = peer = None
    cuda = False
    in_settings = remote = False
    last = max((i for i, ln in enumerate(lines, 1) if ln.strip()), default=0)
    for i, raw in enumerate(lines, 1):
        ln = raw.strip()
        if m := _BANNER.match(ln):
            op, kind = _OPS.get(m[1], m[1].split()[0].lower()), "bw" if m[2] == "BW" else "lat"
            in_settings = True
            continue
        if ln.startswith("-----"):
            in_settings = False
            continue
        if in_settings:
            settings.extend((k.strip(), v) for k, v in
                            re.findall(r"([A-Za-z][^:\t]*?)\s*:\s*(\S+)", ln))
        elif ln.startswith("#bytes"):
            columns = _COLUMNS.findall(ln)
            gbit = "Gb/sec" in ln
        elif re.match(r"(local|remote) address", ln):
            remote = ln.startswith("remote")
        elif remote and peer is None and (m := re.match(r"GID:\s*(\S+)", ln)):
            peer = _gid_ip(m[1])
        elif "initializing CUDA" in ln or ln.startswith("cuMemAlloc"):
            cuda = True
        elif m := re.match(r"Picking device No\. (\d+)", ln):
            cuda_gpu = int(m[1])
        elif m := re.search(r"device name = \[([^\]]+)\]", ln):
            cuda_name = m[1]
        elif columns and re.match(r"\d+\s+\d+\s", ln):
            toks = ln.split()
            if len(toks) != len(columns) or any(to_float(t) is None for t in toks):
                if i == last:
                    continue  # the file was cut inside its last row
                raise parse_error(TOOL, source_name, i,
                                  f"result row has {len(toks)} fields, header names "
                                  f"{len(columns)}")
            raw_rows.append((i, toks))
        elif _ERROR.search(ln) and "WARNING" not in ln:
            errors.append(ln)
    if op is None or kind is None:
        raise parse_error(TOOL, source_name, 1, "no '... BW Test' or '... Latency Test' banner")
    if not raw_rows and not errors:
        raise parse_error(TOOL, source_name, last, "no result rows (truncated before the "
                          "results?)")
    rows = []
    for i, toks in raw_rows:
        vals = []
        for col, tok in zip(columns or [], toks, strict=True):
            v = float(tok)
            if col.startswith("BW") and not gbit:
                v = round(v * _MB_TO_GBIT, 4)
            vals.append((col, v))
        rows.append(PerftestRow(int(toks[0]), int(toks[1]), tuple(vals[2:]), i))
    device = dict(settings).get("Device")
    return PerftestResult(resolve_node(TOOL, source_name, None, node), op, kind, device,
                          tuple(settings), tuple(rows), cuda_gpu if cuda else None,
                          cuda_name if cuda else None, peer, tuple(errors))


def measurements(result: PerftestResult, check: str | None = None) -> list[Measurement]:
    check = check or TOOL
    node = result.node
    base: dict[str, Any] = {"check": check, "peer": result.peer, "gpu": result.cuda_gpu,
            "model": result.cuda_gpu_name}
    out: list[Measurement] = []
    if result.errors:
        out.append(record(node, "tool_ran_ok", 0, min=1.0, detail=f"{result.test}: "
                          f"{result.errors[0]}"[:300], **base))
    if not result.rows:
        return out
    sizes = sorted({r.size for r in result.rows})
    qps = result.setting("Number of qps")
    for size in sizes:
        same = [r for r in result.rows if r.size == size]
        where = (f"{result.test} {size} B, {result.device or '?'}, {qps or '?'} QPs"
                 + (f", {len(same)} samples" if len(same) > 1 else ""))

        def mean(col: str, rows: list[PerftestRow] = same) -> float | None:
            vals = [v for r in rows if (v := r.get(col)) is not None]
            return round(sum(vals) / len(vals), 4) if vals else None

        if result.kind == "bw":
            bw = mean("BW average")
            if bw is None:
                continue
            headline = size == sizes[-1]
            metric = ("gpudirect_bw" if result.cuda_gpu is not None else f"ib_{result.op}_bw")
            out.append(record(node, metric if headline else "ib_bw_by_size", bw, detail=where,
                              unit="Gb/s", **base))
            rate = mean("MsgRate")
            if headline and rate is not None:
                out.append(record(node, "ib_msg_rate", rate, detail=where, **base))
        elif size == sizes[0]:  # latency is judged at the smallest message
            for col, metric in (("t_typical", f"ib_{result.op}_lat"), ("t_avg", "ib_lat_avg"),
                                ("t_max", "ib_lat_max"), ("99.9% percentile", "ib_lat_p999")):
                v = mean(col)
                if v is not None:
                    out.append(record(node, metric, v, detail=where, unit="us", **base))
    return out

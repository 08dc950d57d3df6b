"""nvbandwidth output: one matrix per test case, plus an optional ``SUM`` line.

A matrix is titled ``memcpy CE CPU(row) -> GPU(column) bandwidth (GB/s)``
(or ``<-``, ``<->``, ``GPU(row) <- GPU(column)``, SM copies). Cells of
``N/A`` (and the 0.00 diagonal of GPU-GPU matrices) are not measurements.
The version banner and device list of v0.2+ are optional (the README
samples start at ``Running ...``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from provision.measurement import Measurement
from provision.parsers.base import parse_error, record, require_text, resolve_node, to_float

TOOL = "nvbandwidth"
_TITLE = re.compile(r"^(memcpy|memory)\s+(CE|SM)\s+(CPU|GPU)\(row\)\s*(<->|->|<-)\s*"
                    r"(CPU|GPU)\(column\)\s+bandwidth\s+\(GB/s\)", re.I)


@dataclass(frozen=True)
class NvbwCell:
    row: int
    column: int
    gbs: float


@dataclass(frozen=True)
class NvbwTest:
    name: str  # host_to_device_memcpy_ce, ...
    row_kind: str  # "CPU" or "GPU"
    column_kind: str
    direction: str  # "->", "<-", "<->"
    cells: tuple[NvbwCell, ...]
    total_gbs: float | None  # the SUM line


@dataclass(frozen=True)
class NvbandwidthResult:
    node: str
    version: str | None
    devices: tuple[tuple[int, str], ...]
    tests: tuple[NvbwTest, ...]

    def test(self, name: str) -> NvbwTest | None:
        return next((t for t in self.tests if t.name == name), None)


def detect(text: str) -> bool:
    return bool(re.search(r"nvbandwidth Version|^Running \w+_(?:ce|sm)\.|bandwidth \(GB/s\)",
                          text, re.M))


def parse(text: str, *, node: str | None = None,
          source_name: str = "<stdin>") -> NvbandwidthResult:
    lines = require_text(TOOL, text, source_name)
    version = None
    devices: list[tuple[int, str]] = []
    tests: list[dict] = []
    name: str | None = None
    columns: list[int] | None = None
    for i, raw in enumerate(lines, 1):
        ln = raw.strip()
        if not ln:
            columns = None if tests and tests[-1]["cells"] else columns
            continue
        if m := re.match(r"nvbandwidth Version:\s*(\S+)", ln):
            version = m[1]
        elif m := re.match(r"Device (\d+): (.+)$", ln):
            devices.append((int(m[1]), m[2].strip()))
        elif m := re.match(r"Running (\w+)\.?$", ln):
            name = m[1]
        elif m := _TITLE.match(ln):
            tests.append({"name": name or f"{m[2].lower()}_{m[3]}{m[4]}{m[5]}", "row": m[3].upper(),
                          "col": m[5].upper(), "dir": m[4], "cells": [], "sum": None})
            columns, name = None, None
        elif m := re.match(r"SUM (\w+)\s+(\S+)$", ln):
            target = next((t for t in reversed(tests) if t["name"] == m[1]), None)
            if target is not None:
                target["sum"] = to_float(m[2])
        elif tests and columns is None and re.fullmatch(r"\d+(\s+\d+)*", ln):
            columns = [int(x) for x in ln.split()]
        elif tests and columns is not None and re.match(r"\d+\s", ln):
            toks = ln.split()
            if len(toks) != len(columns) + 1:
                raise parse_error(TOOL, source_name, i,
                                  f"matrix row has {len(toks) - 1} cells for {len(columns)} "
                                  "columns")
            row = int(toks[0])
            t = tests[-1]
            for col, tok in zip(columns, toks[1:], strict=True):
                v = to_float(tok)
                if v is None or (t["row"] == t["col"] == "GPU" and row == col):
                    continue
                t["cells"].append(NvbwCell(row, col, v))
    if not tests:
        raise parse_error(TOOL, source_name, 1, "no '... bandwidth (GB/s)' matrix found")
    if not any(t["cells"] for t in tests):
        raise parse_error(TOOL, source_name, len(lines), "matrix without rows (truncated?)")
    return NvbandwidthResult(
        resolve_node(TOOL, source_name, None, node), version, tuple(devices),
        tuple(NvbwTest(t["name"], t["row"], t["col"], t["dir"], tuple(t["cells"]), t["sum"])
              for t in tests))


def measurements(result: NvbandwidthResult, check: str | None = None) -> list[Measurement]:
    """One ``nvbandwidth`` record per matrix cell: gpu is the GPU end, peer the other GPU."""
    check = check or TOOL
    node = result.node
    names = dict(result.devices)
    out: list[Measurement] = []
    for t in result.tests:
        for c in t.cells:
            if t.row_kind == "GPU" and t.column_kind == "GPU":
                gpu, peer = c.row, f"{node}:{c.column}"
                where = f"GPU{c.row} {t.direction} GPU{c.column}"
            else:
                gpu = c.column if t.column_kind == "GPU" else c.row
                peer, where = None, f"{t.row_kind} {t.direction} GPU{gpu}"
            out.append(record(node, "nvbandwidth", c.gbs, gpu=gpu, peer=peer, check=check,
                              model=names.get(gpu), detail=f"{t.name}: {where}"))
        if t.total_gbs is not None:
            out.append(record(node, "nvbandwidth_sum", t.total_gbs, check=check, detail=t.name))
    return out

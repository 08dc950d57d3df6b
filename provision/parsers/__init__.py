"""Parsers of real tool output, shared by the check engine and ``forge ingest``.

``get("nccl-tests").parse(text, node=..., source_name=...)`` returns the
tool's frozen result (rows, ports, links, ...); ``.measurements(result)``
turns it into :class:`~provision.measurement.Measurement` records.
``detect_tool(text)`` recognises a tool from its output. Parsers are pure:
no files, no processes; a file they cannot read raises
:class:`~provision.errors.InputError` naming the tool, the file and the line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from importlib import import_module
from typing import Any

from provision.errors import InputError
from provision.forked import PARALLEL_BYTES
from provision.measurement import Measurement, from_json
from provision.parsers.base import ToolParser, clean_text
from provision.parsers.lines import JsonLines
from provision.parsers.split import alone, first_tool, scan, split

__all__ = ["PARSERS", "Part", "ToolParser", "detect_tool", "get", "ingest_parts", "ingest_text",
           "names"]


def _nccl_jsonl(text: str, **kw: Any) -> Any:
    from provision.parsers import nccl_bulk
    return nccl_bulk.jsonl_runs(text, **kw)


def _lazy(module: str, attr: str) -> Callable[..., Any]:
    """``provision.parsers.<module>.<attr>``, its module imported on the first call: a
    parser's patterns are compiled when it is imported, and ``forge ingest auto`` of an
    nccl-tests log, or ``forge-health``, needs one or two of the fourteen (0.03 s of
    start-up for the others)."""
    found: Any = None

    def call(*args: Any, **kwargs: Any) -> Any:
        nonlocal found
        if found is None:
            found = import_module(f"provision.parsers.{module}")
        return getattr(found, attr)(*args, **kwargs)  # the module's, as it is now

    call.__qualname__ = call.__name__ = f"{module}.{attr}"
    return call


def _p(name: str, module: str, description: str, *, runs: bool = False,
       jsonl: Callable[..., Any] | None = None) -> ToolParser:
    return ToolParser(name, description, _lazy(module, "parse"), _lazy(module, "measurements"),
                      _lazy(module, "detect"), _lazy(module, "parse_runs") if runs else None,
                      jsonl)


#: in detection order: tools whose markers are most specific come first
PARSERS: tuple[ToolParser, ...] = (
    _p("dcgmi-diag", "dcgmi_diag", "dcgmi diag -r N, table or -j JSON"),
    _p("nccl-tests", "nccl_tests", "nccl-tests *_perf results, or the error that stopped them",
       runs=True, jsonl=_nccl_jsonl),
    _p("perftest", "perftest", "ib_write_bw/ib_read_bw/ib_send_bw and *_lat (perftest)"),
    _p("nvbandwidth", "nvbandwidth", "nvbandwidth test-case matrices"),
    _p("gpu-burn", "gpu_burn", "gpu-burn progress lines and verdict"),
    _p("ibstatus", "ibstatus", "ibstatus port blocks"),
    _p("ibv_devinfo", "ibv_devinfo", "ibv_devinfo [-v] hca_id blocks"),
    _p("ibstat", "ibstat", "ibstat CA/port blocks"),
    _p("nvidia-smi-topo", "nvidia_smi_topo", "nvidia-smi topo -m (or -p2p) matrix"),
    _p("nvidia-smi-nvlink", "nvidia_smi_nvlink",
       "nvidia-smi nvlink -s / -e (and dcgmi nvlink --link-status)"),
    _p("dmesg-xid", "dmesg_xid", "kernel log NVRM Xid / SXid lines"),
    _p("nvidia-smi-q", "nvidia_smi_q", "nvidia-smi -q (full, -d sections or fragments)"),
    _p("nvidia-smi-query-gpu", "nvidia_smi_query_gpu",
       "nvidia-smi --query-gpu / --query-retired-pages CSV"),
    _p("lspci", "lspci", "lspci -vvv: PCIe port types and ACS control of bridges (read whole)"),
)
_BY_NAME = {p.name: p for p in PARSERS}


def names() -> list[str]:
    return [p.name for p in PARSERS]


def get(name: str) -> ToolParser:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise InputError(f"unknown tool {name!r}",
                         hint="one of: " + ", ".join(names()) + ", or auto") from None


def detect_tool(text: str) -> str | None:
    """The name of the first parser whose markers appear in ``text``, or None."""
    text = clean_text(text)
    return next((p.name for p in PARSERS if p.detect(text)), None)


@dataclass(frozen=True)
class Part:
    """What one tool's block of a file gave: the tool, which lines, how many runs, and its
    records as JSON lines (what ``forge ingest`` writes; :attr:`records` reads them back)."""

    tool: str
    where: str  # "1-40", or "" for the whole file
    runs: int
    lines: JsonLines
    #: lines that looked like the tool's data but did not fit (kept out, not guessed)
    skipped: tuple[int, ...] = ()

    @property
    def records(self) -> list[Measurement]:
        return [from_json(line) for line in self.lines]


def _parse(tool: str, text: str, node: str | None, source_name: str, check: str | None,
           where: str) -> Part:
    parser = get(tool)
    if parser.jsonl is not None:  # a bulk reader: JSON lines without a record object each
        bulk = parser.jsonl(text, node=node, source_name=source_name, check=check)
        return Part(tool, where, bulk.runs, bulk.lines, bulk.skipped)
    results = parser.results(text, node=node, source_name=source_name)
    lines: list[str] = []
    skipped: list[int] = []
    for r in results:
        lines.extend(m.to_json() for m in parser.measurements(r, check=check))
        skipped.extend(getattr(r, "skipped", ()))
    return Part(tool, where, len(results), JsonLines(lines), tuple(skipped))


def ingest_parts(tool: str, text: str, *, node: str | None = None,
                 source_name: str = "<stdin>", check: str | None = None) -> list[Part]:
    """Parse ``text`` as ``tool``, or with ``auto`` as every tool found in it, in order."""
    if tool != "auto":
        return [_parse(tool, text, node, source_name, check, "")]
    if not text or text.isspace():  # no copy of a 50 MB text
        raise InputError(f"{source_name}: the file is empty")
    text = clean_text(text)
    if len(text) >= PARALLEL_BYTES and first_tool(text) == "nccl-tests":
        # a large log of nccl-tests runs and nothing else: its pieces are read on every CPU,
        # each also making sure that it holds nothing else, instead of a scan of every line
        # first (0.1 s of a 50 MB log); what the scan and split below give for such a log
        from provision.parsers import nccl_bulk
        bulk = nccl_bulk.jsonl_runs_alone(text, partial(alone, "nccl-tests"), node=node,
                                          source_name=source_name, check=check)
        if bulk is not None:
            return [Part("nccl-tests", "", bulk.runs, bulk.lines, bulk.skipped)]
    marks, has_kernel = scan(text)
    segments = split(text, marks, has_kernel)
    if not segments:
        found = marks[0][1] if marks else detect_tool(text)
        if found is None:
            raise InputError(f"{source_name}:1: cannot tell which tool wrote this file",
                             hint="name the tool: forge ingest TOOL FILE (TOOL one of "
                                  + ", ".join(names()) + ")")
        return [_parse(found, text, node, source_name, check, "")]
    parts = []
    for seg in segments:
        try:
            parts.append(_parse(seg.tool, seg.text, node, source_name, check, seg.where()))
        except InputError as error:
            other = detect_tool(seg.text)  # a start line that misled: let the markers decide
            if other is None or other == seg.tool:
                raise
            try:
                parts.append(_parse(other, seg.text, node, source_name, check, seg.where()))
            except InputError:
                raise error from None  # what the start line's tool said is the better guess
    return parts


def ingest_text(tool: str, text: str, *, node: str | None = None, source_name: str = "<stdin>",
                check: str | None = None) -> list[Measurement]:
    """Parse ``text`` as ``tool`` (or ``auto``) and return its measurement records."""
    return [r for p in ingest_parts(tool, text, node=node, source_name=source_name, check=check)
            for r in p.records]

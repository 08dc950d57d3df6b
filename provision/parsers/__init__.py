"""Parsers of real tool output, shared by the check engine and ``forge ingest``.

``get("nccl-tests").parse(text, node=..., source_name=...)`` returns the
tool's frozen result (rows, ports, links, ...); ``.measurements(result)``
turns it into :class:`~provision.measurement.Measurement` records.
``detect_tool(text)`` recognises a tool from its output. Parsers are pure:
no files, no processes; a file they cannot read raises
:class:`~provision.errors.InputError` naming the tool, the file and the line.
"""

from __future__ import annotations

from provision.errors import InputError
from provision.measurement import Measurement
from provision.parsers import (
    dcgmi_diag,
    dmesg_xid,
    gpu_burn,
    ibstat,
    ibstatus,
    ibv_devinfo,
    nccl_tests,
    nvbandwidth,
    nvidia_smi_nvlink,
    nvidia_smi_q,
    nvidia_smi_query_gpu,
    nvidia_smi_topo,
    perftest,
)
from provision.parsers.base import ToolParser

__all__ = ["PARSERS", "ToolParser", "detect_tool", "get", "ingest_text", "names"]


def _p(name: str, module: object, description: str) -> ToolParser:
    return ToolParser(name, description, module.parse, module.measurements,  # type: ignore[attr-defined]
                      module.detect)  # type: ignore[attr-defined]


#: in detection order: tools whose markers are most specific come first
PARSERS: tuple[ToolParser, ...] = (
    _p("dcgmi-diag", dcgmi_diag, "dcgmi diag -r N, table or -j JSON"),
    _p("nccl-tests", nccl_tests, "nccl-tests *_perf results, or the error that stopped them"),
    _p("perftest", perftest, "ib_write_bw/ib_read_bw/ib_send_bw and *_lat (perftest)"),
    _p("nvbandwidth", nvbandwidth, "nvbandwidth test-case matrices"),
    _p("gpu-burn", gpu_burn, "gpu-burn progress lines and verdict"),
    _p("ibstatus", ibstatus, "ibstatus port blocks"),
    _p("ibv_devinfo", ibv_devinfo, "ibv_devinfo [-v] hca_id blocks"),
    _p("ibstat", ibstat, "ibstat CA/port blocks"),
    _p("nvidia-smi-topo", nvidia_smi_topo, "nvidia-smi topo -m (or -p2p) matrix"),
    _p("nvidia-smi-nvlink", nvidia_smi_nvlink,
       "nvidia-smi nvlink -s / -e (and dcgmi nvlink --link-status)"),
    _p("dmesg-xid", dmesg_xid, "kernel log NVRM Xid / SXid lines"),
    _p("nvidia-smi-q", nvidia_smi_q, "nvidia-smi -q (full, -d sections or fragments)"),
    _p("nvidia-smi-query-gpu", nvidia_smi_query_gpu,
       "nvidia-smi --query-gpu / --query-retired-pages CSV"),
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
    return next((p.name for p in PARSERS if p.detect(text)), None)


def ingest_text(tool: str, text: str, *, node: str | None = None, source_name: str = "<stdin>",
                check: str | None = None) -> list[Measurement]:
    """Parse ``text`` as ``tool`` (or ``auto``) and return its measurement records."""
    if tool == "auto":
        if not text.strip():
            raise InputError(f"{source_name}: the file is empty")
        found = detect_tool(text)
        if found is None:
            raise InputError(f"{source_name}:1: cannot tell which tool wrote this file",
                             hint="name the tool: forge ingest TOOL FILE (TOOL one of "
                                  + ", ".join(names()) + ")")
        tool = found
    parser = get(tool)
    result = parser.parse(text, node=node, source_name=source_name)
    return parser.measurements(result, check=check)

"""``nvidia-smi --query-gpu=... --format=csv[,noheader][,nounits]`` (and ``--query-retired-pages``).

Columns are named by the header (units in brackets are dropped from the
name; values with or without units parse). Without a header (``noheader``)
columns are named from the shape of their values (a GPU name, a PCI device
id, a bus id, a UUID, a VBIOS version) and the rest stay ``colN``.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

from provision.measurement import Measurement
from provision.parsers.base import leading_float, parse_error, record, require_text, resolve_node
from provision.parsers.gpu_info import (
    REMAP_LEVELS,
    GpuInfo,
    flag,
    gpu_records,
    known,
    reason_key,
    remap_banks,
    reported,
)

TOOL = "nvidia-smi-query-gpu"
_FIELD = re.compile(r"^[a-z_][a-z0-9_.]*(?: \[[^\]]+\])?$", re.I)
_SHAPES = [
    ("uuid", re.compile(r"^GPU-[0-9a-fx-]{8,}$", re.I)),
    ("pci.bus_id", re.compile(r"^[0-9A-F]{4,8}:[0-9A-F]{2}:[0-9A-F]{2}\.\d$", re.I)),
    ("pci.device_id", re.compile(r"^0x[0-9A-F]{4}10DE$", re.I)),
    ("vbios_version", re.compile(r"^[0-9A-F]{2}(?:\.[0-9A-F]{2}){4}$", re.I)),
    ("name", re.compile(r"^(?:NVIDIA|Tesla|GeForce|Quadro|RTX|TITAN)\b")),
]


@dataclass(frozen=True)
class QueryGpuResult:
    node: str
    columns: tuple[str, ...]
    rows: tuple[tuple[tuple[str, str], ...], ...]  # per row: (column, raw value)
    gpus: tuple[GpuInfo, ...]
    retired_pages: bool  # a --query-retired-pages table rather than --query-gpu
    elided: bool = False  # rows were cut out ('[...]'): the row count is not the GPU count

    def column(self, name: str) -> list[str]:
        return [dict(r).get(name, "") for r in self.rows]


def detect(text: str) -> bool:
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    cells = [c.strip() for c in first.split(",")]
    if len(cells) >= 2 and sum(1 for c in cells if (_FIELD.match(c) and "." in c) or c in (
            "name", "index", "uuid", "serial", "timestamp", "gpu_name", "driver_version",
            "vbios_version", "count", "pstate")) >= 2:
        return True
    return len(cells) >= 2 and sum(1 for c in cells for _, rx in _SHAPES if rx.match(c)) >= 2


def _name(column: str) -> str:
    return re.sub(r"\s*\[[^\]]*\]$", "", column.strip())


def _is_header(cells: list[str]) -> bool:
    return all(_FIELD.match(c) for c in cells) and not any(
        rx.match(c) for c in cells for _, rx in _SHAPES)


def parse(text: str, *, node: str | None = None,
          source_name: str = "<stdin>") -> QueryGpuResult:
    lines = require_text(TOOL, text, source_name)
    body = [(i, ln) for i, ln in enumerate(lines, 1) if ln.strip() and ln.strip() != "[...]"]
    if not body:
        raise parse_error(TOOL, source_name, 1, "no CSV rows")
    try:
        table = list(csv.reader(io.StringIO("\n".join(ln for _, ln in body)),
                                skipinitialspace=True))
    except csv.Error as exc:  # a 128 KiB cell: not nvidia-smi's
        raise parse_error(TOOL, source_name, body[0][0] if body else 1,
                          f"not CSV output of nvidia-smi ({exc})") from None
    if _is_header([c.strip() for c in table[0]]):
        columns = [_name(c) for c in table[0]]
        data = list(zip(body[1:], table[1:], strict=True))
    else:
        columns = [next((n for n, rx in _SHAPES if rx.match(c.strip())), f"col{j}")
                   for j, c in enumerate(table[0])]
        if all(c.startswith("col") for c in columns):
            raise parse_error(TOOL, source_name, body[0][0], "neither a header of query "
                              "fields nor values shaped like GPU names, bus ids or UUIDs")
        data = list(zip(body, table, strict=True))
    if not data:
        raise parse_error(TOOL, source_name, body[0][0] + 1, "a header but no rows")
    rows = []
    for (lineno, _), cells in data:
        if len(cells) != len(columns):
            raise parse_error(TOOL, source_name, lineno,
                              f"{len(cells)} values for {len(columns)} columns")
        rows.append(tuple(zip(columns, (c.strip() for c in cells), strict=True)))
    retired = "retired_pages.cause" in columns
    gpus = () if retired else tuple(_gpu(j, dict(r)) for j, r in enumerate(rows))
    elided = any(ln.strip() == "[...]" for ln in lines)
    return QueryGpuResult(resolve_node(TOOL, source_name, None, node), tuple(columns),
                          tuple(rows), gpus, retired, elided)


def _f(row: dict[str, str], key: str) -> float | None:
    v = row.get(key)
    return leading_float(v) if v is not None and not v.startswith("[") else None


def _first(row: dict[str, str], *keys: str) -> float | None:
    """The first of ``keys`` (a field and its aliases) with a number."""
    return next((v for k in keys if (v := _f(row, k)) is not None), None)


def _gpu(position: int, r: dict[str, str]) -> GpuInfo:
    idx = _f(r, "index")

    def total(kind: str, bucket: str) -> float | None:
        return _f(r, f"ecc.errors.{kind}.{bucket}.total")

    return GpuInfo(
        index=int(idx) if idx is not None else position,
        name=r.get("name") or r.get("gpu_name"), uuid=r.get("uuid") or r.get("gpu_uuid"),
        serial=r.get("serial") or r.get("gpu_serial"),
        bus_id=r.get("pci.bus_id") or r.get("gpu_bus_id"), vbios=known(r.get("vbios_version")),
        driver_version=r.get("driver_version"),
        persistence_mode=flag(r.get("persistence_mode")), ecc_mode=flag(r.get("ecc.mode.current")),
        ecc_mode_pending=flag(r.get("ecc.mode.pending")),
        mig_mode=flag(r.get("mig.mode.current")), mig_mode_pending=flag(r.get("mig.mode.pending")),
        inforom_image=known(r.get("inforom.img") or r.get("inforom.image")),
        memory_total_mib=_f(r, "memory.total"),
        pcie_gen=_f(r, "pcie.link.gen.current"), pcie_gen_max=_f(r, "pcie.link.gen.max"),
        pcie_width=_f(r, "pcie.link.width.current"), pcie_width_max=_f(r, "pcie.link.width.max"),
        ecc_uncorrected_volatile=total("uncorrected", "volatile"),
        ecc_uncorrected_aggregate=total("uncorrected", "aggregate"),
        ecc_corrected_volatile=total("corrected", "volatile"),
        ecc_corrected_aggregate=total("corrected", "aggregate"),
        remapped_rows_correctable=_f(r, "remapped_rows.correctable"),
        remapped_rows_uncorrectable=_f(r, "remapped_rows.uncorrectable"),
        remapped_rows_pending=flag(r.get("remapped_rows.pending")),
        remapped_rows_failed=flag(r.get("remapped_rows.failure")),
        remap_banks=remap_banks([_f(r, f"remapped_rows.histogram.{k}") for k in REMAP_LEVELS]),
        retired_pages_sbe=_f(r, "retired_pages.single_bit_ecc.count")
        or _f(r, "retired_pages.sbe"),
        retired_pages_dbe=_f(r, "retired_pages.double_bit.count") or _f(r, "retired_pages.dbe"),
        retired_pages_pending=flag(r.get("retired_pages.pending")),
        temperature_c=_f(r, "temperature.gpu"), memory_temperature_c=_f(r, "temperature.memory"),
        power_draw_w=_f(r, "power.draw"),
        power_limit_w=_first(r, "enforced.power.limit", "gpu.power.current_limit", "power.limit"),
        power_requested_limit_w=_first(r, "power.limit", "gpu.power.requested_limit"),
        power_default_limit_w=_first(r, "power.default_limit", "gpu.power.default_limit"),
        recovery_action=reported(r.get("gpu_recovery_action")),
        sm_clock_mhz=_f(r, "clocks.current.sm") or _f(r, "clocks.sm"),
        sm_clock_max_mhz=_f(r, "clocks.max.sm"),
        clocks_events=tuple(
            (reason_key(k.split(".", 1)[1]), s) for k, v in r.items()
            if (k.startswith("clocks_event_reasons.") or k.startswith("clocks_throttle_reasons."))
            and (s := flag(v)) is not None))


def measurements(result: QueryGpuResult, check: str | None = None) -> list[Measurement]:
    check = check or TOOL
    out: list[Measurement] = []
    if result.retired_pages:
        by_cause: dict[str, int] = {}
        for r in result.rows:
            d = dict(r)
            cause = d.get("retired_pages.cause", "?")
            real = not d.get("retired_pages.address", "").startswith("[")
            by_cause[cause] = by_cause.get(cause, 0) + (1 if real else 0)
        for cause, n in by_cause.items():
            out.append(record(result.node, "retired_pages", n, check=check, detail=cause))
        return out
    if not result.elided:
        # a looped query (-l / -lms) prints the same GPUs again and again: count GPUs, not rows
        ids = {g.uuid or g.bus_id or (g.index if g.index is not None else k)
               for k, g in enumerate(result.gpus)}
        samples = f", {len(result.gpus)} rows" if len(ids) < len(result.gpus) else ""
        out.append(record(result.node, "gpu_count", len(ids), check=check,
                          detail=", ".join(sorted({g.name or "?" for g in result.gpus}))
                          + samples))
    for g in result.gpus:
        out.extend(gpu_records(result.node, g, check))
    return out

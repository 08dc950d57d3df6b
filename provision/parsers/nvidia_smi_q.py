"""``nvidia-smi -q`` (full, ``-d`` sections, or fragments) as a tree, then :class:`GpuInfo`.

The text is an indentation tree of ``Key : Value`` lines; the colon column
moved between driver generations (col 36, 42, 55) so only indentation and
the first ``" : "`` matter. Fields are looked up by the tail of their path
(``Link Width/Max``), which also finds them in fragments that start in the
middle of a GPU section. GPU sections are numbered in output order, which is
nvidia-smi's index order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

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

TOOL = "nvidia-smi-q"
_KV = re.compile(r"^(\S.*?)\s+:(?:\s(.*))?$")
_KNOWN = re.compile(r"^(Product Name|Driver Version|Clocks (?:Event|Throttle) Reasons|ECC Errors|"
                    r"FB Memory Usage|Link Width|PCIe Generation|Remapped Rows|Retired Pages|"
                    r"Temperature|Persistence Mode|Attached GPUs|Max Clocks|Clocks$|ECC Mode|"
                    r"Applications Clocks|Power Readings|GPU Power Readings)\b")
#: what nvidia-smi prints in place of a value it could not read: the tool's own words
_UNREADABLE = re.compile(r":\s*(GPU access blocked by the operating system|Unknown Error|ERR!|"
                         r"GPU requires reset|Unable to determine the device handle[^\n]*)\s*$")


@dataclass
class _Node:
    key: str
    value: str | None
    children: list[_Node] = field(default_factory=list)

    def find(self, *path: str) -> _Node | None:
        """The shallowest descendant whose key path ends with ``path``.

        Breadth first, so a GPU's own ``ECC Errors`` wins over the one inside
        a ``MIG Device`` block printed before it.
        """
        level = list(self.children)
        while level:
            for c in level:
                if c.key == path[0]:
                    hit: _Node | None = c
                    for part in path[1:]:
                        kids = hit.children if hit is not None else []
                        hit = next((g for g in kids if g.key == part), None)
                    if hit is not None:
                        return hit
            level = [g for c in level for g in c.children]
        return None

    def get(self, *path: str) -> str | None:
        n = self.find(*path)
        return n.value if n is not None else None


@dataclass(frozen=True)
class NvidiaSmiQResult:
    node: str
    driver_version: str | None
    cuda_version: str | None
    attached_gpus: int | None
    gpus: tuple[GpuInfo, ...]
    #: fields nvidia-smi could not read, in its words ('ECC Mode: GPU access blocked ...')
    unreadable: tuple[str, ...] = ()


def detect(text: str) -> bool:
    if "==============NVSMI LOG" in text:
        return True
    hits = sum(1 for ln in text.splitlines()[:400] if _KNOWN.match(ln.strip()))
    # an indented line, or a line after a blank one (what ``^\s+\S`` found, without letting
    # ``\s+`` run across every blank line from each of them: minutes on 200,000 of them)
    return hits >= 1 and bool(re.search(r"(?:^[^\S\n]+|^[^\S\n]*\n)\S.*?\s+: \S", text,
                                        re.M))


def _tree(lines: list[str], source: str) -> _Node:
    root = _Node("", None)
    stack: list[tuple[int, _Node]] = []
    for i, raw in enumerate(lines, 1):
        if not raw.strip() or raw.strip().startswith("=====") or raw.strip() in ("[...]", "..."):
            continue
        indent = len(raw) - len(raw.lstrip())
        text = raw.strip()
        m = _KV.match(text)
        node = _Node(m[1].strip(), (m[2] or "").strip()) if m else _Node(text, None)
        if not m and re.search(r"\s{3,}\S", text):
            raise parse_error(TOOL, source, i, f"not a 'Key : Value' line: {text[:60]!r}")
        while stack and stack[-1][0] >= indent:
            stack.pop()
        (stack[-1][1] if stack else root).children.append(node)
        stack.append((indent, node))
    # A fragment cut inside 'PCIe Generation' starts with its orphaned Max/Current lines;
    # nvidia-smi always prints that block right before 'Link Width', so give it back its name.
    lead = 0
    while lead < len(root.children) and root.children[lead].key in _GEN_KEYS:
        lead += 1
    if lead and lead < len(root.children) and root.children[lead].key == "Link Width":
        root.children[:lead] = [_Node("PCIe Generation", None, root.children[:lead])]
    return root


_GEN_KEYS = ("Max", "Current", "Device Current", "Device Max", "Host Max")


def _num(n: _Node, *path: str) -> float | None:
    return leading_float(n.get(*path) or "")


def _sum(section: _Node | None, include: str, exclude: str = "") -> float | None:
    """Sum of the numeric leaves under ``section`` whose key contains ``include``."""
    if section is None:
        return None
    vals = []
    stack = list(section.children)
    while stack:
        c = stack.pop()
        if c.children:
            if "Sources" not in c.key:  # per-unit breakdowns would count errors twice
                stack.extend(c.children)
            continue
        if include in c.key and not (exclude and exclude in c.key) and c.value is not None:
            v = leading_float(c.value)
            if v is not None and re.fullmatch(r"\d+", c.value.strip()):
                vals.append(v)
    return sum(vals) if vals else None


def _ecc(g: _Node, bucket: str, kind: str) -> float | None:
    errors = g.find("ECC Errors")
    section = errors.find(bucket) if errors is not None else None
    if section is None:
        return None
    if section.find("Double Bit") is not None:  # pre-Ampere layout: Single/Double Bit -> Total
        part = section.find("Double Bit" if kind == "Uncorrectable" else "Single Bit")
        return leading_float(part.get("Total") or "") if part is not None else None
    return _sum(section, kind) if kind == "Uncorrectable" else _sum(section, "Correctable", "Un")


def _gpu(index: int | None, g: _Node, driver: str | None) -> GpuInfo:
    reasons = g.find("Clocks Event Reasons") or g.find("Clocks Throttle Reasons")
    events: list[tuple[str, bool]] = []
    if reasons is not None:
        stack = list(reasons.children)
        while stack:
            c = stack.pop(0)
            stack.extend(c.children)
            state = flag(c.value)
            if state is not None:
                events.append((reason_key(re.sub(r"^Invalid ", "", c.key)), state))
    power = g.find("GPU Power Readings") or g.find("Power Readings")
    draw = None
    if power is not None:
        draw = leading_float(power.get("Power Draw") or power.get("Average Power Draw") or "")
    remap = g.find("Remapped Rows")
    retired = g.find("Retired Pages")
    return GpuInfo(
        index=index, name=g.get("Product Name"), uuid=g.get("GPU UUID"),
        serial=g.get("Serial Number"), bus_id=g.get("PCI", "Bus Id") or g.get("Bus Id"),
        vbios=known(g.get("VBIOS Version")), driver_version=driver,
        persistence_mode=flag(g.get("Persistence Mode")),
        ecc_mode=flag(g.get("ECC Mode", "Current")), mig_mode=flag(g.get("MIG Mode", "Current")),
        ecc_mode_pending=flag(g.get("ECC Mode", "Pending")),
        mig_mode_pending=flag(g.get("MIG Mode", "Pending")),
        inforom_image=known(g.get("Inforom Version", "Image Version")),
        recovery_action=reported(g.get("GPU Recovery Action")),
        memory_total_mib=_num(g, "FB Memory Usage", "Total"),
        pcie_gen=_num(g, "PCIe Generation", "Current"), pcie_gen_max=_num(g, "PCIe Generation",
                                                                          "Max"),
        pcie_width=_num(g, "Link Width", "Current"), pcie_width_max=_num(g, "Link Width", "Max"),
        pcie_replays=_num(g, "Replays Since Reset"),
        ecc_uncorrected_volatile=_ecc(g, "Volatile", "Uncorrectable"),
        ecc_uncorrected_aggregate=_ecc(g, "Aggregate", "Uncorrectable"),
        ecc_corrected_volatile=_ecc(g, "Volatile", "Correctable"),
        ecc_corrected_aggregate=_ecc(g, "Aggregate", "Correctable"),
        remapped_rows_correctable=_num(remap, "Correctable Error") if remap else None,
        remapped_rows_uncorrectable=_num(remap, "Uncorrectable Error") if remap else None,
        remapped_rows_pending=flag(remap.get("Pending")) if remap else None,
        remapped_rows_failed=flag(remap.get("Remapping Failure Occurred")) if remap else None,
        remap_banks=remap_banks([_num(remap, "Bank Remap Availability Histogram", k.title())
                                 for k in REMAP_LEVELS]) if remap else None,
        retired_pages_sbe=_num(retired, "Single Bit ECC") if retired else None,
        retired_pages_dbe=_num(retired, "Double Bit ECC") if retired else None,
        retired_pages_pending=flag(retired.get("Pending Page Blacklist")
                                   or retired.get("Pending Page Retirement")) if retired else None,
        temperature_c=_num(g, "Temperature", "GPU Current Temp"),
        memory_temperature_c=_num(g, "Temperature", "Memory Current Temp"),
        power_draw_w=draw,
        power_limit_w=leading_float((power.get("Current Power Limit") or power.get(
            "Power Limit") or "") if power is not None else ""),
        power_requested_limit_w=leading_float(power.get("Requested Power Limit") or "")
        if power is not None else None,
        power_default_limit_w=leading_float(power.get("Default Power Limit") or "")
        if power is not None else None,
        sm_clock_mhz=_num(g, "Clocks", "SM"), sm_clock_max_mhz=_num(g, "Max Clocks", "SM"),
        clocks_events=tuple(events))


def parse(text: str, *, node: str | None = None,
          source_name: str = "<stdin>") -> NvidiaSmiQResult:
    lines = require_text(TOOL, text, source_name)
    if not detect("\n".join(lines)):
        raise parse_error(TOOL, source_name, 1, "no nvidia-smi -q section or field found")
    root = _tree(lines, source_name)
    driver = root.get("Driver Version")
    sections = [c for c in root.children if re.match(r"GPU [0-9A-Fa-f]{4,}:", c.key)]
    gpus = tuple(_gpu(i, s, driver) for i, s in enumerate(sections)) if sections else (
        _gpu(None, root, driver),)
    attached = leading_float(root.get("Attached GPUs") or "")
    unreadable = tuple(dict.fromkeys(" ".join(ln.split()) for ln in lines
                                     if _UNREADABLE.search(ln)))
    return NvidiaSmiQResult(resolve_node(TOOL, source_name, None, node), driver,
                            root.get("CUDA Version"), int(attached) if attached else None, gpus,
                            unreadable)


def measurements(result: NvidiaSmiQResult, check: str | None = None) -> list[Measurement]:
    check = check or TOOL
    out: list[Measurement] = []
    if result.attached_gpus is not None:
        out.append(record(result.node, "gpu_count", result.attached_gpus, check=check,
                          detail=f"driver {result.driver_version}"))
    for g in result.gpus:
        out.extend(gpu_records(result.node, g, check))
    if result.unreadable:  # the tool said it could not read the GPU: a failure in its words
        out.append(record(result.node, "tool_ran_ok", 0, check=check, min=1.0,
                          detail=f"nvidia-smi -q: {'; '.join(result.unreadable)}"[:300]))
    return out

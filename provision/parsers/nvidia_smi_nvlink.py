"""``nvidia-smi nvlink -s`` / ``-e`` output, and ``dcgmi nvlink --link-status``.

``Link N: 26.562 GB/s`` is an active link at that speed; ``<inactive>`` is a
link that is not up. ``-e`` gives per-link error counters. The dcgmi form
gives one letter per link (U up, D down, X disabled, _ not supported).
"Device does not have or support Nvlink" and the MIG refusal are kept as the
GPU's note, not parse errors. Elided lines (``[...]``) are skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from provision.measurement import Measurement
from provision.parsers.base import parse_error, record, require_text, resolve_node, to_float

TOOL = "nvidia-smi-nvlink"
_GPU = re.compile(r"^GPU (\d+): (.*?)(?: \(UUID: ([^)]+)\))?$")
_LINK = re.compile(r"^Link (\d+): (.*)$")
_COUNTER = re.compile(r"^(Replay|Recovery|CRC|CRC Flit|CRC Data) Errors?: (\S+)$", re.I)
_DCGM_GPU = re.compile(r"^gpuId (\d+):$")
#: each counter name nvidia-smi prints -> its record's metric
COUNTER_METRIC = {"replay": "nvlink_replay_errors", "recovery": "nvlink_recovery_errors",
                   "crc": "nvlink_crc_errors", "crc flit": "nvlink_crc_errors",
                   "crc data": "nvlink_crc_errors"}


@dataclass(frozen=True)
class NvLink:
    link: int
    up: bool
    speed_gbs: float | None  # GB/s per direction as nvidia-smi prints it
    state: str  # "up", "inactive", "down", "disabled", "unsupported"
    counters: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class NvlinkGpu:
    index: int
    model: str | None
    uuid: str | None
    links: tuple[NvLink, ...]
    note: str | None = None  # "Device does not have or support Nvlink", MIG refusal
    #: the block was cut by an elision ('......'): its link count is not the GPU's
    partial: bool = False

    @property
    def links_up(self) -> int:
        return sum(1 for link in self.links if link.up)


@dataclass(frozen=True)
class NvlinkResult:
    node: str
    gpus: tuple[NvlinkGpu, ...]
    source_tool: str  # "nvidia-smi" or "dcgmi"

    def gpu(self, index: int) -> NvlinkGpu | None:
        return next((g for g in self.gpus if g.index == index), None)


#: where a paste was cut short: '...', '....', '[...]', '......'
_ELIDED = re.compile(r"^\[?\.{3,}\]?$")


def detect(text: str) -> bool:
    return bool(re.search(
        r"^[^\S\n]*Link \d+: (?:[\d.]+ GB/s|<inactive>|Replay|Recovery|CRC)|NvLink Link Status|"
        r"does not have or support Nvlink|Nvlink queries are not supported", text, re.M | re.I))


def _link_state(text: str) -> tuple[bool, float | None, str]:
    m = re.match(r"([\d.]+) GB/s", text)
    if m:
        return True, float(m[1]), "up"
    return False, None, "inactive" if "inactive" in text.lower() else text.strip().lower()


def parse(text: str, *, node: str | None = None, source_name: str = "<stdin>") -> NvlinkResult:
    lines = require_text(TOOL, text, source_name)
    if any("NvLink Link Status" in ln for ln in lines):
        return _parse_dcgmi(lines, node, source_name)
    gpus: list[dict] = []
    for raw in lines:
        ln = raw.strip()
        if not ln:
            continue
        if _ELIDED.match(ln):
            if gpus:
                gpus[-1]["partial"] = True
            continue
        if m := _GPU.match(ln):
            uuid = m[3] if m[3] and m[3].startswith(("GPU-", "MIG-")) else None  # not '...'
            gpus.append({"index": int(m[1]), "model": m[2], "uuid": uuid, "links": {},
                         "note": None, "partial": False})
            continue
        if not gpus:
            continue  # before the first GPU: a prompt, a note, a fragment's cut head
        g = gpus[-1]
        if m := _LINK.match(ln):
            num, rest = int(m[1]), m[2].strip()
            links: dict[int, dict] = g["links"]
            entry = links.setdefault(num, {"up": False, "speed": None, "state": "unknown",
                                           "counters": []})
            if c := _COUNTER.match(rest):
                v = to_float(c[2])
                if v is not None:
                    entry["counters"].append((c[1].lower(), int(v)))
                entry["state"] = entry["state"] if entry["state"] != "unknown" else "counters"
            else:
                entry["up"], entry["speed"], entry["state"] = _link_state(rest)
        elif re.search(r"nvlink", ln, re.I):
            g["note"] = ln
        # else: a line of something else pasted in; the links read so far stand
    if not gpus:
        raise parse_error(TOOL, source_name, 1, "no 'GPU N: ...' line found")
    result = tuple(
        NvlinkGpu(g["index"], g["model"], g["uuid"], tuple(
            NvLink(n, e["up"], e["speed"], e["state"], tuple(e["counters"]))
            for n, e in sorted(g["links"].items())), g["note"], g["partial"])
        for g in gpus)
    return NvlinkResult(resolve_node(TOOL, source_name, None, node), result, "nvidia-smi")


_DCGM_STATE = {"U": (True, "up"), "D": (False, "down"), "X": (False, "disabled"),
               "_": (False, "unsupported")}


def _parse_dcgmi(lines: list[str], node: str | None, source_name: str) -> NvlinkResult:
    gpus: list[NvlinkGpu] = []
    current: int | None = None
    for i, raw in enumerate(lines, 1):
        ln = raw.strip()
        if m := _DCGM_GPU.match(ln):
            current = int(m[1])
        elif current is not None and ln and all(t in _DCGM_STATE for t in ln.split()):
            links = tuple(NvLink(n, _DCGM_STATE[t][0], None, _DCGM_STATE[t][1])
                          for n, t in enumerate(ln.split()))
            gpus.append(NvlinkGpu(current, None, None, links))
            current = None
        elif current is not None and ln:
            raise parse_error(TOOL, source_name, i, f"expected link letters, got {ln[:60]!r}")
    if not gpus:
        raise parse_error(TOOL, source_name, 1, "no 'gpuId N:' link rows in dcgmi nvlink output")
    return NvlinkResult(resolve_node(TOOL, source_name, None, node), tuple(gpus), "dcgmi")


def measurements(result: NvlinkResult, check: str | None = None) -> list[Measurement]:
    """Links up per GPU, speed per active link, down links (max 0) and error counters (max 0)."""
    check = check or TOOL
    out: list[Measurement] = []
    for g in result.gpus:
        kw: dict[str, Any] = {"gpu": g.index, "model": g.model, "uuid": g.uuid, "check": check}
        status_known = any(lk.state not in ("counters",) for lk in g.links)
        if g.note and not g.links:
            if "not have" in g.note:  # a GPU without NVLink: zero links up is the truth
                out.append(record(result.node, "nvlink_links_up", 0, detail=g.note, **kw))
            else:  # the query was refused (MIG): nothing is known about the links
                out.append(record(result.node, "tool_ran_ok", 0, min=1.0, detail=g.note, **kw))
            continue
        if status_known and not g.partial:
            out.append(record(result.node, "nvlink_links_up", g.links_up,
                              detail=f"{g.links_up}/{len(g.links)} links up", **kw))
        if status_known:
            down = [lk.link for lk in g.links if lk.state == "down"]
            if g.links_up:  # some links work: the inactive ones are down, not absent
                down += [lk.link for lk in g.links if lk.state == "inactive"]
            if result.source_tool == "dcgmi" or down:
                out.append(record(result.node, "nvlink_links_down", len(down), max=0.0,
                                  detail="links down: " + ",".join(map(str, down)), **kw))
        for lk in g.links:
            if lk.speed_gbs is not None:
                out.append(record(result.node, "nvlink_link_speed", lk.speed_gbs,
                                  detail=f"link {lk.link}", **kw))
            for name, value in lk.counters:
                out.append(record(result.node, COUNTER_METRIC[name], value, max=0.0,
                                  detail=f"link {lk.link}", **kw))
    return out

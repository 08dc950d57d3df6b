"""Kernel-log Xid (and related NVRM) lines from dmesg, ``dmesg -T``, ``--time-format iso``,
``--decode`` or journalctl/syslog.

Every ``NVRM: Xid (PCI:<bus>): <code>, ...`` line is an event of GPU
``<bus>``; NVSwitch ``SXid`` lines and "GPU has fallen off the bus" are
kept too. The PCI bus id is the GPU's identity here (the kernel log does
not know nvidia-smi's index); the ``NVRM: GPU at PCI:... : GPU-<uuid>`` lines
that precede some events give the UUID.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from provision.measurement import Measurement
from provision.parsers.base import parse_error, record, require_text, resolve_node

TOOL = "dmesg-xid"
_XID = re.compile(r"NVRM: Xid \((?:PCI:)?([0-9a-fA-F:.]+)\): (\d+),\s*(.*)$")
_SXID = re.compile(r"SXid \((?:PCI:)?([0-9a-fA-F:.]+)\): (\d+),\s*(.*)$")
_FELL = re.compile(r"NVRM: GPU (?:at )?(?:PCI:)?([0-9a-fA-F:.]+)?.*has fallen off the bus")
#: the newer drivers' multi-line form: 'NVRM: The NVIDIA GPU 0000:b3:00.0' ... 'NVRM: fallen
#: off the bus and is not responding to commands.' a line or two later
_GPU_NAMED = re.compile(r"NVRM: The NVIDIA GPU ([0-9a-fA-F]{4,8}:[0-9a-fA-F]{2}:[0-9a-fA-F.]+)")
_UUID = re.compile(r"NVRM: GPU at PCI:([0-9a-fA-F:.]+): (GPU-[0-9a-f-]+)")
_TS = re.compile(r"^\s*(?:>\s*)?(?:kern\s*:\s*\w+\s*:\s*)?(\[[^\]]+\]|\d{4}-\d\d-\d\dT[\d:,.+]+|"
                 r"[A-Z][a-z]{2}\s+\d+\s[\d:]{8}\s\S+\s+kernel:)?\s*")
#: journalctl / syslog name the host: ``Mar 01 12:00:00 gpu017 kernel: ...`` (ISO form too)
_JOURNAL_HOST = re.compile(r"^\s*(?:[A-Z][a-z]{2}\s+\d+\s[\d:]{8}|\d{4}-\d\d-\d\dT[\d:,.+-]+)"
                           r"\s+([A-Za-z0-9][\w.-]*)\s+kernel:")
_LOG_LINE = re.compile(r"NVRM:|kernel:|^\s*\[\s*\d+\.\d+\]|^\s*\[\w{3} \w{3}|"
                       r"^\s*\d{4}-\d\d-\d\dT|^kern\s*:|^\w{3}\s+\d+ [\d:]{8} ")


@dataclass(frozen=True)
class XidEvent:
    pci: str
    xid: int
    message: str
    time: str | None
    line: int
    kind: str = "Xid"  # "Xid", "SXid" or "fallen off the bus"


@dataclass(frozen=True)
class XidResult:
    node: str
    events: tuple[XidEvent, ...]
    uuids: tuple[tuple[str, str], ...]  # (pci, uuid) from 'NVRM: GPU at PCI:...' lines
    log_lines: int

    def codes(self) -> dict[int, int]:
        out: dict[int, int] = {}
        for e in self.events:
            out[e.xid] = out.get(e.xid, 0) + 1
        return out


def detect(text: str) -> bool:
    # a GPU event, else a kernel log at all (journalctl -k, dmesg): one without events is news
    return bool(re.search(r"NVRM: Xid|SXid \(|NVRM: GPU|fallen off the bus", text)) or bool(
        re.search(r"^[A-Z][a-z]{2}\s+\d+ [\d:]{8} \S+ kernel: |^[^\S\n]*\[\s*\d+\.\d{6}\] ", text,
                  re.M))


def parse(text: str, *, node: str | None = None, source_name: str = "<stdin>") -> XidResult:
    lines = require_text(TOOL, text, source_name)
    events: list[XidEvent] = []
    uuids: dict[str, str] = {}
    log_lines = 0
    host: str | None = None
    named: str | None = None  # the GPU an 'NVRM: The NVIDIA GPU ...' line just named
    for i, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        if _LOG_LINE.search(raw):
            log_lines += 1
            if host is None and (h := _JOURNAL_HOST.match(raw)):
                host = h[1]
        ts = _TS.match(raw)
        time = ts[1].strip("[]").strip() if ts and ts[1] else None
        if m := _XID.search(raw):
            events.append(XidEvent(m[1], int(m[2]), m[3].strip(), time, i))
        elif m := _SXID.search(raw):
            events.append(XidEvent(m[1], int(m[2]), m[3].strip(), time, i, "SXid"))
        elif m := _FELL.search(raw):
            events.append(XidEvent(m[1] or "?", 79, raw.strip(), time, i, "fallen off the bus"))
        elif "fallen off the bus" in raw:
            events.append(XidEvent(named or "?", 79, raw.strip(), time, i, "fallen off the bus"))
        elif m := _GPU_NAMED.search(raw):
            named = m[1]
        elif m := _UUID.search(raw):
            uuids[m[1]] = m[2]
    if not log_lines:
        raise parse_error(TOOL, source_name, 1, "no kernel log line (NVRM:, timestamps) found")
    return XidResult(resolve_node(TOOL, source_name, host, node), tuple(events),
                     tuple(uuids.items()), log_lines)


def measurements(result: XidResult, check: str | None = None) -> list[Measurement]:
    """One xid_events record per (GPU, Xid code) with the count; 0 when the log has none."""
    check = check or TOOL
    if not result.events:
        return [record(result.node, "xid_events", 0, check=check, max=0.0,
                       detail=f"no Xid in {result.log_lines} kernel log lines")]
    uuids = dict(result.uuids)
    groups: dict[tuple[str, str, int], list[XidEvent]] = {}
    for e in result.events:
        groups.setdefault((e.kind, e.pci, e.xid), []).append(e)
    out = []
    for (kind, pci, xid), evs in groups.items():
        metric = "sxid_events" if kind == "SXid" else "xid_events"
        first = evs[0]
        when = f" first at {first.time}" if first.time else ""
        out.append(record(result.node, metric, len(evs), check=check, max=0.0,
                          uuid=uuids.get(pci), bus_id=None if pci == "?" else pci,
                          detail=f"{kind} {xid} on PCI:{pci}{when}: {first.message}"[:300]))
    return out

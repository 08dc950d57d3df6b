"""Render BMC outcomes as grouped text or stable JSON, and pick the exit code (pure).

Exit codes (``docs/bmc.md``), the most severe wins:
2 credentials rejected or certificate not trusted (fix the input, then rerun),
4 a BMC unreachable (refused, reset, no answer before the node deadline),
124 an action accepted but its new state not reported before the deadline,
1 a mismatch with the spec, a firmware difference, or a BMC that could not do it,
0 everything as the spec says.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from provision.bmc import bios, firmware
from provision.bmc.actions import ActionResult
from provision.bmc.bios import BiosReading, SettingAudit
from provision.bmc.firmware import ComponentAudit
from provision.bmc.model import Mismatch, NodeInventory, Outcome, Status
from provision.errors import (
    ChecksFailed,
    CommandTimeout,
    ExitCode,
    ForgeError,
    InputError,
    UnreachableError,
    combine,
)
from provision.nodes import fold, group_by_text

SCHEMA_VERSION = 1

_FAILURE_ORDER = (
    (Status.AUTH_FAILED, ExitCode.BAD_INPUT),
    (Status.TLS_FAILED, ExitCode.BAD_INPUT),
    (Status.UNREACHABLE, ExitCode.HOSTS_UNREACHABLE),
    (Status.TIMEOUT, ExitCode.TIMEOUT),
    (Status.ERROR, ExitCode.CHECKS_FAILED),
)


def exit_code(outcomes: Sequence[Outcome[Any]], differences: bool) -> ExitCode:
    by_status = dict(_FAILURE_ORDER)
    return combine([*(by_status.get(o.status, ExitCode.OK) for o in outcomes),
                    ExitCode.CHECKS_FAILED if differences else ExitCode.OK])


def failure_error(outcomes: Sequence[Outcome[Any]], differences: int, noun: str,
                  ) -> ForgeError | None:
    """The error the CLI raises after printing the report (None: exit 0)."""
    code = exit_code(outcomes, bool(differences))
    if code == ExitCode.OK:
        return None
    bad = [o for o in outcomes if o.status != Status.OK]
    parts = []
    for status, _ in _FAILURE_ORDER:
        nodes = [o.node for o in bad if o.status == status]
        if nodes:
            parts.append(f"{status.value}: {fold(nodes)}")
    if differences:
        parts.append(f"{differences} {noun}")
    message = "; ".join(parts)
    if code == ExitCode.BAD_INPUT:
        hint = None
        if any(o.status == Status.AUTH_FAILED for o in bad):
            hint = "check bmc.username and the secret bmc.password points to"
        elif any(o.status == Status.TLS_FAILED for o in bad):
            hint = "give bmc.ca_bundle or bmc.pinned_sha256, or pass --insecure"
        return InputError(message, hint=hint)
    if code == ExitCode.HOSTS_UNREACHABLE:
        return UnreachableError(message)
    if code == ExitCode.TIMEOUT:
        return CommandTimeout(message, hint="raise --timeout if this BMC is just slow")
    return ChecksFailed(message)


def failure_lines(outcomes: Sequence[Outcome[Any]]) -> list[str]:
    per = {o.node: f"{o.status.value}: {o.message}" for o in outcomes if o.status != Status.OK}
    return [f"{ns}: {text}" for ns, text in group_by_text(per)]


def inventory_line(inv: NodeInventory) -> str:
    bits = [inv.model or inv.manufacturer or "unknown model",
            f"power {inv.power_state or '?'}", f"health {inv.health or '?'}",
            f"BMC {inv.bmc_version or '?'}", f"UEFI {inv.bios_version or '?'}"]
    if inv.memory_gib is not None:
        bits.append(f"{inv.memory_gib:g} GiB")
    if inv.cpu_count is not None:
        bits.append(f"{inv.cpu_count} CPUs")
    bits.append(f"{len(inv.gpus)} GPUs" if "PCIeDevices" not in inv.not_exposed
                else "GPUs not exposed")
    bits.append(f"{len(inv.all_macs())} MACs")
    return ", ".join(bits)


def inventory_text(outcomes: Sequence[Outcome[NodeInventory]],
                   findings: Mapping[str, Sequence[Mismatch]]) -> list[str]:
    lines: list[str] = []
    per = {o.node: inventory_line(o.value) for o in outcomes if o.value is not None}
    lines += [f"{ns}: {text}" for ns, text in group_by_text(per)]
    serials = {o.node: o.value.serial for o in outcomes if o.value is not None and o.value.serial}
    if serials:
        lines += [f"  {node}: serial {s}" for node, s in serials.items()]
    lines += failure_lines(outcomes)
    mism = {f"{f.node}\0{f.field}": f for fs in findings.values() for f in fs
            if f.severity == "mismatch"}
    if mism:
        lines.append("mismatches:")
        grouped: dict[str, list[str]] = {}
        for f in mism.values():
            grouped.setdefault(f.text(), []).append(f.node)
        lines += [f"  {fold(nodes)}: {text}" for text, nodes in sorted(
            grouped.items(), key=lambda kv: fold(kv[1]))]
    unver: dict[str, list[str]] = {}
    for fs in findings.values():
        for f in fs:
            if f.severity == "unverified":
                unver.setdefault(f.text(), []).append(f.node)
    if unver:
        lines.append("unverified (the BMC does not expose it):")
        lines += [f"  {fold(nodes)}: {text}" for text, nodes in sorted(unver.items())]
    return lines


def inventory_json(outcomes: Sequence[Outcome[NodeInventory]],
                   findings: Mapping[str, Sequence[Mismatch]]) -> dict[str, Any]:
    nodes = {}
    for o in outcomes:
        nodes[o.node] = {
            "address": o.address, "status": o.status.value, "message": o.message,
            "elapsed_s": round(o.elapsed_s, 3),
            "inventory": dataclasses.asdict(o.value) if o.value is not None else None,
            "findings": [dataclasses.asdict(f) for f in findings.get(o.node, ())],
        }
    return {"schema_version": SCHEMA_VERSION, "kind": "bmc-inventory", "nodes": nodes,
            "summary": _summary(outcomes, sum(
                1 for fs in findings.values() for f in fs if f.severity == "mismatch"))}


def node_serials(path: Path) -> dict[str, str]:
    """Node -> the system serial number, from a saved ``forge bmc inventory --json``."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a forge bmc inventory --json document ({exc})") from None
    if not isinstance(doc, dict) or doc.get("kind") != "bmc-inventory":
        raise InputError(f"{path}: not a forge bmc inventory --json document",
                         hint="save it with: forge bmc inventory SPEC --json > inventory.json")
    out: dict[str, str] = {}
    for node, entry in (doc.get("nodes") or {}).items():
        inv = entry.get("inventory") if isinstance(entry, dict) else None
        if isinstance(inv, dict) and isinstance(inv.get("serial"), str) and inv["serial"]:
            out[str(node)] = inv["serial"]
    return out


def _summary(outcomes: Sequence[Outcome[Any]], differences: int) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.status.value] = counts.get(o.status.value, 0) + 1
    return {"nodes": len(outcomes), "by_status": counts, "differences": differences,
            "exit_code": int(exit_code(outcomes, bool(differences)))}


def group_audits(rows: Sequence[tuple[str, str, str, str]]) -> list[tuple[str, str, str]]:
    """(node set, state, text) from (key, node, text, state) rows: key by key in the rows'
    order, nodes with identical text folded (``gpu[001-003]``)."""
    per_key: dict[str, dict[str, str]] = {}
    states: dict[str, str] = {}
    for key, node, text, state in rows:
        per_key.setdefault(key, {})[node] = text
        states[text] = state
    return [(ns, states[text], text) for texts in per_key.values()
            for ns, text in group_by_text(texts)]


def _audit_lines(groups: Sequence[tuple[str, str, str]]) -> list[str]:
    return [f"{ns}: {'DIFFERS ' if state == 'differs' else ''}{text}"
            for ns, state, text in groups]


def _group_docs(groups: Sequence[tuple[str, str, str]]) -> list[dict[str, str]]:
    return [{"nodes": ns, "state": state, "text": text} for ns, state, text in groups]


def firmware_text(outcomes: Sequence[Outcome[NodeInventory]],
                  audits: Sequence[ComponentAudit]) -> list[str]:
    return _audit_lines(group_audits(firmware.audit_rows(audits))) + failure_lines(outcomes)


def firmware_json(outcomes: Sequence[Outcome[NodeInventory]],
                  audits: Sequence[ComponentAudit], baseline: Mapping[str, str],
                  ) -> dict[str, Any]:
    differs = sum(1 for a in audits if a.state == "differs")
    return {
        "schema_version": SCHEMA_VERSION, "kind": "bmc-firmware", "baseline": dict(baseline),
        "groups": _group_docs(group_audits(firmware.audit_rows(audits))),
        "nodes": {o.node: {"status": o.status.value, "message": o.message,
                           "components": {a.component: {"versions": list(a.versions),
                                                        "state": a.state}
                                          for a in audits if a.node == o.node}}
                  for o in outcomes},
        "summary": _summary(outcomes, differs),
    }


def bios_text(outcomes: Sequence[Outcome[BiosReading]],
              audits: Sequence[SettingAudit]) -> list[str]:
    return (_audit_lines(group_audits(bios.audit_rows(audits))) + _unexposed(outcomes)
            + _unread_pending(outcomes) + failure_lines(outcomes))


def bios_json(outcomes: Sequence[Outcome[BiosReading]], audits: Sequence[SettingAudit],
              differences: int) -> dict[str, Any]:
    """``differences``: the nodes counted off the baseline (unverified ones too with --strict),
    so ``summary.exit_code`` is the exit code."""
    return {
        "schema_version": SCHEMA_VERSION, "kind": "bmc-bios",
        "groups": _group_docs(group_audits(bios.audit_rows(audits))),
        "nodes": {o.node: {"status": o.status.value, "message": o.message,
                           "exposed": o.value.exposed if o.value else None,
                           "pending_error": o.value.pending_error if o.value else None,
                           "settings": {a.wanted.name: {
                               "wanted": a.wanted.value, "source": a.wanted.source,
                               "seen": a.seen, "pending": a.pending, "state": a.state}
                               for a in audits if a.node == o.node}}
                  for o in outcomes},
        "summary": _summary(outcomes, differences),
    }


def bios_show_text(outcomes: Sequence[Outcome[BiosReading]]) -> list[str]:
    """Every attribute, nodes folded by value: drift shows as two lines for one name."""
    per_name: dict[str, dict[str, str]] = {}
    for o in outcomes:
        if o.value is None:
            continue
        pending = dict(o.value.pending)
        for name, value in o.value.attributes:
            staged = pending.get(name)
            per_name.setdefault(name, {})[o.node] = value + (
                f" ({staged} staged for the next boot)" if staged not in (None, value) else "")
    lines = [f"{ns}: {name} = {text}" for name in sorted(per_name)
             for ns, text in group_by_text(per_name[name])]
    return lines + _unexposed(outcomes) + _unread_pending(outcomes) + failure_lines(outcomes)


def bios_show_json(outcomes: Sequence[Outcome[BiosReading]]) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION, "kind": "bmc-bios-attributes",
        "nodes": {o.node: {"status": o.status.value, "message": o.message,
                           "exposed": o.value.exposed if o.value else None,
                           "pending_error": o.value.pending_error if o.value else None,
                           "attributes": dict(o.value.attributes) if o.value else None,
                           "pending": dict(o.value.pending) if o.value else None}
                  for o in outcomes},
        "summary": _summary(outcomes, 0),
    }


def _unread_pending(outcomes: Sequence[Outcome[BiosReading]]) -> list[str]:
    per = {o.node: f"changes staged for the next boot unreadable: {o.value.pending_error}"
           for o in outcomes if o.value is not None and o.value.pending_error}
    return [f"{ns}: {text}" for ns, text in group_by_text(per)]


def _unexposed(outcomes: Sequence[Outcome[BiosReading]]) -> list[str]:
    nodes = [o.node for o in outcomes if o.value is not None and not o.value.exposed]
    return [f"{fold(nodes)}: the BMC exposes no BIOS resource (Systems/<id>/Bios)"] if nodes \
        else []


def action_text(outcomes: Sequence[Outcome[ActionResult]]) -> list[str]:
    per = {}
    for o in outcomes:
        if o.value is None:
            continue
        text = o.value.state + ("" if o.value.changed else " (unchanged)")
        if o.value.detail:
            text += f"; {o.value.detail}"
        per[o.node] = text
    return [f"{ns}: {t}" for ns, t in group_by_text(per)] + failure_lines(outcomes)


def action_json(kind: str, outcomes: Sequence[Outcome[ActionResult]]) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION, "kind": f"bmc-{kind}",
        "nodes": {o.node: {"address": o.address, "status": o.status.value,
                           "message": o.message, "elapsed_s": round(o.elapsed_s, 3),
                           "result": dataclasses.asdict(o.value) if o.value else None}
                  for o in outcomes},
        "summary": _summary(outcomes, 0),
    }

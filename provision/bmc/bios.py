"""UEFI (BIOS) settings read over Redfish and audited against the spec and the profile.

What a node is held to:

- every attribute of ``bmc.bios_baseline``, by name and value exactly as the BMC reports
  them in ``Systems/<id>/Bios`` ``Attributes`` (take them from a node known to be good:
  ``forge bmc bios SPEC --nodes NODE --show``);
- the hardware profile's ``operating_mode`` against Lenovo's
  ``OperatingModes_ChooseOperatingMode``, unless the baseline names that attribute
  itself. The reference architecture asks acceptance to report the mode (factory
  "Maximum Efficiency" on the InfiniBand node, "Maximum Performance" on the Ethernet
  node), and ThinkSystem V3 servers with AMD EPYC 9004 offer those two presets (Lenovo
  Press LP1977). The two are compared as names, ignoring case, spaces, dashes and
  underscores, so the profile's ``maximum-efficiency`` matches the XCC's token for it.

A change staged on the XCC but not applied yet (the ``@Redfish.Settings``
``SettingsObject``, ``Systems/1/Bios/Pending`` on the XCC; applied ``OnReset``: Lenovo
XCC2 REST API guide, "GET - Resource for BIOS") is read too: a node whose pending value
is off the baseline changes at its next boot, so it differs now.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from provision.bmc.client import session
from provision.bmc.inventory import select_system
from provision.bmc.model import BmcOptions, BmcTarget

OPERATING_MODE = "OperatingModes_ChooseOperatingMode"


@dataclass(frozen=True)
class BiosReading:
    """One node's BIOS attributes as its BMC reports them (values as text)."""

    node: str
    attributes: tuple[tuple[str, str], ...]
    #: attributes staged for the next boot (only those the BMC lists as pending)
    pending: tuple[tuple[str, str], ...] = ()
    #: False where the BMC has no BIOS resource (sushy-tools' fake driver, some firmware)
    exposed: bool = True
    #: why the staged changes could not be read (then nothing can be said of them)
    pending_error: str | None = None


@dataclass(frozen=True)
class Wanted:
    """One setting a node must show, and who says so."""

    name: str
    value: str
    source: str
    #: compared as names (the profile's operating mode), not as exact text
    loose: bool = False

    def same(self, seen: str) -> bool:
        if self.loose:
            return _name(seen) == _name(self.value)
        return seen == self.value


@dataclass(frozen=True)
class SettingAudit:
    node: str
    wanted: Wanted
    seen: str | None
    pending: str | None = None
    #: the staged changes could not be read: a right value now proves nothing of the next boot
    pending_error: str | None = None

    @property
    def state(self) -> str:
        staged_off = self.pending is not None and not self.wanted.same(self.pending)
        if self.seen is not None and (staged_off or not self.wanted.same(self.seen)):
            return "differs"
        if self.seen is None or self.pending_error is not None:
            return "unverified"
        return "ok"

    def text(self) -> str:
        w = self.wanted
        if self.seen is None:
            return f"{w.name}: not reported by the BMC (wanted {w.value}, {w.source})"
        if self.state == "unverified":
            return f"{w.name}: {self.seen} now, the changes staged for the next boot unread"
        staged = (f", {self.pending} staged for the next boot"
                  if self.pending is not None and self.pending != self.seen else "")
        if self.state == "ok":
            return f"{w.name}: {self.seen} ok{staged}"
        now = " now" if staged else ""
        return f"{w.name}: {self.seen}{now}{staged} (wanted {w.value}, {w.source})"


def wanted_settings(baseline: Mapping[str, str], operating_mode: str | None,
                    profile: str) -> tuple[Wanted, ...]:
    """The baseline's settings, then the profile's operating mode unless the baseline has it."""
    out = [Wanted(k, v, "bmc.bios_baseline") for k, v in baseline.items()]
    if operating_mode and OPERATING_MODE not in baseline:
        out.append(Wanted(OPERATING_MODE, operating_mode,
                          f"profile {profile} operating_mode", loose=True))
    return tuple(out)


def audit_node(reading: BiosReading, wanted: Sequence[Wanted]) -> list[SettingAudit]:
    attrs, pending = dict(reading.attributes), dict(reading.pending)
    return [SettingAudit(reading.node, w, attrs.get(w.name), pending.get(w.name),
                         reading.pending_error) for w in wanted]


def audit_rows(audits: Sequence[SettingAudit]) -> list[tuple[str, str, str, str]]:
    """(setting, node, text, state) in the settings' order, for the report's grouping."""
    return [(a.wanted.name, a.node, a.text(), a.state) for a in audits]


def read_bios(root: Any, node: str) -> BiosReading:
    """The node's BIOS attributes and its staged changes (none where the BMC has none)."""
    system = select_system(root, node)
    if "Bios" not in system.json:
        return BiosReading(node, (), exposed=False)
    bios = system.bios
    pending: dict[str, Any] = {}
    error = None
    if "@Redfish.Settings" in bios.json:
        try:
            pending = dict(bios.pending_attributes or {})
        except Exception as exc:  # the current values still count; the staged ones are unknown
            error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
    return BiosReading(node, _text_items(bios.attributes or {}), _text_items(pending),
                       pending_error=error)


def bios_work(opts: BmcOptions) -> Callable[[BmcTarget, float], BiosReading]:
    def work(target: BmcTarget, deadline: float) -> BiosReading:
        with session(target, opts, deadline) as root:
            return read_bios(root, target.node)
    return work


def _text_items(attributes: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(k), attribute_text(v)) for k, v in attributes.items()))


def attribute_text(value: Any) -> str:
    """An attribute value as text: JSON true/false as YAML writes them in the spec."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _name(text: str) -> str:
    return re.sub(r"[\s_\-]+", "", text).lower()

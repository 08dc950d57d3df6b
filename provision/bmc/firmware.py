"""Firmware audit against the spec's baseline recipe (pure functions).

Components and where their versions come from, in order of preference:

- ``xcc``: FirmwareInventory ``BMC-Primary``, else the Manager's FirmwareVersion
- ``uefi``: FirmwareInventory ``UEFI``, else the ComputerSystem's BiosVersion
- ``lxpm``: FirmwareInventory ``LXPM``
- ``gpu_vbios``: FirmwareVersion of every PCIe device classed as a GPU
- ``connectx``: FirmwarePackageVersion of every NetworkAdapter controller,
  else FirmwareVersion of every PCIe device classed as a NIC

A node whose every GPU (or adapter) is on the baseline passes; one part off
the baseline makes the node differ, and the report names the versions seen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from provision.bmc.model import NodeInventory

COMPONENTS = ("xcc", "uefi", "lxpm", "gpu_vbios", "connectx")

_INVENTORY_IDS = {"xcc": ("BMC-Primary", "BMC"), "uefi": ("UEFI", "BIOS"), "lxpm": ("LXPM",)}


def component_versions(inv: NodeInventory, component: str) -> tuple[str, ...]:
    """Versions of one component on one node, one per part (empty: not reported)."""
    by_id = {item.id: item.version for item in inv.firmware if item.version}
    for fw_id in _INVENTORY_IDS.get(component, ()):
        if fw_id in by_id:
            return (str(by_id[fw_id]),)
    if component == "xcc":
        return (inv.bmc_version,) if inv.bmc_version else ()
    if component == "uefi":
        return (inv.bios_version,) if inv.bios_version else ()
    if component == "gpu_vbios":
        return tuple(g.firmware_version for g in inv.gpus if g.firmware_version)
    if component == "connectx":
        from_adapters = tuple(a.firmware_version for a in inv.adapters if a.firmware_version)
        if from_adapters:
            return from_adapters
        return tuple(d.firmware_version for d in inv.pcie
                     if d.kind == "nic" and d.firmware_version)
    return ()


@dataclass(frozen=True)
class ComponentAudit:
    node: str
    component: str
    baseline: str
    versions: tuple[str, ...]

    @property
    def state(self) -> str:
        if not self.versions:
            return "unverified"
        return "ok" if all(v == self.baseline for v in self.versions) else "differs"

    def text(self) -> str:
        if self.state == "unverified":
            return f"{self.component}: not reported by the BMC (baseline {self.baseline})"
        if self.state == "ok":
            return f"{self.component}: {self.baseline} ok"
        counts: dict[str, int] = {}
        for v in self.versions:
            counts[v] = counts.get(v, 0) + 1
        seen = ", ".join(f"{v} x{n}" if n > 1 else v for v, n in sorted(counts.items()))
        return f"{self.component}: {seen} (baseline {self.baseline})"


def audit_node(inv: NodeInventory, baseline: Mapping[str, str]) -> list[ComponentAudit]:
    return [ComponentAudit(inv.node, comp, str(ver), component_versions(inv, comp))
            for comp, ver in baseline.items()]


def audit_rows(audits: Sequence[ComponentAudit]) -> list[tuple[str, str, str, str]]:
    """(component, node, text, state) in the components' order, for the report's grouping."""
    order = sorted(audits, key=lambda a: (COMPONENTS + (a.component,)).index(a.component))
    return [(a.component, a.node, a.text(), a.state) for a in order]


def validate_baseline(baseline: Mapping[str, object], source: str = "bmc.firmware_baseline",
                      ) -> dict[str, str]:
    """Unknown component names are a typo until proven otherwise."""
    from provision.errors import InputError

    out: dict[str, str] = {}
    for comp, ver in baseline.items():
        if comp not in COMPONENTS:
            raise InputError(f"{source}.{comp}: unknown firmware component",
                             hint="known components: " + ", ".join(COMPONENTS))
        if not isinstance(ver, str | int | float) or str(ver).strip() == "":
            raise InputError(f"{source}.{comp}: expected a version string, got {ver!r}")
        out[comp] = str(ver).strip()
    return out

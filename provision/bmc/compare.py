"""Compare what a BMC reports with what the site spec expects (pure functions).

A difference is a ``mismatch``; a value the spec states but this BMC does not
expose is ``unverified`` (shown, and fatal only under ``--strict``): an
emulator or an older BMC firmware must not read as a pass nor as a failure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from provision.bmc.model import Expected, Mismatch, NodeInventory

_HEALTHY = {"ok", None}


def _tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def model_matches(expected: str, reported: Iterable[str | None]) -> bool:
    """``H100 NVL`` matches ``NVIDIA H100 NVL 94GB``: every expected token, in order."""
    want = _tokens(expected)
    hay = _tokens(" ".join(r or "" for r in reported))
    pos = 0
    for tok in want:
        try:
            pos = hay.index(tok, pos) + 1
        except ValueError:
            return False
    return bool(want)


def compare(inv: NodeInventory, exp: Expected) -> list[Mismatch]:
    node = inv.node
    out: list[Mismatch] = []

    def add(field: str, expected: str, actual: str, severity: str = "mismatch") -> None:
        out.append(Mismatch(node, field, expected, actual, severity))  # type: ignore[arg-type]

    if exp.serial:
        if not inv.serial:
            add("serial", exp.serial, "no serial number", "unverified")
        elif inv.serial.strip().lower() != exp.serial.strip().lower():
            add("serial", exp.serial, inv.serial)

    reported = set(inv.all_macs())
    for name, mac in exp.macs:
        if not reported:
            add(f"mac:{name}", mac, "no MAC addresses", "unverified")
        elif mac.lower() not in reported:
            add(f"mac:{name}", mac, "not among " + ", ".join(sorted(reported)))

    pcie_exposed = "PCIeDevices" not in inv.not_exposed
    if exp.gpu_count is not None:
        gpus = inv.gpus
        if not pcie_exposed:
            add("gpu_count", str(exp.gpu_count), "no PCIe device inventory", "unverified")
        elif len(gpus) != exp.gpu_count:
            add("gpu_count", str(exp.gpu_count), str(len(gpus)))
        if exp.gpu_model and pcie_exposed:
            wrong = sorted({g.model or g.name or "?" for g in gpus
                            if not model_matches(exp.gpu_model, (g.model, g.name))})
            if wrong:
                add("gpu_model", exp.gpu_model, ", ".join(wrong))

    adapters_exposed = "NetworkAdapters" not in inv.not_exposed
    for model, count in exp.nics:
        field = f"nic_count:{model}"
        if adapters_exposed:
            found = sum(1 for a in inv.adapters if model_matches(model, (a.model, a.manufacturer)))
        elif pcie_exposed:
            found = sum(1 for d in inv.pcie
                        if d.kind == "nic" and model_matches(model, (d.model, d.name)))
        else:
            add(field, str(count), "no adapter inventory", "unverified")
            continue
        if found != count:
            add(field, str(count), str(found))

    if (inv.health or "").lower() not in _HEALTHY and inv.health is not None:
        add("health", "OK", inv.health)
    return out


def discovered_macs(inv: NodeInventory) -> dict[str, str]:
    """Names for the MACs a BMC reports, stable across runs.

    The Redfish member Id when it is a plain name (``NIC1`` -> ``nic1``,
    adapter ``slot-11`` port 1 -> ``slot-11-p1``), else ``eth<N>`` by position.
    """
    names: dict[str, str] = {}
    for i, nic in enumerate(inv.nics):
        ident = nic.source.split("/", 1)[-1].lower()
        plain = re.fullmatch(r"[a-z][a-z0-9_-]*", ident) is not None
        names[ident if plain else f"eth{i}"] = nic.mac
    for adapter in inv.adapters:
        for i, mac in enumerate(adapter.macs, start=1):
            names[f"{adapter.id.lower()}-p{i}"] = mac
    return names

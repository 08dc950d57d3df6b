"""PCIe ACS on the bridges above a node's GPUs and RDMA NICs, read from ``lspci -vvv``.

GPUDirect (GPU to NIC, GPU to GPU over PCIe) needs peer-to-peer traffic to turn around in
the PCIe switch. A bridge on the way whose ACS Control redirects P2P requests or
completions (or applies egress control) sends it up to the root complex instead: slower,
or refused where the root complex does not forward P2P (NCCL user guide, Troubleshooting,
"PCI Access Control Services (ACS)"; the kernel's own test is ``pci_bridge_has_acs_redir``
in ``drivers/pci/p2pdma.c``). The common role's ``forge-acs-disable.service`` clears ACS
Control at every boot, because the kernel sets it again at each one when an IOMMU driver is
active; this check shows whether that held on every bridge that matters.

The bridges judged are those on the sysfs path of each NVIDIA GPU and RDMA device (its
``/sys/devices/pci0000:00/<root port>/<switch ports>/<device>`` chain), so a bridge of the
storage or management side with ACS on is not reported.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from provision.checks.collected import Collected
from provision.checks.reference import exact
from provision.errors import InputError
from provision.expectations import NodePlan
from provision.measurement import Measurement
from provision.parsers import get as parser
from provision.parsers.lspci import acs_detail

_BDF = re.compile(r"[0-9a-f]{4,8}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]")
SOURCE = ("NCCL user guide, Troubleshooting, \"PCI Access Control Services (ACS)\": ACS off on "
          "the PCIe switches; drivers/pci/p2pdma.c pci_bridge_has_acs_redir: ReqRedir, "
          "CmpltRedir or EgressCtrl set redirects P2P")


def command() -> list[str]:
    """Bridges only (class 0604, pciutils >= 3.3): the GPUs' and NICs' own configuration
    space, and every SR-IOV function, stay out of the output."""
    return ["lspci", "-vvv", "-d", "::0604"]


def upstream_bridges(sysfs_path: str) -> list[str]:
    """The PCI addresses above a device, root port first: the BDF parts of its sysfs path
    but the last (``/sys/devices/pci0000:00/0000:00:01.1/0000:01:00.0`` -> the root port)."""
    parts = [p for p in sysfs_path.split("/") if _BDF.fullmatch(p)]
    return parts[:-1]


def _named_devices(data: Collected,
                   gpu_names: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
    """Each NVIDIA GPU (``GPU3``, else its address) and RDMA device (``mlx5_2``) with its
    PCI facts from the collector."""
    named = [(gpu_names.get(g["address"], f"GPU {g['address']}"), g)
             for g in data.facts.get("pci_gpus", [])]
    return named + [(d["name"], d.get("pci") or {}) for d in data.facts.get("rdma", [])]


def devices_below(data: Collected, gpu_names: dict[str, str]) -> dict[str, list[str]]:
    """Every bridge above a GPU or an RDMA device -> the names of those devices."""
    below: dict[str, list[str]] = {}
    for name, pci in _named_devices(data, gpu_names):
        for bridge in upstream_bridges(str(pci.get("path") or "")):
            below.setdefault(bridge, []).append(name)
    return below


def acs_records(data: Collected, plan: NodePlan, check: str, gpu_names: dict[str, str], *,
                judge: bool = True) -> list[Measurement]:
    """``pcie_acs_redirect`` (must be 0) for each bridge above a GPU or RDMA NIC that has
    the ACS capability; why none could be judged when lspci is missing, failed or ran
    without root. Nothing where lspci was not asked for (a run directory of an older forge
    judged again). ``judge`` False (``-O conformance.acs=record``): the bridges are recorded
    without a limit, for nodes that keep ACS on by design."""
    if "lspci" not in data.commands:
        return []
    if data.missing("lspci"):
        return [exact(plan, "tool_present", 0, 1, check=check, source=SOURCE,
                      detail="lspci (pciutils): not installed; PCIe ACS not checked")]
    text = data.output("lspci")
    c = data.commands.get("lspci") or {}
    if not (text or "").strip() or c.get("returncode"):
        why = (c.get("stderr") or "no output").strip()[:150]
        return [exact(plan, "tool_ran_ok", 0, 1, check=check, source=SOURCE,
                      detail=f"lspci -vvv: {why}")]
    try:
        result = parser("lspci").parse(text, node=plan.node, source_name=f"{plan.node}:lspci")
    except InputError as exc:
        return [exact(plan, "tool_ran_ok", 0, 1, check=check, source=SOURCE,
                      detail=f"lspci -vvv: {exc}"[:300])]
    if result.access_denied:
        return [exact(plan, "tool_ran_ok", 0, 1, check=check, source=SOURCE,
                      detail="lspci -vvv: capabilities <access denied>: ACS control is in "
                             "the extended configuration space, readable by root only; "
                             "run the checks as root")]
    out = []
    for bridge, names in sorted(devices_below(data, gpu_names).items()):
        f = result.function(bridge)
        if f is None or f.acs_control is None:
            continue  # no ACS capability: nothing redirects there
        rec = exact(plan, "pcie_acs_redirect", 1 if f.acs_redirect else 0, 0, check=check,
                    source=SOURCE, detail=f"{acs_detail(f)}; above {', '.join(names)}")
        out.append(rec if judge else _recorded(rec))
    return out


#: the IOMMU domain types in which the IOMMU translates a device's DMA (the kernel's
#: /sys/kernel/iommu_groups/*/type: identity is passthrough)
TRANSLATED = ("DMA", "DMA-FQ")
IOMMU_SOURCE = ("CUDA C++ Programming Guide, \"IOMMU on Linux\": on bare-metal Linux with PCIe, "
                "peer-to-peer with the IOMMU translating is not supported; NVIDIA recommends "
                "iommu=pt (the common role's iommu: auto on AMD)")


def iommu_records(data: Collected, plan: NodePlan, check: str, gpu_names: dict[str, str], *,
                  judge: bool = True) -> list[Measurement]:
    """``pcie_iommu_translated`` (must be 0) for each GPU and RDMA device: with ACS off every
    bridge would still pass P2P traffic up to the root complex when the IOMMU translates the
    devices' DMA (``iommu: keep`` on a kernel that translates by default). Nothing for facts
    an older collector gathered without the domain type; ``judge`` as for ACS."""
    out = []
    for name, pci in _named_devices(data, gpu_names):
        if "iommu_group_type" not in pci:
            continue
        kind = pci["iommu_group_type"]
        rec = exact(plan, "pcie_iommu_translated", 1 if kind in TRANSLATED else 0, 0,
                    check=check, source=IOMMU_SOURCE,
                    detail=f"{name} {pci.get('address')}: IOMMU domain "
                           f"{kind or 'none (no IOMMU driver)'}")
        out.append(rec if judge else _recorded(rec))
    return out


def _recorded(rec: Measurement) -> Measurement:
    """``rec`` without its limit (``-O conformance.acs=record``), saying so."""
    return replace(rec, min=None, max=None, expected=None,
                   detail=f"{rec.detail} (recorded, not judged: -O conformance.acs=record)")


def gpu_names_by_address(bus_ids: dict[int, str | None]) -> dict[str, str]:
    """Each GPU's sysfs address -> ``GPU3``, from nvidia-smi's ``pci.bus_id`` of each index
    (``00000000:17:00.0``: an 8-digit domain where sysfs has 4)."""
    out = {}
    for index, bus_id in bus_ids.items():
        text = (bus_id or "").lower()
        if _BDF.fullmatch(text):
            domain, bus, devfn = text.split(":")
            out[f"{int(domain, 16):04x}:{bus}:{devfn}"] = f"GPU{index}"
    return out

"""Read one node's hardware inventory from its BMC into a frozen :class:`NodeInventory`.

Every part below the ComputerSystem is optional in Redfish and BMCs differ in
what they expose (an XCC has FirmwareInventory, PCIeDevices and
NetworkAdapters; sushy-tools has none of them). A missing part is recorded in
``not_exposed`` and left empty; the comparison then says "unverified" rather
than pretending it matched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import sushy
from sushy import exceptions as sushy_exc

from provision.bmc.client import BmcFailure, session
from provision.bmc.model import (
    AdapterInfo,
    BmcOptions,
    BmcTarget,
    FirmwareItem,
    NicInfo,
    NodeInventory,
    PcieDeviceInfo,
    Status,
)

T = TypeVar("T")

# What a missing optional part looks like in sushy.
_ABSENT = (sushy_exc.MissingAttributeError, sushy_exc.ResourceNotFoundError,
           sushy_exc.UnknownDefaultError)

_GPU_CLASSES = {"DisplayController", "ProcessingAccelerators", "Coprocessor"}
_NIC_CLASSES = {"NetworkController"}


def norm_mac(mac: str | None) -> str | None:
    """``7C-C2-55-00-03-01`` / ``7cc255000301`` -> ``7c:c2:55:00:03:01``; None when not a MAC."""
    if not mac:
        return None
    digits = "".join(ch for ch in mac.lower() if ch in "0123456789abcdef")
    if len(digits) != 12 or digits == "0" * 12:
        return None
    return ":".join(digits[i:i + 2] for i in range(0, 12, 2))


def enum_text(value: Any) -> str | None:
    """sushy maps Redfish strings to enums; reports want the Redfish string back."""
    if value is None:
        return None
    return str(getattr(value, "value", value))


def select_system(root: sushy.Sushy, node: str) -> Any:
    """The node's ComputerSystem: the only one, or the one whose Name/HostName is the node.

    A BMC managing one server (an XCC) has one system. An enclosure manager or
    an emulator serving several has many; then the node name picks.
    """
    collection = root.get_system_collection()
    paths = list(collection.members_identities)
    if len(paths) == 1:
        return root.get_system(paths[0])
    short = node.split(".")[0]
    for path in paths:
        if path.rstrip("/").rsplit("/", 1)[-1] in (node, short):
            return root.get_system(path)
    # Some services (sushy-tools among them) redirect a name to the system's Id.
    try:
        return root.get_system(f"{collection.path.rstrip('/')}/{short}")
    except sushy_exc.ResourceNotFoundError:
        pass
    for system in collection.get_members():
        names = {str(system.name or ""), str(system.json.get("HostName") or "")}
        names |= {n.split(".")[0] for n in names}
        if node in names or short in names:
            return system
    raise BmcFailure(Status.ERROR, f"BMC exposes {len(paths)} systems and none is named "
                                   f"{node!r} (Name or HostName)")


def _optional(part: str, missing: list[str], call: Callable[[], T], default: T) -> T:
    try:
        return call()
    except _ABSENT:
        missing.append(part)
        return default


def _summary(system: Any) -> tuple[float | None, int | None, str | None]:
    doc = system.json
    mem = (doc.get("MemorySummary") or {}).get("TotalSystemMemoryGiB")
    proc = doc.get("ProcessorSummary") or {}
    return (float(mem) if mem is not None else None,
            proc.get("Count"), proc.get("Model"))


def _health(system: Any) -> str | None:
    status = system.json.get("Status") or {}
    return status.get("HealthRollup") or status.get("HealthRollUp") or status.get("Health")


def _nics(system: Any) -> tuple[NicInfo, ...]:
    out = []
    for iface in system.ethernet_interfaces.get_members():
        mac = norm_mac(iface.permanent_mac_address) or norm_mac(iface.mac_address)
        if mac:
            out.append(NicInfo(f"EthernetInterfaces/{iface.identity}", mac))
    return tuple(out)


def _pcie_kind(device: Any) -> str:
    classes: set[str] = set()
    try:
        for fn in device.pcie_functions.get_members()[:1]:
            cls = fn.json.get("DeviceClass")
            if cls:
                classes.add(str(cls))
    except _ABSENT:
        pass
    text = " ".join(str(x or "") for x in (device.name, device.manufacturer, device.model))
    if classes & _GPU_CLASSES or device.json.get("DeviceType") == "GPU":
        return "gpu"
    if classes & _NIC_CLASSES:
        return "nic"
    low = text.lower()
    if "nvidia" in low and ("h100" in low or "l40" in low or "gpu" in low):
        return "gpu"
    if "connectx" in low or "mellanox" in low:
        return "nic"
    return "other"


def _pcie(system: Any) -> tuple[PcieDeviceInfo, ...]:
    out = []
    for dev in system.pcie_devices.get_members():
        out.append(PcieDeviceInfo(
            id=str(dev.identity), name=dev.name, kind=_pcie_kind(dev),
            manufacturer=dev.manufacturer, model=dev.model,
            firmware_version=dev.json.get("FirmwareVersion"),
            serial=dev.json.get("SerialNumber")))
    return tuple(out)


def _adapters(system: Any, missing: list[str]) -> tuple[AdapterInfo, ...]:
    out: list[AdapterInfo] = []
    chassis_list: list[Any] = _optional("Chassis", missing, lambda: system.chassis, [])
    seen_collection = False
    for chassis in chassis_list:
        try:
            adapters = chassis.network_adapters.get_members()
        except _ABSENT:
            continue
        seen_collection = True
        for ad in adapters:
            macs: list[str] = []
            guids: list[str] = []
            try:
                functions = ad.network_device_functions.get_members()
            except _ABSENT:
                functions = []
            for fn in functions:
                eth = fn.json.get("Ethernet") or {}
                mac = norm_mac(eth.get("PermanentMACAddress")) or norm_mac(eth.get("MACAddress"))
                if mac:
                    macs.append(mac)
                ib = fn.json.get("InfiniBand") or {}
                guid = ib.get("PermanentPortGUID") or ib.get("PortGUID")
                if guid:
                    guids.append(str(guid).lower())
            fw = None
            for ctrl in ad.json.get("Controllers") or []:
                fw = fw or ctrl.get("FirmwarePackageVersion")
            out.append(AdapterInfo(str(ad.identity), ad.manufacturer, ad.model, fw,
                                   tuple(macs), tuple(guids)))
    if not seen_collection:
        missing.append("NetworkAdapters")
    return tuple(out)


def _firmware(root: sushy.Sushy) -> tuple[FirmwareItem, ...]:
    update = root.get_update_service()
    items = []
    for sw in update.firmware_inventory.get_members():
        items.append(FirmwareItem(str(sw.identity), sw.name, sw.version))
    return tuple(items)


def read_inventory(root: sushy.Sushy, node: str) -> NodeInventory:
    missing: list[str] = []
    system = select_system(root, node)
    managers: list[Any] = _optional("Managers", missing, lambda: system.managers, [])
    bmc_version = managers[0].firmware_version if managers else None
    memory_gib, cpu_count, cpu_model = _summary(system)
    nics: tuple[NicInfo, ...] = _optional("EthernetInterfaces", missing,
                                          lambda: _nics(system), ())
    pcie: tuple[PcieDeviceInfo, ...] = _optional("PCIeDevices", missing,
                                                 lambda: _pcie(system), ())
    if not pcie and "PCIeDevices" not in missing and "PCIeDevices" not in system.json:
        missing.append("PCIeDevices")
    adapters = _adapters(system, missing)
    firmware: tuple[FirmwareItem, ...] = _optional("FirmwareInventory", missing,
                                                   lambda: _firmware(root), ())
    return NodeInventory(
        node=node, system_id=str(system.identity), manufacturer=system.manufacturer,
        model=system.model, serial=system.serial_number, uuid=system.uuid,
        bios_version=system.bios_version, bmc_version=bmc_version,
        power_state=enum_text(system.power_state),
        health=_health(system), memory_gib=memory_gib, cpu_count=cpu_count,
        cpu_model=cpu_model, nics=nics, pcie=pcie, adapters=adapters, firmware=firmware,
        not_exposed=tuple(dict.fromkeys(missing)))


def inventory_work(opts: BmcOptions) -> Callable[[BmcTarget, float], NodeInventory]:
    def work(target: BmcTarget, deadline: float) -> NodeInventory:
        with session(target, opts, deadline) as root:
            return read_inventory(root, target.node)
    return work

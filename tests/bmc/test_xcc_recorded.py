"""Inventory, comparison and firmware audit on recorded XCC documents served by sushy-static.

The documents (``fixtures/xcc-sr675v3``, see ``fixtures/SOURCES.md``) carry
what sushy-tools' emulator lacks: FirmwareInventory, PCIeDevices with GPU
VBIOS versions, NetworkAdapters with ConnectX firmware and port MACs.
"""

from __future__ import annotations

import json
from pathlib import Path

from bmclab import Tls, bmc_block, write_spec

from provision.bmc.compare import compare
from provision.bmc.model import Expected

BASELINE = """\
  firmware_baseline:
    xcc: ESX322N-3.10
    uefi: KAE112E-3.10
    lxpm: KAL106H-3.00
    gpu_vbios: 96.00.99.00.01
    connectx: 28.39.1002"""


def xcc_spec(tmp_path: Path, xcc: dict[str, int], tls: Tls, **node_data: dict) -> Path:
    nodes = {n: {"bmc_address": f"127.0.0.1:{p}", **node_data.get(n, {})}
             for n, p in xcc.items()}
    return write_spec(tmp_path / "site.yaml", nodes, bmc=bmc_block(tls, extra=BASELINE))


def test_inventory_reads_the_recorded_xcc(tmp_path, xcc, tls, forge):
    spec = xcc_spec(tmp_path, xcc, tls, gpu001={"serial": "J900ABC1",
                                                "macs": {"nic1": "7c:c2:55:00:03:a1"}})
    r = forge("bmc", "inventory", str(spec), "--json", "--nodes", "gpu001")
    assert r.rc == 0, r.err
    inv = json.loads(r.out)["nodes"]["gpu001"]["inventory"]
    assert inv["serial"] == "J900ABC1"
    assert inv["model"] == "ThinkSystem SR675 V3 -[7D9RCTO1WW]-"
    assert inv["bios_version"] == "KAE112E-3.10" and inv["memory_gib"] == 1536
    assert sum(1 for d in inv["pcie"] if d["kind"] == "gpu") == 8
    assert len(inv["adapters"]) == 5
    assert inv["adapters"][0]["macs"] == ["a0:88:c2:00:00:10", "a0:88:c2:00:01:10"]
    assert inv["not_exposed"] == []
    assert json.loads(r.out)["nodes"]["gpu001"]["findings"] == []


def test_serial_and_gpu_count_mismatch(tmp_path, xcc, tls, forge):
    spec = xcc_spec(tmp_path, xcc, tls, gpu002={"serial": "J900ABC9"})
    r = forge("bmc", "inventory", str(spec), "--nodes", "gpu002")
    assert r.rc == 1
    assert "gpu002: serial: expected J900ABC9, BMC reports J900ABC2" in r.out


def test_firmware_audit_groups_nodes_and_names_the_odd_gpu(tmp_path, xcc, tls, forge):
    spec = xcc_spec(tmp_path, xcc, tls)
    r = forge("bmc", "firmware", str(spec))
    assert r.rc == 1
    lines = r.out.splitlines()
    assert "gpu[001-002]: xcc: ESX322N-3.10 ok" in lines
    assert "gpu[001-002]: connectx: 28.39.1002 ok" in lines
    assert ("gpu002: DIFFERS gpu_vbios: 96.00.74.00.0D, 96.00.99.00.01 x7 "
            "(baseline 96.00.99.00.01)") in lines
    assert "gpu001: gpu_vbios: 96.00.99.00.01 ok" in lines
    assert "1 nodes off the firmware baseline" in r.err


def test_missing_adapter_and_wrong_gpu_model_from_a_recording(tmp_path, xcc, tls, forge):
    """Pure comparison on an inventory read from the recording, with a stricter spec."""
    from provision.bmc.fanout import fan_out
    from provision.bmc.inventory import inventory_work
    from provision.bmc.model import BmcOptions, BmcTarget, Credentials, TlsPolicy

    opts = BmcOptions(Credentials("u", "p"), tls=TlsPolicy(ca_bundle=str(tls.cert)))
    [out] = fan_out([BmcTarget("gpu001", "127.0.0.1", xcc["gpu001"])], inventory_work(opts),
                    opts)
    assert out.value is not None
    found = compare(out.value, Expected(gpu_count=8, gpu_model="L40S",
                                        nics=(("ConnectX-7 NDR200", 6),)))
    assert [(f.field, f.expected, f.actual) for f in found] == [
        ("gpu_model", "L40S", "H100 NVL"), ("nic_count:ConnectX-7 NDR200", "6", "5")]


BIOS_BASELINE = """\
  bios_baseline:
    DevicesandIOPorts_Device_Slot6: Enable
    Memory_MemorySpeed: MaxPerformance"""


def test_bios_audit_reads_the_mode_and_a_staged_change(tmp_path, xcc, tls, forge):
    nodes: dict[str, dict[str, object]] = {n: {"bmc_address": f"127.0.0.1:{p}"}
                                           for n, p in xcc.items()}
    spec = write_spec(tmp_path / "site.yaml", nodes, bmc=bmc_block(tls, extra=BIOS_BASELINE))
    r = forge("bmc", "bios", str(spec))
    assert (r.rc, r.err.strip().splitlines()[-1]) == (1, "forge: error: 1 nodes off the BIOS "
                                                         "baseline"), r.err
    expected = {
        "gpu[001-002]: Memory_MemorySpeed: MaxPerformance ok",
        "gpu001: DevicesandIOPorts_Device_Slot6: Enable ok",
        "gpu002: DIFFERS DevicesandIOPorts_Device_Slot6: Enable now, Disable staged for the "
        "next boot (wanted Enable, bmc.bios_baseline)",
        # the profile's maximum-efficiency matches the XCC's token for it
        "gpu001: OperatingModes_ChooseOperatingMode: MaximumEfficiency ok",
        "gpu002: DIFFERS OperatingModes_ChooseOperatingMode: MaximumPerformance (wanted "
        "maximum-efficiency, profile sr675v3-h100nvl-ib operating_mode)"}
    assert set(r.out.splitlines()) == expected
    doc = json.loads(forge("bmc", "bios", str(spec), "--json", "--nodes", "gpu002").out)
    slot = doc["nodes"]["gpu002"]["settings"]["DevicesandIOPorts_Device_Slot6"]
    assert (slot["seen"], slot["pending"], slot["state"]) == ("Enable", "Disable", "differs")
    assert doc["summary"]["exit_code"] == 1


def test_bios_show_folds_nodes_by_value(tmp_path, xcc, tls, forge):
    spec = xcc_spec(tmp_path, xcc, tls)
    r = forge("bmc", "bios", str(spec), "--show")
    assert r.rc == 0, r.err
    lines = r.out.splitlines()
    assert "gpu001: OperatingModes_ChooseOperatingMode = MaximumEfficiency" in lines
    assert "gpu002: OperatingModes_ChooseOperatingMode = MaximumPerformance" in lines
    assert "gpu[001-002]: Memory_MemorySpeed = MaxPerformance" in lines
    assert ("gpu002: DevicesandIOPorts_Device_Slot6 = Enable (Disable staged for the next "
            "boot)") in lines


def test_unreadable_staged_changes_are_unverified_not_ok(tmp_path, tls, forge):
    """An XCC whose Bios/Pending cannot be read (here: removed from the tree, so the BMC
    answers 404): a right value now says nothing of the next boot."""
    import shutil

    from bmclab import serve_static, xcc_tree

    tree = xcc_tree(tmp_path / "gpu001")
    shutil.rmtree(tree / "Systems/1/Bios/Pending")
    with serve_static({"gpu001": tree}, tls) as ports:
        nodes: dict[str, dict[str, object]] = {"gpu001": {"bmc_address":
                                                          f"127.0.0.1:{ports['gpu001']}"}}
        spec = write_spec(tmp_path / "site.yaml", nodes,
                          bmc=bmc_block(tls, extra=BIOS_BASELINE))
        r = forge("bmc", "bios", str(spec))
        strict = forge("bmc", "bios", str(spec), "--strict", "--json")
    assert r.rc == 0, r.err
    lines = r.out.splitlines()
    assert ("gpu001: Memory_MemorySpeed: MaxPerformance now, the changes staged for the next "
            "boot unread") in lines
    assert lines[-1] == ("gpu001: changes staged for the next boot unreadable: "
                         "ResourceNotFoundError: Resource "
                         f"https://127.0.0.1:{ports['gpu001']}/redfish/v1/Systems/1/Bios/Pending "
                         "not found")
    doc = json.loads(strict.out)
    assert strict.rc == 1 and doc["summary"]["exit_code"] == 1
    assert {s["state"] for s in doc["nodes"]["gpu001"]["settings"].values()} == {"unverified"}

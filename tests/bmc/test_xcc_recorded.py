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

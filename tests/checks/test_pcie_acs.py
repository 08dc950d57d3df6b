"""PCIe ACS on the bridges above GPUs and RDMA NICs: real lspci -vvv outputs people published
(tests/parsers/fixtures/lspci), judged against the devices below each bridge. The sysfs paths
of the collector's facts are synthesized (no such node here), following each output's own
topology (lspci -PP names every device by its path through the bridges)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from provision.checks import pcie_acs
from provision.checks.base import Context
from provision.checks.collected import Collected
from provision.checks.conformance import Conformance, ConformanceOptions
from provision.expectations import plan_site
from provision.judge import failed
from provision.spec import load_site

ROOT = Path(__file__).resolve().parents[2]
LSPCI = ROOT / "tests" / "parsers" / "fixtures" / "lspci"
V100 = LSPCI / "pciee-4028gr-tvrt-v100-sxm2-pex9765-acs-off-lspci-path-addresses.txt"
N1SDP = LSPCI / "lore-n1sdp-20191211-pex8749-dsp-acs-redirect-on-vvxxx-hexdump.txt"
DELL = LSPCI / "sandmark-lspci-md-dell-haswell-e-nonroot-access-denied.txt"
SITE = load_site(ROOT / "site-specs" / "small.yaml")
PLAN = plan_site(SITE).for_node("gpu001")
V100_GPU_PATHS = {  # the two V100s of the 4028GR-TVRT output, as sysfs paths
    "0000:0d:00.0": "/sys/devices/pci0000:00/0000:00:02.0/0000:0b:00.0/0000:0c:04.0/0000:0d:00.0",
    "0000:0e:00.0": "/sys/devices/pci0000:00/0000:00:02.0/0000:0b:00.0/0000:0c:08.0/0000:0e:00.0",
}


def _collected(lspci: dict[str, Any] | None, gpus: dict[str, str],
               rdma: list[dict[str, Any]] | None = None) -> Collected:
    facts = {"pci_gpus": [{"address": a, "path": p} for a, p in gpus.items()],
             "rdma": rdma or []}
    commands = {} if lspci is None else {"lspci": lspci}
    return Collected("gpu001", "gpu001", facts, {}, commands, {})


def _ran(path: Path) -> dict[str, Any]:
    return {"argv": ["lspci", "-vvv"], "stdout": path.read_text(), "stderr": "",
            "returncode": 0, "missing": None}


def _records(data: Collected, names: dict[str, str] | None = None) -> list[Any]:
    return pcie_acs.acs_records(data, PLAN, "conformance", names or {})


def test_every_bridge_above_a_gpu_or_nic_with_acs_off_passes() -> None:
    nic = {"name": "mlx5_0", "pci": {"address": "0000:0f:00.0", "path":
           "/sys/devices/pci0000:00/0000:00:02.0/0000:0b:00.0/0000:0c:0c.0/0000:0f:00.0"}}
    names = pcie_acs.gpu_names_by_address({0: "00000000:0D:00.0", 1: "00000000:0E:00.0"})
    assert names == {"0000:0d:00.0": "GPU0", "0000:0e:00.0": "GPU1"}
    recs = _records(_collected(_ran(V100), V100_GPU_PATHS, [nic]), names)
    # the root port and the three downstream ports; the upstream port has no ACS capability
    assert [r.detail.split()[0] for r in recs] == [
        "0000:00:02.0", "0000:0c:04.0", "0000:0c:08.0", "0000:0c:0c.0"]
    assert all(r.value == 0 and r.max == 0 and not failed(r) for r in recs)
    assert recs[0].detail.endswith("above GPU0, GPU1, mlx5_0")
    assert recs[1].detail.endswith("above GPU0") and recs[3].detail.endswith("above mlx5_0")
    assert "pci_bridge_has_acs_redir" in (recs[0].source or "")


def test_a_switch_port_that_redirects_p2p_fails_naming_the_bridge_and_the_gpu() -> None:
    gpu = {"0000:03:00.0": "/sys/devices/pci0000:00/0000:00:00.0/0000:01:00.0/0000:02:08.0/"
                           "0000:03:00.0"}
    (rec,) = _records(_collected(_ran(N1SDP), gpu), {"0000:03:00.0": "GPU5"})
    assert rec.value == 1 and failed(rec) and rec.metric == "pcie_acs_redirect"
    assert rec.detail.startswith("0000:02:08.0 Downstream Port")
    assert "ReqRedir+ CmpltRedir+" in rec.detail and rec.detail.endswith("above GPU5")


def test_without_root_the_check_says_so_instead_of_passing() -> None:
    (rec,) = _records(_collected(_ran(DELL), V100_GPU_PATHS))
    assert rec.metric == "tool_ran_ok" and failed(rec) and "run the checks as root" in rec.detail


def test_missing_failed_and_not_asked() -> None:
    missing = {"argv": ["lspci", "-vvv"], "missing": "lspci"}
    (rec,) = _records(_collected(missing, V100_GPU_PATHS))
    assert rec.metric == "tool_present" and failed(rec) and "pciutils" in rec.detail
    broke = {**_ran(V100), "stdout": "", "stderr": "pcilib: Cannot open /proc/bus/pci",
             "returncode": 1}
    (rec,) = _records(_collected(broke, V100_GPU_PATHS))
    assert rec.metric == "tool_ran_ok" and "Cannot open /proc/bus/pci" in rec.detail
    assert _records(_collected(None, V100_GPU_PATHS)) == []   # a run of an older forge


def test_conformance_asks_for_lspci_on_gpu_nodes_only() -> None:
    check = Conformance()
    gpu = check.request(Context(site=SITE, nodes=(PLAN.node,), plan=PLAN,
                                options=ConformanceOptions()))
    assert gpu["commands"]["lspci"]["argv"] == ["lspci", "-vvv", "-d", "::0604"]   # bridges only
    assert "lspci" in gpu["tools"] and gpu["expect"]["acs"] == "judge"
    cpu_only = next(p for p in plan_site(SITE).nodes if not p.gpu_count)
    assert "lspci" not in check.request(Context(site=SITE, nodes=(cpu_only.node,), plan=cpu_only,
                                        options=ConformanceOptions()))["commands"]


def test_upstream_bridges_of_a_sysfs_path() -> None:
    assert pcie_acs.upstream_bridges(V100_GPU_PATHS["0000:0d:00.0"]) == [
        "0000:00:02.0", "0000:0b:00.0", "0000:0c:04.0"]
    assert pcie_acs.upstream_bridges("/sys/devices/pci0000:00/0000:00:01.1") == []
    assert pcie_acs.upstream_bridges("") == []


def test_the_lent_h200_vm_gpu_on_the_root_bus() -> None:
    """Read on the lent H200 (a virtual machine, 2026-12-04): nvidia-smi's pci.bus_id and the
    collector's sysfs path of the same GPU. The names meet; nothing sits between the GPU and
    the root bus, so no bridge is judged (that box has no lspci: tool_present 0 there)."""
    names = pcie_acs.gpu_names_by_address({0: "00000000:00:06.0"})
    assert names == {"0000:00:06.0": "GPU0"}
    data = _collected(None, {"0000:00:06.0": "/sys/devices/pci0000:00/0000:00:06.0"})
    assert pcie_acs.devices_below(data, names) == {}


def test_a_site_that_keeps_acs_records_it_without_judging() -> None:
    """-O conformance.acs=record: SR-IOV VFs given to VMs need ACS on; the bridges are
    still recorded (and the detail says why they are not judged)."""
    gpu = {"0000:03:00.0": "/sys/devices/pci0000:00/0000:00:00.0/0000:01:00.0/0000:02:08.0/"
                           "0000:03:00.0"}
    (rec,) = pcie_acs.acs_records(_collected(_ran(N1SDP), gpu), PLAN, "conformance", {},
                                  judge=False)
    assert rec.value == 1 and rec.max is None and not failed(rec)
    assert rec.detail.endswith("(recorded, not judged: -O conformance.acs=record)")
    req = Conformance().request(Context(site=SITE, nodes=(PLAN.node,), plan=PLAN,
                                        options=ConformanceOptions(acs="record")))
    assert req["expect"]["acs"] == "record"


def test_output_lspci_cannot_be_read_is_a_failure_of_that_node_only() -> None:
    garbled = {**_ran(V100), "stdout": "PCI bridge with no address\n"}
    (rec,) = _records(_collected(garbled, V100_GPU_PATHS))
    assert rec.metric == "tool_ran_ok" and failed(rec) and "cannot parse as lspci" in rec.detail


def test_a_translating_iommu_fails_each_device_it_translates() -> None:
    """The collector's domain type per device: identity (iommu=pt) and none (IOMMU off) pass,
    DMA / DMA-FQ (translated, `iommu: keep` on such a kernel) fail; an older collector's facts
    (no key) give no record."""
    paths = list(V100_GPU_PATHS.items())
    gpus = [{"address": paths[0][0], "path": paths[0][1], "iommu_group_type": "identity"},
            {"address": paths[1][0], "path": paths[1][1], "iommu_group_type": "DMA-FQ"}]
    rdma = [{"name": "mlx5_0", "pci": {"address": "0000:0f:00.0", "iommu_group_type": None}},
            {"name": "mlx5_1", "pci": {"address": "0000:10:00.0"}}]
    data = Collected("gpu001", "gpu001", {"pci_gpus": gpus, "rdma": rdma}, {}, {}, {})
    names = {"0000:0d:00.0": "GPU0", "0000:0e:00.0": "GPU1"}
    recs = pcie_acs.iommu_records(data, PLAN, "conformance", names)
    assert [(r.detail, r.value, failed(r)) for r in recs] == [
        ("GPU0 0000:0d:00.0: IOMMU domain identity", 0, False),
        ("GPU1 0000:0e:00.0: IOMMU domain DMA-FQ", 1, True),
        ("mlx5_0 0000:0f:00.0: IOMMU domain none (no IOMMU driver)", 0, False)]
    assert "IOMMU on Linux" in (recs[0].source or "")
    kept = pcie_acs.iommu_records(data, PLAN, "conformance", names, judge=False)
    assert not any(failed(r) for r in kept) and kept[1].value == 1


def test_the_collector_reads_the_domain_type_sysfs_shows() -> None:
    from provision.node_programs.collect import SYS_PCI, _pci

    devices = sorted(SYS_PCI.glob("*")) if SYS_PCI.is_dir() else []
    if not devices:
        pytest.skip("no PCI devices in /sys here")
    for dev in devices[:8]:
        kind = dev / "iommu_group" / "type"
        want = kind.read_text().strip() if kind.exists() else None
        assert _pci(dev)["iommu_group_type"] == want, dev

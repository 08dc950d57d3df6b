"""nvidia-smi -q, --query-gpu CSV, topo -m and nvlink on every real sample."""

from __future__ import annotations

import pytest
from parsers_support import fixture_text, one, pick

from provision.errors import InputError
from provision.parsers import (
    nvidia_smi_nvlink,
    nvidia_smi_q,
    nvidia_smi_query_gpu,
    nvidia_smi_topo,
)


def q(name: str) -> nvidia_smi_q.NvidiaSmiQResult:
    return nvidia_smi_q.parse(fixture_text("nvidia-smi-q/" + name), node="n1", source_name=name)


# ---- nvidia-smi -q

def test_q_h100_590_under_load() -> None:
    r = q("exporter-h100-590.48.01-under-load.txt")
    assert r.driver_version == "590.48.01" and r.cuda_version == "13.1" and r.attached_gpus == 1
    g = r.gpus[0]
    assert (g.index, g.name, g.vbios, g.bus_id) == (0, "NVIDIA H100 80GB HBM3", "96.00.A5.00.01",
                                                   "00000000:00:09.0")
    assert (g.memory_total_mib, g.pcie_gen, g.pcie_width, g.pcie_replays) == (81559, 5, 16, 9)
    assert (g.temperature_c, g.memory_temperature_c) == (59, 55)
    assert (g.power_draw_w, g.power_limit_w, g.sm_clock_mhz) == (629.45, 700, 1980)
    assert g.persistence_mode and g.ecc_mode and g.mig_mode is False
    m = nvidia_smi_q.measurements(r)
    assert one(m, "gpu_count").value == 1 and one(m, "pcie_replay_count").value == 9
    assert one(m, "gpu_power_fraction").value == pytest.approx(629.45 / 700, abs=1e-4)
    assert one(m, "ecc_uncorrected_volatile").value == 0
    assert one(m, "remapped_rows_pending").value == 0


def test_q_h200_mig_uses_the_gpu_level_fields() -> None:
    g = q("exporter-h200-mig-590.48.01-idle.txt").gpus[0]
    assert g.mig_mode is True and g.memory_total_mib == 143771  # not a MIG slice's 71424
    assert g.remapped_rows_pending is None  # 'Remapped Rows : N/A'
    assert g.temperature_c == 28 and g.ecc_uncorrected_volatile == 0


def test_q_state_left_behind_mig_pending_ecc_power_default_recovery() -> None:
    mig = q("exporter-h200-mig-590.48.01-idle.txt")
    m = nvidia_smi_q.measurements(mig)
    assert [one(m, k).value for k in ("gpu_mig_mode", "gpu_mig_mode_pending",
                                      "gpu_ecc_mode_pending")] == [1, 1, 1]
    h100 = q("exporter-h100-590.48.01-under-load.txt")
    g = h100.gpus[0]
    assert (g.inforom_image, g.power_default_limit_w, g.recovery_action) == (
        "G520.0200.00.05", 700, "None")
    rec = one(nvidia_smi_q.measurements(h100), "gpu_recovery_action")
    assert rec.value == 0 and rec.max == 0
    old = q("gpud-8x-h100-535.183.01.txt")   # 535 prints no 'GPU Recovery Action'
    assert old.gpus[0].recovery_action is None and old.gpus[0].mig_mode is False
    assert not pick(nvidia_smi_q.measurements(old), "gpu_recovery_action")
    l40s = q("exporter-l40s-595.80-idle.txt").gpus[0]
    assert l40s.mig_mode is None and l40s.mig_mode_pending is None   # 'N/A': no MIG
    # 'Bank Remap Availability Histogram', here beside 4 rows remapped for uncorrectable errors
    a10 = q("gpud-a10-535.129.03-remap-pending.txt")
    assert a10.gpus[0].remap_banks == (192, 0, 0, 0, 0)
    none = one(nvidia_smi_q.measurements(a10), "gpu_remap_banks_none")
    assert none.value == 0 and none.detail == ("banks by spare rows left: 192 max, 0 high, "
                                               "0 partial, 0 low, 0 none")


def test_q_l40s() -> None:
    g = q("exporter-l40s-595.80-idle.txt").gpus[0]
    assert (g.name, g.memory_total_mib, g.temperature_c) == ("NVIDIA L40S", 46068, 64)


def test_q_8x_h100_hw_slowdown() -> None:
    r = q("gpud-8x-h100-535.161.08-hw-slowdown.txt")
    assert len(r.gpus) == 8 and r.attached_gpus == 8
    assert r.gpus[0].bus_id == "00000000:19:00.0" and r.gpus[7].bus_id == "00000000:DB:00.0"
    assert r.gpus[0].pcie_replays == 67 and r.gpus[0].power_draw_w == 67.74
    m = nvidia_smi_q.measurements(r)
    assert [x.value for x in pick(m, "clocks_event_hw_slowdown")] == [1.0] * 8
    assert one(m, "clocks_event_power", gpu=0).detail == "active: hw_power_brake_slowdown"


def test_q_8x_h100_one_gpu_power_capped() -> None:
    r = q("gpud-8x-h100-535.183.01.txt")
    assert [g.event("sw_power_cap") for g in r.gpus].count(True) == 1
    g = r.gpus[2]
    assert g.bus_id == "00000000:75:00.0" and g.event("sw_thermal_slowdown") is True
    m = nvidia_smi_q.measurements(r)
    assert one(m, "clocks_event_thermal", gpu=2).value == 1
    assert one(m, "clocks_event_thermal", gpu=0).value == 0


def test_q_rtx4090_ecc_not_available() -> None:
    r = q("gpud-8x-rtx4090-535.154.05-b.txt")
    assert len(r.gpus) == 8 and r.gpus[0].memory_total_mib == 24564
    assert r.gpus[0].temperature_c == 31 and r.gpus[0].ecc_uncorrected_volatile is None
    assert not pick(nvidia_smi_q.measurements(r), "ecc_uncorrected_volatile")


def test_q_rtx4090_sw_power_cap_on_two_gpus() -> None:
    r = q("gpud-8x-rtx4090-535.154.05-swpowercap.txt")
    assert [g.index for g in r.gpus if g.event("sw_power_cap")] == [1, 4]
    assert [x.gpu for x in pick(nvidia_smi_q.measurements(r), "clocks_event_power",
                                value=1.0)] == [1, 4]


def test_q_a10_remap_pending() -> None:
    g = q("gpud-a10-535.129.03-remap-pending.txt").gpus[0]
    assert g.remapped_rows_uncorrectable == 4 and g.remapped_rows_pending is True
    assert (g.memory_total_mib, g.power_draw_w, g.power_limit_w) == (23028, 43.89, 150)
    m = nvidia_smi_q.measurements(q("gpud-a10-535.129.03-remap-pending.txt"))
    pending = one(m, "remapped_rows_pending")
    assert pending.value == 1 and pending.max == 0
    assert one(m, "remapped_rows_uncorrectable").value == 4


def test_q_truncated_keeps_the_complete_part() -> None:
    r = q("gpud-h100-535.183.01-truncated.txt")
    assert r.attached_gpus == 8 and len(r.gpus) == 1
    g = r.gpus[0]
    assert g.bus_id == "00000000:53:00.0" and g.pcie_replays == 120 and g.pcie_gen == 5
    assert g.event("gpu_idle") is True and g.event("hw_slowdown") is False
    assert g.memory_total_mib is None  # cut before FB Memory Usage


def test_q_titanv_pre_ampere_ecc_layout() -> None:
    g = q("gpud-titanv-560.35.03.txt").gpus[0]
    assert (g.name, g.memory_total_mib, g.temperature_c) == ("NVIDIA TITAN V", 12288, 44)
    assert g.ecc_uncorrected_volatile is None  # Double Bit / Total: N/A


def test_q_old_narrow_throttle_fragment() -> None:
    r = q("kubeflow68-2018-grep-clocks-throttle-narrow-columns.txt")
    g = r.gpus[0]
    assert g.index is None and g.event("gpu_idle") is True and g.event("sw_power_cap") is False
    m = nvidia_smi_q.measurements(r)
    assert one(m, "clocks_event_thermal").value == 0 and one(m, "clocks_event_power").value == 0
    assert one(m, "clocks_event_thermal").gpu is None


def test_q_old_driver_fragment_gen1_idle() -> None:
    g = q("nvdocker1090-old-driver-pcie-throttle-fragment.txt").gpus[0]
    assert (g.pcie_gen, g.pcie_width, g.pcie_width_max) == (1, 16, 16)
    assert g.memory_total_mib == 4046 and g.pcie_replays == 0
    assert g.event("hw_thermal_slowdown") is None  # N/A


def test_q_sram_uncorrectable_fragment() -> None:
    m = nvidia_smi_q.measurements(q("stas-ecc-section-sram-uncorrectable.txt"))
    vol = one(m, "ecc_uncorrected_volatile")
    assert vol.value == 1 and vol.max == 0
    assert one(m, "ecc_uncorrected_aggregate").value == 5
    assert one(m, "ecc_corrected_volatile").value == 0


def test_q_garbage() -> None:
    with pytest.raises(InputError, match="x:1: cannot parse as nvidia-smi-q"):
        nvidia_smi_q.parse("lorem ipsum\ndolor\n", node="n", source_name="x")


# ---- --query-gpu CSV

def csv(name: str) -> nvidia_smi_query_gpu.QueryGpuResult:
    return nvidia_smi_query_gpu.parse(fixture_text("nvidia-smi-query-gpu/" + name), node="n1",
                                      source_name=name)


def test_csv_noheader_named_by_shape() -> None:
    r = csv("akash91-h100nvl-name-deviceid-noheader.txt")
    assert r.columns == ("name", "pci.device_id")
    assert r.column("pci.device_id") == ["0x232110DE"] and r.gpus[0].name == "NVIDIA H100 NVL"
    assert one(nvidia_smi_query_gpu.measurements(r), "gpu_count").value == 1


def test_csv_h100_all_fields_with_units() -> None:
    r = csv("exporter-h100-590.48.01-all-fields-load.txt")
    assert len(r.columns) == 212 and "memory.total" in r.columns
    g = r.gpus[0]
    assert (g.memory_total_mib, g.pcie_gen, g.pcie_width, g.power_draw_w) == (81559, 5, 16, 631.95)
    assert (g.temperature_c, g.memory_temperature_c, g.sm_clock_mhz) == (59, 54, 1980)
    assert g.remapped_rows_pending is False and g.ecc_uncorrected_aggregate == 0
    m = nvidia_smi_query_gpu.measurements(r)
    assert one(m, "gpu_power_limit").value == 700 and one(m, "gpu_persistence_mode").value == 1


def test_csv_l40s_persistence_disabled() -> None:
    g = csv("exporter-l40s-595.80-all-fields-idle.txt").gpus[0]
    assert (g.name, g.memory_total_mib, g.pcie_gen, g.power_limit_w) == ("NVIDIA L40S", 46068, 4,
                                                                        350)
    assert g.persistence_mode is False and g.memory_temperature_c is None
    assert g.event("sw_power_cap") is False


def test_csv_nounits_gives_same_numbers() -> None:
    text = ("index, memory.total [MiB], power.draw [W], persistence_mode\n"
            "0, 81559, 631.95, Enabled\n")
    g = nvidia_smi_query_gpu.parse(text, node="n", source_name="x").gpus[0]
    assert (g.memory_total_mib, g.power_draw_w, g.persistence_mode) == (81559, 631.95, True)


def test_csv_retired_pages_na() -> None:
    r = csv("exporter-h200-query-retired-pages-NA.txt")
    assert r.retired_pages and len(r.rows) == 2 and r.gpus == ()
    m = nvidia_smi_query_gpu.measurements(r)
    assert one(m, "retired_pages", detail="Double Bit ECC").value == 0
    assert one(m, "retired_pages", detail="Single Bit ECC").value == 0


def test_csv_elided_rows() -> None:
    r = csv("stas-h100-name-busid-vbios-elided.txt")
    assert r.elided and [g.bus_id for g in r.gpus] == ["00000000:04:00.0", "00000000:8B:00.0"]
    assert {g.vbios for g in r.gpus} == {"96.00.89.00.01"}
    assert not pick(nvidia_smi_query_gpu.measurements(r), "gpu_count")


def test_csv_wrong_column_count_names_line() -> None:
    with pytest.raises(InputError, match=r"x:3: .*2 values for 3 columns"):
        nvidia_smi_query_gpu.parse("name, index, memory.total\nA, 0, 1\nB, 1\n", node="n",
                                   source_name="x")


# ---- topo -m

def topo(name: str) -> nvidia_smi_topo.TopoMatrix:
    return nvidia_smi_topo.parse(fixture_text("nvidia-smi-topo/" + name), node="n1",
                                 source_name=name)


def test_topo_tab_separated_2x5090() -> None:
    t = topo("club3090-1229-2x-rtx5090-tab-phb.txt")
    assert t.devices == ("GPU0", "GPU1") and t.link("GPU0", "GPU1") == "PHB"
    assert t.gpus[1].cpu_affinity == "0-63" and t.gpus[1].numa_node == 0
    m = nvidia_smi_topo.measurements(t)
    assert one(m, "topo_nvlinks").value == 0 and one(m, "topo_nvlinks").peer == "n1:1"


def test_topo_p2p_gns() -> None:
    t = topo("club3090-1229-2x-rtx5090-topo-p2p-rw-GNS.txt")
    assert t.p2p and t.link("GPU1", "GPU0") == "GNS"
    ok = one(nvidia_smi_topo.measurements(t), "gpu_p2p_ok")
    assert ok.value == 0 and ok.detail == "GNS"


def test_topo_5x4090_two_numa_nodes() -> None:
    t = topo("club3090-46-5x-rtx4090-mixed-sys-phb-node.txt")
    assert [g.numa_node for g in t.gpus] == [1, 0, 0, 0, 0]
    assert t.gpus[0].cpu_affinity == "8-15,24-31"
    assert t.link("GPU1", "GPU2") == "PHB" and t.link("GPU1", "GPU3") == "NODE"
    assert t.link("GPU0", "GPU4") == "SYS" and t.nvlink_pairs() == ()
    assert len(pick(nvidia_smi_topo.measurements(t), "topo_nvlinks")) == 10


@pytest.mark.parametrize(("name", "cpus"), [
    ("exporter-h100-1gpu-vm-590.48.01-ansi-underline.txt", "0-19"),
    ("exporter-l40s-1gpu-595.80-ansi-underline.txt", "0-7"),
])
def test_topo_single_gpu_ansi(name: str, cpus: str) -> None:
    t = topo(name)
    assert t.devices == ("GPU0",) and t.gpus[0].cpu_affinity == cpus
    assert one(nvidia_smi_topo.measurements(t), "gpu_numa_node").value == 0


def test_topo_h100_nv6_with_nics() -> None:
    t = topo("nccl1617-4x-h100-nv6-4nics-numa-spread.txt")
    assert t.devices[4:] == ("NIC0", "NIC1", "NIC2", "NIC3")
    assert t.nvlink_pairs() == ((0, 1, 6), (0, 2, 6), (0, 3, 6), (1, 2, 6), (1, 3, 6), (2, 3, 6))
    assert [g.numa_node for g in t.gpus] == [3, 1, 7, 5]
    assert [t.closest_nics(i) for i in range(4)] == [("NIC0",), ("NIC1",), ("NIC2",), ("NIC3",)]
    m = nvidia_smi_topo.measurements(t)
    assert one(m, "topo_nvlinks", gpu=1, peer="n1:3").value == 6
    assert one(m, "gpu_nic_distance", gpu=2, peer="n1:NIC2").value == 2  # PIX


def test_topo_old_driver_no_numa() -> None:
    t = topo("xuesong-2x-gtx1080ti-phb-desktop.txt")
    assert t.gpus[0].numa_node is None and t.gpus[0].cpu_affinity == "0-11"
    assert not pick(nvidia_smi_topo.measurements(t), "gpu_numa_node")


def test_topo_a10_nic_legend() -> None:
    t = topo("xuesong-4x-a10-all-sys-2nics.txt")
    assert t.nic_names == (("NIC0", "mlx5_0"), ("NIC1", "mlx5_1"))
    assert t.link("NIC0", "NIC1") == "PIX" and t.link("GPU3", "NIC1") == "SYS"
    m = nvidia_smi_topo.measurements(t)
    assert one(m, "gpu_nic_distance", gpu=0, peer="n1:mlx5_1").value == 6


def test_topo_row_cut_short_keeps_what_is_whole() -> None:
    t = nvidia_smi_topo.parse("\tGPU0\tGPU1\tNIC0\tCPU Affinity\nGPU0\t X \tPHB\tPIX\t0-3\n"
                              "GPU1\tPHB\t X\tSY\n", node="n", source_name="x")
    # the cut row's last cell ('SY', cut from SYS) is not read; the cells before it are
    assert t.link("GPU0", "NIC0") == "PIX" and t.link("GPU1", "GPU0") == "PHB"
    assert t.link("GPU1", "NIC0") is None and len(t.gpus) == 2


# ---- nvlink

def nvl(name: str) -> nvidia_smi_nvlink.NvlinkResult:
    return nvidia_smi_nvlink.parse(fixture_text("nvidia-smi-nvlink/" + name), node="n1",
                                   source_name=name)


def test_nvlink_dcgmi_all_down() -> None:
    r = nvl("dcgm198-dcgmi-nvlink-link-status-all-down.txt")
    assert r.source_tool == "dcgmi" and [len(g.links) for g in r.gpus] == [18, 18]
    m = nvidia_smi_nvlink.measurements(r)
    assert [x.value for x in pick(m, "nvlink_links_up")] == [0, 0]
    down = one(m, "nvlink_links_down", gpu=1)
    assert down.value == 18 and down.max == 0


def test_nvlink_h100_18_links() -> None:
    r = nvl("exporter-h100-18links-590.48.01-tab-indent.txt")
    g = r.gpus[0]
    assert g.links_up == 18 and {lk.speed_gbs for lk in g.links} == {26.562}
    m = nvidia_smi_nvlink.measurements(r)
    assert one(m, "nvlink_links_up").value == 18
    assert one(m, "nvlink_link_speed", detail="link 17").value == 26.562


def test_nvlink_mig_refused() -> None:
    r = nvl("exporter-h100-mig-nvlink-not-supported-590.48.01.txt")
    assert r.gpus[0].links == () and "MIG" in (r.gpus[0].note or "")
    fail = one(nvidia_smi_nvlink.measurements(r), "tool_ran_ok")
    assert fail.value == 0 and fail.gpu == 0


def test_nvlink_l40s_has_none() -> None:
    r = nvl("exporter-l40s-no-nvlink-595.80.txt")
    rec = one(nvidia_smi_nvlink.measurements(r), "nvlink_links_up")
    assert rec.value == 0 and rec.model == "NVIDIA L40S"


def test_nvlink_8x_a100_12_links() -> None:
    r = nvl("gpud-8x-a100-sxm4-80gb-nvlink-status.txt")
    assert [g.links_up for g in r.gpus] == [12] * 8
    assert r.gpus[7].uuid == "GPU-754035b4-4708-efcd-b261-623aea38bcad"
    m = nvidia_smi_nvlink.measurements(r)
    assert len(pick(m, "nvlink_link_speed", value=25.0)) == 96


def test_nvlink_error_counters_elided() -> None:
    r = nvl("stas-h100-nvlink-errors-elided.txt")
    assert [lk.link for lk in r.gpus[0].links] == [0, 1, 17]
    m = nvidia_smi_nvlink.measurements(r)
    assert len(pick(m, "nvlink_crc_errors", value=0.0)) == 3 and not pick(m, "nvlink_links_up")
    assert one(m, "nvlink_replay_errors", detail="link 17").max == 0


def test_nvlink_status_elided() -> None:
    r = nvl("stas-h100-nvlink-status-elided.txt")
    assert [(lk.link, lk.speed_gbs) for lk in r.gpus[0].links] == [(0, 26.562), (17, 26.562)]


def test_nvlink_inactive_link_counts_down() -> None:
    text = "GPU 0: NVIDIA H100 NVL (UUID: GPU-1)\n\t Link 0: 26.562 GB/s\n\t Link 1: <inactive>\n"
    r = nvidia_smi_nvlink.parse(text, node="n", source_name="x")
    assert r.gpus[0].links_up == 1 and r.gpus[0].links[1].state == "inactive"

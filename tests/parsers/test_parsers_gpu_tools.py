"""perftest, dcgmi diag, nvbandwidth, gpu-burn and kernel-log Xid on every real sample."""

from __future__ import annotations

import pytest
from parsers_support import fixture_text, one, pick

from provision.errors import InputError
from provision.parsers import dcgmi_diag, dmesg_xid, gpu_burn, nvbandwidth, perftest


def run(mod, folder: str, name: str):
    res = mod.parse(fixture_text(f"{folder}/{name}"), node="n1", source_name=name)
    return res, mod.measurements(res)


# ---- perftest

@pytest.mark.parametrize(("name", "device", "bw", "n", "peer"), [
    ("dgxspark-cx7-roce-write-bw-run-infinitely-rail1.txt", "rocep1s0f0", 92.568, 5,
     "192.168.200.12"),
    ("dgxspark-cx7-roce-write-bw-run-infinitely-rail2.txt", "roceP2p1s0f0", 97.2817, 6,
     "192.168.201.12"),
])
def test_perftest_run_infinitely_rows_averaged(name: str, device: str, bw: float, n: int,
                                               peer: str) -> None:
    r, m = run(perftest, "perftest", name)
    assert r.test == "ib_write_bw" and r.device == device and len(r.rows) == n
    assert r.rows[0].get("BW average") in (92.57, 97.28) and r.rows[0].get("BW peak") == 0.0
    rec = one(m, "ib_write_bw")
    assert rec.value == pytest.approx(bw, abs=1e-3) and rec.peer == peer and rec.gpu is None


@pytest.mark.parametrize("name", ["schmaustech-a40-roce-16qp-use-cuda-client.txt",
                                  "schmaustech-a40-roce-16qp-use-cuda-dmabuf-server.txt"])
def test_perftest_gpudirect(name: str) -> None:
    r, m = run(perftest, "perftest", name)
    assert r.cuda_gpu == 0 and r.cuda_gpu_name == "NVIDIA A40" and r.setting(
        "Number of qps") == "16"
    rec = one(m, "gpudirect_bw")
    assert rec.value == 181.46 and rec.unit == "Gb/s" and rec.gpu == 0
    assert one(m, "ib_msg_rate").value == 0.3461 and not pick(m, "ib_write_bw")


def test_perftest_read_latency_with_warnings_between_rows() -> None:
    name = "spiderpool-cx5-roce-ib-read-lat-shared-mode-cpu-freq-warn.txt"
    r, m = run(perftest, "perftest", name)
    assert r.test == "ib_read_lat" and r.rows[0].size == 2 and r.rows[0].iterations == 1000
    assert one(m, "ib_read_lat").value == 7.04 and one(m, "ib_lat_max").value == 16.81
    assert one(m, "ib_lat_avg").value == 7.06 and one(m, "ib_read_lat").peer == "172.81.0.120"


def test_perftest_mb_per_sec_converted_to_gbit() -> None:
    text = (" RDMA_Write BW Test\n Device : mlx5_0\n" + "-" * 40 + "\n"
            " #bytes     #iterations    BW peak[MB/sec]    BW average[MB/sec]   MsgRate[Mpps]\n"
            " 65536      5000             23000.00            22000.00             0.352000\n")
    rec = one(perftest.measurements(perftest.parse(text, node="n", source_name="x")),
              "ib_write_bw")
    assert rec.value == pytest.approx(22000 * 1048576 * 8 / 1e9, abs=1e-3)  # 184.5 Gb/s


def test_perftest_banner_without_rows_is_truncated() -> None:
    with pytest.raises(InputError, match="no result rows"):
        perftest.parse(" RDMA_Write BW Test\n Device : mlx5_0\n", node="n", source_name="x")


# ---- dcgmi diag

def test_dcgm_pcie_fail_wrapped_warning() -> None:
    r, m = run(dcgmi_diag, "dcgmi-diag", "dcgm49-pcie-fail-nvlink-down-on-pcie-gpu-fragment.txt")
    (t,) = r.tests
    assert (t.category, t.name, t.status, t.gpus) == ("Integration", "PCIe", "fail", None)
    assert "NvLink link 1 is currently down Run a field diagnostic" in t.messages[0]
    assert "NvLink link 4 is currently down" in t.messages[0]
    rec = one(m, "dcgm_test_pass")
    assert rec.value == 0 and rec.min == 1


def test_dcgm_3_0_deployment_only() -> None:
    r, m = run(dcgmi_diag, "dcgmi-diag", "dcgm55-dcgm3.0.4-r3-deployment-only-truncated.txt")
    assert len(r.tests) == 9 and {t.category for t in r.tests} == {"Deployment"}
    assert [x.value for x in m] == [1.0] * 9


def test_dcgm_old_blacklist_all_pass() -> None:
    r, m = run(dcgmi_diag, "dcgmi-diag", "gcm-docstring-old-blacklist-naming-all-pass.txt")
    assert r.tests[0].name == "Blacklist" and len(r.tests) == 18 and not r.failed
    assert one(m, "dcgm_test_pass", detail="Stress/Memtest: pass").value == 1


def test_dcgm_3_3_metadata_and_skip() -> None:
    r, m = run(dcgmi_diag, "dcgmi-diag", "ramble-dcgm3.3.9-8x-h200-r3-all-pass-eud-skip.txt")
    assert (r.version, r.driver_version) == ("3.3.9", "570.133.20")
    assert r.gpu_device_ids == ("2335",) * 8
    assert [t.status for t in r.tests if t.name == "EUD Test"] == ["skip"]
    assert len(m) == 15 and all(x.value == 1 for x in m)  # 16 tests, the skipped one unrecorded


def test_dcgm_deployment_error_names_gpu() -> None:
    r, m = run(dcgmi_diag, "dcgmi-diag", "stas-r3-deployment-error-row-remap-fragment.txt")
    rec = one(m, "dcgm_test_pass")
    assert rec.value == 0 and rec.gpu == 3
    assert r.failed[0].messages == (
        "GPU 3 has uncorrectable memory errors and row remappings are pending",)


def test_dcgm_json_with_pcie_figures() -> None:
    r, m = run(dcgmi_diag, "dcgmi-diag", "virtualclient-r2-json.txt")
    assert r.form == "json" and len(r.tests) == 11 and not r.failed
    assert one(m, "dcgm_pcie_bandwidth", detail="PCIe: Host to GPU bandwidth").value == 13.11
    assert one(m, "dcgm_pcie_latency", detail="PCIe: bidirectional latency").value == 4.532
    assert one(m, "dcgm_test_pass", detail_has="GPU Memory").gpu == 0


def test_dcgm_json_4x_shape_failure() -> None:
    text = ('{"version": "4.2.3", "tests": [{"name": "memory", "results": ['
            '{"entity_group": "GPU", "entity_id": 0, "status": "pass"},'
            '{"entity_group": "GPU", "entity_id": 1, "status": "fail",'
            ' "warnings": [{"warning": "DBE on GPU 1"}]}]}]}')
    m = dcgmi_diag.measurements(dcgmi_diag.parse(text, node="n", source_name="x"))
    bad = one(m, "dcgm_test_pass", gpu=1)
    assert bad.value == 0 and "DBE on GPU 1" in (bad.detail or "")


def test_dcgm_json_truncated_names_line() -> None:
    with pytest.raises(InputError, match=r"x:3: .*invalid JSON"):
        dcgmi_diag.parse('Successfully ran diagnostic for group.\n{\n  "DCGM GPU Diagnostic" :',
                         node="n", source_name="x")


# ---- nvbandwidth

def test_nvbw_v02_two_tests_with_sum() -> None:
    r, m = run(nvbandwidth, "nvbandwidth", "issue15-8x-rtx4090-v0.2-h2d-d2h-truncated.txt")
    assert r.version == "v0.2" and len(r.devices) == 8
    h2d = r.test("host_to_device_memcpy_ce")
    assert h2d is not None and h2d.total_gbs == 205.04 and len(h2d.cells) == 8
    assert one(m, "nvbandwidth", gpu=2, detail_has="host_to_device").value == 23.90
    assert one(m, "nvbandwidth", gpu=5, detail_has="device_to_host").value == 27.11
    assert one(m, "nvbandwidth_sum", detail="device_to_host_memcpy_ce").value == 214.28
    assert one(m, "nvbandwidth", gpu=0, detail_has="host_to_device").model == (
        "NVIDIA GeForce RTX 4090")


def test_nvbw_d2d_matrix_skips_diagonal() -> None:
    r, m = run(nvbandwidth, "nvbandwidth", "readme-8gpu-d2d-write-ce-matrix.txt")
    assert len(m) == 56 and len(r.tests[0].cells) == 56
    assert one(m, "nvbandwidth", gpu=6, peer="n1:0").value == 274.89
    assert one(m, "nvbandwidth", gpu=4, peer="n1:3").value == 276.76


@pytest.mark.parametrize(("name", "gpu", "value", "cells"), [
    ("readme-8gpu-h2d-bidir-ce-row.txt", 3, 19.59, 8),
    ("readme-8gpu-h2d-ce-row.txt", 4, 26.19, 8),
    ("readme-old-2gpu-h2d-bidir-ce.txt", 1, 11.16, 2),
    ("readme-old-2gpu-h2d-ce.txt", 0, 6.20, 2),
])
def test_nvbw_single_rows(name: str, gpu: int, value: float, cells: int) -> None:
    _, m = run(nvbandwidth, "nvbandwidth", name)
    assert len(m) == cells and one(m, "nvbandwidth", gpu=gpu).value == value


def test_nvbw_title_without_rows_refused() -> None:
    with pytest.raises(InputError, match="truncated"):
        nvbandwidth.parse("Running host_to_device_memcpy_ce.\n"
                          "memcpy CE CPU(row) -> GPU(column) bandwidth (GB/s)\n", node="n",
                          source_name="x")


# ---- gpu-burn

def test_burn_ok_without_progress() -> None:
    r, m = run(gpu_burn, "gpu-burn", "issue124-rtx-a2000-no-progress-lines-but-OK.txt")
    assert r.summary and r.gpus[0].verdict == "OK" and r.gpus[0].gflops is None
    assert [x.metric for x in m] == ["gpu_burn_ok"] and m[0].value == 1


def test_burn_no_summary_uses_last_progress_line() -> None:
    r, m = run(gpu_burn, "gpu-burn", "issue124-rtx-a500-stops-at-100pct-no-summary.txt")
    assert not r.summary and r.progress_pct == 100.0
    assert one(m, "gpu_burn_gflops").value == 3519 and one(m, "gpu_temperature").value == 53
    assert one(m, "gpu_burn_errors").value == 0 and not pick(m, "gpu_burn_ok")


def test_burn_cublas_init_failure_eight_gpus() -> None:
    r, m = run(gpu_burn, "gpu-burn", "issue14-8x-gtx1080ti-cublas-not-initialized-truncated.txt")
    assert len(r.gpus) == 8 and [g.temperature_c for g in r.gpus][:4] == [30, 31, 32, 29]
    assert {x.value for x in pick(m, "gpu_burn_gflops")} == {0.0}
    fail = one(m, "tool_ran_ok")
    assert fail.value == 0 and "CUBLAS_STATUS_NOT_INITIALIZED" in (fail.detail or "")
    assert one(m, "gpu_burn_gflops", gpu=0).uuid is None  # masked 'xxxx' UUIDs dropped


def test_burn_k80_old_format() -> None:
    r, m = run(gpu_burn, "gpu-burn", "issue8-azure-k80-10s-no-final-summary.txt")
    assert r.gpus[0].model == "Tesla K80"
    assert one(m, "gpu_burn_gflops").value == 2273 and one(m, "gpu_temperature").value == 66


def test_burn_faulty_verdict_fails() -> None:
    text = "GPU 0: X (UUID: GPU-1)\nTested 1 GPUs:\n\tGPU 0: FAULTY\n"
    rec = one(gpu_burn.measurements(gpu_burn.parse(text, node="n", source_name="x")),
              "gpu_burn_ok")
    assert rec.value == 0 and rec.min == 1


# ---- kernel log Xid

def test_xid_long_decode_log() -> None:
    r, m = run(dmesg_xid, "dmesg-xid", "gpud-dmesg-decode-iso-xid13-xid43-long.txt")
    assert r.codes() == {13: 629, 43: 7}
    assert one(m, "xid_events", detail_has="Xid 13 ").value == 629
    assert one(m, "xid_events", detail_has="Xid 43 ").max == 0


def test_xid_48_63_94() -> None:
    r, m = run(dmesg_xid, "dmesg-xid", "gpud-dmesg-iso-xid48-63-94.txt")
    assert r.codes() == {48: 1, 63: 1, 94: 9} and r.events[0].pci == "0000:19:00"
    assert one(m, "xid_events", detail_has="Xid 94 ").value == 9
    assert r.events[0].time == "2024-11-15T12:02:03,470068+00:00"


def test_xid_119_gsp_with_uuid() -> None:
    r, m = run(dmesg_xid, "dmesg-xid", "gpud-h100-xe9680-xid119-gsp-timeout.txt")
    assert r.codes() == {119: 5}
    rec = one(m, "xid_events")
    assert rec.uuid == "GPU-509665ad-b600-ac93-3616-d754b23d636d"
    assert "Sun Feb 23 16:24:18 2025" in (rec.detail or "")


def test_xid_144_149_two_gpus() -> None:
    r, m = run(dmesg_xid, "dmesg-xid", "gpud1160-xid144-149-nvlink-sawnetir.txt")
    assert r.codes() == {144: 1, 149: 2}
    assert one(m, "xid_events", detail_has="Xid 149 on PCI:0000:00:00").value == 2


def test_xid_63_single_line() -> None:
    r, m = run(dmesg_xid, "dmesg-xid", "stas-xid63-row-remapper-line.txt")
    assert r.events[0].pci == "0000:10:1c" and r.events[0].time is None
    assert one(m, "xid_events").value == 1


def test_clean_log_is_zero_events() -> None:
    text = "[    0.000000] Linux version 6.1.0\n[    5.1] NVRM: loading NVIDIA UNIX driver\n"
    rec = one(dmesg_xid.measurements(dmesg_xid.parse(text, node="n", source_name="x")),
              "xid_events")
    assert rec.value == 0


def test_not_a_kernel_log() -> None:
    with pytest.raises(InputError, match="x:1: cannot parse as dmesg-xid"):
        dmesg_xid.parse("hello\nworld\n", node="n", source_name="x")

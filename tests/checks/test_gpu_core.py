"""The numeric cores of the GPU workloads, on the CPU with numpy (no GPU needed)."""

from __future__ import annotations

import ast
import inspect
from types import ModuleType

import numpy as np
import pynvml
import pytest

from provision.node_programs.gpu import hbm, nvml, sdc


def test_hbm_bandwidth_counts_read_and_write() -> None:
    # 1 GiB copied in 1 ms: 2 x 1.073741824 GB / 0.001 s
    assert hbm.bandwidth_gbs(2**30, 1e-3) == pytest.approx(2147.483648)
    s = hbm.summarize(2**30, [2e-3, 1e-3, 1.5e-3])
    assert s["best_s"] == 1e-3 and s["bandwidth_gbs"] == pytest.approx(2147.48, abs=0.01)
    assert s["mean_bandwidth_gbs"] == pytest.approx(1431.66, abs=0.01)
    with pytest.raises(ValueError):
        hbm.bandwidth_gbs(1, 0)


def test_tflops_of_a_gemm() -> None:
    assert sdc.gemm_flops(8192) == 2 * 8192**3
    assert sdc.tflops(8192, 100, 0.2) == pytest.approx(549.755813888)


def _cpu_gemm_checksums(flip: tuple[int, int] | None, gpus: int = 3, iters: int = 4,
                        ) -> dict[int, list[str]]:
    """The SDC pipeline on the CPU: fixed-seed inputs, GEMM, output bytes, sha256."""
    rng = np.random.Generator(np.random.PCG64(1234))
    a = rng.standard_normal((64, 64), dtype=np.float32)
    b = rng.standard_normal((64, 64), dtype=np.float32)
    out: dict[int, list[str]] = {}
    for g in range(gpus):
        sums = []
        for it in range(iters):
            c = bytearray((a @ b).tobytes())
            if flip == (g, it):
                sdc.flip_bit(c, 0)
            sums.append(sdc.checksum(bytes(c)))
        out[g] = sums
    return out


def test_identical_outputs_have_no_mismatch() -> None:
    sums = _cpu_gemm_checksums(None)
    res = sdc.compare(sums, {0: "H100 NVL", 1: "H100 NVL", 2: "H100 NVL"})
    assert all(r["self_mismatch"] == 0 and r["cohort_mismatch"] == 0 for r in res.values())
    assert len({r["reference"] for r in res.values()}) == 1


def test_one_flipped_bit_is_caught_on_that_gpu_and_iteration() -> None:
    sums = _cpu_gemm_checksums((1, 2))
    res = sdc.compare(sums, {0: "m", 1: "m", 2: "m"})
    assert res[1]["self_mismatch"] == 1 and res[1]["self_mismatch_iterations"] == [2]
    assert res[1]["cohort_mismatch_iterations"] == [2]
    assert res[0]["self_mismatch"] == res[0]["cohort_mismatch"] == 0
    assert res[2]["cohort_mismatch"] == 0


def test_cohorts_are_per_model() -> None:
    sums = _cpu_gemm_checksums(None, gpus=2)
    sums[1] = [s[::-1] for s in sums[1]]          # a different model gives different bits
    res = sdc.compare(sums, {0: "H100 NVL", 1: "L40S"})
    assert res[0]["cohort_mismatch"] == res[1]["cohort_mismatch"] == 0


def test_two_gpus_that_disagree_are_both_marked() -> None:
    sums = _cpu_gemm_checksums((0, 0), gpus=2, iters=2)
    res = sdc.compare(sums, {0: "m", 1: "m"})
    assert res[0]["cohort_mismatch_iterations"] == [0] == res[1]["cohort_mismatch_iterations"]


def test_flip_bit_and_inject_flag() -> None:
    buf = bytearray(b"\x00\x00")
    sdc.flip_bit(buf, 9)
    assert buf == bytearray(b"\x00\x02")
    assert sdc.parse_inject("3:7") == (3, 7) and sdc.parse_inject(None) is None


def test_clocks_event_reasons_and_sample_summary() -> None:
    assert nvml.decode_reasons(0x4 | 0x40) == ["sw_power_cap", "hw_thermal_slowdown"]
    samples = [
        {"power_w": 390.0, "power_limit_w": 400.0, "temperature_c": 70, "sm_clock_mhz": 1980,
         "clocks_events": ["sw_power_cap"]},
        {"power_w": 350.0, "power_limit_w": 400.0, "temperature_c": 75, "sm_clock_mhz": 1700,
         "clocks_events": ["hw_thermal_slowdown"]},
        {"power_w": 100.0, "power_limit_w": 400.0, "temperature_c": 60, "sm_clock_mhz": 1980,
         "clocks_events": []},
        {"power_w": None, "temperature_c": None, "sm_clock_mhz": None, "clocks_events": None},
    ]
    s = nvml.summarize(samples)
    assert s["power_max_w"] == 390.0 and s["power_mean_w"] == pytest.approx(280.0)
    assert s["temperature_max_c"] == 75 and s["sm_clock_min_mhz"] == 1700
    assert s["clocks_event_power"] == 0.25 and s["clocks_event_thermal"] == 0.25


def test_every_result_is_compared_bit_for_bit() -> None:
    import numpy as np

    golden = np.arange(64, dtype=np.float16).reshape(8, 8)
    results = [golden.copy() for _ in range(5)]
    assert [int(sdc.wrong_elements(np, r, golden, np.int16)) for r in results] == [0] * 5
    results[3].view(np.uint8).ravel()[7] ^= 1          # one flipped bit in one of five GEMMs
    results[4][0, 0] = -0.0 if golden[0, 0] == 0 else golden[0, 0]   # -0.0 != +0.0 in bits
    got = [int(sdc.wrong_elements(np, r, golden, np.int16)) for r in results]
    assert got == [0, 0, 0, 1, 1]


def test_result_buffers_fill_most_of_hbm() -> None:
    # H100 NVL: ~93 GiB free, 8192^2 bf16 = 128 MiB per result
    slots = sdc.result_slots(93 * 2**30, 8192, 2, fraction=0.9)
    assert slots == (int(93 * 2**30 * 0.9) - 2**30) // (8192 * 8192 * 2) == 661
    assert slots * 128 / 1024 > 0.85 * 93 - 1      # > 80 GiB of results in flight
    assert sdc.result_slots(1 << 20, 8192, 2) == 1   # never zero


def test_burnin_fails_on_hardware_clock_events_and_judges_mean_power() -> None:
    from pathlib import Path

    from provision.checks import registry
    from provision.expectations import plan_site
    from provision.judge import failed
    from provision.spec import load_site

    site = load_site(Path(__file__).resolve().parents[2] / "site-specs/small.yaml")
    plan = plan_site(site).for_node("gpu001")
    gpu = {"index": 0, "name": "NVIDIA H100 NVL", "uuid": "GPU-x", "iterations": 10,
           "gemms_checked": 6610, "result_bytes": 661 << 27, "self_mismatch": 0,
           "self_mismatch_iterations": [], "cohort_mismatch": 0,
           "cohort_mismatch_iterations": [], "tflops_mean": 600.0, "tflops_best": 610.0,
           "samples": {"samples": 100, "power_max_w": 400.0, "power_mean_w": 300.0,
                       "power_limit_w": 400.0, "clocks_event_hw_slowdown": 0.0,
                       "clocks_event_hw_power_brake": 0.02, "clocks_event_hw_thermal": 0.0}}
    data = {"gpus": [gpu], "dtype": "bfloat16", "n": 8192, "backend": "torch", "seconds": 600}
    recs = {r.metric: r for r in registry.get("sdc").measurements(data, plan)}
    assert failed(recs["clocks_event_hw_power_brake"])
    assert not failed(recs["clocks_event_hw_slowdown"]) and not failed(recs["sdc_mismatch"])
    # 300 W mean < 0.85 x 400 W: a capped board fails although it peaked at the limit
    assert recs["gpu_power"].value == 300.0 and failed(recs["gpu_power"])


def test_pcie_replays_during_a_workload_fail() -> None:
    from pathlib import Path

    from provision.checks.gpuwork import counter_records
    from provision.expectations import plan_site
    from provision.judge import failed
    from provision.spec import load_site

    site = load_site(Path(__file__).resolve().parents[2] / "site-specs/small.yaml")
    plan = plan_site(site).for_node("gpu001")
    before = {"gpus": [{"index": 0, "pcie_replay_counter": 12},
                       {"index": 1, "pcie_replay_counter": 3}]}
    after = {"gpus": [{"index": 0, "pcie_replay_counter": 12},
                      {"index": 1, "pcie_replay_counter": 40}]}
    recs = {r.gpu: r for r in counter_records(plan, "hbm", before, after)
            if r.metric == "pcie_replay_delta"}
    assert not failed(recs[0]) and failed(recs[1]) and recs[1].value == 37


def test_cuda_index_maps_to_the_nvml_index(monkeypatch: pytest.MonkeyPatch) -> None:
    from provision.node_programs.gpu import nvml

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    assert [nvml.nvml_index(0), nvml.nvml_index(1)] == [3, 5]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-1c2d,GPU-9f")
    assert nvml.nvml_index(1) == 1           # UUIDs are not mapped
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert nvml.nvml_index(2) == 2


def test_a_requested_flip_happens_even_when_the_first_iteration_outlasts_the_run() -> None:
    # seen on an H200 with CuPy: iteration 0 (kernel compilation) took longer than a 5 s run,
    # and the flip asked for in iteration 1 never happened
    assert sdc.keep_going(0, now=10.0, deadline=5.0, flip_at=None)
    assert not sdc.keep_going(1, now=10.0, deadline=5.0, flip_at=None)
    assert sdc.keep_going(1, now=10.0, deadline=5.0, flip_at=1)
    assert not sdc.keep_going(2, now=10.0, deadline=5.0, flip_at=1)
    assert sdc.keep_going(7, now=1.0, deadline=5.0, flip_at=1)


@pytest.mark.parametrize("module", [nvml, hbm])
def test_every_nvml_name_the_node_programs_use_exists_in_nvidia_ml_py(module: ModuleType) -> None:
    # on a real H200 every snapshot failed: NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERRORS is
    # spelled ..._ERROR in nvidia-ml-py; attributes read with getattr are optional by design
    used = {node.attr for node in ast.walk(ast.parse(inspect.getsource(module)))
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
            and node.value.id in ("nv", "pynvml") and node.attr.lower().startswith("nvml")}
    assert used, "no NVML names found: the test reads the wrong module"
    assert sorted(n for n in used if not hasattr(pynvml, n)) == []


@pytest.mark.parametrize(("first_line", "open_modules"), [
    # the two flavours' first lines, as NVIDIA's driver README ("Using the NVIDIA Open GPU
    # Kernel Modules") shows them, quoted in NVIDIA/open-gpu-kernel-modules#171 and with a
    # real 565.57.01 line in nix-community/nixGL#186
    ("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  565.57.01  Release Build  "
     "(dvs-builder@U16-A24-9-2)  Thu Oct 10 12:15:00 UTC 2024", True),
    ("NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 01:15:15 UTC 2023",
     False),
    (None, False),
])
def test_module_facts_tell_the_open_kernel_modules(monkeypatch: pytest.MonkeyPatch,
                                                   first_line: str | None,
                                                   open_modules: bool) -> None:
    from pathlib import Path

    from provision.node_programs import collect

    texts = {"/proc/modules": "nvidia 1118208 0 - Live 0x0 (OE)\n",
             "/proc/driver/nvidia/version":
                 None if first_line is None else f"{first_line}\nGCC version:  gcc 13.3.0\n"}
    monkeypatch.setattr(collect, "_read", lambda path: texts[str(Path(path))])
    mods = collect.module_facts()
    assert mods["nvidia"] and mods["nvidia_open"] is open_modules

"""The GPU workloads on a real GPU (skipped with the reason where none is usable)."""

from __future__ import annotations

import pytest

from provision.node_programs.gpu import arrays, nvml

pytestmark = pytest.mark.gpu


def _need_gpu() -> None:
    try:
        arrays.backend()
        nvml.snapshot()
    except (arrays.NoGpu, nvml.NvmlUnavailable) as exc:
        pytest.skip(f"no usable GPU: {exc}")


def test_nvml_snapshot_reads_every_gpu() -> None:
    _need_gpu()
    snap = nvml.snapshot()
    assert snap["gpus"] and all(g["name"] and g["memory_total_mib"] > 0 for g in snap["gpus"])


def test_hbm_bandwidth_is_plausible() -> None:
    _need_gpu()
    from provision.node_programs.gpu import hbm

    res = hbm.run(size_mib=1024, repeat=5)
    for g in res["gpus"]:
        assert g["verified"] and 100 < g["bandwidth_gbs"] < 10000


def test_sdc_catches_an_injected_flip() -> None:
    _need_gpu()
    from provision.node_programs.gpu import sdc

    res = sdc.run(seconds=3, n=2048, max_slots=8, inject=(0, 1))
    g0 = res["gpus"][0]
    assert g0["self_mismatch"] == 1 and g0["self_mismatch_iterations"] == [1]
    assert g0["gemms_wrong"] == 1 and g0["elements_wrong"] == 1
    assert g0["gemms_checked"] == 8 * g0["iterations"]
    clean = sdc.run(seconds=2, n=2048, max_slots=8)
    assert all(g["self_mismatch"] == 0 and g["cohort_mismatch"] == 0 for g in clean["gpus"])

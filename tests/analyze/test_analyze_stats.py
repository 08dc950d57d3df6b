"""Cohort statistics on small fleets with known answers."""

from __future__ import annotations

from conftest import H100, gpu_fleet, set_value

from provision.analyze import MetricLimit, Policy, analyze


def test_one_slow_gpu_among_32_is_found_and_named() -> None:
    recs = gpu_fleet()
    set_value(recs, "gpu003", 5, 0.95)           # 5 % slow HBM
    a = analyze(recs)
    assert [(f.node, f.gpu, f.kind, f.metric) for f in a.findings] == [
        ("gpu003", 5, "outlier", "hbm_bandwidth")]
    f = a.findings[0]
    assert f.severity == "fail" and a.failed and int(a.exit_code) == 1
    assert 0.94 < f.value / f.expected < 0.96
    assert f.limit is not None and f.value < f.limit < f.expected
    assert "below the median of 32 NVIDIA H100 NVL GPUs" in f.reason


def test_four_percent_is_a_warning_and_passes_acceptance() -> None:
    recs = gpu_fleet(sd_rel=0.002)
    set_value(recs, "gpu002", 1, 0.96)
    a = analyze(recs)
    assert [(f.node, f.gpu, f.severity) for f in a.findings] == [("gpu002", 1, "warn")]
    assert not a.failed and int(a.exit_code) == 0
    strict = analyze(recs, policy=Policy(fail_on="warn"))
    assert strict.failed


def test_only_the_bad_direction_counts() -> None:
    recs = gpu_fleet()
    set_value(recs, "gpu001", 0, 1.2)             # 20 % faster HBM: not a fault
    assert analyze(recs).findings == ()
    temps = gpu_fleet("gpu_temperature", mean=60.0, sd_rel=0.02, unit="C")
    set_value(temps, "gpu004", 2, 0.6)            # 24 C cooler: fine
    set_value(temps, "gpu004", 3, 1.5)            # 30 C hotter: flagged
    assert [(f.node, f.gpu) for f in analyze(temps).findings] == [("gpu004", 3)]


def test_unknown_metric_is_two_sided_unless_the_record_says() -> None:
    recs = gpu_fleet("vendor_widget_rate", unit=None)
    set_value(recs, "gpu001", 0, 1.2)
    set_value(recs, "gpu002", 0, 0.8)
    assert {(f.node, f.gpu) for f in analyze(recs).findings} == {("gpu001", 0), ("gpu002", 0)}
    for r in recs:
        r["better"] = "higher"
    assert {(f.node, f.gpu) for f in analyze(recs).findings} == {("gpu002", 0)}


def test_relative_floor_keeps_zero_spread_cohorts_quiet() -> None:
    recs = gpu_fleet(sd_rel=0.0)                  # MAD is exactly 0
    set_value(recs, "gpu001", 0, 0.98)            # 2 %: within the 3 % the floor allows
    assert analyze(recs).findings == ()
    set_value(recs, "gpu001", 0, 0.97)            # now 4.9 % off
    assert [f.gpu for f in analyze(recs).findings] == [0]


def test_mixed_models_are_not_compared() -> None:
    recs = gpu_fleet(nodes=6) + gpu_fleet(nodes=2, mean=780.0, model="NVIDIA L40S", seed=2)
    for r in recs[48:]:
        r["node"] = r["node"].replace("gpu", "ovx")
    assert analyze(recs).findings == ()
    blind = [{k: v for k, v in r.items() if k != "model"} for r in recs]
    # without the model both L40S nodes look broken
    assert {f.node for f in analyze(blind).findings} == {"ovx001", "ovx002"}


def test_zero_spread_counters_and_constants() -> None:
    recs = gpu_fleet("xid_events", mean=0.0, sd_rel=0.0, unit="count")
    recs += gpu_fleet("sdc_mismatch", mean=0.0, sd_rel=0.0, unit="count")
    recs += gpu_fleet("nvlink_links_up", mean=12.0, sd_rel=0.0, unit="count")
    set_value(recs, "gpu001", 2, 0.0, "xid_events")
    next(r for r in recs if r["metric"] == "xid_events" and r["gpu"] == 2)["value"] = 3
    next(r for r in recs if r["metric"] == "sdc_mismatch" and r["node"] == "gpu002")["value"] = 1
    set_value(recs, "gpu004", 6, 10 / 12, "nvlink_links_up")
    got = {f.metric: f for f in analyze(recs).findings}
    assert set(got) == {"xid_events", "sdc_mismatch", "nvlink_links_up"}
    assert got["sdc_mismatch"].severity == "fail" and got["sdc_mismatch"].fatal
    assert got["xid_events"].severity == "warn" and got["xid_events"].expected == 0
    assert got["nvlink_links_up"].severity == "fail" and got["nvlink_links_up"].expected == 12
    assert all(f.kind == "limit" for f in got.values())


def test_record_expected_constant_wins_over_the_cohort() -> None:
    # every node reports 7 GPUs: the cohort agrees, the record's expected figure does not
    recs = [{"node": f"gpu{i:03d}", "gpu": None, "metric": "gpu_count", "value": 7,
             "expected": 8, "source": "profile sr675v3: 8 GPUs"} for i in range(6)]
    fs = analyze(recs).findings
    assert len(fs) == 6 and all(f.severity == "fail" and f.expected == 8 for f in fs)
    assert fs[0].source == "profile sr675v3: 8 GPUs"


def test_hard_limits_from_records_and_policy() -> None:
    recs = gpu_fleet(min=3300.0, expected=3900.0, source="H100 NVL datasheet 3.9 TB/s")
    set_value(recs, "gpu002", 4, 0.97)            # under the 3300 limit, not an outlier
    fs = analyze(recs).findings
    assert [(f.node, f.gpu, f.kind, f.severity) for f in fs] == [("gpu002", 4, "limit", "fail")]
    assert "below the hard minimum 3300 GB/s (= 0.85 x 3900 GB/s, H100 NVL datasheet" in fs[0].reason
    plain = gpu_fleet()
    pol = Policy.with_limits([MetricLimit("hbm_bandwidth", min=3400.0, model=H100,
                                          expected=3900.0, fraction=0.87, source="spec")])
    assert len(analyze(plain, policy=pol).findings) == 32


def test_tiny_cohorts_use_a_relative_rule() -> None:
    recs = [{"node": f"gpu{i:03d}", "gpu": None, "metric": "host_memory", "value": v,
             "unit": "GiB"} for i, v in enumerate([1511, 1511, 1511, 1400])]
    fs = analyze(recs).findings                   # 7.3 % short among 4 nodes
    assert [(f.node, f.severity) for f in fs] == [("gpu003", "warn")]
    assert "small cohort" in fs[0].reason
    recs[3]["value"] = 1480                       # 2 %: not flagged
    assert analyze(recs).findings == ()
    assert analyze(recs[2:]).findings == ()       # 2 readings: no statistics at all


def test_measurement_objects_are_accepted_too() -> None:
    from provision.measurement import Measurement

    recs = [Measurement(node=f"gpu{n:03d}", gpu=g, metric="hbm_bandwidth", unit="GB/s",
                        value=3350.0 + g + n, model=H100) for n in range(4) for g in range(8)]
    recs[9] = Measurement(node="gpu001", gpu=1, metric="hbm_bandwidth", unit="GB/s",
                          value=2900.0, model=H100, source="bench")
    [f] = analyze(recs).findings
    assert (f.node, f.gpu, f.value, f.model) == ("gpu001", 1, 2900.0, H100)


def _cohort(noise: str, seed: int = 3, n: int = 2000) -> list[dict]:
    import numpy as np

    rng = np.random.default_rng(seed)
    z = rng.standard_t(5, n) / np.sqrt(5 / 3) if noise == "t5" else rng.normal(0, 1, n)
    return [{"node": f"n{i // 8:04d}", "gpu": i % 8, "metric": "hbm_bandwidth", "unit": "GB/s",
             "model": "H100", "value": float(3300 + 30 * x)} for i, x in enumerate(z)]


def test_heavy_tailed_cohort_raises_its_fail_threshold_but_still_flags() -> None:
    from provision.analyze import analyze

    heavy = _cohort("t5")
    heavy[5] = {**heavy[5], "value": 3300 - 30 * 15}       # 15 spreads low
    result = analyze(heavy)
    mine = [f for f in result.findings if f.node == "n0000" and f.gpu == 5]
    assert mine and mine[0].severity == "warn" and "heavy-tailed" in mine[0].reason
    assert not result.failing
    gauss = _cohort("gauss")
    gauss[5] = {**gauss[5], "value": 3300 - 30 * 15}
    result = analyze(gauss)
    assert [(f.node, f.gpu, f.severity) for f in result.failing] == [("n0000", 5, "fail")]

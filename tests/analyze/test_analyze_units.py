"""Readings in different units are converted to the metric's unit, or refused."""

from __future__ import annotations

import random

import pytest

from provision.analyze import analyze
from provision.analyze.units import factor
from provision.errors import InputError


def _fleet() -> list[dict]:
    rng = random.Random(1)
    return [{"node": f"n{i:02d}", "gpu": g, "metric": "hbm_bandwidth", "unit": "GB/s",
             "model": "H100", "value": 3300 + rng.gauss(0, 8)} for i in range(32) for g in range(8)]


def test_factors_of_bytes_bits_and_binary_prefixes() -> None:
    assert factor("MB/s", "GB/s") == pytest.approx(1e-3)
    assert factor("TB/s", "GB/s") == pytest.approx(1e3)
    assert factor("Gb/s", "GB/s") == pytest.approx(1 / 8)
    assert factor("MiB", "GiB") == pytest.approx(1 / 1024)
    assert factor("GiB", "MB") == pytest.approx(2**30 / 1e6)
    assert factor("mW", "W") == pytest.approx(1e-3)
    assert factor("W", "GB/s") is None and factor("furlong", "GB/s") is None


def test_a_fault_written_in_mb_per_s_is_found_in_gb_per_s() -> None:
    recs = _fleet()
    recs[0] = {**recs[0], "value": 3300 * 0.85 * 1000, "unit": "MB/s", "max": 1e12}
    result = analyze(recs)
    assert result.failed
    f = next(f for f in result.failing if f.node == "n00")
    assert f.gpu == 0 and f.unit == "GB/s" and f.value == pytest.approx(2805)


def test_a_healthy_reading_in_tb_per_s_is_not_a_finding() -> None:
    recs = _fleet()
    recs[8] = {**recs[8], "value": 3.3, "unit": "TB/s"}
    assert not analyze(recs).findings


@pytest.mark.parametrize(("unit", "why"), [("W", "same quantity as 'GB/s'"),
                                           ("furlong", "an unknown unit")])
def test_a_foreign_or_unknown_unit_is_refused_naming_the_record(unit: str, why: str) -> None:
    recs = [*_fleet(), {"node": "x1", "gpu": 3, "metric": "hbm_bandwidth", "value": 1.0,
                        "unit": unit, "model": "H100"}]
    with pytest.raises(InputError, match=rf"record 257 \(x1 GPU 3, hbm_bandwidth\): .*{why}"):
        analyze(recs)


def test_every_threshold_a_catalog_profile_writes_is_in_a_unit_the_analyzer_converts() -> None:
    """A check's record carries its threshold's unit (the figure's: "cores", "GPUs");
    `forge analyze` of that run must read it (a lab run once failed on 'cores')."""
    from provision import metrics
    from provision.expectations import DEFAULT_RULES, thresholds_for
    from provision.spec.profiles import build_profile, builtin_profile_names, resolve_profile_dict

    fractions = {r.name: r.fraction for r in DEFAULT_RULES}
    bad = []
    for name in builtin_profile_names():
        profile = build_profile(name, resolve_profile_dict(name, {}))
        for t in thresholds_for(profile, fractions):
            info = metrics.info(t.metric)
            if info is not None and factor(t.unit, info.unit) is None:
                bad.append((name, t.name, t.unit, info.unit))
    assert bad == []

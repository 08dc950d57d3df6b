"""The judge and the metric registry: one comparison, one direction, everywhere."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from provision import judge, metrics
from provision.analyze import analyze
from provision.analyze.columns import build_columns
from provision.checks.reference import limits
from provision.expectations import DEFAULT_RULES, plan_site
from provision.measurement import Measurement
from provision.spec import load_site
from provision.sweep.expect import for_node

ROOT = Path(__file__).resolve().parents[1]
SMALL = ROOT / "site-specs/small.yaml"


def test_scalar_and_vectorised_verdicts_agree() -> None:
    rng = np.random.default_rng(7)
    values = rng.normal(100, 10, 2000)
    lo = np.where(rng.random(2000) < 0.5, rng.normal(90, 5, 2000), np.nan)
    hi = np.where(rng.random(2000) < 0.5, rng.normal(110, 5, 2000), np.nan)
    vec = judge.outside(values, lo, hi)
    scalar = [judge.breach(float(v), None if np.isnan(a) else float(a),
                           None if np.isnan(b) else float(b)) is not None
              for v, a, b in zip(values, lo, hi, strict=True)]
    assert vec.tolist() == scalar
    assert 0 < sum(scalar) < 2000


def test_a_finding_says_which_side_it_crossed() -> None:
    low = judge.finding(Measurement("n1", "nic_port_rate", 100.0, check="nic", min=200.0))
    high = judge.finding(Measurement("n1", "xid_fatal_events", 2.0, check="xid", max=0.0))
    assert low is not None and low.bound == "min" and low.limit_text == ">= 200"
    assert high is not None and high.bound == "max" and high.fatal
    assert judge.finding(Measurement("n1", "nic_port_rate", 200.0, min=200.0)) is None


@pytest.mark.parametrize("rule", DEFAULT_RULES, ids=lambda r: r.name)
def test_every_rule_judges_a_metric_the_registry_gives_a_side(rule) -> None:
    info = metrics.info(rule.metric)
    assert info is not None, f"{rule.metric} is not in provision.metrics"
    assert info.better in ("higher", "lower"), f"{rule.metric} is two-sided in the registry"


def test_every_carrier_of_a_direction_agrees_with_the_registry() -> None:
    """The plan's thresholds, the records the checks write, the sweep's limits and the
    analyzer's cohorts: each side comes from provision.metrics (gpu_power once differed)."""
    site = load_site(SMALL)
    plan = plan_site(site).nodes[0]
    assert plan.thresholds
    for t in plan.thresholds:
        better = metrics.direction(t.metric)
        assert t.better == better
        rec = limits(t)
        assert rec["better"] == better
        assert ("min" in rec) == (better == "higher") and ("max" in rec) == (better == "lower")
    exp = for_node(site, site.nodes[0])
    assert exp.limits
    for lim in exp.limits:
        assert set(lim.fields()) == {"min" if metrics.direction(lim.metric) == "higher"
                                     else "max"}
    # a record that declares the opposite of the registry does not change the cohort's side
    cols = build_columns([Measurement("n1", "gpu_power", 700.0, gpu=0, better="lower")])
    assert cols.cohorts[0].better == metrics.info("gpu_power").better  # type: ignore[union-attr]


def test_a_sweep_config_written_with_directions_is_still_read() -> None:
    """Configs from before the registry decided directions carry ``better`` per limit."""
    from provision.sweep.expect import NodeExpectation

    exp = NodeExpectation.from_dict({"node": "gpu001", "profile": "p", "limits": [
        {"metric": "nic_port_rate", "limit": 200.0, "better": "higher", "describe": "x"}]})
    lim = exp.limit("nic_port_rate")
    assert lim is not None and lim.fields() == {"min": 200.0}


def test_gpu_power_below_its_peers_is_flagged_above_is_not() -> None:
    recs = [Measurement(f"n{n:02d}", "gpu_power", 700.0 + (n % 3), gpu=g, check="sdc",
                        unit="W", model="H100 NVL")
            for n in range(16) for g in range(8)]
    recs[5].value = 520.0    # capped
    recs[13].value = 880.0   # drawing more under the same load: no fault by itself
    flagged = {(f.node, f.gpu) for f in analyze(recs).findings}
    assert (recs[5].node, recs[5].gpu) in flagged
    assert (recs[13].node, recs[13].gpu) not in flagged

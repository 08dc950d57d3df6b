"""The acceptance policy: every number the analyzer judges by, in one frozen object.

Defaults are chosen so that a clean fleet of thousands of GPUs raises no flag
while a part 4 % off its identical peers is still found when the healthy
spread is below 1 % (see docs/analyzer.md for the arithmetic). A site spec can
add per-metric hard limits through :class:`MetricLimit`; those are the hook
for ``--spec`` and carry the physical figure they were derived from.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from provision.finding import Severity

#: absolute floors of the spread, per unit: a cohort whose values are all equal
#: (MAD 0) must not turn a one-step difference of an integer reading into a flag
UNIT_FLOORS: Mapping[str, float] = {
    "count": 1.0,
    "C": 1.0,
    "ratio": 0.01,
    "bool": 0.5,
    "W": 1.0,
    "MHz": 1.0,
    "us": 0.05,
    # an index names (a NUMA node), it does not measure: a dual-socket node has GPUs on
    # both nodes by design, so an index is never an outlier (limits still apply)
    "index": math.inf,
}


@dataclass(frozen=True)
class MetricLimit:
    """A hard acceptance limit for one metric (optionally one GPU model).

    ``min``/``max`` fail whatever the statistics say. ``fraction`` x ``expected``
    is how the limit was derived and ``source`` names the physical figure, so a
    report can say both.
    """

    metric: str
    min: float | None = None
    max: float | None = None
    model: str | None = None
    expected: float | None = None
    fraction: float | None = None
    source: str | None = None


@dataclass(frozen=True)
class Policy:
    #: robust score (deviation in the bad direction / spread) at which a value is flagged
    outlier_z: float = 6.0
    #: robust score at which a flagged outlier fails acceptance (below: a warning)
    fail_z: float = 10.0
    #: heavy tails: a cohort of at least ``tail_min_n`` readings whose tail index (from its
    #: 95th and 99.5th percentiles of |deviation|) is below ``tail_alpha`` has occasional far
    #: readings by nature; one reading fails only beyond where the fitted tail puts one healthy
    #: reading in ``tail_guard`` such cohorts (it is still flagged from ``outlier_z``)
    tail_min_n: int = 200
    tail_alpha: float = 5.0
    tail_guard: float = 1000.0
    #: floor of the spread as a fraction of |median|: 0.5 % => nothing within 3 % is flagged
    rel_floor: float = 0.005
    #: cohorts smaller than this are "tiny": no MAD, a fixed relative rule instead
    min_cohort: int = 5
    #: tiny cohorts (3..min_cohort-1 values) flag a value this far off the median
    tiny_rel: float = 0.05
    #: node grouping: this share of a node's GPUs must be off in the same direction ...
    node_frac: float = 0.75
    #: ... each by at least this robust score ...
    node_gpu_z: float = 1.5
    #: ... and the node's mean must be this many node-to-node spreads off
    node_z: float = 5.0
    #: node grouping needs at least this many GPUs of the node in the cohort
    node_min_gpus: int = 4
    #: pair attribution: an endpoint is blamed when this share of its pairs is slow ...
    pair_node_frac: float = 0.75
    #: ... and it has at least this many pairs measured
    pair_node_min: int = 2
    #: drift: a degradation against the baseline of at least this fraction ...
    drift_rel: float = 0.05
    #: ... and at least this many robust spreads of the cohort
    drift_z: float = 4.0
    #: per-metric hard limits from a site spec: key ``metric`` or ``(metric, model)``
    limits: Mapping[str | tuple[str, str], MetricLimit] = field(default_factory=dict)
    #: which severity fails acceptance (exit 1): "fail" only, or "warn" too
    fail_on: Severity = "fail"

    def limit_for(self, metric: str, model: str | None) -> MetricLimit | None:
        if model is not None:
            hit = self.limits.get((metric, model))
            if hit is not None:
                return hit
        return self.limits.get(metric)

    @classmethod
    def with_limits(cls, limits: list[MetricLimit], **kw: object) -> Policy:
        table: dict[str | tuple[str, str], MetricLimit] = {}
        for lim in limits:
            table[(lim.metric, lim.model) if lim.model else lim.metric] = lim
        return cls(limits=table, **kw)  # type: ignore[arg-type]


DEFAULT_POLICY = Policy()

"""The vectorised core: cohort statistics and a verdict for every reading.

Per cohort: median, MAD and a *scale* (the spread a healthy reading may show):

    scale = max(1.4826 * MAD, rel_floor * |median|, unit floor)     n >= min_cohort
    scale = max(tiny_rel / outlier_z * |median|, unit floor)        3 <= n < min_cohort
    no statistical judgement                                        n < 3

Per reading, in this order (the first that applies wins; the comparisons of a
reading with a limit or a constant are :mod:`provision.judge`'s):
1. hard limits: outside the record's ``min``/``max`` or the policy's limit -> fail;
2. zero-spread metrics (a counter that stays 0, a link count that is a
   constant): any deviation in the bad direction from the expected constant
   (the record's ``expected``; 0 for a lower-is-better counter; else the most
   common value of the cohort) -> fail when the metric is fatal or a
   higher-is-better constant (a missing link, port or GPU), else warn;
3. robust outliers: score = deviation in the bad direction / scale;
   >= outlier_z -> warn, >= fail_z -> fail. Only the bad direction counts:
   a GPU faster than its peers is never flagged, unless the metric is two-sided.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from provision.analyze.columns import Columns
from provision.analyze.policy import UNIT_FLOORS, Policy
from provision.judge import off_constant, outside

NONE, LIMIT, CONSTANT, OUTLIER = 0, 1, 2, 3
OK, WARN, FAIL = 0, 1, 2
_MAD_TO_SIGMA = 1.4826
_EPS = 1e-12


@dataclass(frozen=True, eq=False)
class CohortStats:
    n: np.ndarray           # readings per cohort
    median: np.ndarray
    mad: np.ndarray
    scale: np.ndarray       # nan: no statistical judgement (fewer than 3 readings)
    floor: np.ndarray       # the scale a cohort would have with MAD 0 (used by drift)
    const: np.ndarray       # expected constant of zero-spread cohorts (nan otherwise)
    tiny: np.ndarray        # bool: 3 <= n < min_cohort
    direction: np.ndarray   # int8: +1 higher is better, -1 lower is better, 0 two-sided
    zero_spread: np.ndarray  # bool
    fatal: np.ndarray       # bool
    fail_at: np.ndarray     # score from which an outlier fails (fail_z, higher in heavy tails)
    lim_lo: np.ndarray      # policy limits per cohort (nan: none)
    lim_hi: np.ndarray
    order: np.ndarray       # reading indices sorted by cohort (stable)
    starts: np.ndarray      # cohort c is order[starts[c]:ends[c]]
    ends: np.ndarray

    def members(self, c: int) -> np.ndarray:
        return self.order[self.starts[c]:self.ends[c]]


@dataclass(frozen=True, eq=False)
class Judgement:
    signed: np.ndarray      # (value - median) / scale; nan where not judged
    score: np.ndarray       # deviation in the bad direction / scale (<= 0: good side)
    kind: np.ndarray        # int8: NONE, LIMIT, CONSTANT, OUTLIER
    severity: np.ndarray    # int8: OK, WARN, FAIL
    lo: np.ndarray          # effective hard limits (record's, else policy's)
    hi: np.ndarray


def _order(cols: Columns) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reading indices sorted by cohort (stable), and each cohort's [start, end)."""
    ncoh = len(cols.cohorts)
    # a 16-bit key lets numpy use a radix sort: ~10x faster than a comparison sort on 4M keys
    key = cols.cohort.astype(np.uint16) if ncoh < 65536 else cols.cohort
    order = np.argsort(key, kind="stable")
    counts = np.bincount(cols.cohort, minlength=ncoh)
    ends = np.cumsum(counts)
    return order, ends - counts, ends


def cohort_stats(cols: Columns, policy: Policy) -> CohortStats:
    ncoh = len(cols.cohorts)
    order, starts, ends = _order(cols)
    sorted_vals = cols.value[order]
    n = ends - starts
    median = np.full(ncoh, np.nan)
    mad = np.full(ncoh, np.nan)
    const = np.full(ncoh, np.nan)
    direction = np.array([c.direction for c in cols.cohorts], dtype=np.int8)
    zero_spread = np.array([c.zero_spread for c in cols.cohorts], dtype=bool)
    fatal = np.array([c.fatal for c in cols.cohorts], dtype=bool)
    unit_floor = np.array([UNIT_FLOORS.get(c.unit or "", 0.0) for c in cols.cohorts])
    lim_lo = np.full(ncoh, np.nan)
    lim_hi = np.full(ncoh, np.nan)
    tail_dev = np.full((ncoh, 2), np.nan)  # 95th and 99.5th percentile of |dev| / MAD
    for c, coh in enumerate(cols.cohorts):
        lim = policy.limit_for(coh.metric, coh.model)
        if lim is not None:
            lim_lo[c] = np.nan if lim.min is None else lim.min
            lim_hi[c] = np.nan if lim.max is None else lim.max
        s, e = starts[c], ends[c]
        if e == s:
            continue
        v = sorted_vals[s:e]
        if zero_spread[c]:
            const[c] = _expected_constant(v, int(direction[c]))
            median[c] = float(np.median(v))
            mad[c] = 0.0
            continue
        med = float(np.median(v))
        median[c] = med
        dev = np.abs(v - med)
        mad[c] = float(np.median(dev))
        if e - s >= policy.tail_min_n and mad[c] > 0:
            tail_dev[c] = np.quantile(dev, (0.95, 0.995)) / mad[c]
    absmed = np.abs(median)
    floor = np.maximum(np.maximum(policy.rel_floor * absmed, unit_floor), _EPS)
    tiny = (n >= 3) & (n < policy.min_cohort)
    scale = np.where(n >= policy.min_cohort, np.maximum(_MAD_TO_SIGMA * mad, floor), np.nan)
    tiny_scale = np.maximum(policy.tiny_rel / policy.outlier_z * absmed,
                            np.maximum(unit_floor, _EPS))
    scale = np.where(tiny, tiny_scale, scale)
    fail_at = _fail_at(tail_dev, n, mad, scale, policy)
    return CohortStats(n=n, median=median, mad=mad, scale=scale, floor=floor, const=const,
                       tiny=tiny, direction=direction, zero_spread=zero_spread, fatal=fatal,
                       fail_at=fail_at, lim_lo=lim_lo, lim_hi=lim_hi, order=order,
                       starts=starts, ends=ends)


def _fail_at(tail_dev: np.ndarray, n: np.ndarray, mad: np.ndarray, scale: np.ndarray,
             policy: Policy) -> np.ndarray:
    """Per cohort, the score from which one outlier fails.

    A Pareto tail P(|dev| > x) ~ x^-alpha puts the 99.5th percentile 10^(1/alpha) times the
    95th: alpha = ln 10 / ln(q99.5 / q95). A Gaussian gives alpha ~ 6.4 there, Student t
    with 5 degrees of freedom ~ 3.7. Below ``tail_alpha`` the tail is extrapolated from
    q99.5 to where one healthy reading in ``tail_guard`` cohorts of this size would fall,
    and an outlier fails only beyond that (and beyond ``fail_z``).
    """
    out = np.full(n.shape[0], policy.fail_z)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = tail_dev[:, 1] / tail_dev[:, 0]
        alpha = np.log(10.0) / np.log(ratio)
        heavy = np.isfinite(alpha) & (alpha > 0) & (alpha < policy.tail_alpha)
        reach = tail_dev[:, 1] * (0.005 * n * policy.tail_guard) ** (1.0 / alpha)
        in_scores = reach * mad / scale
    out[heavy] = np.maximum(policy.fail_z, in_scores[heavy])
    return out


def _expected_constant(v: np.ndarray, direction: int) -> float:
    """A lower-is-better constant is 0 (a counter); otherwise the most common value."""
    if direction < 0:
        return 0.0
    vals, counts = np.unique(v, return_counts=True)
    top = vals[counts == counts.max()]
    # on a tie the better value is the healthy one (2 nodes: 8 GPUs and 7 GPUs -> 8)
    return float(top.max() if direction > 0 else top[len(top) // 2])


def judge(cols: Columns, st: CohortStats, policy: Policy) -> Judgement:
    """Scores in cohort order, one contiguous slice per cohort, then scattered back.

    Working on slices keeps every per-cohort constant a scalar: no per-reading
    gathers of medians, scales and directions, which matters at 4M readings.
    """
    n = cols.n
    v_sorted = cols.value[st.order]
    signed_s = np.full(n, np.nan)
    score_s = np.full(n, np.nan)
    const_idx = []
    for c in range(len(cols.cohorts)):
        s, e = int(st.starts[c]), int(st.ends[c])
        if e == s:
            continue
        if st.zero_spread[c]:
            const_idx.append(st.order[s:e])
            continue
        scale = st.scale[c]
        if not np.isfinite(scale):
            continue
        sig = signed_s[s:e]
        np.subtract(v_sorted[s:e], st.median[c], out=sig)
        sig *= 1.0 / scale
        d = st.direction[c]
        if d > 0:
            np.negative(sig, out=score_s[s:e])
        elif d < 0:
            score_s[s:e] = sig
        else:
            np.abs(sig, out=score_s[s:e])
    del v_sorted
    signed = np.empty(n)
    signed[st.order] = signed_s
    del signed_s
    score = np.empty(n)
    score[st.order] = score_s
    del score_s

    kind = np.zeros(n, dtype=np.int8)
    severity = np.zeros(n, dtype=np.int8)
    with np.errstate(invalid="ignore"):
        out_idx = np.nonzero(score >= policy.outlier_z)[0]
    if out_idx.shape[0]:
        kind[out_idx] = OUTLIER
        coh = cols.cohort[out_idx]
        fail = (score[out_idx] >= st.fail_at[coh]) | st.fatal[coh]
        severity[out_idx] = np.where(fail, FAIL, WARN)

    if const_idx:
        idx = np.concatenate(const_idx)
        c = cols.cohort[idx]
        e = cols.expected[idx]
        exp = np.where(np.isnan(e), st.const[c], e)
        d = st.direction[c]
        bad = off_constant(cols.value[idx], exp, d)
        hit = idx[bad]
        kind[hit] = CONSTANT
        severity[hit] = np.where(st.fatal[c[bad]] | (d[bad] >= 0), FAIL, WARN)

    lo, hi = cols.lo, cols.hi
    if np.isfinite(st.lim_lo).any():
        lo = np.fmax(lo, st.lim_lo[cols.cohort])
    if np.isfinite(st.lim_hi).any():
        hi = np.fmin(hi, st.lim_hi[cols.cohort])
    lim_idx = np.nonzero(outside(cols.value, lo, hi))[0]
    kind[lim_idx] = LIMIT
    severity[lim_idx] = FAIL
    return Judgement(signed=signed, score=score, kind=kind, severity=severity, lo=lo, hi=hi)

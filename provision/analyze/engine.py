"""analyze(): records in, an :class:`Analysis` out. Pure: no files, no printing."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from provision.analyze.columns import Columns, build_columns
from provision.analyze.drift import Baseline, find_drift
from provision.analyze.findings import Analysis, CohortSummary, Finding, sort_key
from provision.analyze.grouping import find_node_groups
from provision.analyze.pairs import Attribution, Pair, attribute
from provision.analyze.policy import DEFAULT_POLICY, Policy, Severity
from provision.analyze.stats import (
    CONSTANT,
    FAIL,
    LIMIT,
    NONE,
    OUTLIER,
    WARN,
    CohortStats,
    Judgement,
    cohort_stats,
    judge,
)
from provision.analyze.text import num, pct, qty, rel, side
from provision.analyze.units import normalize
from provision.judge import breach
from provision.measurement import BadLine, Measurement

_SEV: dict[int, Severity] = {FAIL: "fail", WARN: "warn"}


def analyze(records: Iterable[Measurement | Mapping[str, Any]], baseline: Baseline | None = None,
            policy: Policy | None = None, *, bad_lines: Sequence[BadLine] = (),
            inputs: Sequence[str] = ()) -> Analysis:
    """Judge measurement records (dicts as read from JSONL, or :class:`Measurement`)."""
    t0 = time.perf_counter()
    cols = build_columns(normalize(records))
    t1 = time.perf_counter()
    result = analyze_columns(cols, baseline, policy, bad_lines=bad_lines, inputs=inputs)
    result.timings["columns"] = t1 - t0
    return result


def analyze_columns(cols: Columns, baseline: Baseline | None = None,
                    policy: Policy | None = None, *, bad_lines: Sequence[BadLine] = (),
                    inputs: Sequence[str] = ()) -> Analysis:
    """The vectorised core on prepared columns (see :func:`~provision.analyze.from_arrays`)."""
    pol = policy or DEFAULT_POLICY
    timings: dict[str, float] = {}
    t = time.perf_counter()
    st = cohort_stats(cols, pol)
    jd = judge(cols, st, pol)
    timings["statistics"] = time.perf_counter() - t
    t = time.perf_counter()
    b = _Builder(cols, st, jd, pol)
    absorbed = b.node_groups()
    b.readings(absorbed)
    b.pairs()
    timings["attribution"] = time.perf_counter() - t
    if baseline is not None:
        t = time.perf_counter()
        b.drift(baseline)
        timings["drift"] = time.perf_counter() - t
    findings = tuple(sorted(b.findings, key=sort_key))
    return Analysis(findings=findings, policy=pol, columns=cols, stats=st, judgement=jd,
                    cohorts=cohort_summaries(cols, st, pol), attribution=b.attribution,
                    bad_lines=tuple(bad_lines), inputs=tuple(inputs),
                    baseline_size=len(baseline) if baseline is not None else 0, timings=timings)


def cohort_summaries(cols: Columns, st: CohortStats, pol: Policy) -> tuple[CohortSummary, ...]:
    """Per cohort, what the analyzer judged it by: the reports show these, never recompute."""
    out = []
    # readings with a fraction, per cohort (one pass over the values)
    fractional = np.bincount(cols.cohort, weights=np.mod(cols.value, 1.0) != 0,
                             minlength=len(cols.cohorts))
    for coh in cols.cohorts:
        c = coh.index
        scale = float(st.scale[c])
        flag_at = None
        if math.isfinite(scale) and not st.zero_spread[c] and coh.direction:
            flag_at = float(st.median[c]) - coh.direction * pol.outlier_z * scale
        out.append(CohortSummary(
            index=c, label=coh.label, metric=coh.metric, model=coh.model, profile=coh.profile,
            check=coh.check, level="gpu" if coh.gpu_level else "node", pair=coh.pair or None,
            unit=coh.unit, better=coh.better, direction=coh.direction, n=int(st.n[c]),
            median=_finite(st.median[c]), mad=_finite(st.mad[c]), scale=_finite(scale),
            flag_at=flag_at, zero_spread=bool(st.zero_spread[c]), tiny=bool(st.tiny[c]),
            expected_constant=_finite(st.const[c]),
            whole=bool(st.n[c]) and not fractional[c]))
    return tuple(out)


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


class _Builder:
    """Turns flagged readings, node groups, pairs and drift into findings."""

    def __init__(self, cols: Columns, st: CohortStats, jd: Judgement, policy: Policy) -> None:
        self.cols, self.st, self.jd, self.policy = cols, st, jd, policy
        self.findings: list[Finding] = []
        self.attribution = Attribution((), ())

    # --- shared pieces
    def _common(self, i: int) -> dict[str, Any]:
        cols, st = self.cols, self.st
        c = int(cols.cohort[i])
        coh = cols.cohorts[c]
        g = int(cols.gpu[i])
        return dict(node=cols.nodes[cols.node[i]], gpu=None if g < 0 else g, metric=coh.metric,
                    unit=coh.unit, model=coh.model, check=coh.check, cohort=coh.label,
                    cohort_size=int(st.n[c]), fatal=bool(st.fatal[c]), **self._identity(i))

    def _identity(self, i: int, *, part: bool = True) -> dict[str, Any]:
        """The tool's words and the part's identity from reading ``i``'s record."""
        field = self.cols.field
        out = {"detail": field(i, "detail"), "node_serial": field(i, "node_serial")}
        if part:
            out.update({k: field(i, k) for k in ("serial", "uuid", "bus_id", "vbios")})
        return out

    def _median_source(self, c: int) -> str:
        coh = self.cols.cohorts[c]
        return f"median of {int(self.st.n[c])} {coh.noun}"

    def reading(self, i: int) -> Finding:
        """The finding for one flagged reading (before grouping and pair attribution)."""
        cols, st, jd, pol = self.cols, self.st, self.jd, self.policy
        kind = int(jd.kind[i])
        c = int(cols.cohort[i])
        coh = cols.cohorts[c]
        v = float(cols.value[i])
        base = self._common(i)
        sev = _SEV[int(jd.severity[i])]
        unit = coh.unit
        if kind == LIMIT:
            lo, hi = float(jd.lo[i]), float(jd.hi[i])
            bound = breach(v, None if math.isnan(lo) else lo, None if math.isnan(hi) else hi)
            below = bound == "min"
            limit = lo if below else hi
            own = limit == (cols.lo[i] if below else cols.hi[i])
            lim = pol.limit_for(coh.metric, coh.model)
            exp = cols.expected[i] if own else (lim.expected if lim else None)
            exp_f = None if exp is None or math.isnan(exp) else float(exp)
            source = cols.field(i, "source") if own else (lim.source if lim else None)
            what = "below the hard minimum" if below else "above the hard maximum"
            why = f"{qty(v, unit)} {what} {qty(limit, unit)}"
            if exp_f:
                why += f" (= {limit / exp_f:.2f} x {qty(exp_f, unit)}"
                why += f", {source})" if source else ")"
            elif source:
                why += f" ({source})"
            if st.fatal[c]:
                why += "; fatal: one such reading proves a broken part"
            return Finding(value=v, reason=why, severity=sev, kind="limit", expected=exp_f,
                           limit=limit, bound=bound, source=source or "hard limit",
                           deviation=rel(v, exp_f) if exp_f else None, **base)
        if kind == CONSTANT:
            e = cols.expected[i]
            const = float(st.const[c] if math.isnan(e) else e)
            why = f"{qty(v, unit)}, expected {qty(const, unit)}"
            if math.isnan(e):
                why += (" (a counter that must stay 0)" if coh.direction < 0
                        else f" (the value {int(st.n[c])} {coh.noun} share)")
            if st.fatal[c]:
                why += "; fatal: one such reading proves a broken part"
            src = cols.field(i, "source") or ("expected value" if not math.isnan(e)
                                              else "healthy constant of the cohort")
            return Finding(value=v, reason=why, severity=sev, kind="limit", expected=const,
                           limit=const, source=src, deviation=rel(v, const), **base)
        # OUTLIER
        med = float(st.median[c])
        scale = float(st.scale[c])
        score = float(jd.score[i])
        d = coh.direction if coh.direction else (1 if v < med else -1)
        threshold = med - d * pol.outlier_z * scale
        dev = rel(v, med)
        amount = pct(dev) if dev is not None else qty(abs(v - med), unit)
        why = f"{amount} {side(v, med)} the {self._median_source(c)} ({qty(med, unit)})"
        if st.tiny[c]:
            why += (f"; small cohort: flagged beyond {pct(pol.tiny_rel)} off the median"
                    f" (fails beyond {pct(pol.tiny_rel * pol.fail_z / pol.outlier_z)})")
        else:
            why += (f"; {score:.1f}x the cohort spread of {qty(scale, unit)}"
                    f" (flag at {num(pol.outlier_z)}x, fail at {num(float(st.fail_at[c]))}x"
                    + (", a heavy-tailed cohort" if st.fail_at[c] > pol.fail_z else "") + ")")
        return Finding(value=v, reason=why, severity=sev, kind="outlier", expected=med,
                       limit=threshold, bound="min" if d > 0 else "max",
                       source=self._median_source(c), score=score,
                       deviation=dev, **base)

    # --- stages
    def node_groups(self) -> set[int]:
        cols, st, jd, pol = self.cols, self.st, self.jd, self.policy
        absorbed: set[int] = set()
        for grp in find_node_groups(cols, st, jd, pol):
            c = grp.cohort
            coh = cols.cohorts[c]
            v = float(np.median(cols.value[grp.readings]))
            med = float(st.median[c])
            members = grp.members
            gpus = tuple(sorted({int(g) for g in cols.gpu[members]}))
            n_gpus = len({int(g) for g in cols.gpu[grp.readings]})
            sev_i = int(jd.severity[members].max()) if members.shape[0] else 0
            sev: Severity = "fail" if sev_i == FAIL or grp.score >= pol.fail_z else "warn"
            dev = rel(v, med)
            amount = pct(dev) if dev is not None else qty(abs(v - med), coh.unit)
            why = (f"{len(gpus)} of {n_gpus} GPUs off the same way: node median {amount}"
                   f" {side(v, med)} the {self._median_source(c)} ({qty(med, coh.unit)}),"
                   f" {grp.score:.1f}x the node-to-node spread (flag at {num(pol.node_z)}x);"
                   " one node-level cause (power mode, cooling, firmware, a shared PCIe switch)")
            base = self._common(int(members[0]))
            base.update(gpu=None, detail=None, serial=None, uuid=None, bus_id=None, vbios=None)
            self.findings.append(Finding(
                value=v, reason=why, severity=sev, kind="node-group", expected=med,
                source=self._median_source(c), gpus=gpus, score=grp.score,
                deviation=dev, count=int(members.shape[0]), **base))
            absorbed.update(int(m) for m in members[self.jd.kind[members] == OUTLIER])
        return absorbed

    def readings(self, absorbed: set[int]) -> None:
        jd, cols = self.jd, self.cols
        idx = np.nonzero((jd.kind != NONE) & (cols.peer < 0))[0]
        best: dict[tuple[Any, ...], tuple[tuple[float, float], int, int]] = {}
        for i in idx.tolist():
            if i in absorbed:
                continue
            key = (int(jd.kind[i]), int(cols.node[i]), int(cols.gpu[i]), int(cols.cohort[i]))
            sc = float(jd.score[i])
            rank = (float(jd.severity[i]), sc if math.isfinite(sc) else math.inf)
            prev = best.get(key)
            if prev is None:
                best[key] = (rank, i, 1)
            else:
                top = (rank, i) if rank > prev[0] else (prev[0], prev[1])
                best[key] = (top[0], top[1], prev[2] + 1)
        for _, i, count in best.values():
            f = self.reading(i)
            if count > 1:
                f = replace(f, count=count, reason=f"{f.reason} (worst of {count} readings)")
            self.findings.append(f)

    def _pair_reason(self, p: Pair) -> str:
        jd = self.jd
        worst = max(p.flagged, key=lambda i: (jd.severity[i], np.nan_to_num(jd.score[i], nan=0)))
        return self.reading(worst).reason

    def pairs(self) -> None:
        cols, st = self.cols, self.st
        att = self.attribution = attribute(cols, self.jd, self.policy)
        for blame in att.blamed:
            c = blame.cohort
            coh = cols.cohorts[c]
            ep = blame.endpoint
            node, _, g = ep.partition(":")
            shown = blame.slow or blame.pairs
            partners = tuple(sorted(p.b if p.a == ep else p.a for p in shown))
            v = float(np.median([p.value for p in blame.pairs]))
            med = float(st.median[c])
            sev_i = max((p.severity for p in blame.slow), default=WARN)
            if blame.median_score >= self.policy.fail_z:
                sev_i = FAIL
            dev = rel(v, med)
            amount = pct(dev) if dev is not None else qty(abs(v - med), coh.unit)
            what = "GPU" if g else "node"
            why = (f"{len(blame.slow)} of {len(blame.pairs)} pairs flagged, the median of its"
                   f" pairs {amount} {side(v, med)} the {self._median_source(c)}"
                   f" ({qty(med, coh.unit)}): the {what} is the common factor, not the links")
            self.findings.append(Finding(
                node=node, gpu=int(g) if g else None, metric=coh.metric, value=v, reason=why,
                severity=_SEV[sev_i], kind="pair-node", expected=med,
                source=self._median_source(c), unit=coh.unit, model=coh.model, check=coh.check,
                peers=partners,
                score=blame.median_score if math.isfinite(blame.median_score) else None,
                deviation=dev, cohort=coh.label, cohort_size=int(st.n[c]),
                fatal=bool(st.fatal[c]), count=len(shown)))
        for p, na, nb in att.links:
            c = p.cohort
            coh = cols.cohorts[c]
            node, _, g = p.a.partition(":")
            if na == 1 and nb == 1:
                tail = ("one pair per endpoint, so the link (bridge, cable) cannot be told apart"
                        " from its two ends")
            else:
                tail = f"only this pair is slow ({p.a}: 1 of {na} pairs, {p.b}: 1 of {nb})"
            med = float(st.median[c])
            worst = max(p.flagged, key=lambda i: (self.jd.severity[i],
                                                  np.nan_to_num(self.jd.score[i], nan=0)))
            self.findings.append(Finding(
                **self._identity(int(worst), part=bool(g)),
                node=node, gpu=int(g) if g else None, metric=coh.metric, value=p.value,
                reason=f"{self._pair_reason(p)}; {tail}", severity=_SEV.get(p.severity, "warn"),
                kind="pair-link", expected=med, source=self._median_source(c), unit=coh.unit,
                model=coh.model, check=coh.check, peer=p.b,
                score=p.score if math.isfinite(p.score) else None, deviation=rel(p.value, med),
                cohort=coh.label, cohort_size=int(st.n[c]), fatal=bool(st.fatal[c]),
                count=len(p.readings)))

    def drift(self, baseline: Baseline) -> None:
        cols, st = self.cols, self.st
        dr = find_drift(cols, st, self.jd, baseline, self.policy)
        seen: dict[tuple[int, int, int, int], Finding] = {}
        for i, base, change in zip(dr.index.tolist(), dr.baseline.tolist(), dr.change.tolist(),
                                   strict=True):
            c = int(cols.cohort[i])
            coh = cols.cohorts[c]
            v = float(cols.value[i])
            dev = rel(v, base)
            amount = pct(dev) if dev is not None else qty(change, coh.unit)
            worse = {1: "lower", -1: "higher"}.get(coh.direction, "different")
            scale = float(st.scale[c]) if math.isfinite(st.scale[c]) else float(st.floor[c])
            why = (f"{amount} {worse} than its baseline {qty(base, coh.unit)} ({baseline.source});"
                   f" within the fleet's spread but degrading (drift flagged at"
                   f" {pct(self.policy.drift_rel)} and {num(self.policy.drift_z)}x the spread)")
            f = Finding(value=v, reason=why, severity="warn", kind="drift", expected=base,
                        source=baseline.source, baseline=base, score=change / scale,
                        deviation=dev, peer=cols.peers[cols.peer[i]] if cols.peer[i] >= 0 else None,
                        **self._common(i))
            key = (int(cols.node[i]), int(cols.gpu[i]), c, int(cols.peer[i]))
            if key not in seen or (f.score or 0) > (seen[key].score or 0):
                seen[key] = f
        self.findings.extend(seen.values())


__all__ = ["analyze", "analyze_columns"]

"""Drift against a baseline: a part within spec but worse than its own past.

A :class:`Baseline` holds one reference value per (node, gpu, metric, peer):
the median of an earlier run's readings, or values a history store computed
(``Baseline.from_values``). A reading drifts when its change in the bad
direction is at least ``drift_rel`` x |baseline| *and* at least ``drift_z``
spreads of its cohort, so noisy metrics (temperatures) do not drift on noise
and counters that sit at 0 still need a real rise.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from provision.analyze.columns import Columns
from provision.analyze.policy import Policy
from provision.analyze.stats import NONE, CohortStats, Judgement
from provision.errors import InputError
from provision.measurement import Measurement

BaselineKey = tuple[str, int | None, str, str | None]


@dataclass(frozen=True)
class Baseline:
    """Reference values keyed by ``(node, gpu, metric, peer)`` (gpu and peer may be None)."""

    values: Mapping[BaselineKey, float]
    source: str = "baseline"

    def __len__(self) -> int:
        return len(self.values)

    @classmethod
    def from_records(cls, records: Iterable[Measurement | Mapping[str, Any]],
                     source: str = "baseline") -> Baseline:
        """The median of each key's readings (several samples or both pair directions)."""
        acc: dict[BaselineKey, list[float]] = defaultdict(list)
        for r in records:
            d: Mapping[str, Any] = r.to_dict() if isinstance(r, Measurement) else r
            acc[(d["node"], d.get("gpu"), d["metric"], d.get("peer"))].append(float(d["value"]))
        return cls({k: float(np.median(v)) for k, v in acc.items()}, source)

    @classmethod
    def from_columns(cls, cols: Columns, source: str = "baseline") -> Baseline:
        """:meth:`from_records` for readings already in columns (see ``analyze.table``)."""
        acc: dict[BaselineKey, list[float]] = defaultdict(list)
        nodes, peers, cohorts = cols.nodes, cols.peers, cols.cohorts
        for nd, g, c, p, v in zip(cols.node.tolist(), cols.gpu.tolist(), cols.cohort.tolist(),
                                  cols.peer.tolist(), cols.value.tolist(), strict=True):
            acc[(nodes[nd], None if g < 0 else g, cohorts[c].metric,
                 None if p < 0 else peers[p])].append(v)
        return cls({k: float(np.median(v)) for k, v in acc.items()}, source)

    @classmethod
    def from_values(cls, values: Mapping[tuple[Any, ...], float],
                    source: str = "history") -> Baseline:
        """Per-(node, gpu, metric) or per-(node, gpu, metric, peer) reference values."""
        out: dict[BaselineKey, float] = {}
        for key, v in values.items():
            if len(key) == 3:
                node, gpu, metric = key
                peer = None
            elif len(key) == 4:
                node, gpu, metric, peer = key
            else:
                raise InputError(f"baseline key {key!r}: expected (node, gpu, metric[, peer])")
            out[(str(node), None if gpu is None else int(gpu), str(metric), peer)] = float(v)
        return cls(out, source)


@dataclass(frozen=True, eq=False)
class Drift:
    index: np.ndarray        # reading indices that drifted
    baseline: np.ndarray     # their baseline values
    change: np.ndarray       # bad-direction change (positive)


def _keys(node: np.ndarray, gpu: np.ndarray, peer: np.ndarray, metric: np.ndarray,
          npeer: int, nmetric: int, ngpu: int) -> np.ndarray:
    k = node.astype(np.int64) * (ngpu + 1) + (gpu.astype(np.int64) + 1)
    k = k * (npeer + 1) + (peer.astype(np.int64) + 1)
    return k * nmetric + metric


def find_drift(cols: Columns, st: CohortStats, jd: Judgement, baseline: Baseline,
               policy: Policy) -> Drift:
    empty = Drift(np.zeros(0, np.int64), np.zeros(0), np.zeros(0))
    if not baseline.values or cols.n == 0:
        return empty
    node_ix = {n: i for i, n in enumerate(cols.nodes)}
    peer_ix = {p: i for i, p in enumerate(cols.peers)}
    metric_names = sorted({c.metric for c in cols.cohorts})
    metric_ix = {m: i for i, m in enumerate(metric_names)}
    coh_metric = np.array([metric_ix[c.metric] for c in cols.cohorts], dtype=np.int64)
    ngpu = int(cols.gpu.max()) + 1 if cols.n else 1
    bn, bg, bp, bm, bv = [], [], [], [], []
    for (node, gpu, metric, peer), v in baseline.values.items():
        ni, mi = node_ix.get(node), metric_ix.get(metric)
        pi = -1 if peer is None else peer_ix.get(peer)
        g = -1 if gpu is None else gpu
        if ni is None or mi is None or pi is None or g >= ngpu:
            continue
        bn.append(ni)
        bg.append(g)
        bp.append(pi)
        bm.append(mi)
        bv.append(v)
    if not bv:
        return empty
    np_, nm = len(cols.peers), len(metric_names)
    bkeys = _keys(np.array(bn), np.array(bg), np.array(bp), np.array(bm), np_, nm, ngpu)
    order = np.argsort(bkeys)
    bkeys, bvals = bkeys[order], np.array(bv)[order]
    keys = _keys(cols.node, cols.gpu, cols.peer, coh_metric[cols.cohort], np_, nm, ngpu)
    pos = np.minimum(np.searchsorted(bkeys, keys), bkeys.shape[0] - 1)
    matched = bkeys[pos] == keys
    idx = np.nonzero(matched & (jd.kind == NONE) & ~st.zero_spread[cols.cohort])[0]
    base = bvals[pos[idx]]
    cur = cols.value[idx]
    c = cols.cohort[idx]
    d = st.direction[c]
    change = np.where(d > 0, base - cur, np.where(d < 0, cur - base, np.abs(cur - base)))
    scale = np.where(np.isfinite(st.scale[c]), st.scale[c], st.floor[c])
    thr = np.maximum(policy.drift_rel * np.abs(base), policy.drift_z * scale)
    hit = (change > 0) & (change >= thr)
    return Drift(idx[hit], base[hit], change[hit])

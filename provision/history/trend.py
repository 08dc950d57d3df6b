"""Trends as text: sparklines and per-series summaries (pure functions)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from provision.history.store import Sample

BARS = "▁▂▃▄▅▆▇█"


def _slices(n: int, width: int) -> list[tuple[int, int]]:
    """``width`` consecutive slices of ``n`` values (n > width), in integer arithmetic."""
    return [(i * n // width, (i + 1) * n // width) for i in range(width)]


def _bar(v: float, lo: float, span: float) -> str:
    return BARS[min(len(BARS) - 1, int((v - lo) / span * (len(BARS) - 1) + 0.5))]


def sparkline(values: Sequence[float], width: int = 40) -> str:
    """Unicode bars scaled between the series' min and max; resampled to ``width``."""
    if not values:
        return ""
    vals = list(values)
    if len(vals) > width:
        # keep the maximum of each slice: a single spike must stay visible
        vals = [max(vals[a:b]) for a, b in _slices(len(vals), width)]
    lo, hi = min(vals), max(vals)
    if hi == lo:
        return BARS[0] * len(vals)
    return "".join(_bar(v, lo, hi - lo) for v in vals)


@dataclass(frozen=True)
class Series:
    node: str
    gpu: int | None
    metric: str
    unit: str | None
    values: tuple[float, ...]
    first_ts: float
    last_ts: float

    @property
    def key(self) -> str:
        return _key(self.node, self.gpu)

    @property
    def last(self) -> float:
        return self.values[-1]


def _key(node: str, gpu: int | None) -> str:
    return node if gpu is None else f"{node} gpu{gpu}"


@dataclass(frozen=True)
class Trend:
    """What one line of ``forge history`` shows for a node or GPU and a metric."""

    node: str
    gpu: int | None
    metric: str
    unit: str | None
    spark: str
    last: float
    low: float
    high: float
    n: int

    @property
    def key(self) -> str:
        return _key(self.node, self.gpu)


def series(samples: Sequence[Sample]) -> list[Series]:
    """Group samples into one series per (node, GPU, metric), in time order."""
    groups: dict[tuple[str, int | None, str], list[Sample]] = {}
    for s in sorted(samples, key=lambda s: s.ts):
        groups.setdefault((s.node, s.gpu, s.metric), []).append(s)
    out = [Series(node, gpu, metric, ss[-1].unit, tuple(s.value for s in ss), ss[0].ts,
                  ss[-1].ts) for (node, gpu, metric), ss in groups.items()]
    out.sort(key=lambda s: (s.metric, s.node, -1 if s.gpu is None else s.gpu))
    return out


def trends(series_list: Sequence[Series], width: int = 40) -> list[Trend]:
    """One :class:`Trend` per series, in the order given."""
    return [Trend(s.node, s.gpu, s.metric, s.unit, sparkline(s.values, width), s.last,
                  min(s.values), max(s.values), len(s.values)) for s in series_list]


def trends_of(ident: Mapping[int, tuple[str, int | None, str | None]],
              sids: Collection[Any], values: Collection[Any],
              metric: str, width: int = 40) -> list[Trend]:
    """:func:`trends` of a narrow fetch (``HistoryStore.values``): rows in time order.

    The readings of one node or GPU (several series ids where its unit or check changed)
    form one trend. A fleet-wide query returns hundreds of thousands of rows: those are
    grouped and summarized in numpy, all trends of the same length at once, and never
    become Python objects one by one; a few thousand take the plain Python path, which
    saves importing numpy. Both give the same lines.
    """
    if len(sids) < NUMPY_ROWS:
        return _trends_small(ident, sids, values, metric, width)
    import numpy as np

    keys = sorted({(node, gpu) for node, gpu, _ in ident.values()},
                  key=lambda k: (k[0], -1 if k[1] is None else k[1]))
    index = {k: i for i, k in enumerate(keys)}
    sid = np.asarray(sids, dtype=np.int64)
    lookup = np.zeros(int(sid.max()) + 1, dtype=np.int64)
    for i, (node, gpu, _) in ident.items():
        lookup[i] = index[(node, gpu)]
    key = lookup[sid]
    order = np.argsort(key, kind="stable")  # stable: each trend stays in time order
    val = np.asarray(values, dtype=np.float64)[order]
    counts = np.bincount(key, minlength=len(keys))
    ends = np.cumsum(counts)
    starts = ends - counts
    last_sid = sid[order][np.maximum(ends - 1, 0)]
    bars = np.array(list(BARS))
    out: list[Trend | None] = [None] * len(keys)
    for n in np.unique(counts[counts > 0]).tolist():
        rows = np.flatnonzero(counts == n)
        m = val[starts[rows, None] + np.arange(n)]  # one trend per row, in time order
        lows, highs, lasts = m.min(axis=1), m.max(axis=1), m[:, -1]
        if n > width:
            m = np.maximum.reduceat(m, np.array([a for a, _ in _slices(n, width)]), axis=1)
        lo, hi = m.min(axis=1, keepdims=True), m.max(axis=1, keepdims=True)
        span = np.where(hi == lo, 1.0, hi - lo)
        level = np.minimum(len(BARS) - 1, ((m - lo) / span * (len(BARS) - 1) + 0.5)
                           .astype(np.int64))
        level[(hi == lo)[:, 0]] = 0
        sparks = ["".join(r) for r in bars[level].tolist()]
        for j, r in enumerate(rows.tolist()):
            node, gpu = keys[r]
            out[r] = Trend(node, gpu, metric, ident[int(last_sid[r])][2], sparks[j],
                           float(lasts[j]), float(lows[j]), float(highs[j]), n)
    return [t for t in out if t is not None]


#: from this many rows on, :func:`trends_of` works in numpy
NUMPY_ROWS = 20_000


def _trends_small(ident: Mapping[int, tuple[str, int | None, str | None]],
                  sids: Collection[Any], vals: Collection[Any], metric: str,
                  width: int) -> list[Trend]:
    values: dict[tuple[str, int | None], list[float]] = {}
    unit: dict[tuple[str, int | None], str | None] = {}
    for sid, v in zip(sids, vals, strict=True):
        node, gpu, u = ident[int(sid)]
        key = (node, gpu)
        got = values.get(key)
        if got is None:
            values[key] = got = []
        got.append(float(v))
        unit[key] = u  # rows come in time order: the unit of the latest reading wins
    out = [Trend(node, gpu, metric, unit[key], sparkline(vs, width), vs[-1], min(vs), max(vs),
                 len(vs)) for key, vs in values.items() for node, gpu in [key]]
    out.sort(key=lambda t: (t.node, -1 if t.gpu is None else t.gpu))
    return out

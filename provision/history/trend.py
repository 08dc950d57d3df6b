"""Trends as text: sparklines and per-series summaries (pure functions)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from provision.history.store import Sample

BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float], width: int = 40) -> str:
    """Unicode bars scaled between the series' min and max; resampled to ``width``."""
    if not values:
        return ""
    vals = list(values)
    if len(vals) > width:
        # keep the maximum of each slice: a single spike must stay visible
        step = len(vals) / width
        vals = [max(vals[int(i * step):max(int((i + 1) * step), int(i * step) + 1)])
                for i in range(width)]
    lo, hi = min(vals), max(vals)
    if hi == lo:
        return BARS[0] * len(vals)
    span = hi - lo
    return "".join(BARS[min(len(BARS) - 1, int((v - lo) / span * (len(BARS) - 1) + 0.5))]
                   for v in vals)


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
        return self.node if self.gpu is None else f"{self.node} gpu{self.gpu}"

    @property
    def last(self) -> float:
        return self.values[-1]


def series(samples: Sequence[Sample]) -> list[Series]:
    """Group samples into one series per (node, GPU, metric), in time order."""
    groups: dict[tuple[str, int | None, str], list[Sample]] = {}
    for s in sorted(samples, key=lambda s: s.ts):
        groups.setdefault((s.node, s.gpu, s.metric), []).append(s)
    out = [Series(node, gpu, metric, ss[-1].unit, tuple(s.value for s in ss), ss[0].ts,
                  ss[-1].ts) for (node, gpu, metric), ss in groups.items()]
    out.sort(key=lambda s: (s.metric, s.node, -1 if s.gpu is None else s.gpu))
    return out


def series_of(ident: Mapping[int, tuple[str, int | None, str | None]],
              rows: Sequence[tuple[int, float, float]], metric: str) -> list[Series]:
    """:func:`series` from a narrow fetch (``HistoryStore.values``): rows in time order.

    A fleet-wide query returns hundreds of thousands of rows: those are grouped in numpy
    (a stable sort by series keeps each series in time order); a few thousand are grouped
    in plain Python, which saves importing numpy.
    """
    if len(rows) < _NUMPY_ROWS:
        return _series_of_small(ident, rows, metric)
    import itertools

    import numpy as np

    flat = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.float64,
                       count=3 * len(rows)).reshape(-1, 3)
    sid = flat[:, 0].astype(np.int64)
    order = np.argsort(sid, kind="stable")
    sid, ts, val = sid[order], flat[order, 1], flat[order, 2]
    cuts = np.flatnonzero(np.diff(sid)) + 1
    starts, ends = np.r_[0, cuts], np.r_[cuts, sid.shape[0]]
    groups: dict[tuple[str, int | None], list[tuple[int, int, str | None]]] = {}
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        node, gpu, unit = ident[int(sid[a])]
        groups.setdefault((node, gpu), []).append((a, b, unit))
    out = []
    for (node, gpu), parts in groups.items():
        if len(parts) == 1:  # the usual case: one series id per GPU
            a, b, unit = parts[0]
            values, t = val[a:b], ts[a:b]
        else:  # the unit or check changed over time: one trend, in time order
            idx = np.concatenate([np.arange(a, b) for a, b, _ in parts])
            idx = idx[np.argsort(ts[idx], kind="stable")]
            values, t = val[idx], ts[idx]
            unit = max(parts, key=lambda p: ts[p[1] - 1])[2]
        out.append(Series(node, gpu, metric, unit, tuple(values.tolist()), float(t[0]),
                          float(t[-1])))
    out.sort(key=lambda s: (s.node, -1 if s.gpu is None else s.gpu))
    return out


_NUMPY_ROWS = 20_000


def _series_of_small(ident: Mapping[int, tuple[str, int | None, str | None]],
                     rows: Sequence[tuple[int, float, float]], metric: str) -> list[Series]:
    values: dict[tuple[str, int | None], list[float]] = {}
    first: dict[tuple[str, int | None], float] = {}
    last: dict[tuple[str, int | None], tuple[float, str | None]] = {}
    for sid, ts, v in rows:
        node, gpu, unit = ident[sid]
        key = (node, gpu)
        got = values.get(key)
        if got is None:
            values[key] = got = []
            first[key] = ts
        got.append(v)
        last[key] = (ts, unit)
    out = [Series(node, gpu, metric, last[key][1], tuple(vs), first[key], last[key][0])
           for key, vs in values.items() for node, gpu in [key]]
    out.sort(key=lambda s: (s.node, -1 if s.gpu is None else s.gpu))
    return out

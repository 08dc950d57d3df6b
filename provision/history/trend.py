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
    """:func:`series` from a narrow fetch (``HistoryStore.values``): rows in time order."""
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
    out = [Series(node, gpu, metric, last[(node, gpu)][1], tuple(vs), first[(node, gpu)],
                  last[(node, gpu)][0]) for (node, gpu), vs in values.items()]
    out.sort(key=lambda s: (s.node, -1 if s.gpu is None else s.gpu))
    return out

"""Records -> columns: the one pass from Python objects to numpy arrays.

Everything after this module works on arrays. A *cohort* is the set of
readings that should look alike: same metric, GPU model, hardware profile and
check, at the same level (GPU or node), and the same kind of pair (none,
node-to-node, GPU-to-GPU). Values of different cohorts are never compared.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from provision import metrics
from provision.errors import InputError
from provision.measurement import Measurement

#: direction codes: +1 higher is better, -1 lower is better, 0 two-sided
DIRECTION_CODE = {"higher": 1, "lower": -1, "equal": 0}


@dataclass(frozen=True)
class Cohort:
    index: int
    metric: str
    model: str | None
    profile: str | None
    check: str | None
    gpu_level: bool
    #: "" (not a pair), "node" (peer is a node) or "gpu" (peer is node:gpu)
    pair: str
    unit: str | None
    better: metrics.Better
    zero_spread: bool
    fatal: bool

    @property
    def direction(self) -> int:
        return DIRECTION_CODE[self.better]

    @property
    def label(self) -> str:
        parts = [self.metric]
        if self.model:
            parts.append(self.model)
        if self.profile:
            parts.append(f"profile {self.profile}")
        if self.check and self.check != self.metric:
            parts.append(f"check {self.check}")
        if self.pair:
            parts.append(f"{self.pair} pairs")
        elif not self.gpu_level:
            parts.append("per node")
        return " / ".join(parts)

    @property
    def noun(self) -> str:
        """What one reading of this cohort is, for sentences: 'GPUs', 'nodes', 'node pairs'."""
        if self.pair:
            return "GPU pairs" if self.pair == "gpu" else "node pairs"
        what = "GPUs" if self.gpu_level else "nodes"
        return f"{self.model} {what}" if self.model and self.gpu_level else what


@dataclass(frozen=True, eq=False)
class Columns:
    """Measurements as parallel arrays; strings live once in the code tables."""

    value: np.ndarray       # float64
    node: np.ndarray        # int32 index into nodes
    gpu: np.ndarray         # int32, -1 for node-level readings
    cohort: np.ndarray      # int32 index into cohorts
    lo: np.ndarray          # float64 hard minimum (nan: none)
    hi: np.ndarray          # float64 hard maximum (nan: none)
    expected: np.ndarray    # float64 the record's expected figure (nan: none)
    peer: np.ndarray        # int32 index into peers, -1 when not a pair reading
    nodes: tuple[str, ...]
    peers: tuple[str, ...]
    cohorts: tuple[Cohort, ...]
    #: the source records, for the few fields a finding quotes (source, detail); may be empty
    records: Sequence[Any] = ()

    @property
    def n(self) -> int:
        return int(self.value.shape[0])

    def field(self, i: int, name: str) -> Any:
        """One optional field of record ``i`` (None when records were not kept)."""
        if not self.records:
            return None
        r = self.records[i]
        return r.get(name) if isinstance(r, Mapping) else getattr(r, name, None)


def _cohort(index: int, key: tuple[Any, ...], unit: str | None, better: str | None) -> Cohort:
    metric, model, profile, check, gpu_level, pair = key
    known = metrics.info(metric)
    return Cohort(
        index=index, metric=metric, model=model, profile=profile, check=check,
        gpu_level=gpu_level, pair=pair, unit=unit or (known.unit if known else None),
        better=metrics.direction(metric, better),
        zero_spread=bool(known and known.zero_spread), fatal=bool(known and known.fatal),
    )


def build_columns(records: Iterable[Measurement | Mapping[str, Any]]) -> Columns:
    """One pass over records (dicts as read from JSONL, or :class:`Measurement`)."""
    recs = records if isinstance(records, Sequence) else list(records)
    n = len(recs)
    # plain lists, converted once at the end: item assignment into numpy arrays is slower
    value: list[float] = [0.0] * n
    node: list[int] = [0] * n
    gpu: list[int] = [0] * n
    cohort: list[int] = [0] * n
    peer: list[int] = [-1] * n
    lo_l: list[Any] = [None] * n
    hi_l: list[Any] = [None] * n
    ex_l: list[Any] = [None] * n
    node_ix: dict[str, int] = {}
    peer_ix: dict[str, int] = {}
    coh_ix: dict[tuple[Any, ...], int] = {}
    coh_meta: list[tuple[tuple[Any, ...], str | None, str | None]] = []
    has_limits = False
    for i, r in enumerate(recs):
        d: Mapping[str, Any] = r if type(r) is dict else _as_mapping(r)
        get = d.get
        nd = d["node"]
        k = node_ix.get(nd)
        if k is None:
            k = node_ix[nd] = len(node_ix)
        node[i] = k
        g = get("gpu")
        gpu[i] = -1 if g is None else g
        value[i] = d["value"]
        p = get("peer")
        pair = ""
        if p is not None:
            pk = peer_ix.get(p)
            if pk is None:
                pk = peer_ix[p] = len(peer_ix)
            peer[i] = pk
            pair = "gpu" if ":" in p else "node"
        key = (d["metric"], get("model"), get("profile"), get("check"), g is not None, pair)
        c = coh_ix.get(key)
        if c is None:
            c = coh_ix[key] = len(coh_meta)
            coh_meta.append((key, get("unit"), get("better")))
        cohort[i] = c
        if "min" in d or "max" in d or "expected" in d:
            has_limits = True
            lo_l[i] = get("min")
            hi_l[i] = get("max")
            ex_l[i] = get("expected")
    cohorts = tuple(_cohort(i, key, unit, better) for i, (key, unit, better) in enumerate(coh_meta))
    nan = np.full(n, np.nan)
    return Columns(
        value=np.array(value, dtype=np.float64), node=np.array(node, dtype=np.int32),
        gpu=np.array(gpu, dtype=np.int32), cohort=np.array(cohort, dtype=np.int32),
        lo=np.array(lo_l, dtype=np.float64) if has_limits else nan,
        hi=np.array(hi_l, dtype=np.float64) if has_limits else nan.copy(),
        expected=np.array(ex_l, dtype=np.float64) if has_limits else nan.copy(),
        peer=np.array(peer, dtype=np.int32),
        nodes=tuple(node_ix), peers=tuple(peer_ix), cohorts=cohorts, records=recs,
    )


def _as_mapping(r: Any) -> Mapping[str, Any]:
    if isinstance(r, Measurement):
        return r.to_dict()
    if isinstance(r, Mapping):
        return r
    raise InputError(f"not a measurement record: {r!r:.80}")


def from_arrays(*, value: np.ndarray, node: np.ndarray, gpu: np.ndarray, cohort: np.ndarray,
                nodes: Sequence[str], cohorts: Sequence[Cohort],
                peer: np.ndarray | None = None, peers: Sequence[str] = (),
                lo: np.ndarray | None = None, hi: np.ndarray | None = None,
                expected: np.ndarray | None = None) -> Columns:
    """Columns straight from arrays (large synthetic fleets, other array producers)."""
    n = value.shape[0]
    nan = np.full(n, np.nan)
    return Columns(
        value=np.asarray(value, dtype=np.float64), node=np.asarray(node, dtype=np.int32),
        gpu=np.asarray(gpu, dtype=np.int32), cohort=np.asarray(cohort, dtype=np.int32),
        lo=nan if lo is None else lo, hi=nan if hi is None else hi,
        expected=nan if expected is None else expected,
        peer=np.full(n, -1, dtype=np.int32) if peer is None else np.asarray(peer, np.int32),
        nodes=tuple(nodes), peers=tuple(peers), cohorts=tuple(cohorts),
    )


def make_cohort(index: int, metric: str, *, model: str | None = None, profile: str | None = None,
                check: str | None = None, gpu_level: bool = True, pair: str = "",
                unit: str | None = None, better: str | None = None) -> Cohort:
    return _cohort(index, (metric, model, profile, check, gpu_level, pair), unit, better)

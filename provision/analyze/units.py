"""Units of readings: every reading of a metric is judged in one unit.

A record may carry its own ``unit`` (``"MB/s"`` where the registry says
``GB/s``). :func:`normalize` converts such readings (value and limits) to the
metric's unit, so readings in different units are never compared raw, and
refuses a unit it does not know or one of another quantity (``W`` for a
bandwidth) naming the record. Decimal prefixes are powers of 1000, binary ones
(``KiB``, ``MiB``) powers of 1024; ``Gb/s`` is bits, ``GB/s`` bytes (perftest's
``BW average[Gb/sec]`` and ``MB/sec``, nvidia-smi's ``MiB``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from provision import metrics
from provision.errors import InputError

_BYTE_PREFIX = {"": 1.0, "K": 1e3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15,
                "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40}


def _table() -> dict[str, tuple[str, float]]:
    """unit -> (quantity, factor to the quantity's base unit)."""
    t: dict[str, tuple[str, float]] = {}
    for p, f in _BYTE_PREFIX.items():
        t[f"{p}B"] = ("bytes", f)
        for per in ("/s", "/sec", "ps"):
            t[f"{p}B{per}"] = ("byte rate", f)
            t[f"{p}b{per}"] = ("byte rate", f / 8)
            t[f"{p}bit{per}"] = ("byte rate", f / 8)
    t.update({"Gbps": ("byte rate", 1e9 / 8), "Mbps": ("byte rate", 1e6 / 8),
              "W": ("power", 1.0), "mW": ("power", 1e-3), "kW": ("power", 1e3),
              "C": ("temperature", 1.0), "°C": ("temperature", 1.0),
              "Hz": ("frequency", 1.0), "kHz": ("frequency", 1e3), "MHz": ("frequency", 1e6),
              "GHz": ("frequency", 1e9),
              "s": ("time", 1.0), "ms": ("time", 1e-3), "us": ("time", 1e-6),
              "µs": ("time", 1e-6), "usec": ("time", 1e-6), "ns": ("time", 1e-9),
              # counts: a profile names what it counts ("8 GPUs", "4 links"), the
              # registry says "count"; one of either is one of the other
              **{u: ("count", 1.0) for u in ("count", "GPUs", "NICs", "links", "cores",
                                            "ports", "CPUs")},
              "TFLOP/s": ("flop rate", 1e12), "GFLOP/s": ("flop rate", 1e9),
              "Gflop/s": ("flop rate", 1e9), "%": ("percent", 1.0), "ratio": ("ratio", 1.0)})
    return t


UNITS = _table()


def factor(unit: str, to: str) -> float | None:
    """How many ``to`` one ``unit`` is; None when either is unknown or they measure
    different things."""
    if unit == to:
        return 1.0
    a, b = UNITS.get(unit.strip()), UNITS.get(to.strip())
    if a is None or b is None or a[0] != b[0]:
        return None
    return a[1] / b[1]


_SCALED = ("value", "min", "max", "expected")


def _alternatives(unit: str) -> str:
    q = UNITS.get(unit)
    if q is None:
        return ""
    same = [u for u, (k, _) in UNITS.items() if k == q[0] and u != unit
            and "sec" not in u and "bit" not in u and not u.endswith("ps")]
    return f", or in a unit forge converts to it ({', '.join(same[:10])})"


def _target(target: dict[str, str | None], metric: str, unit: str) -> str | None:
    """The unit ``metric`` is judged in: the registry's, else the first one seen."""
    if metric not in target:
        known = metrics.info(metric)
        target[metric] = known.unit if known else unit
    return target[metric]


def _factor_or_refuse(unit: str, want: str, metric: str, where: str) -> float:
    f = factor(unit, want)
    if f is None:
        why = ("an unknown unit" if unit.strip() not in UNITS else
               f"not a unit of the same quantity as {want!r}")
        raise InputError(f"{where}, {metric}): field 'unit' {unit!r} is {why}",
                         hint=f"write {metric} in {want}" + _alternatives(want))
    return f


def normalize(records: Iterable[Any]) -> list[Any]:
    """The records, each reading in its metric's unit (the registry's, else the first one
    seen); readings in another known unit converted, an unknown or foreign unit refused."""
    recs = list(records)
    target: dict[str, str | None] = {}
    out: list[Any] | None = None
    for i, r in enumerate(recs):
        plain = isinstance(r, Mapping)
        unit = r.get("unit") if plain else getattr(r, "unit", None)
        if unit is None:
            continue
        metric = r["metric"] if plain else r.metric
        want = _target(target, metric, unit)
        if unit == want or want is None:
            continue
        d: Mapping[str, Any] = r if plain else r.to_dict()
        where = f"record {i + 1} ({d['node']}" + (
            f" GPU {d['gpu']}" if d.get("gpu") is not None else "")
        f = _factor_or_refuse(unit, want, metric, where)
        if out is None:
            out = list(recs)
        conv = dict(d)
        for k in _SCALED:
            if conv.get(k) is not None:
                conv[k] = conv[k] * f
        conv["unit"] = want
        out[i] = conv
    return out if out is not None else recs


def normalize_table(table: Any, source: str, target: dict[str, str | None]) -> Any:
    """:func:`normalize` for an Arrow measurement table read from ``source``; ``target``
    carries the units chosen so far across the files of one analysis."""
    import pyarrow as pa
    import pyarrow.compute as pc

    names = table.column_names
    if table.num_rows == 0 or "unit" not in names or table["unit"].null_count == table.num_rows:
        return table
    pairs = table.select(["metric", "unit"]).group_by(["metric", "unit"]).aggregate([])
    scale = None
    for metric, unit in zip(pairs["metric"].to_pylist(), pairs["unit"].to_pylist(), strict=True):
        if unit is None:
            continue
        want = _target(target, metric, unit)
        if unit == want or want is None:
            continue
        rows = np.asarray(pc.and_(pc.equal(table["metric"].cast(pa.string()), metric),
                                  pc.equal(table["unit"].cast(pa.string()), unit))
                          .fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
        i = int(np.argmax(rows))
        rec = table.slice(i, 1).to_pylist()[0]
        where = f"{source}: row {i + 1} ({rec['node']}" + (
            f" GPU {rec['gpu']}" if rec.get("gpu") is not None else "")
        f = _factor_or_refuse(unit, want, metric, where)
        if scale is None:
            scale = np.ones(table.num_rows)
            units = np.asarray(table["unit"].cast(pa.string()).to_numpy(zero_copy_only=False),
                               dtype=object)
        scale[rows] = f
        units[rows] = want
    if scale is None:
        return table
    for k in (k for k in _SCALED if k in names):
        col = table.schema.get_field_index(k)
        scaled = pc.multiply(table[k], pa.array(scale))
        table = table.set_column(col, table.schema.field(k), scaled)
    col = table.schema.get_field_index("unit")
    return table.set_column(col, table.schema.field("unit"),
                            pa.array(units, type=pa.string()).dictionary_encode()
                            .cast(table.schema.field("unit").type))


__all__ = ["UNITS", "factor", "normalize", "normalize_table"]

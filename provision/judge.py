"""The judge: the one place where a reading is compared with its limits.

A limit is a record's own ``min``/``max`` (or a policy's), a threshold of the
acceptance plan (``fraction x physical figure``, provision.expectations), or
the constant a counter or flag must equal. Which side is bad comes from the
metric registry (:func:`provision.metrics.direction`), never from the caller.

The checks (provision.checks), the sweep (provision.sweep) and the analyzer
(provision.analyze) all ask this module; nothing else compares a value with a
limit (tests/test_layering.py holds that). Scalar functions judge one
reading; :func:`outside` and :func:`off_constant` judge numpy arrays of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from provision import metrics
from provision.finding import Bound, Finding

if TYPE_CHECKING:
    import numpy as np

    from provision.measurement import Measurement

#: relative tolerance under which a reading equals its expected constant (float noise)
CONSTANT_TOLERANCE = 1e-9


def bound_for(metric: str) -> Bound:
    """The side a threshold on ``metric`` sets: a floor when higher is better, else a ceiling."""
    better = metrics.direction(metric)
    if better == "equal":
        raise ValueError(f"metric {metric!r} is two-sided in provision.metrics: "
                         "a one-sided threshold cannot judge it")
    return "min" if better == "higher" else "max"


def operator(metric: str) -> str:
    """``>=`` for a floor, ``<=`` for a ceiling (how a threshold is written for people)."""
    return ">=" if bound_for(metric) == "min" else "<="


def breach(value: float, lo: float | None, hi: float | None) -> Bound | None:
    """Which limit one reading crosses: ``min`` (below ``lo``), ``max`` (above ``hi``) or None."""
    if lo is not None and value < lo:
        return "min"
    if hi is not None and value > hi:
        return "max"
    return None


def crosses(metric: str, value: float, limit: float) -> bool:
    """True when ``value`` is on the bad side of a threshold ``limit`` on ``metric``."""
    side = bound_for(metric)
    return breach(value, limit if side == "min" else None, limit if side == "max" else None) \
        is not None


def failed(r: Measurement) -> bool:
    """The record breaks its own hard limit (``min``/``max``)."""
    return breach(r.value, r.min, r.max) is not None


def finding(r: Measurement) -> Finding | None:
    """The finding for one record outside its own limits, or None (the sweep's verdict)."""
    side = breach(r.value, r.min, r.max)
    if side is None:
        return None
    limit = r.min if side == "min" else r.max
    assert limit is not None
    info = metrics.info(r.metric)
    fatal = bool(info and info.fatal)
    what = "below the hard minimum" if side == "min" else "above the hard maximum"
    return Finding(node=r.node, gpu=r.gpu, metric=r.metric, value=r.value,
                   reason=f"{r.value:g} {what} {limit:g}", severity="fail", kind="limit",
                   expected=r.expected, limit=limit, bound=side, source=r.source, unit=r.unit,
                   model=r.model, check=r.check or "?", fatal=fatal, detail=r.detail or "",
                   serial=r.serial, uuid=r.uuid, bus_id=r.bus_id, vbios=r.vbios,
                   node_serial=r.node_serial)


def outside(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Per reading, True where it is below ``lo`` or above ``hi`` (NaN: no limit)."""
    import numpy as np

    with np.errstate(invalid="ignore"):
        out: np.ndarray = (values < lo) | (values > hi)
    return out


def off_constant(values: np.ndarray, expected: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Per reading, True where it leaves its expected constant in the bad direction.

    ``direction`` is +1 (higher is better: below is bad), -1 (lower is better:
    above is bad) or 0 (either side is bad), as the analyzer codes the registry.
    """
    import numpy as np

    dev = values - expected
    tol = CONSTANT_TOLERANCE * np.maximum(1.0, np.abs(expected))
    out: np.ndarray = np.where(direction > 0, dev < -tol,
                               np.where(direction < 0, dev > tol, np.abs(dev) > tol))
    return out


def limit_fields(metric: str, limit: float) -> dict[str, Any]:
    """The record field a threshold on ``metric`` fills: ``{"min": limit}`` or ``{"max": ...}``."""
    return {bound_for(metric): limit}

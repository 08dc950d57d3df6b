"""Numbers and sentences for findings: one place decides how a reason reads."""

from __future__ import annotations

import math


def num(x: float | None) -> str:
    """Four significant digits, integers without a decimal point, thousands kept readable."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, float) and math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if float(x).is_integer() and abs(x) < 1e15:
        return str(int(x))
    ax = abs(x)
    if ax >= 1000:
        return f"{x:.0f}"
    if ax >= 100:
        return f"{x:.1f}"
    if ax >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def qty(x: float | None, unit: str | None) -> str:
    s = num(x)
    if not unit or s == "-":
        return s
    if unit in ("count", "bool", "ratio"):
        return s
    return f"{s} {unit}"


def whole_limit(limit: float, expected: float | None, below: bool) -> float:
    """A threshold on a whole-number quantity (lanes, a count) as the first whole value
    that passes: ``15.52 lanes`` below a median of 16 reads ``>= 16``, not ``>= 15.52``."""
    if expected is None or not float(expected).is_integer() or float(limit).is_integer():
        return limit
    return float(math.ceil(limit) if below else math.floor(limit))


def pct(x: float) -> str:
    """An unsigned percentage with sensible precision."""
    ax = abs(x) * 100
    return f"{ax:.1f} %" if ax < 10 else f"{ax:.0f} %"


def rel(value: float, ref: float) -> float | None:
    if ref == 0 or not math.isfinite(ref):
        return None
    return value / ref - 1.0


def side(value: float, ref: float) -> str:
    return "below" if value < ref else "above"

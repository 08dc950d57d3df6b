"""A reading and its reference from the plan: limit = fraction x physical figure, with the source.

This module attaches limits to records; :mod:`provision.judge` decides.

A metric the check must judge but whose reference the node's plan lacks
raises :class:`MissingReference`: an unjudged reading is an error, never a pass.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from provision import judge, metrics
from provision.errors import InputError
from provision.expectations import NodePlan, Threshold
from provision.measurement import Measurement


class MissingReference(InputError):
    """A reading has no reference in the node's plan (profile figure or policy missing)."""


def threshold(plan: NodePlan, name: str) -> Threshold:
    t = plan.threshold(name)
    if t is None:
        raise MissingReference(
            f"{plan.node}: no reference '{name}' for profile {plan.profile}",
            hint="the hardware profile lacks the physical figure this check judges against")
    return t


def limits(t: Threshold) -> dict[str, Any]:
    """The record fields that carry a threshold: limit, figure, source, direction."""
    return {**judge.limit_fields(t.metric, t.limit), "expected": t.figure_value,
            "better": t.better,
            "source": f"{t.fraction:g} x {t.figure} = {t.figure_value:g} {t.unit} ({t.source})"}


def judged(plan: NodePlan, name: str, value: float, *, check: str, gpu: int | None = None,
           metric: str | None = None, **fields: Any) -> Measurement:
    """A record of ``value`` judged by the plan's threshold ``name`` (raises if absent)."""
    t = threshold(plan, name)
    return Measurement(node=plan.node, metric=metric or t.metric, value=float(value), gpu=gpu,
                       unit=t.unit, check=check, profile=plan.profile,
                       **{**limits(t), **fields})


def exact(plan: NodePlan, metric: str, value: float, expected: float, *, check: str,
          source: str, gpu: int | None = None, **fields: Any) -> Measurement:
    """A record that must equal a count or flag the profile states (``min = max = expected``)."""
    info = metrics.info(metric)
    return Measurement(node=plan.node, metric=metric, value=float(value), gpu=gpu,
                       unit=info.unit if info else None, check=check, profile=plan.profile,
                       min=float(expected), max=float(expected), expected=float(expected),
                       source=source, **fields)


def annotate(plan: NodePlan, records: Iterable[Measurement], check: str,
             rules: str | None = None) -> list[Measurement]:
    """Records from a parser, with the plan's limits added where the plan has one.

    ``rules`` names the check whose thresholds apply (default: ``check``).
    The parser's own hard limits (``max 0`` for error counters) are kept.
    """
    out = []
    for r in records:
        ts = plan.for_metric(r.metric, rules or check)
        r = replace(r, check=check, profile=plan.profile,
                    node=r.node if r.node not in ("", "<unknown>") else plan.node)
        if ts:
            # a parser's own hard limit (max 0 for an error counter) is kept
            lim = {k: v for k, v in limits(ts[0]).items()
                   if k not in ("min", "max") or getattr(r, k) is None}
            r = replace(r, unit=ts[0].unit, **lim)
        out.append(r)
    return out

"""IB port error counters judged by how much they grew since the node's previous sweep.

The counters in sysfs count since the driver loaded (or since someone cleared them), so
their value says little: a port with 3 ``link_downed`` may have flapped once a month ago.
What matters is what changed between two sweeps. Each sweep's readings go to the history
store; the next sweep looks up, for every port counter it read, the newest earlier reading
of the same node, counter and port there, and records ``nic_counter_increase`` with limit
``<= 0``, as the acceptance ``gpudirect`` check judges its counters around its runs:

- a ``link_downed`` increase is a link flap, which azurehpc-health-checks
  (``check_ib_link_flapping``) and Meta's GCM (``link-flaps``: CRITICAL for InfiniBand)
  fail on as well;
- any other error counter that grew fails like ``ibqueryerrors``, which reports every
  non-zero error counter unless a threshold file says otherwise.

The finding is not fatal: a node drains only after ``--fail-after`` consecutive sweeps
that each saw the counters grow (a link that keeps taking errors), and resumes after
``--resume-after`` clean ones. A counter that fell was cleared or reset in between: its
value is what it counted since. A port's first sweep, a sweep without a history store
(``forge sweep --local`` without ``--db`` or ``--drain``) and a store that cannot be read
judge no increase; the readings are still recorded.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from provision.errors import InputError
from provision.history.store import HistoryStore
from provision.measurement import Measurement
from provision.parsers.base import record
from provision.parsers.ib_counters import COUNTER_OF_METRIC, SOURCE, increase
from provision.sweep.result import NodeResult, SweepResult, node_result

#: (node, metric, detail) -> (value, seconds since the epoch) of the previous reading
Previous = Mapping[tuple[str, str, str | None], tuple[float, float]]


def with_increases(result: SweepResult, db: Path) -> SweepResult:
    """``result`` with each node's counter increases since its previous sweep in ``db``
    added to its records and judged."""
    nodes = [n.node for n in result.nodes
             if any(r.metric in COUNTER_OF_METRIC for r in n.records)]
    if not nodes:
        return result
    previous = previous_readings(db, nodes)
    return replace(result, nodes=tuple(judged(n, previous) for n in result.nodes))


def previous_readings(db: Path, nodes: list[str]) -> Previous:
    """The newest stored reading of each of these nodes' port counters; none when there is
    no store yet or it cannot be read (recording the sweep then reports why)."""
    if not db.is_file():
        return {}
    try:
        with HistoryStore(db, readonly=True) as store:
            return store.latest(nodes=nodes, metrics=list(COUNTER_OF_METRIC))
    except InputError:
        return {}


def judged(node: NodeResult, previous: Previous) -> NodeResult:
    """``node`` with a ``nic_counter_increase`` record for every port counter it read that
    has an earlier reading, and its verdict taken again."""
    added = increases(node.records, previous)
    if not added:
        return node
    return node_result(node.node, [*node.records, *added], reachable=node.reachable,
                       why_unreachable=node.reason if not node.reachable else "",
                       seconds=node.seconds)


def increases(records: tuple[Measurement, ...] | list[Measurement],
              previous: Previous) -> list[Measurement]:
    """The increase of each counter reading in ``records`` over its previous reading (pure)."""
    out = []
    for r in records:
        name = COUNTER_OF_METRIC.get(r.metric)
        before = previous.get((r.node, r.metric, r.detail)) if name else None
        if name is None or before is None:
            continue
        was, when = before
        inc = increase(name, int(was), int(r.value))
        if inc.value is None:
            continue  # stuck at its maximum: the reading's own ib_counter_saturated says so
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))
        note = f"; {inc.note}" if inc.note else ""
        out.append(record(
            r.node, "nic_counter_increase", inc.value, check="nic", max=0.0, source=SOURCE,
            peer=(r.detail or "").replace(" port ", "/") or None,
            detail=f"{r.detail} {name}: {was:g} -> {r.value:g} since {since}{note}"))
    return out


__all__ = ["Previous", "increases", "judged", "previous_readings", "with_increases"]

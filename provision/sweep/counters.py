"""IB port error counters judged by how much they grew since the node's previous sweep.

The counters in sysfs count since the driver loaded (or since someone cleared them), so
their value says little: a port with 3 ``link_downed`` may have flapped once a month ago.
What matters is what changed between two sweeps. Each sweep's readings go to the history
store; the next sweep looks up, for every port counter it read, the newest earlier reading
of the same node, counter and port there, and records ``nic_counter_increase``, judged by
the counter (``provision.parsers.ib_counters.SWEEP_RATE``):

- ``link_downed``, ``local_link_integrity_errors`` and ``excessive_buffer_overrun_errors``:
  limit ``<= 0``, any increase (a link flap, a physical-error burst past the port's own
  threshold, a lossless-fabric violation; NVIDIA's NVSentinel NIC health design treats each
  as fatal);
- ``symbol_error``: at most 120 an hour of the time between the two readings, the IBTA's
  maximum symbol error rate; PAM4 links (HDR, NDR) take raw symbol errors all the time, so
  "any increase" would fail healthy links;
- ``link_error_recovery``: at most 5 a minute (NVSentinel);
- ``port_rcv_errors``: recorded, not judged (no public rate to hold it to).

The finding is not fatal: a node drains only after ``--fail-after`` consecutive sweeps
that each failed the ``nic`` check. A counter that fell was cleared or its port or driver
reset in between (a reboot): it starts a new baseline and is not judged. A port's first
sweep, a sweep without a history store (``forge sweep --local`` without ``--db`` or
``--drain``), a store that is locked or cannot be read, and RoCE ports (their PHY errors
are in ``ethtool -S``, not in these counters) judge no increase; readings are still
recorded. Ports are told apart by device name, port and the adapter's node GUID
(``mlx5_0 port 1 guid 0xb83f...``): an adapter the kernel numbered anew after another
dropped out, or one swapped for a new part, starts a new baseline instead of being
compared with another port's counters.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from provision.errors import CommandTimeout, InputError
from provision.history.store import HistoryStore
from provision.measurement import Measurement
from provision.parsers.base import record
from provision.parsers.ib_counters import COUNTER_OF_METRIC, SWEEP_RATE, increase, port_peer
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
    return replace(result, nodes=tuple(judged(n, previous, result.started)
                                       for n in result.nodes))


def previous_readings(db: Path, nodes: list[str]) -> Previous:
    """The newest stored reading of each of these nodes' port counters; none when there is
    no store yet or it cannot be read (recording the sweep then reports why)."""
    if not db.is_file():
        return {}
    try:  # briefly: a store locked by another sweep must not hold this one up
        with HistoryStore(db, readonly=True, busy_timeout_s=2.0, retry_deadline_s=5.0) as store:
            return store.latest(nodes=nodes, metrics=list(COUNTER_OF_METRIC))
    except (InputError, CommandTimeout, sqlite3.Error):
        return {}


def judged(node: NodeResult, previous: Previous, now: float) -> NodeResult:
    """``node`` (read at ``now``) with a ``nic_counter_increase`` record for every port
    counter it read that has an earlier reading, and its verdict taken again."""
    added = increases(node.records, previous, now)
    if not added:
        return node
    return node_result(node.node, [*node.records, *added], reachable=node.reachable,
                       why_unreachable=node.reason if not node.reachable else "",
                       seconds=node.seconds)


def increases(records: tuple[Measurement, ...] | list[Measurement], previous: Previous,
              now: float) -> list[Measurement]:
    """The increase of each counter reading in ``records`` (read at ``now``) over its
    previous reading, with the limit its counter has over that time (pure)."""
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
        rate, why = SWEEP_RATE[name]
        if int(r.value) < int(was):  # a reboot or a clear: what it counted since starts anew
            rate, why = None, f"{inc.note}: a new baseline, not judged"
        allowed = None if rate is None else float(math.floor(rate * max(now - when, 0.0)))
        note = f"; {inc.note}" if inc.note and rate is not None else ""
        limit = f"; limit {allowed:g}: {why}" if allowed is not None else f"; {why}"
        out.append(record(
            r.node, "nic_counter_increase", inc.value, check="nic", max=allowed,
            source=why, peer=port_peer(r.detail) if r.detail else None,
            detail=f"{r.detail} {name}: {was:g} -> {r.value:g} since {since}{note}{limit}"))
    return out


__all__ = ["Previous", "increases", "judged", "previous_readings", "with_increases"]

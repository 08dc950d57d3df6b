"""Error counters judged by how much they grew since the node's previous sweep.

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

A GPU's PCIe replay counter (NVML, so ``forge-health`` / ``forge sweep --local`` where
nvidia-ml-py is installed; the fan-out's ``nvidia-smi --query-gpu`` has no such field) is
judged the same way as ``gpu_pcie_replay_increase``: at most 8 a minute of the time between
the two readings, the rate DCGM's PCIe health watch allows ("8 replays per minute is the
maximum recommended by RM", ``DCGM_LIMIT_MAX_PCIREPLAY_RATE`` in NVIDIA/DCGM's
``dcgm_gpu_hardware_limits.h``). A GPU is told apart by its UUID, so a replaced GPU starts a
new baseline.

NVLink links (the ``nvlink`` probe, ``nvidia-smi nvlink -e``, on profiles that bridge their
GPUs) are judged as ``nvlink_error_increase`` per GPU and link, as DCGM's NVLink health watch
judges them: any replay or recovery error fails; CRC errors (flit and data summed) fail
above 100 a second of the time between the readings.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from provision.errors import CommandTimeout, InputError
from provision.history.store import HistoryStore
from provision.measurement import Measurement
from provision.parsers.base import record
from provision.parsers.ib_counters import COUNTER_OF_METRIC, SWEEP_RATE, increase, port_peer
from provision.sweep.result import NodeResult, SweepResult, node_result

#: (node, metric, detail, GPU UUID) -> (value, seconds since the epoch) of the previous reading
Previous = Mapping[tuple[str, str, str | None, str | None], tuple[float, float]]


@dataclass(frozen=True)
class Rule:
    """How one counter's increase between sweeps is judged."""

    name: str              # the counter, as the finding names it
    rate: float | None     # the increase allowed per second (None: recorded, not judged)
    why: str               # where the rate comes from
    metric: str            # the increase's record
    check: str
    per_gpu: bool = True   # a GPU's counter (told apart by UUID), else an IB port's


#: GPU counters by their reading's metric: DCGM's health watch limits (NVIDIA/DCGM,
#: dcgm_gpu_hardware_limits.h and DcgmHealthWatch.cpp)
GPU_RULES: dict[str, Rule] = {
    "pcie_replay_count": Rule(
        "PCIe replays", 8 / 60, "8 a minute, the maximum NVIDIA's driver team recommends "
        "(DCGM health watch, DCGM_LIMIT_MAX_PCIREPLAY_RATE)", "gpu_pcie_replay_increase", "gpu"),
    "nvlink_replay_errors": Rule(
        "replay errors", 0.0, "any increase (DCGM health watch: NVLink replay errors are "
        "failures)", "nvlink_error_increase", "nvlink"),
    "nvlink_recovery_errors": Rule(
        "recovery errors", 0.0, "any increase (DCGM health watch: NVLink recovery errors are "
        "failures)", "nvlink_error_increase", "nvlink"),
    "nvlink_crc_errors": Rule(
        "CRC errors", 100.0, "100 a second: 'CRC errors only matter at rates of 100+ per "
        "second' (DCGM_LIMIT_MAX_NVLINK_CRC_ERROR)", "nvlink_error_increase", "nvlink"),
}


def rule(metric: str) -> Rule | None:
    """The rule for a counter reading's metric, or None when it is not such a counter."""
    name = COUNTER_OF_METRIC.get(metric)
    if name is not None:
        rate, why = SWEEP_RATE[name]
        return Rule(name, rate, why, "nic_counter_increase", "nic", per_gpu=False)
    return GPU_RULES.get(metric)


COUNTER_METRICS = (*COUNTER_OF_METRIC, *GPU_RULES)


def with_increases(result: SweepResult, db: Path) -> SweepResult:
    """``result`` with each node's counter increases since its previous sweep in ``db``
    added to its records and judged."""
    nodes = [n.node for n in result.nodes
             if any(r.metric in COUNTER_METRICS for r in n.records)]
    if not nodes:
        return result
    previous = previous_readings(db, nodes)
    return replace(result, nodes=tuple(judged(n, previous, result.started)
                                       for n in result.nodes))


def previous_readings(db: Path, nodes: list[str]) -> Previous:
    """The newest stored reading of each of these nodes' counters; none when there is no
    store yet or it cannot be read (recording the sweep then reports why)."""
    if not db.is_file():
        return {}
    try:  # briefly: a store locked by another sweep must not hold this one up
        with HistoryStore(db, readonly=True, busy_timeout_s=2.0, retry_deadline_s=5.0) as store:
            return store.latest(nodes=nodes, metrics=list(COUNTER_METRICS))
    except (InputError, CommandTimeout, sqlite3.Error):
        return {}


def judged(node: NodeResult, previous: Previous, now: float) -> NodeResult:
    """``node`` (read at ``now``) with an increase record for every counter it read that
    has an earlier reading, and its verdict taken again."""
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
        how = rule(r.metric)
        before = previous.get((r.node, r.metric, r.detail, r.uuid)) if how else None
        if how is None or before is None:
            continue
        was, when = before
        gpu = how.per_gpu
        inc = _increase(how.name, int(was), int(r.value), gpu=gpu)
        if inc is None:
            continue  # stuck at its maximum: the reading's own ib_counter_saturated says so
        value, note = inc
        rate, why = how.rate, how.why
        if int(r.value) < int(was):  # a reboot or a clear: what it counted since starts anew
            rate, why = None, f"{note}: a new baseline, not judged"
            note = ""
        allowed = None if rate is None else float(math.floor(rate * max(now - when, 0.0)))
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))
        limit = f"; limit {allowed:g}: {why}" if allowed is not None else f"; {why}"
        what = (f"GPU{r.gpu}{' ' + r.detail if r.detail else ''} {how.name}" if gpu
                else f"{r.detail} {how.name}")
        ids = ({"gpu": r.gpu, "uuid": r.uuid, "serial": r.serial, "model": r.model} if gpu
               else {"peer": port_peer(r.detail) if r.detail else None})
        out.append(record(
            r.node, how.metric, value, check=how.check, max=allowed, source=why, **ids,
            detail=f"{what}: {was:g} -> {r.value:g} since {since}"
                   f"{'; ' + note if note else ''}{limit}"))
    return out


def _increase(name: str, before: int, after: int, *, gpu: bool) -> tuple[int, str] | None:
    """(increase, note) of a counter; None when it cannot be known (an IB counter at its
    maximum both times). A GPU's counters have no fixed width here: one only falls when it
    was reset (a driver reload, ``nvidia-smi nvlink -r``) or rolled over, which starts a new
    baseline."""
    if gpu:
        if after < before:
            return after, f"reset or rolled over since ({before} before)"
        return after - before, ""
    inc = increase(name, before, after)
    return None if inc.value is None else (inc.value, inc.note)


__all__ = ["COUNTER_METRICS", "GPU_RULES", "Previous", "Rule", "increases", "judged",
           "previous_readings", "rule", "with_increases"]

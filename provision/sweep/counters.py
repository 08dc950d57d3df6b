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
reset in between, and any counter of a node that rebooted since its previous reading (the
host probe's ``/proc/uptime``), starts a new baseline and is not judged. A port's first
sweep, a sweep without a history store (``forge sweep --local`` without ``--db`` or
``--drain``), a store that is locked or cannot be read, and RoCE ports (their PHY errors
are in ``ethtool -S``, not in these counters) judge no increase; readings are still
recorded. Ports are told apart by device name, port and the adapter's node GUID
(``mlx5_0 port 1 guid b83f:d203:0012:ab34``): an adapter the kernel numbered anew after another
dropped out, or one swapped for a new part, starts a new baseline instead of being
compared with another port's counters.

A GPU's PCIe replay counter (NVML, so ``forge-health`` / ``forge sweep --local`` where
nvidia-ml-py is installed; the fan-out's ``nvidia-smi --query-gpu`` has no such field) is
judged the same way as ``gpu_pcie_replay_increase``: at most what the PCIe bit error rate of
1e-12 allows at the link's maximum generation and width over the time between the two
readings (DCGM's ``GetExpectedPcieReplayRate``: 1.92 a minute per Gen5 lane, 31 a minute
for Gen5 x16; DCGM warns above it, forge fails the sweep). A GPU is told apart by its UUID,
so a replaced GPU starts a new baseline, and a GPU whose UUID was not read is not judged.

NVLink links (the ``nvlink`` probe, ``nvidia-smi nvlink -e``, on profiles that bridge their
GPUs) are judged as ``nvlink_error_increase`` as DCGM's NVLink health watch judges them: any
replay or recovery error on a link fails; CRC errors (flit and data, summed over the GPU's
links, as DCGM's per-GPU totals) fail above 100 a second of the time between the readings.
Rates are not judged over more than a day between two readings (a burst would vanish in the
average): such a reading starts a new baseline.
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
from provision.parsers.ib_counters import METRIC, SWEEP_RATE, WIDTH, increase, port_peer
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


#: GPU counters by their reading's metric, judged as DCGM's health watch judges them
#: (NVIDIA/DCGM 4.6, modules/health/DcgmHealthWatch.cpp, common/DcgmGPUHardwareLimits.h).
#: PCIe replays have no fixed rate: :func:`pcie_replay_rate` gives the link's own.
GPU_RULES: dict[str, Rule] = {
    "pcie_replay_count": Rule(
        "PCIe replays", None, "the PCIe bit error rate of 1e-12 at the link's maximum speed "
        "and width (DCGM's expected replay rate; DCGM warns above it)",
        "gpu_pcie_replay_increase", "gpu"),
    "nvlink_replay_errors": Rule(
        "replay errors", 0.0, "any increase (DCGM health watch: NVLink replay errors are "
        "failures)", "nvlink_error_increase", "nvlink"),
    "nvlink_recovery_errors": Rule(
        "recovery errors", 0.0, "any increase (DCGM health watch: NVLink recovery errors are "
        "failures)", "nvlink_error_increase", "nvlink"),
    "nvlink_crc_errors_total": Rule(
        "CRC errors (all links)", 100.0, "100 a second over all of the GPU's links: 'CRC errors "
        "only matter at rates of 100+ per second' (DCGM_LIMIT_MAX_NVLINK_CRC_ERROR; DCGM warns "
        "below it)", "nvlink_error_increase", "nvlink"),
}
#: PCIe transfer rate per lane by generation, GT/s (PCI-SIG; DCGM's table)
PCIE_GTS = {1: 2.5, 2: 5.0, 3: 8.0, 4: 16.0, 5: 32.0, 6: 64.0}
#: the bit error rate a PCIe link must hold (PCIe base specification; DCGM's 1e-12)
PCIE_BER = 1e-12
#: past this long between two readings a rate says little about a burst: a new baseline
MAX_RATE_WINDOW_S = 24 * 3600.0


def pcie_replay_rate(gen: float, width: float) -> float:
    """Replays a second a link of this generation and width may take at the PCIe bit error
    rate (DCGM's ``GetExpectedPcieReplayRate``, per second)."""
    return PCIE_BER * PCIE_GTS.get(int(gen), PCIE_GTS[max(PCIE_GTS)]) * 1e9 * width


#: a RoCE port's counters: drops in the lossless priority fail (PFC exists to prevent
#: them); the rest are recorded for trends (out-of-sequence packets are also what adaptive
#: routing makes, congestion notifications are the fabric working)
_RECORDED = "recorded for trends, not judged"
ROCE_RULES: dict[str, tuple[str, float | None, str]] = {
    "roce_lossless_discards": (
        "drops in the lossless priority", 0.0, "any increase: packets dropped for lack of "
        "receive buffer in the PFC priority (mlx5 rx_prioN_discards), which PFC should "
        "have paused"),
    "roce_link_down_events": (
        "link down events", 0.0, "any increase: the port's link went down (mlx5 "
        "link_down_events_phy, 'may imply on port flapping')"),
    "roce_pause_storm_errors": (
        "pause storm errors", 0.0, "any increase: the NIC stalled past its pause-storm "
        "threshold and stopped sending pause frames, so drops could have occurred (mlx5 "
        "tx_pause_storm_error_events)"),
    "roce_crc_errors": ("FCS errors", None, _RECORDED),
    "roce_symbol_errors": ("PCS symbol errors", None, _RECORDED),
    "roce_rx_discards_phy": ("drops at the port, all priorities", None, _RECORDED),
    "roce_lossless_pause_rx": ("pause frames received", None, _RECORDED),
    "roce_lossless_pause_tx": ("pause frames sent", None, _RECORDED),
    "roce_out_of_sequence": ("out-of-sequence packets", None, _RECORDED),
    "roce_packet_seq_err": ("packet sequence errors", None, _RECORDED),
    "roce_out_of_buffer": ("drops for lack of receive WQEs", None, _RECORDED),
    "roce_cnp_sent": ("congestion notifications sent", None, _RECORDED),
    "roce_cnp_handled": ("congestion notifications handled", None, _RECORDED),
}


#: every counter judged between sweeps, by its reading's metric: IB ports, RoCE ports, GPUs
RULES: dict[str, Rule] = {
    **{metric: Rule(name, *SWEEP_RATE[name], "nic_counter_increase", "nic", per_gpu=False)
       for name, metric in METRIC.items()},
    **{metric: Rule(what, rate, why, "nic_counter_increase", "nic", per_gpu=False)
       for metric, (what, rate, why) in ROCE_RULES.items()},
    **GPU_RULES,
}
COUNTER_METRICS = tuple(RULES)


def rule(metric: str) -> Rule | None:
    """The rule for a counter reading's metric, or None when it is not such a counter."""
    return RULES.get(metric)


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
    links = _pcie_links(records)
    booted = {r.node: now - r.value for r in records if r.metric == "host_uptime"}
    out = []
    for r in records:
        how = rule(r.metric)
        if how is None or (how.per_gpu and not r.uuid):
            continue  # a GPU without its UUID could be compared with another GPU's counter
        before = previous.get((r.node, r.metric, r.detail, r.uuid))
        if before is None:
            continue
        was, when = before
        inc = _increase(how.name, int(was), int(r.value))
        if inc is None:
            continue  # stuck at its maximum: the reading's own ib_counter_saturated says so
        value, note = inc
        rate, why = how.rate, how.why
        if r.metric == "pcie_replay_count":
            gen, width = links.get(r.uuid or "", (None, None))
            rate = pcie_replay_rate(gen, width) if gen and width else None
            why = (f"{why}: Gen{gen:g} x{width:g}" if gen and width
                   else "the link's speed is unknown: not judged")
        elapsed = max(now - when, 0.0)
        if when < booted.get(r.node, when):  # counters restart at boot, and boots take drops
            rate, why, note = None, "the node rebooted since: a new baseline, not judged", ""
        elif int(r.value) < int(was):  # a clear or a driver reload: what it counted since
            rate, why, note = None, f"{note}: a new baseline, not judged", ""
        elif rate and elapsed > MAX_RATE_WINDOW_S:
            rate, why = None, "more than a day since the previous reading: not judged as a rate"
        allowed = None if rate is None else float(math.floor(rate * elapsed))
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))
        limit = f"; limit {allowed:g}: {why}" if allowed is not None else f"; {why}"
        what = (f"GPU{r.gpu}{' ' + r.detail if r.detail else ''} {how.name}" if how.per_gpu
                else f"{r.detail} {how.name}")
        ids = ({"gpu": r.gpu, "uuid": r.uuid, "serial": r.serial, "model": r.model}
               if how.per_gpu else {"peer": port_peer(r.detail) if r.detail else None})
        out.append(record(
            r.node, how.metric, value, check=how.check, max=allowed, source=why, **ids,
            detail=f"{what}: {was:g} -> {r.value:g} since {since}"
                   f"{'; ' + note if note else ''}{limit}"))
    return out


def _pcie_links(records: tuple[Measurement, ...] | list[Measurement]
                ) -> dict[str, tuple[float | None, float | None]]:
    """GPU UUID -> (maximum PCIe generation, maximum width) of its link, as read this sweep
    (the current ones drop when the GPU idles)."""
    gen = {r.uuid: r.value for r in records if r.metric == "pcie_link_gen_max" and r.uuid}
    width = {r.uuid: r.value for r in records if r.metric == "pcie_link_width_max" and r.uuid}
    return {u: (gen.get(u), width.get(u)) for u in gen.keys() | width.keys()}


def _increase(name: str, before: int, after: int) -> tuple[int, str] | None:
    """(increase, note) of a counter; None when it cannot be known (an IB PortCounters field
    at its maximum both times). The other counters (a GPU's, a RoCE port's) are wide enough
    not to stop: one only falls when it was reset (a driver reload, ``nvidia-smi nvlink
    -r``) or rolled over, which starts a new baseline."""
    if name not in WIDTH:
        if after < before:
            return after, f"reset or rolled over since ({before} before)"
        return after - before, ""
    inc = increase(name, before, after)
    return None if inc.value is None else (inc.value, inc.note)


__all__ = ["COUNTER_METRICS", "GPU_RULES", "MAX_RATE_WINDOW_S", "ROCE_RULES", "RULES", "Previous",
           "Rule", "increases", "judged", "pcie_replay_rate", "previous_readings", "rule",
           "with_increases"]

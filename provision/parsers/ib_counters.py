"""InfiniBand port error counters, as the kernel shows them in sysfs, and what an increase is.

``/sys/class/infiniband/<dev>/ports/<n>/counters/<name>`` is a field of the port's
PortCounters attribute, printed with that field's width: 16 bits for ``symbol_error``,
8 for ``link_downed``, 4 for ``local_link_integrity_errors`` (the kernel's
``drivers/infiniband/core/sysfs.c``, ``PORT_PMA_ATTR``; mlx5 fills the fields from its
PPCNT register, ``drivers/infiniband/hw/mlx5/mad.c``, ``pma_cnt_assign``). The fields do
not wrap: they clamp at their all-ones value (Shanley, *InfiniBand Network Architecture*,
ch. 26 and 35; Intel's Omni-Path FM GUI guide: "stops incrementing when the max value is
reached"). A counter at that value hides every later error until the counters are
cleared (``perfquery -R``), so forge reports it as such instead of as "no increase".

A counter lower than before was cleared, or the port or the driver was reset, in between:
what it holds now is what it counted since then.
"""

from __future__ import annotations

from dataclasses import dataclass

#: counter (its sysfs file name) -> bits of its PortCounters field (kernel sysfs.c)
WIDTH: dict[str, int] = {
    "symbol_error": 16,
    "link_error_recovery": 8,
    "link_downed": 8,
    "port_rcv_errors": 16,
    "local_link_integrity_errors": 4,
    "excessive_buffer_overrun_errors": 4,
}
COUNTERS: tuple[str, ...] = tuple(WIDTH)
#: the sweep's record of each counter's reading
METRIC: dict[str, str] = {
    "symbol_error": "nic_symbol_errors",
    "link_error_recovery": "nic_link_error_recovery",
    "link_downed": "nic_link_downed",
    "port_rcv_errors": "nic_rcv_errors",
    "local_link_integrity_errors": "nic_link_integrity_errors",
    "excessive_buffer_overrun_errors": "nic_buffer_overrun_errors",
}
COUNTER_OF_METRIC: dict[str, str] = {m: c for c, m in METRIC.items()}
#: why any increase fails a supervised run (the acceptance check's judgement)
SOURCE = ("IB PortCounters (sysfs); rdma-core's ibqueryerrors reports any non-zero error "
          "counter unless a threshold file says otherwise")
#: what a counter may grow by per second between two sweeps (None: recorded, not judged),
#: and why. PAM4 links (HDR, NDR) take raw symbol errors all the time, so those are judged
#: as a rate; the others break the job or the lossless fabric when they move at all.
SWEEP_RATE: dict[str, tuple[float | None, str]] = {
    "link_downed": (0.0, "any increase is a link flap (NVIDIA NVSentinel NIC health design: "
                         "link_downed delta > 0 fatal)"),
    "local_link_integrity_errors": (0.0, "any increase (NVSentinel: fatal)"),
    "excessive_buffer_overrun_errors": (0.0, "any increase breaks the lossless fabric "
                                             "(NVSentinel: fatal)"),
    "symbol_error": (120 / 3600, "120 per hour, the IBTA's maximum symbol error rate (Oracle "
                                 "Sun Datacenter InfiniBand Switch docs, 820-7751)"),
    "link_error_recovery": (5 / 60, "5 per minute (NVSentinel: link retraining, non-fatal)"),
    "port_rcv_errors": (None, "no public rate: recorded for trends and drift"),
}
#: the command that clears a port's counters (infiniband-diags)
CLEAR = "perfquery -R"


def top(name: str) -> int:
    """The all-ones value at which ``name`` stops counting."""
    return (1 << WIDTH[name]) - 1


@dataclass(frozen=True)
class Increase:
    """What a counter did between two readings: ``value`` None when it cannot be known (it
    was at its maximum both times); ``note`` says why the value is what it is."""

    value: int | None
    note: str = ""


def increase(name: str, before: int, after: int) -> Increase:
    """The increase of counter ``name`` from ``before`` to ``after``."""
    full = top(name)
    if after < before:
        return Increase(after, f"cleared or reset since ({before} before)")
    if after >= full and before >= full:
        return Increase(None, f"at its {WIDTH[name]}-bit maximum {full} both times: "
                              f"clear it ({CLEAR}) to see new errors")
    if after >= full:
        return Increase(after - before, f"reached its {WIDTH[name]}-bit maximum {full}: "
                                        "at least this many")
    return Increase(after - before)


def port_peer(where: str) -> str:
    """``mlx5_0/1`` of ``mlx5_0 port 1`` (and of ``mlx5_0 port 1 guid b83f:...``): how records
    name a port in their ``peer`` field."""
    dev, _, rest = where.partition(" port ")
    return f"{dev}/{rest.split()[0]}" if rest else where


def saturated(name: str, value: int) -> bool:
    """Whether ``value`` is the counter's all-ones value (it counts no further)."""
    return name in WIDTH and value >= top(name)


__all__ = ["CLEAR", "COUNTERS", "COUNTER_OF_METRIC", "METRIC", "SOURCE", "SWEEP_RATE", "WIDTH",
           "Increase", "increase", "port_peer", "saturated", "top"]

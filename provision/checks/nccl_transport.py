"""Proof of the transport NCCL used across nodes, from its ``NCCL_DEBUG=INFO`` log.

nccl-tests reports bandwidth, not how it got there: with the IB plugin
missing, ``NCCL_IB_HCA`` naming no port, or no GPUDirect RDMA path (neither
DMA-BUF nor nvidia-peermem), NCCL falls back silently to TCP sockets
(``via NET/Socket``) or to RDMA staged through host memory (``via NET/IB/<n>``
without ``/GDRDMA``). Every inter-node channel line must read
``via NET/IB.../GDRDMA`` (``IB`` is NCCL's own verbs transport; ``IBext`` the
nccl-rdma-sharp-plugins one), else the check fails. The line format is NCCL's (``transport/net.cc``:
``Channel %02d/%d : %d[%d] -> %d[%d] [%s] via NET/%s/%d%s%s``, the suffixes
``/GDRDMA`` and ``/Shared``).

The environment that makes NCCL print it and use only the compute rails
comes from the plan's fabric addresses (:func:`nccl_env`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from provision.measurement import Measurement
from provision.parsers.base import record

_CHANNEL = re.compile(r"NCCL INFO Channel \d+(?:/\d+)? ?: .*? via (NET/[\w.]+(?:/\d+)?\S*)")
_GDR_OFF = re.compile(r"GPU Direct RDMA Disabled for HCA \d+ '([^']+)'")
#: RoCE: GID index 3 is RoCEv2 over IPv4 in DOCA/MLNX_OFED's default GID table, and
#: traffic class 106 = DSCP 26 << 2 | ECN, the lossless class the fabric role configures
ROCE_GID_INDEX = "3"
ROCE_TRAFFIC_CLASS = "106"


@dataclass(frozen=True)
class Transport:
    channels: int                 # inter-node channel lines
    gdr: int                      # ... of which NET/IB*/GDRDMA
    socket: int                   # ... of which NET/Socket
    host_staged: int              # ... of which NET/IB* without GDRDMA
    other: int                    # ... any other network plugin
    gdr_disabled_hcas: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.channels > 0 and self.gdr == self.channels

    def why(self) -> str:
        if not self.channels:
            why = "no inter-node channel line in the log (NCCL_DEBUG=INFO not in effect?)"
        elif self.socket:
            why = f"{self.socket} of {self.channels} channels fell back to NET/Socket (TCP)"
        elif self.host_staged:
            why = (f"{self.host_staged} of {self.channels} channels over IB without "
                   f"GPUDirect RDMA (host-staged)")
        elif self.other:
            why = f"{self.other} of {self.channels} channels over another network plugin"
        else:
            why = f"all {self.channels} inter-node channels NET/IB with GPUDirect RDMA"
        if self.gdr_disabled_hcas:
            why += "; GPUDirect disabled for " + ",".join(self.gdr_disabled_hcas)
        return why


def transport(text: str) -> Transport:
    """Count the inter-node channel lines of an NCCL INFO log by transport (pure)."""
    gdr = sock = host = other = 0
    for m in _CHANNEL.finditer(text):
        via = m[1]
        if via.startswith("NET/Socket"):
            sock += 1
        elif re.match(r"NET/IB(?:ext)?(?:_v\d+)?/", via):
            if "/GDRDMA" in via:
                gdr += 1
            else:
                host += 1
        else:
            other += 1
    off = tuple(dict.fromkeys(_GDR_OFF.findall(text)))
    return Transport(gdr + sock + host + other, gdr, sock, host, other, off)


def transport_record(node: str, t: Transport, *, check: str, peer: str | None = None) \
        -> Measurement:
    return record(node, "nccl_transport_ok", 1 if t.ok else 0, check=check, min=1.0,
                  peer=peer, source="NCCL INFO log: 'via NET/IB/<n>/GDRDMA' on every "
                                    "inter-node channel", detail=t.why())


def nccl_env(fabric: Sequence[tuple[str, int]], roce: bool) -> dict[str, str]:
    """What NCCL needs to print its transport and use exactly the compute ports.

    ``fabric`` is the plan's (HCA, port) list; ``NCCL_IB_HCA`` with a leading ``=``
    matches names exactly (``mlx5_1`` would otherwise also select ``mlx5_10``)."""
    env = {"NCCL_DEBUG": "INFO", "NCCL_DEBUG_SUBSYS": "INIT,NET"}
    if fabric:
        env["NCCL_IB_HCA"] = "=" + ",".join(f"{dev}:{port}" for dev, port in fabric)
    if roce:
        env["NCCL_IB_GID_INDEX"] = ROCE_GID_INDEX
        env["NCCL_IB_TC"] = ROCE_TRAFFIC_CLASS
    return env


def env_argv(env: dict[str, str]) -> list[str]:
    return ["env", *(f"{k}={v}" for k, v in sorted(env.items()))]

"""The rail map: which PCI function (and so which RDMA device and netdev) is each
compute rail, recorded from a golden node instead of assumed from ``mlx5_<i>``
enumeration order.

Input is what the node prints: ``ibdev2netdev -v`` (PCI address, device, port,
netdev) or plain ``ibdev2netdev`` (device, port, netdev; the PCI address then
comes from the netdev's predictable name, ``ibp26s0`` / ``enp27s0f1np1``: bus
and slot in decimal, systemd.net-naming-scheme(7) "PCI geographical location").
A real capture (imbue-ai/cluster-health#4, an H100 host) shows why order cannot
be trusted: the Ethernet ConnectX-6 ports are mlx5_1, mlx5_2, mlx5_7 and mlx5_8,
between the eight InfiniBand ConnectX-7 ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from provision.errors import InputError
from provision.spec.model import RailPort

_VERBOSE = re.compile(
    r"^(?P<pci>[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7])\s+(?P<hca>\S+)\s+.*?"
    r"\bport\s+(?P<port>\d+)\b.*?==>\s*(?P<netdev>\S+)")
_PLAIN = re.compile(r"^(?P<hca>\S+)\s+port\s+(?P<port>\d+)\s+==>\s*(?P<netdev>\S+)")
# en/ib + optional P<domain> + p<bus>s<slot>[f<function>], numbers in decimal
_PREDICTABLE = re.compile(r"^(?:en|ib)(?:P(?P<domain>\d+))?p(?P<bus>\d+)s(?P<slot>\d+)"
                          r"(?:f(?P<fn>\d+))?")


@dataclass(frozen=True)
class Port:
    pci: str
    hca: str
    port: int
    netdev: str

    @property
    def infiniband(self) -> bool:
        return self.netdev.startswith("ib")


def pci_from_netdev(netdev: str) -> str | None:
    """``ibp26s0`` -> ``0000:1a:00.0``; None for a name that does not encode it."""
    m = _PREDICTABLE.match(netdev)
    if not m:
        return None
    return (f"{int(m['domain'] or 0):04x}:{int(m['bus']):02x}:{int(m['slot']):02x}."
            f"{int(m['fn'] or 0)}")


def parse_ibdev2netdev(text: str, source: str = "<ibdev2netdev>") -> list[Port]:
    """Every port line of ``ibdev2netdev [-v]`` output, in PCI address order."""
    ports = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = _VERBOSE.match(line) or _PLAIN.match(line)
        if not m:
            raise InputError(f"{source}:{n}: not an ibdev2netdev line: {raw.strip()[:80]}")
        fields = m.groupdict()
        netdev = fields["netdev"]
        pci = (fields.get("pci") or pci_from_netdev(netdev) or "").lower()
        if not pci:
            raise InputError(f"{source}:{n}: {netdev} does not name its PCI address; "
                             f"record with `ibdev2netdev -v` instead")
        ports.append(Port(pci, fields["hca"], int(fields["port"]), netdev))
    if not ports:
        raise InputError(f"{source}: no ibdev2netdev port lines")
    return sorted(ports, key=lambda p: (p.pci, p.port))


def compute_rails(ports: list[Port], *, exclude: tuple[str, ...] = (),
                  link_layer: str | None = None) -> list[RailPort]:
    """The compute ports, rail 0 first (PCI address order), without the excluded
    functions (storage / north-south adapters) and, given a link layer, without
    ports of the other one."""
    excluded = {e.lower() for e in exclude}
    unknown = excluded - {p.pci for p in ports}
    if unknown:
        raise InputError(f"--exclude {sorted(unknown)[0]}: no such PCI function in the capture")
    keep = [p for p in ports if p.pci not in excluded]
    if link_layer == "InfiniBand":
        keep = [p for p in keep if p.infiniband]
    elif link_layer == "Ethernet":
        keep = [p for p in keep if not p.infiniband]
    return [RailPort(p.pci, p.hca, p.netdev) for p in keep]

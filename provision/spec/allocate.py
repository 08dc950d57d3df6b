"""Address allocation: hand out addresses from a first one, in node order, skipping exceptions."""

from __future__ import annotations

# socket's C functions come from its C module: importing socket.py builds its enums too,
# about 2 ms of `forge validate`'s start-up, which needs none of them
import ipaddress
import struct
from _socket import AF_INET, inet_ntoa, inet_pton
from collections.abc import Iterator

# IPv4 fast paths: a 10,000-node spec allocates ~100,000 addresses, and
# ipaddress objects cost ~10 us each; packed integers cost well under 1 us.


def ipv4_to_int(text: str) -> int | None:
    """The address as an integer, or None when ``text`` is not a dotted-quad IPv4 address."""
    try:
        value: int = struct.unpack("!I", inet_pton(AF_INET, text))[0]
    except OSError:
        return None
    return value


def int_to_ipv4(value: int) -> str:
    # consecutive addresses share their first three octets: format those once per /24
    head = _HEADS.get(value >> 8)
    if head is None:
        if len(_HEADS) > 4096:
            _HEADS.clear()
        head = _HEADS[value >> 8] = inet_ntoa(struct.pack("!I", value)).rpartition(".")[0]
    return f"{head}.{value & 255}"


_HEADS: dict[int, str] = {}


def split_hostport(value: str) -> tuple[str, int | None]:
    """``'127.0.0.1:2201'`` -> ``('127.0.0.1', 2201)``; ``'10.0.0.5'`` -> ``('10.0.0.5', None)``."""
    if value.count(":") == 1:
        host, _, port = value.partition(":")
        if port.isdigit():
            return host, int(port)
        raise ValueError(f"invalid port in {value!r}")
    return value, None


def sequence(first: str, skip: frozenset[str] = frozenset()) -> Iterator[str]:
    """Yield addresses from ``first`` onward.

    ``host:port`` increments the port (one emulator or loopback host, many
    endpoints); a bare IP address increments the address.
    """
    host, port = split_hostport(first)
    if port is not None:
        while True:
            if port > 65535:
                raise ValueError(f"ran past port 65535 allocating from {first!r}")
            candidate = f"{host}:{port}"
            if candidate not in skip:
                yield candidate
            port += 1
    v4 = ipv4_to_int(host)
    if v4 is not None:
        while True:
            if v4 > 0xFFFFFFFF:
                raise ValueError(f"ran past 255.255.255.255 allocating from {first!r}")
            candidate = int_to_ipv4(v4)
            if candidate not in skip:
                yield candidate
            v4 += 1
    addr = ipaddress.ip_address(host)
    while True:
        if str(addr) not in skip:
            yield str(addr)
        addr += 1


def host_in_subnet(subnet: str, host_number: int) -> str:
    net = ipaddress.ip_network(subnet, strict=False)
    if host_number >= net.num_addresses - 1:
        raise ValueError(f"host number {host_number} does not fit in {subnet}")
    return str(net.network_address + host_number)

"""``ibstat`` output, and the adapter/port types that ibstatus and ibv_devinfo share.

Indentation (tabs or spaces) is ignored: a ``CA '...'`` line opens an
adapter, ``Port N:`` opens a port, every other line is ``key: value``. CA
blocks without ports (``ibstat -s``) are kept. ``ibpanic`` lines (ibstat
failing on one device) become failure records for that device.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from provision.measurement import Measurement
from provision.parsers.base import leading_float, parse_error, record, require_text, resolve_node

TOOL = "ibstat"


@dataclass(frozen=True)
class IbPort:
    number: int
    state: str | None  # Active, Down, Init, Armed (ibstat wording; others are mapped to it)
    physical_state: str | None  # LinkUp, Disabled, Polling, ...
    rate_gbps: float | None
    link_layer: str | None  # InfiniBand | Ethernet
    lid: int | None = None
    sm_lid: int | None = None
    guid: str | None = None
    active_mtu: int | None = None

    @property
    def up(self) -> bool:
        return (self.state or "").lower() == "active" and (
            self.physical_state is None or self.physical_state.lower() == "linkup")


@dataclass(frozen=True)
class IbCA:
    name: str
    ca_type: str | None
    firmware: str | None
    node_guid: str | None
    ports: tuple[IbPort, ...]
    num_ports: int | None = None
    board_id: str | None = None


@dataclass(frozen=True)
class IbDevicesResult:
    """What ibstat, ibstatus and ibv_devinfo report: adapters with their ports."""

    node: str
    tool: str
    cas: tuple[IbCA, ...]
    errors: tuple[str, ...] = field(default=())

    def port(self, ca: str, number: int = 1) -> IbPort | None:
        for c in self.cas:
            if c.name == ca:
                return next((p for p in c.ports if p.number == number), None)
        return None


def detect(text: str) -> bool:
    return bool(re.search(r"^CA '[^']+'\s*$|^ibpanic:", text, re.M))


def parse(text: str, *, node: str | None = None,
          source_name: str = "<stdin>") -> IbDevicesResult:
    lines = require_text(TOOL, text, source_name)
    cas: list[IbCA] = []
    errors: list[str] = []
    ca: dict[str, str] | None = None
    ports: list[dict[str, str]] = []
    port: dict[str, str] | None = None

    def close() -> None:
        if ca is not None:
            cas.append(_ca(ca, ports))

    for raw in lines:
        ln = raw.strip()
        if not ln:
            continue
        if m := re.match(r"CA '([^']+)'$", ln):
            close()
            ca, ports, port = {"name": m[1]}, [], None
        elif ln.startswith("ibpanic:"):
            errors.append(ln)
        elif ca is not None and (m := re.match(r"Port (\d+):$", ln)):
            port = {"number": m[1]}
            ports.append(port)
        elif ca is not None and ":" in ln:
            key, _, value = ln.partition(":")
            (port if port is not None else ca)[key.strip().lower()] = value.strip()
        # anything else (ibwarn traces, prompts, '...' where a paste was elided) is not ibstat's
    close()
    if not cas and not errors:
        raise parse_error(TOOL, source_name, 1, "no CA block found")
    return IbDevicesResult(resolve_node(TOOL, source_name, None, node), TOOL, tuple(cas),
                           tuple(errors))


def _int(text: str | None) -> int | None:
    v = leading_float(text or "")
    return int(v) if v is not None else None


def _ca(ca: dict[str, str], ports: list[dict[str, str]]) -> IbCA:
    return IbCA(
        name=ca["name"], ca_type=ca.get("ca type"), firmware=ca.get("firmware version"),
        node_guid=ca.get("node guid"),
        ports=tuple(IbPort(
            number=int(p["number"]), state=p.get("state"),
            physical_state=p.get("physical state"), rate_gbps=leading_float(p.get("rate", "")),
            link_layer=p.get("link layer"), lid=_int(p.get("base lid")),
            sm_lid=_int(p.get("sm lid")), guid=p.get("port guid")) for p in ports),
        num_ports=_int(ca.get("number of ports")))


def measurements(result: IbDevicesResult, check: str | None = None) -> list[Measurement]:
    """nic_port_up for every port (min 1), its rate when the link is up, failures of ibpanic."""
    check = check or result.tool
    out: list[Measurement] = []
    if result.cas:
        out.append(record(result.node, "nic_count", len(result.cas), check=check,
                          detail=", ".join(c.name for c in result.cas)[:300]))
    for ca in result.cas:
        for p in ca.ports:
            where = f"{ca.name} port {p.number}"
            state = f"{p.state or '?'}/{p.physical_state or '?'}"
            out.append(record(result.node, "nic_port_up", 1 if p.up else 0, check=check,
                              min=1.0, detail=f"{where} {state} {p.link_layer or ''}".strip()))
            # a port that is down reports a placeholder rate (10 or 40): not a measurement
            if p.up and p.rate_gbps is not None:
                out.append(record(result.node, "nic_port_rate", p.rate_gbps, check=check,
                                  detail=where))
            if p.active_mtu is not None:
                out.append(record(result.node, "nic_port_mtu", p.active_mtu, check=check,
                                  detail=where))
    for err in result.errors:
        m = re.search(r"device '([^']+)'", err)
        out.append(record(result.node, "tool_ran_ok", 0, check=check, min=1.0,
                          detail=f"{m[1] if m else result.tool}: {err}"[:300]))
    return out

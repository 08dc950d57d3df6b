"""``ibv_devinfo`` (and ``-v``) output: ``hca_id:`` blocks with ``port:`` sub-blocks.

Both the MLNX_OFED layout (a ``Device ports:`` line) and upstream rdma-core
parse; device names may be udev-renamed (``ibP57247p0s2``). With ``-v`` the
port rate is ``active_width`` x ``active_speed``.
"""

from __future__ import annotations

import re

from provision.measurement import Measurement
from provision.parsers import ibstat
from provision.parsers.base import leading_float, parse_error, require_text, resolve_node
from provision.parsers.ibstat import IbCA, IbDevicesResult, IbPort

TOOL = "ibv_devinfo"
_STATES = {"PORT_ACTIVE": "Active", "PORT_DOWN": "Down", "PORT_INIT": "Initializing",
           "PORT_ARMED": "Armed", "PORT_ACTIVE_DEFER": "ActiveDefer"}


def detect(text: str) -> bool:
    return bool(re.search(r"^hca_id:\s*\S+", text, re.M))


def _rate(d: dict[str, str]) -> float | None:
    width = re.match(r"(\d+)X", d.get("active_width", ""))
    speed = leading_float(d.get("active_speed", ""))
    return float(width[1]) * speed if width and speed is not None else None


def _port(num: int, d: dict[str, str]) -> IbPort:
    state = d.get("state", "").split()
    phys = d.get("phys_state", "").split()
    return IbPort(number=num, state=_STATES.get(state[0], state[0]) if state else None,
                  physical_state=phys[0] if phys else None,
                  rate_gbps=_rate(d), link_layer=d.get("link_layer"),
                  lid=_int(d.get("port_lid")), sm_lid=_int(d.get("sm_lid")),
                  active_mtu=_int(d.get("active_mtu")))


def _int(text: str | None) -> int | None:
    v = leading_float(text or "")
    return int(v) if v is not None else None


def parse(text: str, *, node: str | None = None,
          source_name: str = "<stdin>") -> IbDevicesResult:
    lines = require_text(TOOL, text, source_name)
    hcas: list[tuple[dict[str, str], list[tuple[int, dict[str, str]]]]] = []
    target: dict[str, str] | None = None
    for raw in lines:
        ln = raw.strip()
        if not ln or ln == "Device ports:":
            continue
        key, sep, value = ln.partition(":")
        key, value = key.strip(), value.strip()
        if key == "hca_id" and value:
            hcas.append(({"hca_id": value}, []))
            target = hcas[-1][0]
        elif key == "port" and hcas and value.isdigit():
            target = {}
            hcas[-1][1].append((int(value), target))
        elif sep and target is not None:
            target[key] = value
        # else: -v capability flag lines, a fragment's lines before its first hca_id, prompts
    if not hcas:
        raise parse_error(TOOL, source_name, 1, "no 'hca_id:' block found")
    cas = tuple(IbCA(name=h["hca_id"], ca_type=h.get("vendor_part_id"), firmware=h.get("fw_ver"),
                     node_guid=h.get("node_guid"),
                     ports=tuple(_port(n, d) for n, d in ports),
                     num_ports=_int(h.get("phys_port_cnt")), board_id=h.get("board_id"))
                for h, ports in hcas)
    return IbDevicesResult(resolve_node(TOOL, source_name, None, node), TOOL, cas)


def measurements(result: IbDevicesResult, check: str | None = None) -> list[Measurement]:
    return ibstat.measurements(result, check)

"""``ibstatus`` output: one block per device port, ``state: 4: ACTIVE`` style values."""

from __future__ import annotations

import re

from provision.measurement import Measurement
from provision.parsers import ibstat
from provision.parsers.base import leading_float, parse_error, require_text, resolve_node
from provision.parsers.ibstat import IbCA, IbDevicesResult, IbPort

TOOL = "ibstatus"
_HEAD = re.compile(r"Infiniband device '([^']+)' port (\d+) status:$")


def detect(text: str) -> bool:
    return bool(re.search(r"^Infiniband device '[^']+' port \d+ status:", text, re.M))


def _word(value: str | None) -> str | None:
    """``'4: ACTIVE'`` -> ``'Active'``, ``'5: LinkUp'`` -> ``'LinkUp'`` (ibstat wording)."""
    if value is None:
        return None
    word = value.split(":", 1)[-1].strip()
    return word.capitalize() if word.isupper() else word


def parse(text: str, *, node: str | None = None,
          source_name: str = "<stdin>") -> IbDevicesResult:
    lines = require_text(TOOL, text, source_name)
    blocks: dict[str, list[tuple[int, dict[str, str]]]] = {}
    current: dict[str, str] | None = None
    for i, raw in enumerate(lines, 1):
        ln = raw.strip()
        if not ln:
            continue
        if m := _HEAD.match(ln):
            current = {}
            blocks.setdefault(m[1], []).append((int(m[2]), current))
        elif current is not None and ":" in ln:
            key, _, value = ln.partition(":")
            current[key.strip().lower()] = value.strip()
        else:
            raise parse_error(TOOL, source_name, i, f"unexpected line {ln[:60]!r}")
    if not blocks:
        raise parse_error(TOOL, source_name, 1, "no 'Infiniband device ... status:' block")
    cas = tuple(
        IbCA(name=name, ca_type=None, firmware=None, node_guid=None, ports=tuple(
            IbPort(number=num, state=_word(d.get("state")),
                   physical_state=_word(d.get("phys state")),
                   rate_gbps=leading_float(d.get("rate", "")), link_layer=d.get("link_layer"))
            for num, d in ports))
        for name, ports in blocks.items())
    return IbDevicesResult(resolve_node(TOOL, source_name, None, node), TOOL, cas)


def measurements(result: IbDevicesResult, check: str | None = None) -> list[Measurement]:
    return ibstat.measurements(result, check)

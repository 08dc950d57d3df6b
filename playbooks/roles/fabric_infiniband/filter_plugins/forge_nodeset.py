"""Expand forge node sets ("gpu[001-004]", "head01,gpu[001-002]") into host names.

The site spec names hosts as ClusterShell node sets; the inventory keeps them
folded. ClusterShell is a forge dependency, so it is used when importable;
the fallback handles the same bracket syntax (ranges, lists, zero padding).
"""

from __future__ import annotations

import re

_BRACKET = re.compile(r"^(?P<pre>[^\[]*)\[(?P<body>[^\]]+)\](?P<post>.*)$")


def _split_top(text):
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        parts.append(cur)
    return parts


def _expand_one(pattern):
    m = _BRACKET.match(pattern)
    if not m:
        return [pattern]
    out = []
    for item in m.group("body").split(","):
        if "-" in item:
            lo, hi = item.split("-", 1)
            width = len(lo) if lo.startswith("0") else 0
            for i in range(int(lo), int(hi) + 1):
                out.extend(_expand_one(f"{m.group('pre')}{str(i).zfill(width)}{m.group('post')}"))
        else:
            out.extend(_expand_one(f"{m.group('pre')}{item}{m.group('post')}"))
    return out


def forge_nodeset_expand(value):
    """Return the host names of a node set string, or of a list of them."""
    if not value:
        return []
    items = value if isinstance(value, (list, tuple)) else [value]
    try:
        from ClusterShell.NodeSet import NodeSet
    except ImportError:
        hosts = []
        for item in items:
            for part in _split_top(str(item).replace(" ", "")):
                hosts.extend(_expand_one(part))
        return hosts
    hosts = []
    for item in items:
        hosts.extend(NodeSet(str(item)))
    return hosts


class FilterModule:
    """Ansible filter plugin entry point."""

    def filters(self):
        return {"forge_nodeset_expand": forge_nodeset_expand}

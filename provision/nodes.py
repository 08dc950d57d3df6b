"""Node sets end to end: thin helpers over ClusterShell's NodeSet (never a home-made parser)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from ClusterShell.NodeSet import NodeSet, NodeSetParseError

from provision.errors import InputError

_RANGE = re.compile(r"(\d+)(?:-(\d+))?(?:/(\d+))?")


def size_bound(pattern: str) -> int:
    """An upper bound of how many nodes ``pattern`` names, without expanding it.

    ClusterShell builds every member of a range, so ``gpu[1-20000000]`` (a typo)
    would take minutes; callers refuse a pattern over their limit from this first.
    """
    total, depth, term, groups = 0, 0, 1, [""]
    for ch in pattern + ",":
        if ch == "[":
            depth += 1
            groups.append("")
        elif ch == "]":
            depth -= 1
            term *= max(1, sum(_range_len(m) for m in _RANGE.finditer(groups.pop())))
        elif depth:
            groups[-1] += ch
        elif ch == ",":
            total, term = total + term, 1
    return total


def _range_len(m: re.Match[str]) -> int:
    first, last, step = int(m[1]), int(m[2] or m[1]), int(m[3] or 1)
    return max(0, last - first) // max(step, 1) + 1 if last >= first else 0


def expand(pattern: str, limit: int = 1_000_000) -> list[str]:
    """``gpu[001-003]`` -> ``['gpu001', 'gpu002', 'gpu003']``, in node order."""
    if size_bound(pattern) > limit:
        raise InputError(f"node set {pattern!r} names more than {limit:,} nodes (a typo?)")
    try:
        return list(NodeSet(pattern))
    except NodeSetParseError as exc:
        raise InputError(f"invalid node set {pattern!r}: {exc}") from None


def fold(names: Iterable[str]) -> str:
    """``['gpu003', 'gpu017']`` -> ``'gpu[003,017]'``.

    Names that are not node names (``gpu[01`` from a measurement file, a pair key
    ``a+b``) cannot be folded: they are listed as they are, comma-separated.
    """
    listed = list(names)
    one = _one_prefix(listed)
    if one is not None:  # the common case: ClusterShell parses one range, not one name each
        prefix, numbers = one
        return str(NodeSet(f"{prefix}[{','.join(numbers)}]"))
    try:
        return str(NodeSet.fromlist(listed))
    except NodeSetParseError:
        return ",".join(sorted(set(listed)))


_NUMBERED = re.compile(r"([A-Za-z_-][A-Za-z_.-]*)(\d+)")


def _one_prefix(names: list[str]) -> tuple[str, list[str]] | None:
    """(prefix, numbers) when every name is the same letters-only prefix and a number."""
    if len(names) < 2:
        return None
    first = _NUMBERED.fullmatch(names[0])
    if first is None:
        return None
    prefix = first.group(1)
    cut = len(prefix)
    numbers = []
    for n in names:
        tail = n[cut:]
        if not n.startswith(prefix) or not tail.isdigit() or not tail.isascii():
            return None
        numbers.append(tail)
    return prefix, numbers


def group_by_text(per_node: Mapping[str, str]) -> list[tuple[str, str]]:
    """Group nodes with identical text, ClusterShell-style: ``[('gpu[003,017]', '11/12 up')]``.

    Groups come out largest first, then by folded name, so output is stable.
    """
    buckets: dict[str, list[str]] = {}
    for node, text in per_node.items():
        buckets.setdefault(text, []).append(node)
    grouped = [(fold(nodes), text, len(nodes)) for text, nodes in buckets.items()]
    grouped.sort(key=lambda g: (-g[2], g[0]))
    return [(ns, text) for ns, text, _ in grouped]

"""Node sets end to end: ClusterShell's NodeSet, with a fast path for the plain forms.

Every node set a spec holds is read by :func:`members`. The plain forms a site
spec uses (``gpu[001-016]``, ``head01,head02``, ``gpu[001-004,010]-ib``,
``gpu[1-9/2]``: comma-separated terms of letters, ``.``, ``_`` or ``-``, with one
run of digits or one bracket of ranges each) are expanded here, exactly as
ClusterShell expands them (same members, same order: patterns sorted, then
indexes by length and text, as ``ClusterShell.RangeSet`` sorts them); anything
else (several brackets, digits on both sides of a bracket, ``@groups``,
operators, spaces) goes to ClusterShell, which also words every parse error.
Importing ClusterShell costs more than validating a small spec, so it is
imported only when a node set needs it. ``tests/spec/test_nodes_members.py``
compares the two over thousands of generated patterns.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from provision.errors import InputError

_RANGE = re.compile(r"(\d+)(?:-(\d+))?(?:/(\d+))?")


class NodeSetError(ValueError):
    """A node set ClusterShell cannot parse; the text is ClusterShell's own message."""


# One term of the plain form: a bracket of ranges between two digit-free parts,
# or one name with at most one run of digits.
_AFFIX = r"[A-Za-z_.-]*"
_TERM = re.compile(rf"({_AFFIX})(?:\[([0-9,/-]+)\]|([0-9]*))({_AFFIX})(,|\Z)")
_PLAIN_RANGE = re.compile(r"([0-9]+)(?:-([0-9]+))?(?:/([0-9]+))?")
_LARGEST_RANGE = 10**9  # ClusterShell asserts (not raises) beyond this: leave it to it
_LONGEST_INDEX = 100    # ClusterShell refuses an index over 1e100


def members(pattern: str) -> list[str]:
    """The nodes of ``pattern`` in ClusterShell's order; :class:`NodeSetError` if invalid."""
    plain = _plain_members(pattern)
    if plain is not None:
        return plain
    from ClusterShell.NodeSet import NodeSet, NodeSetParseError

    try:
        return list(NodeSet(pattern))
    except NodeSetParseError as exc:
        raise NodeSetError(str(exc)) from None


def _plain_members(pattern: str) -> list[str] | None:
    """``members`` of a plain-form pattern; None for every other (ClusterShell decides)."""
    indexed: dict[str, list[list[str]]] = {}  # "gpu%s-ib" -> its indexes, one list a range
    bare: set[str] = set()                    # names without digits
    pos, end = 0, len(pattern)
    while pos < end:
        m = _TERM.match(pattern, pos)
        if m is None or (m[5] and m.end() == end):  # a trailing comma is ClusterShell's error
            return None
        prefix, ranges, digits, suffix = m[1], m[2], m[3], m[4]
        pos = m.end()
        if ranges is not None:
            runs = _plain_ranges(ranges)
            if runs is None:
                return None
            indexed.setdefault(f"{prefix}%s{suffix}", []).extend(runs)
        elif digits and len(digits) <= _LONGEST_INDEX:
            indexed.setdefault(f"{prefix}%s{suffix}", []).append([digits])
        elif prefix + suffix and not digits:
            bare.add(prefix + suffix)
        else:  # an empty term (",,") or an overlong index
            return None
    out: list[str] = []
    for pat in sorted(indexed.keys() | bare):
        runs = indexed.get(pat)
        if runs is None:
            out.append(pat)
            continue
        # ClusterShell.RangeSet's order: by length, then text (one run is in that order)
        order = runs[0] if len(runs) == 1 else sorted({i for r in runs for i in r},
                                                      key=lambda i: (len(i), i))
        head, _, tail = pat.partition("%s")
        out.extend([f"{head}{i}{tail}" for i in order])
    return out


def _plain_ranges(text: str) -> list[list[str]] | None:
    """The indexes of ``1-4,7,09-12/3``, one list a range, padded as ClusterShell pads; or None."""
    out: list[list[str]] = []
    for piece in text.split(","):
        m = _PLAIN_RANGE.fullmatch(piece)
        if m is None:
            return None
        begin, end = m[1], m[2] or m[1]
        step = int(m[3]) if m[3] is not None else 1
        if step < 1 or (m[2] is None and step != 1):
            return None
        first, last = int(begin), int(end)
        padded = (len(begin) > 1 and begin[0] == "0") or (len(end) > 1 and end[0] == "0")
        if ((padded and len(begin) != len(end)) or first > last or len(end) > _LONGEST_INDEX
                or last - first >= _LARGEST_RANGE):
            return None
        width = len(begin) if padded else 0
        out.append([f"{i:0{width}d}" for i in range(first, last + 1, step)])
    return out


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
        return members(pattern)
    except NodeSetError as exc:
        raise InputError(f"invalid node set {pattern!r}: {exc}") from None


def fold(names: Iterable[str]) -> str:
    """``['gpu003', 'gpu017']`` -> ``'gpu[003,017]'``.

    Names that are not node names (``gpu[01`` from a measurement file, a pair key
    ``a+b``) cannot be folded: they are listed as they are, comma-separated.
    """
    from ClusterShell.NodeSet import NodeSet, NodeSetParseError

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

"""Node sets end to end: thin helpers over ClusterShell's NodeSet (never a home-made parser)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ClusterShell.NodeSet import NodeSet, NodeSetParseError

from provision.errors import InputError


def expand(pattern: str) -> list[str]:
    """``gpu[001-003]`` -> ``['gpu001', 'gpu002', 'gpu003']``, in node order."""
    try:
        return list(NodeSet(pattern))
    except NodeSetParseError as exc:
        raise InputError(f"invalid node set {pattern!r}: {exc}") from None


def fold(names: Iterable[str]) -> str:
    """``['gpu003', 'gpu017']`` -> ``'gpu[003,017]'``."""
    return str(NodeSet.fromlist(list(names)))


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

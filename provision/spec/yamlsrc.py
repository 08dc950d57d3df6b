"""Safe YAML loading that remembers where every value came from.

PyYAML's composer gives nodes with marks; we turn them into plain Python data
ourselves so that (a) every path maps to ``line:column`` for error messages,
(b) duplicate keys are errors instead of silent overwrites, and (c) alias
expansion is sized *before* anything is expanded, so a "billion laughs"
document is refused in microseconds rather than eating memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import yaml

from provision.errors import SpecError

Path_ = tuple[str | int, ...]

#: refuse documents whose alias-expanded size exceeds this many YAML nodes
MAX_EXPANDED_NODES = 2_000_000
#: refuse documents nested deeper than this (a site spec needs about 8)
MAX_DEPTH = 200


def format_path(path: Path_) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


@dataclass
class Located:
    """Plain data plus a path -> (line, column) map (1-based)."""

    data: Any
    source: str
    marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)

    def where(self, path: Path_) -> str:
        """``file:line:col`` of the value at ``path``, or of its nearest located parent."""
        p = tuple(path)
        while p not in self.marks and p:
            p = p[:-1]
        line, col = self.marks.get(p, (1, 1))
        return f"{self.source}:{line}:{col}"

    def problem(self, path: Path_, message: str) -> str:
        return f"{self.where(path)}: {format_path(path)}: {message}"


def _expanded_size(node: yaml.Node, memo: dict[int, int], depth: int = 0) -> int:
    key = id(node)
    if key in memo:
        return memo[key]
    if depth > MAX_DEPTH:
        raise _TooDeep(node.start_mark)
    memo[key] = 1  # guards recursive aliases
    if isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, memo, depth + 1) + _expanded_size(v, memo, depth + 1)
                       for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(v, memo, depth + 1) for v in node.value)
    else:
        size = 1
    memo[key] = size
    return size


class _TooDeep(Exception):
    def __init__(self, mark: Any = None) -> None:
        super().__init__()
        self.mark = mark


def _line_col(text: str, position: int) -> tuple[int, int]:
    line = text.count("\n", 0, position) + 1
    return line, position - (text.rfind("\n", 0, position) + 1) + 1


_SCALAR_LOADER = yaml.SafeLoader("")
# libyaml where PyYAML has it: the same nodes and marks, several times faster
_COMPOSER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_PLAIN_TAGS = frozenset({"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"})


def _scalar(node: yaml.ScalarNode) -> Any:
    return _SCALAR_LOADER.construct_object(node, deep=True)


def load_located(text: str, source: str) -> Located:
    """Parse one YAML document safely into plain data with locations."""
    too_deep = f"YAML nested deeper than {MAX_DEPTH} levels; not a site spec"
    try:
        root = yaml.compose(text, Loader=_COMPOSER)
    except RecursionError:  # PyYAML's composer recurses once per level
        raise SpecError([f"{source}: {too_deep}"]) from None
    except yaml.reader.ReaderError as exc:
        line, col = _line_col(text, exc.position)
        raise SpecError([f"{source}:{line}:{col}: invalid YAML: character "
                         f"{exc.character!r} is not allowed"]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise SpecError([f"{where}: invalid YAML: {exc.problem}"]) from None
    except yaml.YAMLError as exc:
        raise SpecError([f"{source}: invalid YAML: {exc}"]) from None
    if root is None:
        raise SpecError([f"{source}:1:1: the document is empty"])
    try:
        size = _expanded_size(root, {})
    except (_TooDeep, RecursionError) as exc:
        mark = getattr(exc, "mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise SpecError([f"{where}: {too_deep}"]) from None
    if size > MAX_EXPANDED_NODES:
        raise SpecError([f"{source}: refusing a document that expands to {size:,} YAML nodes "
                         f"(limit {MAX_EXPANDED_NODES:,}): alias expansion bomb?"])
    located = Located(None, source)
    problems: list[str] = []

    def build(node: yaml.Node, path: Path_) -> Any:
        located.marks.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if not isinstance(node, yaml.ScalarNode) and node.tag not in _PLAIN_TAGS:
            problems.append(located.problem(path, f"unsupported YAML value (tag {node.tag})"))
            return None
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for knode, vnode in node.value:
                if knode.tag == "tag:yaml.org,2002:merge":
                    problems.append(located.problem(path, "YAML merge keys ('<<') are not "
                                                    "supported in site specs"))
                    continue
                key = build(knode, path + ("<key>",)) if not isinstance(
                    knode, yaml.ScalarNode) else _scalar(knode)
                if not isinstance(key, (str, int, float, bool)) or key is None:
                    problems.append(located.problem(path, f"unsupported mapping key {key!r}"))
                    continue
                skey = str(key)
                if skey in out:
                    line = knode.start_mark.line + 1
                    problems.append(f"{source}:{line}:{knode.start_mark.column + 1}: "
                                    f"{format_path(path + (skey,))}: duplicate key "
                                    f"(first at line {located.marks[path + (skey,)][0]})")
                    continue
                located.marks[path + (skey,)] = (knode.start_mark.line + 1,
                                                 knode.start_mark.column + 1)
                out[skey] = build(vnode, path + (skey,))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [build(v, path + (i,)) for i, v in enumerate(node.value)]
        assert isinstance(node, yaml.ScalarNode)
        try:
            value = _scalar(node)
        except yaml.constructor.ConstructorError as exc:
            problems.append(located.problem(path, f"unsupported YAML value ({exc.problem})"))
            return None
        if isinstance(value, float) and not math.isfinite(value):
            problems.append(located.problem(path, f"{node.value!r} is not a finite number"))
            return None
        return value

    located.data = build(root, ())
    if problems:
        raise SpecError(problems)
    return located

"""The house's layering, read from the source: imports go down, one home per concept.

Every module under provision/ is parsed with ``ast`` (imports inside functions
and under TYPE_CHECKING count too). docs/architecture.md draws the same floors.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "provision"

#: the floors of docs/architecture.md: a module imports only from lower floors (or its own
#: room). A room is a top-level module or package of provision; a longer prefix wins.
FLOORS: dict[str, int] = {
    "provision.errors": 0, "provision.schemas": 0,
    "provision.proc": 1, "provision.fsutil": 1, "provision.paths": 1, "provision.nodes": 1,
    "provision.gcutil": 1, "provision.forked": 1, "provision.metrics": 1,
    "provision.finding": 1,
    "provision.node_programs": 1,
    "provision.measurement": 2, "provision.spec": 2, "provision.remote": 2,
    "provision.lab": 2, "provision.node_programs.gpu": 2,
    "provision.judge": 3, "provision.runs": 3, "provision.parsers": 3, "provision.history": 3,
    "provision.inventory": 3, "provision.bmc": 3, "provision.secrets": 3,
    "provision.analyze": 4, "provision.actions": 4, "provision.deploy": 4,
    "provision.expectations": 4,
    "provision.report": 5, "provision.checks": 5,
    "provision.sweep": 6,
    # programs: what a user or a node runs; they may import anything below
    "provision.cli": 7, "provision.node_programs.gpu.proof": 7,
    "provision.node_programs.health": 7, "provision.__main__": 8,
    # the old name of forge-health, kept for wrappers installed earlier
    "provision.sweep.nhc": 8,
}

#: arrows that still run up, each with why; the list only shrinks
KNOWN_UP: dict[tuple[str, str], str] = {}

#: what the report may import of the analyzer: its result types and its words for numbers
ANALYZE_PUBLIC = frozenset({"provision.analyze", "provision.analyze.findings",
                            "provision.analyze.text"})

#: the names a limit goes by in a record, a threshold, a finding or a judgement
LIMIT_NAMES = frozenset({"min", "max", "limit", "lo", "hi", "lim_lo", "lim_hi", "expected",
                         "figure_value"})
JUDGE = "provision.judge"


def _name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def _modules() -> dict[str, ast.Module]:
    return {_name(p): ast.parse(p.read_text(encoding="utf-8"), str(p))
            for p in sorted(PACKAGE.rglob("*.py"))}


def imports(module: str, tree: ast.Module) -> Iterator[tuple[str, int]]:
    """(imported module, line) for every import of a provision module in ``tree``."""
    known = _modules()
    package = module if module in known and _is_package(module) else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("provision"):
                    yield a.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("provision"):
                continue
            for a in node.names:
                sub = f"{target}.{a.name}"
                yield (sub if sub in known else target), node.lineno


def _is_package(module: str) -> bool:
    return (ROOT / module.replace(".", "/") / "__init__.py").is_file()


def room(module: str) -> str:
    best = ""
    for prefix in FLOORS:
        if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best):
            best = prefix
    return best


def arrows() -> Iterator[tuple[str, str, int]]:
    for module, tree in _modules().items():
        for target, line in imports(module, tree):
            if target != "provision":
                yield module, target, line


def test_every_module_stands_on_a_floor() -> None:
    homeless = [m for m in _modules() if m != "provision" and not room(m)]
    assert not homeless, f"give these a floor in FLOORS and docs/architecture.md: {homeless}"


def test_imports_only_go_down() -> None:
    up = []
    for module, target, line in arrows():
        a, b = room(module), room(target)
        if not b or a == b or FLOORS[b] < FLOORS[a]:
            continue
        if any(module.startswith(m) and target.startswith(t) for m, t in KNOWN_UP):
            continue
        up.append(f"{module}:{line} imports {target} (floor {FLOORS[a]} -> {FLOORS[b]})")
    assert not up, "imports that run up or sideways:\n" + "\n".join(up)


def test_nothing_below_the_cli_imports_it() -> None:
    bad = [f"{m}:{line} imports {t}" for m, t, line in arrows()
           if t.startswith("provision.cli") and not m.startswith(("provision.cli",
                                                                   "provision.__main__"))]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize(("lower", "upper"), [
    ("provision.lab", "provision.cli"),
    ("provision.lab", "provision.deploy"),
    ("provision.deploy", "provision.lab"),   # asset paths come from provision.paths
])
def test_rooms_that_never_meet(lower: str, upper: str) -> None:
    bad = [f"{m}:{line} imports {t}" for m, t, line in arrows()
           if m.startswith(lower) and t.startswith(upper)]
    assert not bad, "\n".join(bad)


def test_the_report_reads_only_the_analyzers_results() -> None:
    bad = [f"{m}:{line} imports {t}" for m, t, line in arrows()
           if m.startswith("provision.report") and t.startswith("provision.analyze")
           and t not in ANALYZE_PUBLIC]
    assert not bad, ("the report renders what the analyzer decided; these reach into its "
                     "internals:\n" + "\n".join(bad))


def _limit_operand(node: ast.expr) -> bool:
    return isinstance(node, ast.Attribute) and node.attr in LIMIT_NAMES


def limit_comparisons(tree: ast.Module) -> Iterator[int]:
    """Lines where an ordering comparison has a limit field (``r.min``, ``t.limit``,
    ``f.expected``, ``st.lim_lo``) on one side. A bare local name is not read: ``limit``
    also counts lines and characters."""
    order = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and any(isinstance(op, order) for op in node.ops) \
                and any(_limit_operand(x) for x in [node.left, *node.comparators]):
            yield node.lineno


def test_only_the_judge_compares_a_value_with_a_limit() -> None:
    bad = [f"{m}:{line}" for m, tree in _modules().items() if m != JUDGE
           for line in limit_comparisons(tree)]
    assert not bad, ("compare readings with limits in provision.judge, not at:\n"
                     + "\n".join(bad))


def test_the_limit_scan_sees_a_comparison() -> None:
    """The scan above can fail: it finds the shapes the old verdicts had."""
    for text in ("r.value < r.min", "value > t.limit", "v < st.lo", "x >= f.expected"):
        assert list(limit_comparisons(ast.parse(text))) == [1], text
    assert not list(limit_comparisons(ast.parse("a < b.count")))


#: modules that may spell a direction: the registry, the record's schema check, the judge
#: (a floor or a ceiling from the registry's word), the analyzer's numeric code of a
#: direction and the words a drift finding uses
DIRECTION_WORDS_ALLOWED = frozenset({
    "provision.metrics", "provision.measurement", "provision.judge",
    "provision.analyze.columns", "provision.analyze.engine"})


def test_direction_is_stated_only_in_the_metric_registry() -> None:
    bad = []
    for m, tree in _modules().items():
        if m in DIRECTION_WORDS_ALLOWED:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in ("higher", "lower"):
                bad.append(f"{m}:{node.lineno}: {node.value!r}")
    assert not bad, ("which side is good belongs to provision.metrics "
                     "(metrics.direction):\n" + "\n".join(bad))


_TABLES = (ast.Dict, ast.Set, ast.Tuple, ast.List)


def _is_table(value: ast.expr | None) -> bool:
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Name):
        return value.func.id in ("frozenset", "set", "dict", "tuple")
    return isinstance(value, _TABLES)


def test_the_xid_table_lives_beside_the_kernel_log_parser() -> None:
    bad = []
    for m, tree in _modules().items():
        if m.startswith("provision.parsers"):
            continue
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else (
                [node.target] if isinstance(node, ast.AnnAssign) else [])
            for t in targets:
                if isinstance(t, ast.Name) and "XID" in t.id.upper() and _is_table(node.value):
                    bad.append(f"{m}:{node.lineno}: {t.id}")
    assert not bad, "Xid tables belong in provision.parsers.xid_catalog:\n" + "\n".join(bad)

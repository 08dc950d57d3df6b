"""The terminal report: findings worst first, identical lines folded into node sets."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table

from provision.analyze.findings import SEVERITY_RANK, Analysis, Finding
from provision.analyze.text import num, qty, whole_limit
from provision.nodes import fold, group_by_text

#: more rows than this go to --json / --html
MAX_ROWS = 200


def where(f: Finding) -> str:
    """The part of an entity that is not the node name: ' GPU 3', ' GPUs 0-7', ' <-> gpu017'."""
    out = ""
    if f.gpu is not None:
        out += f" GPU {f.gpu}"
    elif f.gpus:
        out += f" GPUs {_span(f.gpus)}"
    if f.peer:
        out += f" <-> {f.peer}"
    elif f.kind == "pair-node" and f.peers:
        shown = ", ".join(f.peers[:4]) + (" ..." if len(f.peers) > 4 else "")
        out += f" (with {shown})"
    return out


def _span(gpus: tuple[int, ...]) -> str:
    g = sorted(gpus)
    if g == list(range(g[0], g[-1] + 1)) and len(g) > 2:
        return f"{g[0]}-{g[-1]}"
    return ",".join(map(str, g))


def expected_text(f: Finding) -> str:
    """What the value should have been, in the same unit."""
    u = f.unit
    if f.kind == "drift":
        return f"baseline {qty(f.baseline, u)}"
    if f.kind == "limit":
        if f.limit is not None and f.expected is not None and f.limit == f.expected:
            return f"= {qty(f.expected, u)}"
        op = ">=" if f.bound == "min" else "<="
        text = f"{op} {qty(f.limit, u)}"
        if f.expected is not None:
            text += f" of {qty(f.expected, u)}"
        return text
    if f.limit is not None and f.expected is not None:
        below = f.bound == "min"   # the analyzer decided which side of the median flags
        op = ">=" if below else "<="
        limit = whole_limit(f.limit, f.expected, below)
        return f"{op} {qty(limit, u)} (median {qty(f.expected, u)})"
    return f"~ {qty(f.expected, u)}" if f.expected is not None else "-"


def grouped_rows(findings: tuple[Finding, ...]) -> list[tuple[Finding, str, int]]:
    """(first finding, folded node set, how many) for findings whose text differs only by node."""
    buckets: dict[tuple[str, ...], list[Finding]] = {}
    for f in findings:
        key = (f.severity, f.kind, where(f), f.metric, qty(f.value, f.unit), expected_text(f),
               f.reason, f.detail or "")
        buckets.setdefault(key, []).append(f)
    rows = [(fs[0], fold([f.node for f in fs]), len(fs)) for fs in buckets.values()]
    # buckets keep the worst-first order of their first member
    return rows


def why_text(f: Finding) -> str:
    """The reason, then the tool's own words and the part's identity where the reading had them."""
    text = f"{f.kind}: {f.reason}"
    if f.detail:
        text += f" | tool: {f.detail}"
    if ident := f.identity():
        text += " | " + ", ".join(f"{k} {v}" for k, v in ident.items())
    return text


def render(a: Analysis, con: Console) -> None:
    rows = grouped_rows(a.findings)
    if rows:
        t = Table(box=box.SIMPLE_HEAD if con.is_terminal else box.SIMPLE, show_edge=False,
                  pad_edge=False, expand=False)
        for col in ("sev", "where", "metric", "measured", "expected", "why"):
            t.add_column(col, overflow="fold", no_wrap=col in ("sev", "metric"))
        for f, nodes, _ in rows[:MAX_ROWS]:
            style = "bold red" if f.severity == "fail" else "yellow"
            t.add_row(f"[{style}]{f.severity.upper()}[/]", nodes + where(f), f.metric,
                      qty(f.value, f.unit), expected_text(f), why_text(f))
        con.print(t)
        if len(rows) > MAX_ROWS:
            con.print(f"... and {len(rows) - MAX_ROWS} more lines (use --json or --html for all)")
    for line in node_lines(a):
        con.print(line, highlight=False)
    for b in a.bad_lines[:20]:
        con.print(f"skipped {b}", highlight=False)
    if len(a.bad_lines) > 20:
        con.print(f"skipped {len(a.bad_lines) - 20} more malformed lines", highlight=False)
    con.print(verdict_line(a), highlight=False)


def node_lines(a: Analysis) -> list[str]:
    """One line per set of nodes with the same outcome: ``gpu[003,017]: fail (hbm_bandwidth)``."""
    metrics: dict[str, set[str]] = {}
    for f in a.findings:
        for n in f.nodes:
            metrics.setdefault(n, set()).add(f.metric)
    status = a.node_status()
    per_node = {}
    for node, s in status.items():
        per_node[node] = s if s == "pass" else f"{s} ({', '.join(sorted(metrics.get(node, ())))})"
    ranked = group_by_text(per_node)
    ranked.sort(key=lambda g: -SEVERITY_RANK.get(g[1].split(" ")[0], 0))
    return [f"{ns}: {text}" for ns, text in ranked]


def verdict_line(a: Analysis) -> str:
    c = a.counts()
    failing = a.failing_nodes
    head = "FAIL" if a.failed else "PASS"
    tail = f" on {fold(failing)}" if failing else ""
    return (f"{head}: {c['fail']} failing, {c['warn']} warning findings{tail};"
            f" {num(a.n_records)} readings of {len(a.nodes)} nodes, {a.n_gpus} GPUs,"
            f" {len(a.cohorts)} cohorts")

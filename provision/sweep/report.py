"""Render a sweep result: text table, Prometheus gauges, one-line NHC reason (pure).

JUnit, JSON and the findings table come from the analyzer's reports
(:mod:`provision.report`), fed with the sweep's records.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from provision.sweep.result import NodeResult, SweepResult

if TYPE_CHECKING:
    from provision.analyze.findings import Analysis


def table(result: SweepResult) -> str:
    """Nodes grouped by identical verdict text, ClusterShell style, worst first."""
    from provision.nodes import group_by_text

    lines = [f"sweep {result.run_id} ({result.profile}): {len(result.nodes)} nodes, "
             f"{len(result.by_status('healthy'))} healthy, "
             f"{len(result.by_status('failing'))} failing, "
             f"{len(result.by_status('unreachable'))} unreachable "
             f"in {result.finished - result.started:.1f} s"]
    for status in ("failing", "unreachable", "healthy"):
        per_node = {n.node: _verdict(n) for n in result.by_status(status)}
        for nodeset, text in group_by_text(per_node):
            lines.append(f"  {nodeset}: {text}")
    for a in result.actions:
        if a["action"] != "none":
            lines.append(f"  action {a['action']} {a['node']}: {a['outcome']} ({a['why']})"
                         + (f" [{a['command']}]" if a["outcome"] == "dry-run" else ""))
    return "\n".join(lines)


def _verdict(n: NodeResult) -> str:
    if n.status == "healthy":
        return "healthy"
    if n.status == "unreachable":
        return f"UNREACHABLE ({n.reason})"
    shown = "; ".join(f.line().split(": ", 1)[1] for f in n.findings[:3])
    more = f" (+{len(n.findings) - 3} more)" if len(n.findings) > 3 else ""
    return f"FAIL {shown}{more}"


def nhc_line(n: NodeResult) -> str:
    """NHC's convention: one short line, the reason a node should be drained."""
    if n.status == "healthy":
        return "OK"
    if n.status == "unreachable":
        return f"ERROR: {n.reason}"[:200]
    f = n.findings[0]
    more = f" (+{len(n.findings) - 1} more)" if len(n.findings) > 1 else ""
    return f"ERROR: {f.line()}{more}"[:200]


def analysis_lines(a: Analysis, limit: int = 10) -> str:
    """The analyzer's verdict plus the drift and outlier findings (reported, never drained on)."""
    from provision.report.table import verdict_line

    lines = [f"analysis: {verdict_line(a)}"]
    extra = [f for f in a.findings if f.kind != "limit"]
    for f in extra[:limit]:
        lines.append(f"  {f.severity.upper()} {f.kind} {f.entity} {f.metric}: {f.reason}")
    if len(extra) > limit:
        lines.append(f"  (+{len(extra) - limit} more; --json for all)")
    return "\n".join(lines)


def _label(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def prometheus(result: SweepResult) -> str:
    """node_exporter textfile-collector format; names prefixed ``forge_sweep_``."""
    out: list[str] = []

    def metric(name: str, help_: str, rows: list[tuple[dict[str, str], float]]) -> None:
        out.append(f"# HELP forge_sweep_{name} {help_}")
        out.append(f"# TYPE forge_sweep_{name} gauge")
        for labels, value in rows:
            lab = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
            out.append(f"forge_sweep_{name}{{{lab}}} {value:g}" if lab
                       else f"forge_sweep_{name} {value:g}")

    metric("last_run_timestamp_seconds", "end of the last sweep (unix time)",
           [({}, round(result.finished, 3))])
    metric("duration_seconds", "wall time of the last sweep", [({}, round(
        result.finished - result.started, 3))])
    metric("exit_code", "exit code of the last sweep (0 ok, 1 failing, 4 unreachable)",
           [({}, int(result.exit_code()))])
    metric("node_healthy", "1 when the node passed every check", [
        ({"node": n.node}, 1 if n.status == "healthy" else 0) for n in result.nodes])
    metric("node_reachable", "1 when the node answered every probe", [
        ({"node": n.node}, 1 if n.reachable else 0) for n in result.nodes])
    counts: dict[tuple[str, str, str], int] = {}
    for n in result.nodes:
        for f in n.findings:
            key = (n.node, f.check or "?", f.metric)
            counts[key] = counts.get(key, 0) + 1
    metric("findings", "readings outside their limits, per node, check and metric", [
        ({"node": k[0], "check": k[1], "metric": k[2]}, v) for k, v in sorted(counts.items())])
    return "\n".join(out) + "\n"


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)

"""The self-contained HTML report: verdict, findings, and plots people would rather look at.

Everything is inline (CSS and SVG, no script, no fonts, no network): the
file can be mailed, archived with a run, or opened on an air-gapped site.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import jinja2
import numpy as np

from provision import __version__
from provision.analyze.findings import Analysis, Finding
from provision.analyze.text import qty, whole_limit
from provision.report import svg
from provision.report.table import expected_text, grouped_rows, node_lines, verdict_line, where

MAX_STRIPS = 60
MAX_OK_POINTS = 800
MAX_FLAGGED_POINTS = 300
MAX_HEAT = 64
MAX_TOPO = 48
MAX_ROWS = 500
#: up to this many nodes the fleet squares carry their names (readable in print)
MAX_LABELLED = 256
#: how the report names each identity field
IDENTITY_LABEL = {"serial": "serial", "uuid": "UUID", "bus_id": "PCI", "vbios": "VBIOS",
                  "node_serial": "node serial"}
_SEV = {"fail": 2, "warn": 1}


def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("provision.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]), trim_blocks=True,
        lstrip_blocks=True, undefined=jinja2.StrictUndefined)


def _members(a: Analysis) -> dict[int, np.ndarray]:
    """The readings of each cohort (indices into ``a.columns``), in reading order."""
    order = np.argsort(a.columns.cohort, kind="stable")
    bounds = np.cumsum(np.bincount(a.columns.cohort, minlength=len(a.cohorts)))
    return {c: part for c, part in enumerate(np.split(order, bounds[:-1]))}


def _strips(a: Analysis) -> list[dict[str, Any]]:
    cols, jd = a.columns, a.judgement
    flagged_coh = {f.cohort for f in a.findings}
    ranked = sorted(a.cohorts, key=lambda s: (s.label not in flagged_coh, s.label))
    members = _members(a)
    out = []
    rng = np.random.default_rng(0)
    for s in ranked:
        c = s.index
        if s.zero_spread or s.n < 3 or s.median is None:
            continue
        idx = members[c]
        sev = jd.severity[idx]
        ok = idx[sev == 0]
        bad = idx[sev != 0][:MAX_FLAGGED_POINTS]
        if ok.shape[0] > MAX_OK_POINTS:
            ok = rng.choice(ok, MAX_OK_POINTS, replace=False)
        pick = np.concatenate([ok, bad])
        labels = [_reading_label(a, int(i)) for i in bad.tolist()]
        flag_at = s.flag_at
        if flag_at is not None and s.whole:  # lanes, counts: show the first whole value
            flag_at = whole_limit(flag_at, s.median, s.direction > 0)
        plot = svg.strip_plot(cols.value[pick], jd.severity[pick], labels,
                              median=s.median, flag_at=flag_at, unit=s.unit, seed=c)
        out.append({"label": s.label, "svg": plot, "n": s.n,
                    "flagged": int((sev != 0).sum()),
                    "median": qty(s.median, s.unit),
                    "flag_at": qty(flag_at, s.unit) if flag_at is not None else "-",
                    "sampled": s.n > pick.shape[0]})
        if len(out) >= MAX_STRIPS:
            break
    return out


def _reading_label(a: Analysis, i: int) -> str:
    cols = a.columns
    g = int(cols.gpu[i])
    who = cols.nodes[cols.node[i]] + (f" GPU {g}" if g >= 0 else "")
    if cols.peer[i] >= 0:
        who += f" <-> {cols.peers[cols.peer[i]]}"
    unit = cols.cohorts[cols.cohort[i]].unit
    return f"{who}: {qty(float(cols.value[i]), unit)}"


def _heat_maps(a: Analysis) -> list[dict[str, Any]]:
    cols = a.columns
    blamed_by_coh: dict[int, set[str]] = defaultdict(set)
    for b in a.attribution.blamed if a.attribution else ():
        blamed_by_coh[b.cohort].add(b.endpoint)
    out = []
    for c, cells in sorted(a.node_pair_cells().items()):
        coh = cols.cohorts[c]
        endpoints = sorted({e for k in cells for e in k})
        total = len(endpoints)
        if total > MAX_HEAT:
            focus = set(blamed_by_coh[c]) | {e for k, (_, s) in cells.items() if s for e in k}
            near = {e for k in cells for e in k if set(k) & focus}
            chosen = sorted(focus | near)[:MAX_HEAT]
            rest = [e for e in endpoints if e not in set(chosen)]
            endpoints = sorted(chosen + rest[:max(0, MAX_HEAT - len(chosen))])
        plot = svg.heat_map(endpoints, cells, median=a.cohorts[c].median or 0.0, unit=coh.unit,
                            blamed=blamed_by_coh[c])
        out.append({"label": coh.label, "svg": plot, "shown": len(endpoints), "total": total,
                    "pairs": len(cells)})
    return out


#: a NIC named in a record's detail (``mlx5_3 port 1 Down/Polling``, ``ibp12s0``)
_NIC = re.compile(r"\b(?:mlx5_\d+|mlx4_\d+|ibp\w+|bnxt_re\d+|irdma\d+|rdmaP\w+)\b")


def _nic_order(name: str) -> tuple[str, int]:
    m = re.match(r"(\D*)(\d+)$", name)
    return (m[1], int(m[2])) if m else (name, -1)


def _nics(a: Analysis) -> dict[str, set[str]]:
    """The NICs each node's records name (ibstat, ibv_devinfo, perftest), for its card."""
    cols = a.columns
    out: dict[str, set[str]] = defaultdict(set)
    if not cols.records:
        return out
    for i in np.nonzero(cols.gpu < 0)[0].tolist():
        if not cols.cohorts[cols.cohort[i]].metric.startswith(("nic_", "ib_", "rdma_")):
            continue
        for m in _NIC.findall(cols.field(i, "detail") or ""):
            out[cols.nodes[cols.node[i]]].add(m)
    return out


def _topologies(a: Analysis) -> tuple[list[dict[str, Any]], int]:
    cols = a.columns
    per_node: dict[str, list[Finding]] = defaultdict(list)
    for f in a.findings:
        for n in f.nodes:
            per_node[n].append(f)
    ranked = sorted(per_node, key=lambda n: (-max(_SEV[f.severity] for f in per_node[n]), n))
    node_ix = {n: k for k, n in enumerate(cols.nodes)}
    slow_links: dict[tuple[str, str], int] = {}
    att = a.attribution
    for p, _, _ in att.links if att else ():
        slow_links[(p.a, p.b)] = p.severity
    for b in att.blamed if att else ():
        for p in b.slow:
            slow_links[(p.a, p.b)] = p.severity
    gpu_pairs_of: dict[str, set[tuple[int, int]]] = defaultdict(set)
    for i in np.nonzero(cols.peer >= 0)[0].tolist():
        coh = cols.cohorts[cols.cohort[i]]
        peer = cols.peers[cols.peer[i]]
        node = cols.nodes[cols.node[i]]
        pn, _, pg = peer.partition(":")
        if coh.pair == "gpu" and pn == node and pg.isdigit() and cols.gpu[i] >= 0:
            x, y = int(cols.gpu[i]), int(pg)
            gpu_pairs_of[node].add((min(x, y), max(x, y)))
    nics_of = _nics(a)
    out = []
    for node in ranked[:MAX_TOPO]:
        k = node_ix.get(node)  # a pair's far end may have no readings of its own
        gpus = ([] if k is None else
                sorted(set(np.unique(cols.gpu[cols.node == k]).tolist()) - {-1}))
        gpu_state: dict[int, tuple[int, str]] = {}
        node_sev, node_text = 0, []
        nic_state: dict[str, tuple[int, str]] = {n: (0, "") for n in nics_of.get(node, ())}
        for f in per_node[node]:
            s = _SEV[f.severity]
            # a link finding colours the link, not the GPUs at its ends
            targets = [] if f.kind == "pair-link" else (
                [f.gpu] if f.gpu is not None and f.node == node else list(f.gpus))
            text = f"{f.metric}: {f.reason}"
            if f.kind == "pair-link" and f.peer and ":" in f.peer:
                continue
            nic = _NIC.search(f.detail or "") if f.gpu is None else None
            if nic and not targets:
                prev = nic_state.get(nic[0], (0, ""))
                nic_state[nic[0]] = (max(prev[0], s), (prev[1] + "; " if prev[1] else "") + text)
            if not targets:
                node_text.append(text)
            # the card is as red as the worst thing on the node, GPU findings included
            node_sev = max(node_sev, s)
            for g in targets:
                prev = gpu_state.get(g, (0, ""))
                gpu_state[g] = (max(prev[0], s), (prev[1] + "; " if prev[1] else "") + text)
        links = []
        for x, y in sorted(gpu_pairs_of.get(node, ())):
            ea, eb = sorted((f"{node}:{x}", f"{node}:{y}"))
            ls = slow_links.get((ea, eb), 0)
            links.append((x, y, ls, "slow" if ls else "ok"))
        plot = svg.topology(node, gpus, gpu_state, links, (node_sev, "; ".join(node_text)),
                            nics=sorted(nic_state.items(), key=lambda kv: _nic_order(kv[0])))
        out.append({"node": node, "svg": plot})
    return out, max(0, len(ranked) - MAX_TOPO)


def html_report(a: Analysis, *, generated_at: datetime | None = None,
                title: str = "forge acceptance report", cluster: str | None = None,
                run: str | None = None, identity: dict[str, Any] | None = None) -> str:
    when = (generated_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M:%S UTC")
    rows = [{"sev": f.severity, "where": nodes + where(f), "metric": f.metric,
             "measured": qty(f.value, f.unit), "expected": expected_text(f), "kind": f.kind,
             "reason": f.reason, "source": f.source or "", "detail": f.detail or "",
             "identity": ", ".join(f"{IDENTITY_LABEL[k]} {v}"
                                   for k, v in f.identity().items())}
            for f, nodes, _ in grouped_rows(a.findings)]
    topos, more_topos = _topologies(a)
    counts = a.counts()
    return _env().get_template("report.html.j2").render(
        title=title, when=when, version=__version__, verdict=a.verdict, cluster=cluster,
        identity={k: v for k, v in (identity or {}).items() if v is not None},
        run=run or ", ".join(a.inputs),
        verdict_line=verdict_line(a), counts=counts, rows=rows[:MAX_ROWS],
        more_rows=max(0, len(rows) - MAX_ROWS), node_lines=node_lines(a),
        grid=svg.fleet_grid(a.node_status(), labelled=len(a.node_status()) <= MAX_LABELLED),
        strips=_strips(a), heats=_heat_maps(a),
        topos=topos, more_topos=more_topos, inputs=list(a.inputs),
        bad_lines=[str(b) for b in a.bad_lines[:200]], n_bad=len(a.bad_lines), policy=a.policy)

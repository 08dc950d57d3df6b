"""Inline SVG plots for the HTML report: pure functions from numbers to markup.

No plotting library and no script: the report must open anywhere without a
network, and SVG written by hand stays small and exact.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

import numpy as np

from provision.analyze.text import qty

OK_COLOUR = "#7f8c9a"
WARN_COLOUR = "#f0a30a"
FAIL_COLOUR = "#d62728"
PASS_COLOUR = "#2ca02c"
SEV_COLOUR = {0: OK_COLOUR, 1: WARN_COLOUR, 2: FAIL_COLOUR}
STATUS_COLOUR = {"pass": PASS_COLOUR, "warn": WARN_COLOUR, "fail": FAIL_COLOUR}


def _t(text: str) -> str:
    return f"<title>{escape(text)}</title>"


def strip_plot(values: np.ndarray, severity: np.ndarray, labels: Sequence[str], *,
               median: float, flag_at: float | None, unit: str | None,
               width: int = 760, height: int = 96, seed: int = 0) -> str:
    """Values along x, jittered in y; flagged readings drawn large in their severity colour.

    ``labels`` names only the flagged readings (same order as their appearance).
    """
    lo = float(np.min(values))
    hi = float(np.max(values))
    for extra in (median, flag_at):
        if extra is not None and math.isfinite(extra):
            lo, hi = min(lo, extra), max(hi, extra)
    if hi == lo:
        hi, lo = hi + max(abs(hi) * 0.01, 0.5), lo - max(abs(lo) * 0.01, 0.5)
    pad = (hi - lo) * 0.04
    lo, hi = lo - pad, hi + pad
    left, right, top, bottom = 10, width - 10, 8, height - 22

    def x(v: float) -> float:
        return left + (v - lo) / (hi - lo) * (right - left)

    rng = np.random.default_rng(seed)
    jitter = rng.uniform(top + 4, bottom - 4, values.shape[0])
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" class="strip">',
             f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fbfcfd"/>',
             f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#ccc"/>']
    ok = severity == 0
    xs = np.round(left + (values - lo) / (hi - lo) * (right - left), 1)
    ys = np.round(jitter, 1)
    parts += [f'<circle cx="{cx}" cy="{cy}" r="2" fill="{OK_COLOUR}" fill-opacity="0.55"/>'
              for cx, cy in zip(xs[ok].tolist(), ys[ok].tolist(), strict=True)]
    flagged = np.nonzero(~ok)[0]
    for k, i in enumerate(flagged.tolist()):
        label = labels[k] if k < len(labels) else ""
        colour = SEV_COLOUR[int(severity[i])]
        parts.append(f'<circle cx="{xs[i]}" cy="{ys[i]}" r="5" fill="{colour}"'
                     f' stroke="#000" stroke-width="0.6">{_t(label)}</circle>')
    mx = x(median)
    parts.append(f'<line x1="{mx:.1f}" y1="{top}" x2="{mx:.1f}" y2="{bottom}" stroke="#1f77b4" '
                 f'stroke-width="1.5">{_t("cohort median " + qty(median, unit))}</line>')
    if flag_at is not None and math.isfinite(flag_at):
        fx = x(flag_at)
        parts.append(f'<line x1="{fx:.1f}" y1="{top}" x2="{fx:.1f}" y2="{bottom}" '
                     f'stroke="{FAIL_COLOUR}" stroke-dasharray="4 3">'
                     f'{_t("flagged beyond " + qty(flag_at, unit))}</line>')
    for v in (lo + pad, (lo + hi) / 2, hi - pad):
        parts.append(f'<text x="{x(v):.1f}" y="{height - 6}" font-size="10" text-anchor="middle" '
                     f'fill="#555">{escape(qty(v, unit))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def heat_map(endpoints: Sequence[str], cells: Mapping[tuple[str, str], tuple[float, int]], *,
             median: float, unit: str | None, blamed: set[str], cell: int = 14) -> str:
    """Endpoint x endpoint matrix; colour = deviation from the cohort median (red = slow).

    ``cells[(a, b)] = (value, severity)``; flagged cells get a black outline.
    """
    n = len(endpoints)
    label_w = 8 + 7 * max((len(e) for e in endpoints), default=4)
    size = label_w + n * cell + 10
    legend_h = 34
    pos = {e: k for k, e in enumerate(endpoints)}
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size + legend_h}" '
             f'class="heat">', f'<rect width="{size}" height="{size + legend_h}" fill="#fff"/>']
    for e, k in pos.items():
        colour = FAIL_COLOUR if e in blamed else "#333"
        y = label_w + k * cell + cell * 0.75
        parts.append(f'<text x="{label_w - 4}" y="{y:.1f}" font-size="10" text-anchor="end" '
                     f'fill="{colour}">{escape(e)}</text>')
        x = label_w + k * cell + cell * 0.75
        parts.append(f'<text x="{x:.1f}" y="{label_w - 4}" font-size="10" fill="{colour}" '
                     f'transform="rotate(-90 {x:.1f} {label_w - 4})">{escape(e)}</text>')
    for (a, b), (v, sev) in cells.items():
        if a not in pos or b not in pos:
            continue
        dev = (v / median - 1.0) if median else 0.0
        fill = _diverging(dev)
        stroke = ' stroke="#000" stroke-width="1.2"' if sev else ""
        tip = _t(f"{a} <-> {b}: {qty(v, unit)} ({dev * 100:+.1f} % vs median)")
        for r, c in ((pos[a], pos[b]), (pos[b], pos[a])):
            parts.append(f'<rect x="{label_w + c * cell}" y="{label_w + r * cell}" '
                         f'width="{cell - 1}" height="{cell - 1}" fill="{fill}"{stroke}>{tip}'
                         f'</rect>')
    ly = size + 6
    for k, dev in enumerate((-0.2, -0.1, -0.05, 0.0, 0.05)):
        parts.append(f'<rect x="{10 + k * 70}" y="{ly}" width="14" height="12" '
                     f'fill="{_diverging(dev)}"/><text x="{28 + k * 70}" y="{ly + 10}" '
                     f'font-size="10">{dev * 100:+.0f} %</text>')
    parts.append(f'<text x="{10}" y="{ly + 26}" font-size="10" fill="#555">median '
                 f'{escape(qty(median, unit))}; outlined: flagged pair; red label: blamed'
                 f' endpoint</text></svg>')
    return "".join(parts)


def _diverging(dev: float) -> str:
    """-20 % and below: deep red; 0: pale grey; above: blue."""
    t = max(-1.0, min(1.0, dev / 0.2))
    if t < 0:
        a = -t
        r, g, b = 245 - 31 * a, 245 - 206 * a, 245 - 205 * a
    else:
        r, g, b = 245 - 214 * t, 245 - 126 * t, 245 - 65 * t
    return f"#{int(r):02x}{int(g):02x}{int(b):02x}"


def topology(node: str, gpus: Sequence[int], gpu_state: Mapping[int, tuple[int, str]],
             links: Sequence[tuple[int, int, int, str]], node_state: tuple[int, str],
             width: int = 360, nics: Sequence[tuple[str, tuple[int, str]]] = ()) -> str:
    """One node: its GPUs in slot order, NVLink bridges between pairs, its NICs (one rail
    each, in name order) below, coloured by severity.

    ``gpu_state[g] = (severity, text)``; ``links = [(a, b, severity, text)]``;
    ``nics = [(name, (severity, text))]``.
    """
    ncols = max(4, math.ceil(len(gpus) / 2), len(nics))
    box_w, box_h, gap = 62, 40, 18
    inner_w = ncols * box_w + (ncols - 1) * gap
    width = max(width, inner_w + 24)
    nic_h = 30
    height = 2 * box_h + 3 * gap + 26 + (nic_h + gap if nics else 0)
    sev, text = node_state
    border = SEV_COLOUR[sev] if sev else PASS_COLOUR
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'class="topo">',
             f'<rect x="1" y="1" width="{width - 2}" height="{height - 2}" rx="6" fill="#f7f9fb" '
             f'stroke="{border}" stroke-width="{3 if sev else 1.5}">{_t(text or node)}</rect>',
             f'<text x="10" y="17" font-size="12" font-weight="bold">{escape(node)}</text>']
    centre: dict[int, tuple[float, float]] = {}
    for k, g in enumerate(sorted(gpus)):
        row, col = divmod(k, ncols)
        x = 12 + col * (box_w + gap)
        y = 26 + gap / 2 + row * (box_h + gap)
        centre[g] = (x + box_w / 2, y + box_h / 2)
        gs, gt = gpu_state.get(g, (0, "pass"))
        fill = SEV_COLOUR[gs] if gs else "#dff0d8"
        parts.append(f'<rect x="{x}" y="{y:.1f}" width="{box_w}" height="{box_h}" rx="4" '
                     f'fill="{fill}" stroke="#444">{_t(f"GPU {g}: {gt}")}</rect>'
                     f'<text x="{x + box_w / 2}" y="{y + box_h / 2 + 4:.1f}" font-size="11" '
                     f'text-anchor="middle">GPU {g}</text>')
    ny = 26 + gap / 2 + 2 * (box_h + gap)
    for k, (name, (ns, nt)) in enumerate(nics):
        x = 12 + k * (box_w + gap)
        fill = SEV_COLOUR[ns] if ns else "#e3ecf7"
        tip = f"{name} (rail {k}): {nt or 'pass'}"
        parts.append(f'<rect x="{x}" y="{ny:.1f}" width="{box_w}" height="{nic_h}" rx="3" '
                     f'fill="{fill}" stroke="#2a6db0">{_t(tip)}'
                     f'</rect><text x="{x + box_w / 2}" y="{ny + 13:.1f}" font-size="10" '
                     f'text-anchor="middle">{escape(name)}</text><text x="{x + box_w / 2}" '
                     f'y="{ny + 25:.1f}" font-size="9" text-anchor="middle" fill="#555">'
                     f'rail {k}</text>')
    for a, b, ls, lt in links:
        if a not in centre or b not in centre:
            continue
        (x1, y1), (x2, y2) = centre[a], centre[b]
        # bridges join neighbours in a row: draw them between the boxes' edges
        if y1 == y2:
            x1, x2 = min(x1, x2) + box_w / 2, max(x1, x2) - box_w / 2
        colour = SEV_COLOUR[ls] if ls else "#2a6db0"
        for off in (-6, 0, 6):
            parts.append(f'<line x1="{x1:.1f}" y1="{y1 + off:.1f}" x2="{x2:.1f}" '
                         f'y2="{y2 + off:.1f}" stroke="{colour}" stroke-width="2.5">'
                         f'{_t(f"NVLink GPU {a} <-> GPU {b}: {lt}")}</line>')
    parts.append("</svg>")
    return "".join(parts)


def fleet_grid(status: Mapping[str, str], cell: int = 12, per_row: int = 64,
               labelled: bool = False) -> str:
    """Every node as one square in its verdict colour; ``labelled`` writes each name in
    its square, so the names survive printing (else hover for them)."""
    nodes = list(status)
    cw = ch = cell
    if labelled and nodes:
        cw, ch = max(40, 7 * min(max(len(n) for n in nodes), 24) + 10), 18
        per_row = max(1, 1200 // cw)
    rows = max(1, math.ceil(len(nodes) / per_row))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{min(len(nodes), per_row) * cw + 2}"'
             f' height="{rows * ch + 2}" class="grid">']
    for k, n in enumerate(nodes):
        r, c = divmod(k, per_row)
        x, y = 1 + c * cw, 1 + r * ch
        parts.append(f'<rect x="{x}" y="{y}" width="{cw - 2}" height="{ch - 2}" '
                     f'fill="{STATUS_COLOUR[status[n]]}">{_t(f"{n}: {status[n]}")}</rect>')
        if labelled:
            parts.append(f'<text x="{x + 4}" y="{y + 12}" font-size="10" fill="#fff" '
                         f'font-family="monospace">{escape(n[:24])}</text>')
    parts.append("</svg>")
    return "".join(parts)


__all__ = ["fleet_grid", "heat_map", "strip_plot", "topology"]

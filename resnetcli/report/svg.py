"""Inline SVG charts for the HTML report: line charts, a heat map and a reliability diagram.

Plain strings, no plotting library and no JavaScript: the page must render from a downloads folder with
no network, and a chart that is markup can be checked by a parser. Inline SVG in HTML needs no xmlns.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

#: line colours, readable on white and for the common colour-vision deficiencies (Okabe-Ito)
COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi]."""
    if not math.isfinite(lo) or not math.isfinite(hi):
        return []
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / count
    step = 10 ** math.floor(math.log10(raw))
    for mult in (1, 2, 2.5, 5, 10):
        if raw <= step * mult:
            step *= mult
            break
    start = math.floor(lo / step) * step
    return [start + k * step for k in range(math.ceil((hi - start) / step) + 1)]


def _fmt(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1e4 else f"{value:.2e}"


def line_chart(
    title: str, series: Sequence[tuple[str, Sequence[float], Sequence[float | None]]], *,
    x_label: str = "epoch", log_y: bool = False, width: int = 420, height: int = 260,
) -> str:
    """One chart of named (x, y) series; None values are gaps."""
    points = [(x, y) for _, xs, ys in series for x, y in zip(xs, ys) if y is not None and math.isfinite(y)]
    if log_y:
        points = [(x, y) for x, y in points if y > 0]
    if not points:
        return f'<p class="na">{escape(title)}: no values recorded</p>'
    fy = (lambda v: math.log10(v)) if log_y else (lambda v: v)
    xs_all = [p[0] for p in points]
    ys_all = [fy(p[1]) for p in points]
    x0, x1 = min(xs_all), max(xs_all)
    if x1 == x0:
        x0, x1 = x0 - 0.5, x1 + 0.5
    yt = _ticks(min(ys_all), max(ys_all))
    y0, y1 = yt[0], yt[-1]
    if y1 == y0:
        y1 = y0 + 1
    left, right, top, bottom = 52, 12, 28, 36
    pw, ph = width - left - right, height - top - bottom

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def sy(y: float) -> float:
        return top + ph - (fy(y) - y0) / (y1 - y0) * ph

    out = [f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="{escape(title)}">',
           f'<text x="{left}" y="16" class="ct">{escape(title)}</text>']
    for t in yt:
        y = top + ph - (t - y0) / (y1 - y0) * ph
        label = _fmt(10 ** t) if log_y else _fmt(t)
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
                   f'<text x="{left - 4}" y="{y + 4:.1f}" class="tick" text-anchor="end">{label}</text>')
    whole = all(float(x).is_integer() for x in xs_all)  # epochs: no ticks at 1.5
    for t in _ticks(x0, x1, 6):
        if x0 <= t <= x1 and (not whole or float(t).is_integer()):
            out.append(f'<text x="{sx(t):.1f}" y="{top + ph + 16}" class="tick" text-anchor="middle">{_fmt(t)}</text>')
    out.append(f'<text x="{left + pw / 2}" y="{height - 4}" class="tick" text-anchor="middle">{escape(x_label)}</text>')
    for k, (name, xs, ys) in enumerate(series):
        color = COLORS[k % len(COLORS)]
        pts = [(sx(x), sy(y)) for x, y in zip(xs, ys)
               if y is not None and math.isfinite(y) and (y > 0 or not log_y)]
        if not pts:
            continue
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        if len(pts) == 1:
            out.append(f'<circle cx="{pts[0][0]:.1f}" cy="{pts[0][1]:.1f}" r="3" fill="{color}"/>')
        lx = left + 8 + k * 110
        out.append(f'<rect x="{lx}" y="{top + 4}" width="10" height="3" fill="{color}"/>'
                   f'<text x="{lx + 14}" y="{top + 9}" class="tick">{escape(name)}</text>')
    out.append("</svg>")
    return "".join(out)


def _heat(share: float) -> str:
    """White to deep blue."""
    share = min(max(share, 0.0), 1.0)
    r, g, b = (round(255 + (c - 255) * share) for c in (8, 48, 107))
    return f"rgb({r},{g},{b})"


def heatmap(matrix: Sequence[Sequence[int]], labels: Sequence[str], *, cell: int | None = None) -> str:
    """Confusion matrix (rows: true class, columns: predicted), coloured by each row's share."""
    n = len(labels)
    if n == 0:
        return '<p class="na">empty confusion matrix</p>'
    cell = cell or max(6, min(44, 640 // n))
    show_text = cell >= 26
    show_labels = cell >= 10
    margin = min(140, max(len(s) for s in labels) * 7 + 10) if show_labels else 10
    size = margin + n * cell
    out = [f'<svg class="heat" width="{size + 10}" height="{size + 10}" viewBox="0 0 {size + 10} {size + 10}" '
           'role="img" aria-label="confusion matrix">']
    for t, row in enumerate(matrix):
        total = sum(row) or 1
        for p, count in enumerate(row):
            share = count / total
            x, y = margin + p * cell, margin + t * cell
            tip = f"true {labels[t]}, predicted {labels[p]}: {count} ({share:.1%})"
            out.append(f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{_heat(share)}">'
                       f"<title>{escape(tip)}</title></rect>")
            if show_text and count:
                color = "#fff" if share > 0.5 else "#222"
                out.append(f'<text x="{x + cell / 2}" y="{y + cell / 2 + 4}" text-anchor="middle" '
                           f'class="tick" style="fill:{color}">{count}</text>')
    if show_labels:
        for k, name in enumerate(labels):
            c = margin + k * cell + cell / 2 + 4
            out.append(f'<text x="{margin - 4}" y="{c}" text-anchor="end" class="tick">{escape(name[:20])}</text>')
            out.append(f'<text x="{c - 4}" y="{margin - 4}" class="tick" '
                       f'transform="rotate(-60 {c - 4} {margin - 4})">{escape(name[:20])}</text>')
    out.append("</svg>")
    return "".join(out)


def reliability(bins: Sequence[dict[str, float]], *, width: int = 320, height: int = 320) -> str:
    """Accuracy per confidence bin against the diagonal of perfect calibration."""
    left, top, pw, ph = 44, 14, width - 58, height - 50
    out = [f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
           'aria-label="reliability diagram">',
           f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" class="grid"/>',
           f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top}" stroke="#999" stroke-dasharray="4 3"/>']
    for b in bins:
        if not b["count"]:
            continue
        x = left + b["lo"] * pw
        w = (b["hi"] - b["lo"]) * pw
        y = top + ph - b["accuracy"] * ph
        tip = (f"confidence {b['lo']:.2f}-{b['hi']:.2f}: {b['count']} images, accuracy {b['accuracy']:.1%}, "
               f"mean confidence {b['confidence']:.1%}")
        out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{w - 1:.1f}" height="{top + ph - y:.1f}" '
                   f'fill="{COLORS[0]}" opacity="0.8"><title>{escape(tip)}</title></rect>')
        yc = top + ph - b["confidence"] * ph
        out.append(f'<line x1="{x:.1f}" x2="{x + w - 1:.1f}" y1="{yc:.1f}" y2="{yc:.1f}" stroke="{COLORS[1]}" '
                   'stroke-width="2"/>')
    for t in (0, 0.25, 0.5, 0.75, 1.0):
        out.append(f'<text x="{left + t * pw:.1f}" y="{top + ph + 14}" class="tick" text-anchor="middle">{t:g}</text>'
                   f'<text x="{left - 4}" y="{top + ph - t * ph + 4:.1f}" class="tick" text-anchor="end">{t:g}</text>')
    out.append(f'<text x="{left + pw / 2}" y="{height - 8}" class="tick" text-anchor="middle">confidence</text>'
               f'<text x="12" y="{top + ph / 2}" class="tick" transform="rotate(-90 12 {top + ph / 2})" '
               'text-anchor="middle">accuracy</text></svg>')
    return "".join(out)

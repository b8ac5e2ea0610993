"""Error-against-depth plots for the HTML report, written as SVG by hand.

One figure per input and *reference class* (backends that agree bit for bit, see
digest.agreement_classes), with one line per other class that differs from it on that
input: bit-exact pairs draw nothing, and a difference shared by several bit-exact backends
is drawn once. Left: max |Δ| against depth, propagated (solid) and, when a diagnosis ran,
own error (dashed): where the two lines part, a layer passes on what it inherited. Right:
the share of mismatched values against depth.

Why not matplotlib: importing it and drawing took longer than a host-only diff (about 1 s
per figure on a busy 2-core machine, 46 of 69.5 s of one 7-backend diff); these few lines
and polylines cost milliseconds and stay sharp at any zoom.
"""
from __future__ import annotations

import math
from html import escape

from ..analysis.compare import PairResult

_COLORS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#bcbd22")
_W, _H = 1000, 300                  # whole figure (taller when the legend wraps)
_PANEL_W, _PANEL_H = 410, 190       # plotting area of one panel
_LEFT = (60, 560)                   # x of each panel's plotting area
_TOP = 45
_LEGEND_GAP, _LEGEND_ROW = 50, 15   # first legend row below the plotting area; row height


def group_figure_svg(title: str, lines: list[tuple[str, PairResult, dict | None]]) -> str:
    """lines: (legend label, the pair, {layer id: own LayerStats or None} or None when undiagnosed)."""
    series_delta, series_ratio = [], []
    for k, (label, pair, own) in enumerate(lines):
        color = _COLORS[k % len(_COLORS)]
        layers = [s for s in pair.layers if s.compared and s.depth is not None]
        series_delta.append((f"{label}: propagated", color, False,
                             [(s.depth, float(s.max_abs_delta), _tip(s, "max |Δ|", s.max_abs_delta))
                              for s in layers]))
        if own:
            points = [(s.depth, float(own[s.id].max_abs_delta), _tip(s, "own max |Δ|", own[s.id].max_abs_delta))
                      for s in layers if own.get(s.id) is not None and own[s.id].compared]
            if points:
                series_delta.append((f"{label}: own (isolated)", color, True, points))
        series_ratio.append((label, color, False, [(s.depth, 100 * s.mismatch_ratio,
                                                    _tip(s, "mismatched", f"{100 * s.mismatch_ratio:.2f} %"))
                                                   for s in layers]))
    depth_max = max((x for *_, pts in series_delta for x, _, _ in pts), default=1)
    legend_bottom = max(y for series in (series_delta, series_ratio) for x0 in _LEFT[:1]
                        for _, y in _legend_places(x0, series)) if series_delta else _TOP + _PANEL_H
    height = max(_H, legend_bottom + 10)
    out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{_W}' height='{height:.0f}' "
           f"viewBox='0 0 {_W} {height:.0f}' font-family='sans-serif' font-size='11'>",
           f"<rect width='{_W}' height='{height:.0f}' fill='white'/>",
           f"<text x='{_W / 2}' y='18' text-anchor='middle' font-size='13'>{escape(title)}</text>"]
    out += _panel(_LEFT[0], "max |Δ| against depth", series_delta, depth_max, integer=True)
    out += _panel(_LEFT[1], "mismatched values (%) against depth", series_ratio, depth_max, integer=False)
    out.append("</svg>")
    return "\n".join(out)


def _panel(x0: float, title: str, series, depth_max: float, integer: bool) -> list[str]:
    top = 1.04 * max((y for *_, pts in series for _, y, _ in pts), default=0.0)   # room above the peak
    log = integer and top > 20              # one wild layer must not flatten the ±1 ones
    yticks = _log_ticks(top) if log else _ticks(top, integer)
    y_max = yticks[-1] if yticks[-1] > 0 else 1.0
    xticks = _ticks(depth_max, True)
    x_max = max(xticks[-1], 1)

    def px(x):
        return x0 + _PANEL_W * x / x_max

    def py(y):
        f = math.log10(1 + y) / math.log10(1 + y_max) if log else y / y_max
        return _TOP + _PANEL_H * (1 - f)
    out = [f"<text x='{x0 + _PANEL_W / 2}' y='{_TOP - 8}' text-anchor='middle'>{escape(title)}</text>",
           f"<rect x='{x0}' y='{_TOP}' width='{_PANEL_W}' height='{_PANEL_H}' fill='none' stroke='#444'/>"]
    for t in yticks:
        y = py(t)
        out.append(f"<line x1='{x0}' x2='{x0 + _PANEL_W}' y1='{y:.1f}' y2='{y:.1f}' stroke='#e5e5e5'/>"
                   f"<text x='{x0 - 5}' y='{y + 4:.1f}' text-anchor='end'>{_fmt(t)}</text>")
    for t in xticks:
        x = px(t)
        out.append(f"<line x1='{x:.1f}' x2='{x:.1f}' y1='{_TOP}' y2='{_TOP + _PANEL_H}' stroke='#eeeeee'/>"
                   f"<text x='{x:.1f}' y='{_TOP + _PANEL_H + 14}' text-anchor='middle'>{_fmt(t)}</text>")
    out.append(f"<text x='{x0 + _PANEL_W / 2}' y='{_TOP + _PANEL_H + 30}' text-anchor='middle' "
               f"fill='#444'>layer (execution order)</text>")
    for label, color, dashed, pts in series:
        if not pts:
            continue
        dash = " stroke-dasharray='5,3'" if dashed else ""
        coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y, _ in pts)
        out.append(f"<polyline points='{coords}' fill='none' stroke='{color}' stroke-width='1.6'{dash}/>")
        # Own error drawn with hollow markers: where it equals the propagated error (the layer
        # introduces all of it) the dashes alone would vanish under the solid line.
        marker = f"r='3' fill='white' stroke='{color}'" if dashed else f"r='2' fill='{color}'"
        # A tooltip per point (inline in report.html): which operator this is.
        out.append("".join(f"<circle cx='{px(x):.1f}' cy='{py(y):.1f}' {marker}><title>{escape(tip)}</title></circle>"
                           for x, y, tip in pts))
    for (x, y), (label, color, dashed, _) in zip(_legend_places(x0, series), series):
        dash = " stroke-dasharray='5,3'" if dashed else ""       # legend under the panel, never on the data
        marker = f"r='3' fill='white' stroke='{color}'" if dashed else f"r='2' fill='{color}'"
        out.append(f"<line x1='{x}' x2='{x + 22}' y1='{y - 4}' y2='{y - 4}' stroke='{color}' "
                   f"stroke-width='1.6'{dash}/><circle cx='{x + 11}' cy='{y - 4}' {marker}/>"
                   f"<text x='{x + 26}' y='{y}'>{escape(label)}</text>")
    return out


def _tip(s, what: str, value) -> str:
    shown = f"{value:g}" if isinstance(value, (int, float)) else value
    return f"#{s.depth} {s.id} {s.op_name} {s.tensor_name.split(';')[0]}: {what} {shown}"


def _legend_places(x0: float, series) -> list[tuple[float, float]]:
    """Left to right under the axis label, wrapping at the panel's width (text ~6.5 px a character)."""
    places, x, y = [], x0, _TOP + _PANEL_H + _LEGEND_GAP
    for label, *_ in series:
        width = 26 + 6.5 * len(label) + 14
        if x > x0 and x + width > x0 + _PANEL_W:
            x, y = x0, y + _LEGEND_ROW
        places.append((x, y))
        x += width
    return places


def _ticks(top: float, integer: bool) -> list[float]:
    """0 and about five round steps up to at least `top`."""
    if top <= 0:
        return [0, 1]
    raw = top / 5
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    if integer:
        step = max(1, round(step))
    n = math.ceil(top / step - 1e-9)
    return [i * step for i in range(n + 1)] if n * step >= top else [i * step for i in range(n + 2)]


def _log_ticks(top: float) -> list[float]:
    ticks, t = [0, 1, 3], 10
    while ticks[-1] < top:
        ticks += [t, 3 * t]
        t *= 10
    return [v for v in ticks if v < top] + [next(v for v in ticks if v >= top)]


def _fmt(v: float) -> str:
    return f"{v:g}" if v == int(v) or abs(v) >= 1 else f"{v:.2g}"

"""PNG plots for the HTML report, drawn with matplotlib's Agg canvas.

One figure per input and *reference class* (backends that agree bit for bit, see
digest.agreement_classes), with one line per other class that differs from it on that
input: bit-exact pairs draw nothing, and a difference shared by several bit-exact backends
is drawn once. Left: max |Δ| against depth, propagated (solid) and, when a diagnosis ran,
own error (dashed): where the two lines part, a layer passes on what it inherited. Right:
the share of mismatched values against depth.

The Figure/FigureCanvasAgg pair is used directly instead of pyplot so that plotting holds
no global state and never needs a display. No constrained layout: it cost more than the
drawing itself (figures were ~1 s each with it).
"""
from __future__ import annotations

import io

from ..analysis.compare import PairResult

_COLORS = ("tab:red", "tab:blue", "tab:green", "tab:purple", "tab:orange", "tab:brown", "tab:olive")


def group_figure_png(title: str, lines: list[tuple[str, PairResult, dict | None]]) -> bytes:
    """lines: (legend label, the pair, {layer id: own LayerStats} or None when undiagnosed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(10, 3.0), dpi=80)
    FigureCanvasAgg(fig)
    ax_delta, ax_ratio = fig.subplots(1, 2)
    fig.subplots_adjust(left=0.07, right=0.99, bottom=0.16, top=0.82, wspace=0.18)
    fig.suptitle(title, fontsize=10)

    top = 0.0
    for k, (label, pair, own) in enumerate(lines):
        color = _COLORS[k % len(_COLORS)]
        layers = [s for s in pair.layers if s.compared and s.depth is not None]
        depth = [s.depth for s in layers]
        delta = [float(s.max_abs_delta) for s in layers]
        top = max([top] + delta)
        ax_delta.plot(depth, delta, marker="o", markersize=2.5, linewidth=1.3, color=color,
                      label=f"{label}: propagated")
        if own:
            own_layers = [(s.depth, float(own[s.id].max_abs_delta)) for s in layers
                          if s.id in own and own[s.id] is not None and own[s.id].compared]
            if own_layers:
                ax_delta.plot(*zip(*own_layers), linestyle="--", marker="x", markersize=3, linewidth=1,
                              color=color, label=f"{label}: own (isolated)")
        ax_ratio.plot(depth, [100 * s.mismatch_ratio for s in layers], marker="o", markersize=2.5,
                      linewidth=1.3, color=color, label=label)
    ax_delta.set_title("max |Δ| against depth", fontsize=9)
    ax_delta.set_xlabel("layer (execution order)", fontsize=8)
    if top > 20:            # one wild layer must not flatten the ±1 ones
        ax_delta.set_yscale("symlog", linthresh=2)
    else:
        ax_delta.set_ylim(0, max(top, 1) * 1.15)
        ax_delta.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax_ratio.set_title("mismatched values (%) against depth", fontsize=9)
    ax_ratio.set_xlabel("layer (execution order)", fontsize=8)
    ax_ratio.set_ylim(bottom=0)
    for ax in (ax_delta, ax_ratio):
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_delta.legend(fontsize=7, loc="upper left")

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()

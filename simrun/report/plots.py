"""PNG plots for the HTML report, drawn with matplotlib's Agg canvas.

The Figure/FigureCanvasAgg pair is used directly instead of pyplot so that
plotting holds no global state and never needs a display.
"""
from __future__ import annotations

import io

from ..analysis.compare import HIST_BINS, PairResult


def pair_figure_png(pair: PairResult, title: str) -> bytes:
    """Error against depth (mismatch share, max |Δ|) and the summed Δ histogram of one pair."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(11, 3.2), dpi=90, layout="constrained")
    FigureCanvasAgg(fig)
    ax_ratio, ax_delta, ax_hist = fig.subplots(1, 3, width_ratios=(1.2, 1.2, 1))
    fig.suptitle(title, fontsize=11)

    layers = [s for s in pair.layers if s.compared and s.depth is not None]
    depth = [s.depth for s in layers]
    ratio = [100 * s.mismatch_ratio for s in layers]
    delta = [s.max_abs_delta for s in layers]
    first = pair.first_divergent

    # Small shares matter (one value in a thousand): scale to the data, not to 100 %.
    ax_ratio.plot(depth, ratio, marker="o", markersize=3, color="tab:blue")
    ax_ratio.set(xlabel="layer (execution order)", ylabel="mismatched values (%)",
                 title="mismatch against depth", ylim=(0, max(ratio + [1.0]) * 1.15))
    ax_delta.plot(depth, delta, marker="o", markersize=3, color="tab:red")
    ax_delta.set(xlabel="layer (execution order)", ylabel="max |Δ|", title="max |Δ| against depth")
    if max(delta, default=0) > 20:   # one wild layer must not flatten the ±1 ones
        ax_delta.set_yscale("symlog", linthresh=2)
    else:
        ax_delta.set_ylim(0, max(delta + [1]) * 1.15)
        ax_delta.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax_ratio.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_delta.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in (ax_ratio, ax_delta):
        ax.grid(alpha=0.3)
        if first is not None and first.depth is not None:
            ax.axvline(first.depth, color="tab:orange", linestyle="--", linewidth=1.2,
                       label=f"first divergent: {first.id}")
    if first is not None and first.depth is not None:
        ax_ratio.legend(fontsize=8, loc="upper left")

    hists = [s.histogram for s in pair.layers if s.histogram]
    if hists:
        counts = [sum(h[b] for h in hists) for b in HIST_BINS]
        colors = ["tab:green" if b == "0" else "tab:orange" if b in ("-1", "+1") else "tab:red"
                  for b in HIST_BINS]
        ax_hist.bar(HIST_BINS, counts, color=colors)
        ax_hist.set_yscale("log")
        ax_hist.set_ylim(bottom=0.5)
        ax_hist.set(xlabel="Δ (integer steps, b − a)", ylabel="values (all layers)", title="Δ histogram")
    else:
        ax_hist.text(0.5, 0.5, "no integer tensors compared", ha="center", va="center")
        ax_hist.set_axis_off()

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()

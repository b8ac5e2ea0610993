"""report.html's layer table of one pair over every input, and the histogram drawn as bars.

Columns in the order a reader asks: where (depth, layer, op), the answer (verdict, cause),
how much (own and propagated max |Δ| as min / median / max over the inputs, impact,
mismatch), the Δ histogram as seven small bars, then what it is (tensor, shape) and the
evidence. Rows without any difference carry class 'same', which the page's "differing layers
only" switch hides (CSS :has(), no script).
"""
from __future__ import annotations

import math
from html import escape

from ..analysis.diagnose import INTRODUCING
from .aggregate import LayerRow, PairSummary

HIST_BINS = ("<=-3", "-2", "-1", "0", "+1", "+2", ">=+3")


def row_anchor(pair_index: int, row_id: str) -> str:
    return f"row-{pair_index}-" + "".join(c if c.isalnum() else "_" for c in row_id)


def table(ps: PairSummary, pair_index: int) -> str:
    many = ps.inputs > 1
    spread = " (min / median / max over the inputs)" if many else ""
    head = ("<table class='layers agg'><tr><th>depth</th><th>layer</th><th>op</th><th>verdict</th>"
            "<th>cause</th><th title='max |Δ| when run on the reference&#39;s inputs (isolated): "
            f"what the layer adds itself'>own</th><th title='max |Δ| in the normal runs{spread}'>"
            f"max |Δ|{' min/med/max' if many else ''}</th>"
            "<th title='largest dequantized error as a share of the tensor&#39;s range'>impact</th>"
            "<th>mismatch</th><th title='Δ in integer steps: ≤−3 −2 −1 0 +1 +2 ≥+3 (log height)'>"
            "Δ histogram</th><th>tensor</th><th>shape</th><th>evidence for the cause</th></tr>")
    rows = [head]
    for r in ps.rows:
        classes = []
        if r.id == ps.first_divergent:
            classes.append("first-divergent")
        if r.verdict == "fail":
            classes.append("failing")
        if not r.diverges:
            classes.append("same")
        if r.verdict == "not compared":
            classes.append("one-side")
        if r.id == ps.worst:
            classes.append("worst")
        cause = r.cause or "—"
        cause_cls = " class='cause-introduces'" if r.cause in INTRODUCING else ""
        verdict = escape(r.verdict) + (f"<br><span class='meta'>{escape('; '.join(r.reasons))}</span>"
                                       if r.reasons else "")
        own = _n(r.own_max) if r.own_max is not None else ("not isolated" if r.not_isolated else "—")
        own_title = escape(r.not_isolated or "") if r.own_max is None else ""
        rows.append(
            f"<tr id='{row_anchor(pair_index, r.id)}' class='{' '.join(classes)}'>"
            f"<td class='num'>{'' if r.depth is None else r.depth}</td><td class='mono'>{escape(r.id)}</td>"
            f"<td>{escape(r.op_name)}</td><td class='v-{r.verdict.replace(' ', '-')}'>{verdict}</td>"
            f"<td{cause_cls}>{escape(cause)}</td><td class='num' title='{own_title}'>{own}</td>"
            f"<td class='num'>{_spread(r)}</td>"
            f"<td class='num'>{'—' if r.impact is None else f'{r.impact:.2%}'}</td>"
            f"<td class='num'>{100 * r.mismatch:.2f}%</td><td>{bars(r.histogram)}</td>"
            f"<td class='mono' title='{escape(r.tensor_name)}'>{escape(_short(r.tensor_name))}</td>"
            f"<td class='mono'>{escape(r.shape)}</td><td class='evidence' title='{escape(r.evidence)}'>{escape(r.evidence)}</td></tr>")
    return "".join(rows) + "</table>"


def _spread(r: LayerRow) -> str:
    s = r.spread()
    if s is None:
        return "—"
    if len(r.propagated) == 1 or s[0] == s[2]:
        return _n(s[2])
    return f"{_n(s[0])} / {_n(s[1])} / <b>{_n(s[2])}</b>"


def bars(histogram: dict[str, int] | None) -> str:
    """Seven bars, height by log(1 + count) so that 25 beside 18407 still shows; the counts
    are in the tooltip."""
    if not histogram:
        return "—"
    counts = [histogram.get(k, 0) for k in HIST_BINS]
    top = math.log1p(max(counts)) or 1.0
    tip = " ".join(f"{k}:{v}" for k, v in zip(HIST_BINS, counts))
    spans = "".join(f"<i class='{'z' if k == '0' else 'd'}' style='height:{(2 + 14 * math.log1p(v) / top) if v else 0:.0f}px'></i>"
                    for k, v in zip(HIST_BINS, counts))
    return f"<span class='hist' title='{escape(tip)}'>{spans}</span>"


def _short(name: str, width: int = 36) -> str:
    name = name.split(";", 1)[0]
    return name if len(name) <= width else name[: width // 3] + "…" + name[-(2 * width // 3 - 1):]


def _n(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:g}" if float(x).is_integer() else f"{x:.3g}"


CSS = """
.hist { display: inline-flex; align-items: flex-end; gap: 1px; height: 16px; vertical-align: middle; }
.hist i { display: inline-block; width: 5px; background: #ef6c00; }
.hist i.z { background: #9e9e9e; }
body:has(#only-diff:checked) tr.same { display: none; }
tr:target td { outline: 2px solid #1565c0; }
tr.worst td:nth-child(2)::after { content: " ◀ worst"; color: #b71c1c; font-weight: bold; }
td.v-fail { color: #b71c1c; font-weight: bold; }
table.agg td.evidence { max-width: 30em; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
"""

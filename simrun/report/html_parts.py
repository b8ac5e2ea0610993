"""The pieces report.html is made of: the backend matrix, the layer table, the versions."""
from __future__ import annotations

from html import escape

from ..analysis.compare import LayerStats
from ..analysis.diffrun import DiffRun
from ..analysis.diagnose import INTRODUCING
from .digest import Cell, cell_between
from .html_layers import bars
from .json_report import layer_verdict

CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; max-width: 1400px; }
h1 { margin-bottom: .2em; font-size: 1.5em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ccc; }
h3 { margin: 1.2em 0 .3em; }
table { border-collapse: collapse; margin: .6em 0; }
th, td { border: 1px solid #ddd; padding: 2px 7px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.verdict { display: inline-block; padding: .1em .7em; border-radius: 4px; font-weight: bold; color: #fff; }
.pass { background: #2e7d32; } .fail { background: #c62828; } .unjudged { background: #757575; }
.warn { background: #ef6c00; }
ul.diagnosis { font-size: 15px; background: #f7f9fc; border: 1px solid #dde3ee; border-radius: 6px;
               padding: .6em 1em .6em 2em; margin: .6em 0 1em; }
ul.diagnosis li { margin: .25em 0; }
li { overflow-wrap: anywhere; }
.meta { color: #555; font-size: 13px; }
table.matrix td { text-align: center; min-width: 4.5em; }
table.matrix th.row { text-align: left; white-space: nowrap; }
table.matrix td.same { background: #e8f5e9; color: #2e7d32; }
table.matrix td.m-pass { background: #fff8e1; } table.matrix td.m-fail { background: #fdecea; color: #b71c1c; }
table.matrix td.m-unjudged { background: #f1f1f1; color: #555; }
table.matrix td.self { background: #fafafa; color: #bbb; }
table.matrix a { color: inherit; }
tr.failing td { background: #fdecea; }
tr.first-divergent td { background: #fff3cd; font-weight: bold; }
tr.first-divergent td:first-child::before { content: "▶ "; color: #e65100; }
tr.one-side td, tr.quiet td { color: #888; }
td.cause-introduces { font-weight: bold; color: #b71c1c; }
td.evidence { color: #444; font-size: 12px; min-width: 28em; }
.scroll { overflow-x: auto; }
img.plot { max-width: 100%; border: 1px solid #eee; }
code, .mono { font-family: ui-monospace, monospace; font-size: 12px; }
td.mono { white-space: nowrap; }
details > summary { cursor: pointer; margin: .4em 0; }
nav.toc { position: sticky; top: 0; z-index: 2; background: #fff; border-bottom: 1px solid #ddd;
          padding: .35em 0; margin: -.5em 0 .5em; font-size: 13px; }
nav.toc a { margin-right: 1.1em; color: #1565c0; text-decoration: none; }
h1, h2, h3 { scroll-margin-top: 2.4em; } tr { scroll-margin-top: 2.4em; }
table.matrix th.col { font-weight: normal; font-size: 12px; vertical-align: bottom; min-width: 6em; max-width: 9em; }
.graph-box { overflow: auto; max-height: 78vh; border: 1px solid #eee; }
svg.opgraph a:hover rect { stroke-width: 3; }
.swatch { display: inline-block; width: 12px; height: 12px; border: 1px solid #999; vertical-align: -2px; margin: 0 3px 0 6px; }
.swatch.outline { background: #fff; border-width: 3px; width: 8px; height: 8px; }
div.plot svg { max-width: 100%; height: auto; border: 1px solid #eee; }
details.input { border-top: 1px solid #eee; padding: .2em 0; }
"""

def badge(cls: str, text: str) -> str:
    return f"<span class='verdict {cls}'>{escape(text)}</span>"


def anchor(*parts: str) -> str:
    return "pair-" + "-".join("".join(c if c.isalnum() else "_" for c in p) for p in parts)


def matrix(run: DiffRun, verdict, table: dict[tuple[str, str], Cell], classes: list[list[str]]) -> str:
    """Rows and columns: the backends; a cell says whether the pair agrees bit for bit and,
    if not, how far apart it is and from where, coloured by the policy's verdict."""
    ran = [b for c in classes for b in c]
    if not ran and not run.backend_errors:
        return ""
    out = ["<table class='matrix'><tr><th></th>" +
           "".join(f"<th class='col' title='{escape(b)}'><code>{_breakable(b)}</code></th>" for b in ran) + "</tr>"]
    for x in ran:
        row = [f"<tr><th class='row'><code>{escape(x)}</code></th>"]
        for y in ran:
            cell = cell_between(table, x, y)
            if x == y or cell is None:
                row.append("<td class='self'>·</td>")
            elif cell.bit_exact:
                row.append("<td class='same' title='bit-exact on every layer'>=</td>")
            else:
                size, where = cell.size, cell.where
                tip = (f"{cell.a} vs {cell.b}: max |Δ| {size}, first divergent "
                       f"{cell.first.label if cell.first else 'final output'}; verdict {cell.status}")
                n = cell.first_input if cell.first_input is not None else 0
                href = anchor(str(n), run.input_names[n], cell.a, cell.b)
                row.append(f"<td class='m-{cell.status}' title='{escape(tip)}'>"
                           f"<a href='#{href}'>Δ{size} from {where}</a></td>")
        out.append("".join(row) + "</tr>")
    for label, message in run.backend_errors.items():
        action = verdict.backend_errors.get(label, "fail")
        out.append(f"<tr><th class='row'><code>{escape(label)}</code></th><td colspan='{max(len(ran), 1)}' "
                   f"style='text-align:left'>{badge('fail' if action == 'fail' else 'warn', 'no result')} "
                   f"<span class='mono'>{escape(message.strip().splitlines()[0] if message.strip() else '')}"
                   f"</span></td></tr>")
    legend = ("<p class='meta'>= bit-exact on every layer of every input · Δ<i>n</i> from #<i>d</i>: "
              "largest difference (integer steps) and the first layer (execution order) that differs; "
              "colour: red fails the policy, yellow judged and within it, grey reported only.</p>")
    return "".join(out) + "</table>" + legend


def _breakable(label: str) -> str:
    """A backend label that may wrap after ':' (column headers stay narrow)."""
    return ":<wbr>".join(escape(p) for p in label.split(":"))


def layer_table(run: DiffRun, n: int, pair, pv) -> str:
    head = ("<table class='layers'><tr><th>depth</th><th>layer</th><th>op</th><th>verdict</th>"
            "<th>cause</th><th title='what it differs by when run on the reference&#39;s inputs "
            "(isolated)'>max |Δ| own</th><th title='what the layer output differs by in the normal "
            "runs'>max |Δ| propagated</th><th title='largest dequantized error as a share of the "
            "tensor&#39;s range'>impact</th><th>mismatch</th><th>Δ histogram</th><th>MAE</th>"
            "<th>cosine</th><th>tensor</th><th>shape</th><th>evidence for the cause</th></tr>")
    rows = [head]
    for s in pair.layers + pair.outputs:
        d = run.layer_diagnosis(n, pair, s)
        classes = []
        if s is pair.first_divergent:
            classes.append("first-divergent")
        if s.id in pv.failing:
            classes.append("failing")
        if s.one_sided:
            classes.append("one-side")
        verdict_text = layer_verdict(s, pv)
        if s.id in pv.failing:
            verdict_text += ": " + "; ".join(pv.failing[s.id])
        if not s.diverges:
            classes.append("same")
        rows.append(
            f"<tr class='{' '.join(classes)}'><td class='num'>{'' if s.depth is None else s.depth}</td>"
            f"<td class='mono'>{escape(s.id)}</td><td>{escape(s.op_name)}</td><td>{escape(verdict_text)}</td>"
            f"{_own_cells(d)}<td class='num'>{_delta(s)}</td>"
            f"<td class='num'>{_share(s.relative_error) if s.compared else '—'}</td>"
            f"<td class='num'>{_pct(s) if s.compared else '—'}</td><td>{bars(s.histogram)}</td>"
            f"<td class='num'>{_num(s.mae)}</td><td class='num'>{_num(s.cosine, 6)}</td>"
            f"<td class='mono' title='{escape(s.tensor_name)}'>{escape(short_name(s.tensor_name, 36))}</td>"
            f"<td class='mono'>{escape(_shape_text(s, pair))}</td>{_evidence_cell(d)}</tr>")
    return "".join(rows) + "</table>"


def _own_cells(d) -> str:
    if d is None:
        return "<td>—</td><td class='num' title='no diagnosis ran'>—</td>"
    own = d.own
    own_text = _delta(own) if own is not None else "not isolated"
    own_title = escape(d.not_isolated or "") if own is None else ""
    cls = " class='cause-introduces'" if d.cause in INTRODUCING else ""
    return (f"<td{cls} title='{escape(d.evidence)}'>{escape(d.cause)}</td>"
            f"<td class='num' title='{own_title}'>{own_text}</td>")


def _evidence_cell(d) -> str:
    """Why the cause was named, for layers whose cause needs one (not none / inherited)."""
    if d is None or d.cause in ("none", "inherited"):
        return "<td></td>"
    kernel = (f" (kernel: {d.kernel})" if d.kernel and d.cause in INTRODUCING and d.kernel not in d.evidence
              else "")
    return f"<td class='evidence'>{escape(d.evidence + kernel)}</td>"


def versions(run: DiffRun) -> str:
    rows = ["<table><tr><th>backend</th><th>versions</th></tr>"]
    for label in run.backends:
        vers = "<br>".join(f"{escape(k)} {escape(str(v))}" for k, v in run.versions.get(label, {}).items())
        rows.append(f"<tr><td><code>{escape(label)}</code></td><td class='mono'>{vers or '—'}</td></tr>")
    return "".join(rows) + "</table>"


def short_name(name: str, width: int = 48) -> str:
    """Converter names like 'seq/conv_1/Relu;seq/conv_1/convolution': keep the first, cut the middle."""
    name = name.split(";", 1)[0]
    return name if len(name) <= width else name[: width // 3] + "…" + name[-(2 * width // 3 - 1):]


def layer_ref(s: LayerStats | None) -> str:
    if s is None:
        return "none"
    return f"<span title='{escape(s.label)}'><code>{escape(s.id)}</code> {escape(s.op_name)}</span>"


def _shape_text(s: LayerStats, pair) -> str:
    if s.status == "shape_mismatch":
        return f"{list(s.shape_a)} vs {list(s.shape_b)}"
    if s.status == "dtype_mismatch":
        return f"{s.dtype_a} vs {s.dtype_b}"
    if s.one_sided:
        return f"only {pair.a if s.status == 'only_a' else pair.b}"
    shape = s.shape_a if s.shape_a is not None else s.shape_b
    return f"{list(shape)} {s.dtype_a or s.dtype_b}"


def _delta(s: LayerStats | None) -> str:
    if s is None or not s.compared:
        return "—"
    return f"{s.max_abs_delta:g}" if s.integer else f"{s.max_abs_delta:.3g}"


def _pct(s: LayerStats) -> str:
    return f"{100 * s.mismatch_ratio:.2f}% ({s.mismatched})"


def _share(x: float | None) -> str:
    return "—" if x is None else f"{x:.2%}"


def _num(x: float | None, digits: int = 4) -> str:
    return "—" if x is None else f"{x:.{digits}g}"

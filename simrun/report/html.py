"""report.html: one self-contained page (plots embedded as base64 PNG) per DiffRun.

Sections: verdict and reasons, backends with versions and errors, an overview
row per input and pair, then per pair its plots (error against depth, Δ
histogram) and its layer table with the first divergent layer highlighted.
"""
from __future__ import annotations

import base64
from html import escape
from pathlib import Path

from ..analysis.compare import DiffRun, LayerStats
from .json_report import layer_verdict
from .plots import pair_figure_png

_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { margin-bottom: .2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: .6em 0; }
th, td { border: 1px solid #ddd; padding: 2px 7px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.verdict { display: inline-block; padding: .2em .8em; border-radius: 4px; font-weight: bold; color: #fff; }
.pass { background: #2e7d32; } .fail { background: #c62828; } .unjudged { background: #757575; }
.warn { background: #ef6c00; }
tr.failing td { background: #fdecea; }
tr.first-divergent td { background: #fff3cd; font-weight: bold; }
tr.first-divergent td:first-child::before { content: "▶ "; color: #e65100; }
tr.one-side td { color: #888; }
.scroll { overflow-x: auto; }
img.plot { max-width: 100%; border: 1px solid #eee; }
code, .mono { font-family: ui-monospace, monospace; font-size: 12px; }
td.mono { white-space: nowrap; }
details > summary { cursor: pointer; margin: .4em 0; }
"""


def render(run: DiffRun, verdict, plots: dict[tuple[str, str, str], bytes]) -> str:
    """plots: (input position, a, b) -> PNG bytes."""
    model_path = getattr(run.model, "path", None)
    out = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
           f"<title>simrun diff: {escape(str(model_path or 'model'))}</title><style>{_CSS}</style></head><body>",
           f"<h1>simrun diff</h1><p>model <code>{escape(str(model_path or '(in memory)'))}</code> "
           f"sha256 <code>{escape(str(getattr(run.model, 'sha256', '')))}</code><br>"
           f"inputs: {escape(', '.join(run.input_names) or '(none)')} · policy: {escape(verdict.policy_source)}</p>",
           _badge("pass" if verdict.passed else "fail", "PASSED" if verdict.passed else "FAILED")]
    if verdict.failures:
        out.append("<h3>Failures</h3><ul>" + "".join(f"<li>{escape(f)}</li>" for f in verdict.failures) + "</ul>")
    if verdict.warnings:
        out.append("<h3>Warnings</h3><ul>" + "".join(f"<li>{escape(w)}</li>" for w in verdict.warnings) + "</ul>")
    out.append(_backends(run, verdict))
    out.append(_overview(run, verdict))

    pair_verdicts = iter(verdict.pairs)
    for n, (input_name, cmp) in enumerate(zip(run.input_names, run.comparisons)):
        out.append(f"<h2>Input {escape(input_name)}</h2>")
        for pair in cmp.pairs:
            pv = next(pair_verdicts)
            anchor = _anchor(str(n), input_name, pair.a, pair.b)
            first = pair.first_divergent
            out.append(f"<h3 id='{anchor}'>{escape(pair.name)} {_badge(pv.status, pv.status)}</h3>")
            out.append(f"<p>first divergent layer: <b>{_layer_ref(first) if first else 'none'}</b>"
                       f" · first out of tolerance: <b>{_layer_ref(pv.first_failing) if pv.first_failing else 'none'}</b>"
                       f" · mismatched values overall: {100 * pair.mismatch_ratio:.2f}%"
                       f" · max |Δ| {pair.max_abs_delta:g}</p>")
            png = plots.get((n, pair.a, pair.b))
            if png:
                out.append(f"<img class='plot' alt='error against depth and Δ histogram: "
                           f"{escape(pair.name)}' src='data:image/png;base64,{base64.b64encode(png).decode()}'>")
            out.append(f"<details{' open' if pv.failing or first else ''}><summary>layers "
                       f"({len(pair.compared_layers)} compared of {len(pair.layers)}; ▶ highlighted: first divergent)</summary>"
                       + "<div class='scroll'>" + _layer_table(pair.layers + pair.outputs, pair, pv) + "</div></details>")
    out.append("</body></html>")
    return "\n".join(out)


def _badge(cls: str, text: str) -> str:
    return f"<span class='verdict {cls}'>{escape(text)}</span>"


def _anchor(*parts: str) -> str:
    return "pair-" + "-".join("".join(c if c.isalnum() else "_" for c in p) for p in parts)


def _backends(run: DiffRun, verdict) -> str:
    rows = ["<h2>Backends</h2><table><tr><th>backend</th><th>status</th><th>versions</th></tr>"]
    for label in run.backends:
        versions = "<br>".join(f"{escape(k)} {escape(str(v))}" for k, v in run.versions.get(label, {}).items())
        if label in run.backend_errors:
            action = verdict.backend_errors.get(label, "fail")
            status = (f"{_badge('fail' if action == 'fail' else 'warn', 'error' if action == 'fail' else 'warning')} "
                      f"<span class='mono'>{escape(run.backend_errors[label])}</span>")
        else:
            status = _badge("pass", "ran")
        rows.append(f"<tr><td><code>{escape(label)}</code></td><td>{status}</td>"
                    f"<td class='mono'>{versions or '—'}</td></tr>")
    return "".join(rows) + "</table>"


def _overview(run: DiffRun, verdict) -> str:
    rows = ["<h2>Overview</h2><table><tr><th>input</th><th>pair</th><th>layers</th><th>first divergent</th>"
            "<th>worst layer</th><th>mismatch</th><th>max |Δ|</th><th>verdict</th></tr>"]
    pair_verdicts = iter(verdict.pairs)
    for n, (input_name, cmp) in enumerate(zip(run.input_names, run.comparisons)):
        for pair in cmp.pairs:
            pv = next(pair_verdicts)
            first, worst = pair.first_divergent, pair.worst
            rows.append(
                f"<tr><td>{escape(input_name)}</td>"
                f"<td><a href='#{_anchor(str(n), input_name, pair.a, pair.b)}'>{escape(pair.name)}</a></td>"
                f"<td class='num'>{len(pair.compared_layers)}/{len(pair.layers)}</td>"
                f"<td>{_layer_ref(first)}</td><td>{_layer_ref(worst)}</td>"
                f"<td class='num'>{100 * pair.mismatch_ratio:.2f}%</td><td class='num'>{pair.max_abs_delta:g}</td>"
                f"<td>{_badge(pv.status, pv.status)}</td></tr>")
    return "".join(rows) + "</table>"


def _layer_table(layers: list[LayerStats], pair, pv) -> str:
    head = ("<table class='layers'><tr><th>depth</th><th>layer</th><th>op</th><th>tensor</th><th>status</th>"
            "<th>shape</th><th>values</th><th>mismatch</th><th>max |Δ|</th><th>Δ histogram "
            "(≤−3 −2 −1 0 +1 +2 ≥+3)</th><th>MAE</th><th>RMSE</th><th>cosine</th><th>verdict</th></tr>")
    rows = [head]
    for s in layers:
        classes = []
        if s is pair.first_divergent:
            classes.append("first-divergent")
        if s.id in pv.failing:
            classes.append("failing")
        if s.one_sided:
            classes.append("one-side")
        shape = s.shape_a if s.shape_a is not None else s.shape_b
        if s.status == "shape_mismatch":
            shape_text = f"{list(s.shape_a)} vs {list(s.shape_b)}"
        elif s.status == "dtype_mismatch":
            shape_text = f"{s.dtype_a} vs {s.dtype_b}"
        else:
            shape_text = f"{list(shape)} {s.dtype_a or s.dtype_b}"
        status = {"only_a": f"only {pair.a}", "only_b": f"only {pair.b}"}.get(s.status, s.status)
        verdict_text = layer_verdict(s, pv)
        if s.id in pv.failing:
            verdict_text += ": " + "; ".join(pv.failing[s.id])
        hist = " ".join(str(n) for n in s.histogram.values()) if s.histogram else "—"
        rows.append(
            f"<tr class='{' '.join(classes)}'><td class='num'>{'' if s.depth is None else s.depth}</td>"
            f"<td class='mono'>{escape(s.id)}</td><td>{escape(s.op_name)}</td>"
            f"<td class='mono' title='{escape(s.tensor_name)}'>{escape(short_name(s.tensor_name))}</td>"
            f"<td>{escape(status)}</td><td class='mono'>{escape(shape_text)}</td>"
            f"<td class='num'>{s.count}</td><td class='num'>{_pct(s) if s.compared else '—'}</td>"
            f"<td class='num'>{f'{s.max_abs_delta:g}' if s.compared else '—'}</td><td class='mono'>{hist}</td>"
            f"<td class='num'>{_num(s.mae)}</td><td class='num'>{_num(s.rmse)}</td>"
            f"<td class='num'>{_num(s.cosine, 6)}</td><td>{escape(verdict_text)}</td></tr>")
    return "".join(rows) + "</table>"


def short_name(name: str, width: int = 48) -> str:
    """Converter names like 'seq/conv_1/Relu;seq/conv_1/convolution': keep the first, cut the middle."""
    name = name.split(";", 1)[0]
    return name if len(name) <= width else name[: width // 3] + "…" + name[-(2 * width // 3 - 1):]


def _layer_ref(s: LayerStats | None) -> str:
    if s is None:
        return "—"
    return f"<span title='{escape(s.label)}'><code>{escape(s.id)}</code> {escape(s.op_name)}</span>"


def _pct(s: LayerStats) -> str:
    return f"{100 * s.mismatch_ratio:.2f}% ({s.mismatched})"


def _num(x: float | None, digits: int = 4) -> str:
    return "—" if x is None else f"{x:.{digits}g}"


def write(run: DiffRun, verdict, out_dir: Path) -> tuple[Path, list[Path]]:
    """Write report.html and, beside it, plots/<input position>-<input>-<a>-<b>.png."""
    plots, files = {}, []
    plot_dir = out_dir / "plots"
    for n, (input_name, cmp) in enumerate(zip(run.input_names, run.comparisons)):
        for pair in cmp.pairs:
            png = pair_figure_png(pair, f"{input_name}: {pair.name}")
            plots[(n, pair.a, pair.b)] = png
            plot_dir.mkdir(exist_ok=True)
            path = plot_dir / (_anchor(str(n), input_name, pair.a, pair.b)[5:] + ".png")
            path.write_bytes(png)
            files.append(path)
    html_path = out_dir / "report.html"
    html_path.write_text(render(run, verdict, plots), encoding="utf-8")
    return html_path, files

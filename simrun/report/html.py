"""report.html: one self-contained page (plots embedded as base64 SVG images) per DiffRun.

Reads top-down in the order a user asks: the verdict and the diagnosis in sentences;
failures and warnings; the backend matrix (which backends agree bit for bit, which differ
and from where); then per input, grouped by reference class, one plot of the classes that
differ from it (propagated and own error against depth) and a layer table per differing
pair (propagated vs own error, cause, impact; the first divergent layer highlighted).
Bit-exact pairs get one line; versions are folded away at the bottom.
"""
from __future__ import annotations

import base64
from html import escape
from pathlib import Path

from ..analysis.diffrun import DiffRun
from . import html_parts as parts
from .baseline import html_section as baseline_section
from .cost import html_section as cost_section
from . import sequences
from .digest import agreement_classes, cells, headline
from .plots import group_figure_svg


def render(run: DiffRun, verdict, plots: dict[tuple[int, str], str]) -> str:
    """plots: (input position, first backend of the reference class) -> SVG text."""
    model_path = getattr(run.model, "path", None)
    name = Path(str(model_path)).name if model_path else "(in memory)"
    table = cells(run, verdict)
    classes = agreement_classes(run, table)
    out = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
           f"<title>simrun diff: {escape(name)}</title><style>{parts.CSS}</style></head><body>",
           f"<h1>simrun diff <code>{escape(name)}</code> "
           f"{parts.badge('pass' if verdict.passed else 'fail', 'PASSED' if verdict.passed else 'FAILED')}</h1>",
           f"<p class='meta'>{len(run.input_names)} input(s): {escape(', '.join(run.input_names) or '(none)')}"
           f" · {len(run.backends)} backend(s) · policy: {escape(verdict.policy_source)}</p>",
           "<ul class='diagnosis'>" + "".join(f"<li>{escape(s)}</li>" for s in _sentences(run, verdict)) + "</ul>"]
    if verdict.failures:
        out.append("<h3>Failures</h3><ul>" + "".join(f"<li>{escape(f)}</li>" for f in verdict.failures) + "</ul>")
    if verdict.warnings:
        out.append("<h3>Warnings</h3><ul>" + "".join(f"<li>{escape(w)}</li>" for w in verdict.warnings) + "</ul>")
    out.append(baseline_section(verdict))
    out.append("<h2>Backends</h2>" + parts.matrix(run, verdict, table, classes))
    out.append(cost_section(run.cost))
    if run.sequences:
        out.append(sequences.html(run))

    verdicts = {(pv.input_name, pv.a, pv.b): pv for pv in verdict.pairs}
    klass = {b: i for i, c in enumerate(classes) for b in c}
    for n, (input_name, cmp) in enumerate(zip(run.input_names, run.comparisons)):
        out.append(f"<h2>Input {escape(input_name)}</h2>")
        exact, groups = [], {}
        for pair in cmp.pairs:
            if not any(s.diverges for s in pair.layers + pair.outputs):
                exact.append(pair.name)
                continue
            group = min(klass.get(pair.a, 0), klass.get(pair.b, 0))
            groups.setdefault(group, []).append(pair)
        for group, pairs in sorted(groups.items()):
            ref = classes[group] if group < len(classes) else [pairs[0].a]
            also = f" (and {', '.join(ref[1:])}, bit-exact with it)" if len(ref) > 1 else ""
            out.append(f"<h3>Against {escape(ref[0])}{escape(also)}</h3>")
            svg = plots.get((n, ref[0]))
            if svg:
                out.append(f"<img class='plot' alt='error against depth against {escape(ref[0])}, "
                           f"input {escape(input_name)}' src='data:image/svg+xml;base64,"
                           f"{base64.b64encode(svg.encode()).decode()}'>")
            by_classes: dict[tuple, list] = {}
            for pair in pairs:
                by_classes.setdefault((klass.get(pair.a), klass.get(pair.b)), []).append(
                    (pair, verdicts[(input_name, pair.a, pair.b)]))
            for members in by_classes.values():
                out += _class_pair_sections(run, n, input_name, members)
        if exact:
            out.append(f"<p class='meta'>Bit-exact on every layer and output: {escape(', '.join(exact))}.</p>")
        if not cmp.pairs:
            out.append("<p>No backend pair to compare for this input.</p>")

    out.append("<h2>Versions</h2><details><summary>versions of every backend, model sha256</summary>"
               f"<p class='meta'>model <code>{escape(str(model_path or '(in memory)'))}</code> sha256 "
               f"<code>{escape(str(getattr(run.model, 'sha256', '')))}</code></p>"
               + parts.versions(run) + "</details>")
    out.append("</body></html>")
    return "\n".join(out)


def _sentences(run: DiffRun, verdict) -> list[str]:
    """The headline; a failed verdict's sentence is left to the Failures list right below it."""
    lines = headline(run, verdict)
    return lines[:-1] if not verdict.passed and lines[-1].startswith("FAILED:") else lines


def _class_pair_sections(run: DiffRun, n: int, input_name: str, members: list) -> list[str]:
    """Pairs between the same two bit-exact classes differ identically: every failing pair in
    full, else one (a judged one before a reported one); the rest on one line."""
    shown = [m for m in members if not m[1].passed] or [min(members, key=lambda m: m[1].status == "unjudged")]
    out = [_pair_section(run, n, input_name, pair, pv) for pair, pv in shown]
    rest = [m for m in members if m not in shown]
    if rest:
        same = ", ".join(f"<span id='{parts.anchor(str(n), input_name, pair.a, pair.b)}'>{escape(pair.name)} "
                         f"{parts.badge(pv.status, _STATUS_TEXT[pv.status])}</span>" for pair, pv in rest)
        out.append(f"<p class='meta'>The same difference through backends that agree bit for bit: {same} "
                   f"(layer tables as for {escape(shown[0][0].name)}; every pair is in summary.json).</p>")
    return out


_STATUS_TEXT = {"unjudged": "reported, not judged", "pass": "pass", "fail": "FAIL"}


def _pair_section(run: DiffRun, n: int, input_name: str, pair, pv) -> str:
    first = pair.first_divergent
    pd = run.pair_diagnosis(n, pair)
    status = _STATUS_TEXT[pv.status]
    head = (f"<h4 id='{parts.anchor(str(n), input_name, pair.a, pair.b)}'>{escape(pair.name)} "
            f"{parts.badge(pv.status, status)}</h4>")
    facts = [f"first divergent layer: <b>{parts.layer_ref(first)}</b>"]
    if pv.first_failing is not None:
        facts.append(f"first out of tolerance: <b>{parts.layer_ref(pv.first_failing)}</b>")
    facts.append(f"mismatched values overall: {100 * pair.mismatch_ratio:.2f}% · max |Δ| {pair.max_abs_delta:g}")
    summary = f"<p><b>Diagnosis:</b> {escape(pd.summary)}</p>" if pd is not None and pd.summary else ""
    return (head + summary + "<p>" + " · ".join(facts) + "</p>"
            + f"<details{' open' if pv.failing else ''}><summary>layers ({len(pair.compared_layers)} "
              f"compared of {len(pair.layers)}; ▶ first divergent)</summary><div class='scroll'>"
            + parts.layer_table(run, n, pair, pv) + "</div></details>")


def figures(run: DiffRun, classes: list[list[str]]) -> dict[tuple[int, str], str]:
    """One SVG per input and reference class that some later class differs from."""
    out = {}
    for n, (input_name, cmp) in enumerate(zip(run.input_names, run.comparisons)):
        by_labels = {(p.a, p.b): p for p in cmp.pairs}
        for i, ref in enumerate(classes):
            lines = []
            for other in classes[i + 1:]:
                pair = by_labels.get((ref[0], other[0])) or by_labels.get((other[0], ref[0]))
                if pair is None or not any(s.diverges for s in pair.layers + pair.outputs):
                    continue
                pd = run.pair_diagnosis(n, pair)
                own = {d.id: d.own for d in pd.layers} if pd is not None else None
                label = other[0] + (f" (+{len(other) - 1})" if len(other) > 1 else "")
                lines.append((label, pair, own))
            if lines:
                out[(n, ref[0])] = group_figure_svg(f"input {input_name}: against {ref[0]}", lines)
    return out


def write(run: DiffRun, verdict, out_dir: Path) -> tuple[Path, list[Path]]:
    """Write report.html and, beside it, plots/<input position>-<input>-<reference>.svg."""
    classes = agreement_classes(run)
    plots = figures(run, classes)
    files = []
    if plots:
        plot_dir = out_dir / "plots"
        plot_dir.mkdir(exist_ok=True)
        for (n, ref), svg in plots.items():
            path = plot_dir / (parts.anchor(str(n), run.input_names[n], ref)[5:] + ".svg")
            path.write_text(svg, encoding="utf-8")
            files.append(path)
    html_path = out_dir / "report.html"
    html_path.write_text(render(run, verdict, plots), encoding="utf-8")
    return html_path, files

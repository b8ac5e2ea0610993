"""report.html: one self-contained page per DiffRun (inline SVG, CSS and one small script
that unfolds an input's detail on demand; no external asset).

Reads top-down in the order a user asks, with a table of contents pinned at the top: the
verdict and the diagnosis in sentences; failures and warnings; the backend matrix (backend
names on both axes: which agree bit for bit, which differ and from where); the operator
graph coloured by own error and outlined by cause (graph.py); one layer table per pair of
bit-exact classes that differ, over every input (min / median / max; html_layers.py), with
a "differing layers only" switch; cost; then every input folded on its own (the first one
open): its error-against-depth plot (operator names on hover) and per-pair layer tables.
Versions are folded away at the bottom.
"""
from __future__ import annotations

from html import escape
from pathlib import Path

from ..analysis.diffrun import DiffRun
from . import html_parts as parts
from .baseline import html_section as baseline_section
from .cost import html_section as cost_section
from . import sequences
from . import html_layers as layers_html
from .aggregate import pair_summary, shown_pairs
from .remedy import html_section as remedy_section
from .task import html_section as task_section, repro_section
from .digest import agreement_classes, cells, headline
from .graph import graph_svg, legend as graph_legend
from .plots import group_figure_svg


def render(run: DiffRun, verdict, plots: dict[tuple[int, str], str], out_dir: Path | None = None) -> str:
    """plots: (input position, first backend of the reference class) -> SVG text; out_dir:
    where the page goes (links to reproducer bundles are made relative to it)."""
    model_path = getattr(run.model, "path", None)
    name = Path(str(model_path)).name if model_path else "(in memory)"
    table = cells(run, verdict)
    classes = agreement_classes(run, table)
    summaries = [ps for a, b in shown_pairs(run, verdict, classes)
                 if (ps := pair_summary(run, verdict, a, b)) is not None]
    graph = _graph_section(run, verdict, summaries)
    baseline = baseline_section(verdict)
    sections = ([("task", "Task")] if run.task is not None else []) + [("summary", "Diagnosis")]
    sections += [("remedies", "What to do")] if run.remedies else []
    sections += ([("baseline", "Baseline")] if baseline else []) + ([("repro", "Reproducers")] if run.repro else [])
    sections += [("backends", "Backends")]
    sections += [("graph", "Graph")] if graph else []
    sections += [("layers", "Layers")] if summaries else []
    sections += [("cost", "Cost")] if run.cost is not None else []
    sections += [("sequences", "Sequences")] if run.sequences else []
    sections += [("inputs", f"Per input ({len(run.input_names)})"), ("versions", "Versions")]
    out = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
           f"<title>simrun diff: {escape(name)}</title><style>{parts.CSS}{layers_html.CSS}</style></head><body>",
           "<nav class='toc'>" + " ".join(f"<a href='#{k}'>{escape(t)}</a>" for k, t in sections) + "</nav>",
           f"<h1 id='summary'>simrun diff <code>{escape(name)}</code> "
           f"{parts.badge('pass' if verdict.passed else 'fail', 'PASSED' if verdict.passed else 'FAILED')}</h1>",
           f"<p class='meta'>{len(run.input_names)} input(s): {escape(_inputs_text(run.input_names))}"
           f" · {len(run.backends)} backend(s) · policy: {escape(verdict.policy_source)}</p>",
           task_section(run, verdict, parts.badge),
           "<ul class='diagnosis'>" + "".join(f"<li>{escape(s)}</li>" for s in _sentences(run, verdict)) + "</ul>",
           remedy_section(run, out_dir or Path.cwd())]
    if verdict.failures:
        out.append(_folded_list("Failures", verdict.failures))
    if verdict.warnings:
        out.append("<h3>Warnings</h3><ul>" + "".join(f"<li>{escape(w)}</li>" for w in verdict.warnings) + "</ul>")
    if baseline:
        out.append(f"<div id='baseline'></div>{baseline}")
    out.append(repro_section(run, out_dir or Path.cwd()))
    out.append("<h2 id='backends'>Backends</h2>" + parts.matrix(run, verdict, table, classes))
    out.append(graph)
    if summaries:
        out.append(_layers_section(run, summaries))
    out.append(cost_section(run.cost))
    if run.sequences:
        out.append(f"<div id='sequences'></div>{sequences.html(run)}")
    out.append(_inputs_section(run, verdict, classes, plots))
    out.append("<h2 id='versions'>Versions</h2><details><summary>versions of every backend, model sha256</summary>"
               f"<p class='meta'>model <code>{escape(str(model_path or '(in memory)'))}</code> sha256 "
               f"<code>{escape(str(getattr(run.model, 'sha256', '')))}</code></p>"
               + parts.versions(run) + "</details>")
    out.append("</body></html>")
    return "\n".join(out)


def _folded_list(title: str, items: list[str], shown: int = 3) -> str:
    """The first few items; the rest (with --count 10, one per input and pair) folded."""
    head = "".join(f"<li>{escape(f)}</li>" for f in items[:shown])
    rest = "".join(f"<li>{escape(f)}</li>" for f in items[shown:])
    more = (f"<details><summary>{len(items) - shown} more</summary><ul>{rest}</ul></details>" if rest else "")
    return f"<h3>{title} ({len(items)})</h3><ul>{head}</ul>{more}"


def _inputs_text(names: list[str]) -> str:
    if len(names) <= 6:
        return ", ".join(names) or "(none)"
    return ", ".join(names[:3]) + f", … ({len(names) - 5} more) …, " + ", ".join(names[-2:])


def _graph_section(run: DiffRun, verdict, summaries) -> str:
    """The operator graph of the first failing shown pair, else of the first shown pair."""
    ps = next((p for p in summaries if p.status == "fail"), summaries[0] if summaries else None)
    index = summaries.index(ps) if ps is not None else 0
    svg = graph_svg(run.model, ps, lambda row: layers_html.row_anchor(index, row))
    if not svg:
        return ""
    integer = ps is None or any(r.integer for r in ps.rows)
    what = (f"{escape(ps.name)} over {ps.inputs} input(s), {'own' if ps.diagnosed else 'propagated'} error"
            if ps is not None else "every backend agrees bit for bit")
    others = (f" (the other differing pairs: their tables below and the Model Explorer overlays in "
              f"<code>model-explorer/</code>)" if len(summaries) > 1 else "")
    return (f"<h2 id='graph'>Operator graph</h2><p class='meta'>{what}{others}</p>"
            + graph_legend(integer, ps is not None and ps.diagnosed)
            + f"<div class='graph-box'>{svg}</div>")


def _layers_section(run: DiffRun, summaries) -> str:
    out = ["<h2 id='layers'>Layers</h2><p class='meta'><label><input type='checkbox' id='only-diff'> "
           "differing layers only</label> · one table per pair of bit-exact classes that differ, over "
           "every input; per-input tables under <a href='#inputs'>Per input</a>.</p>"]
    for k, ps in enumerate(summaries):
        status = _STATUS_TEXT[ps.status]
        first = next((r for r in ps.rows if r.id == ps.first_divergent), None)
        worst = next((r for r in ps.rows if r.id == ps.worst), None)
        facts = [f"first divergent: <b>{escape(first.id + ' ' + first.op_name) if first else 'none'}</b>",
                 f"worst: <b>{escape(worst.id + ' ' + worst.op_name) if worst else 'none'}</b>",
                 f"{sum(r.diverges for r in ps.rows)} of {len(ps.rows)} layers differ on some input"]
        out.append(f"<h3 id='layers-{k}'>{escape(ps.name)} {parts.badge(ps.status, status)}</h3>"
                   f"<p>{' · '.join(facts)}</p><div class='scroll'>{layers_html.table(ps, k)}</div>")
    return "".join(out)


def _inputs_section(run: DiffRun, verdict, classes, plots) -> str:
    """Every input on its own, folded: its plots and its per-pair layer tables."""
    verdicts = {(pv.input_name, pv.a, pv.b): pv for pv in verdict.pairs}
    klass = {b: i for i, c in enumerate(classes) for b in c}
    out = [f"<h2 id='inputs'>Per input</h2>"]
    for n, (input_name, cmp) in enumerate(zip(run.input_names, run.comparisons)):
        body, exact, groups = [], [], {}
        for pair in cmp.pairs:
            if not any(s.diverges for s in pair.layers + pair.outputs):
                exact.append(pair.name)
                continue
            group = min(klass.get(pair.a, 0), klass.get(pair.b, 0))
            groups.setdefault(group, []).append(pair)
        for group, pairs in sorted(groups.items()):
            ref = classes[group] if group < len(classes) else [pairs[0].a]
            also = f" (and {', '.join(ref[1:])}, bit-exact with it)" if len(ref) > 1 else ""
            body.append(f"<h3>Against {escape(ref[0])}{escape(also)}</h3>")
            svg = plots.get((n, ref[0]))
            if svg:
                body.append(f"<div class='plot'>{svg}</div>")
            by_classes: dict[tuple, list] = {}
            for pair in pairs:
                by_classes.setdefault((klass.get(pair.a), klass.get(pair.b)), []).append(
                    (pair, verdicts[(input_name, pair.a, pair.b)]))
            for members in by_classes.values():
                body += _class_pair_sections(run, n, input_name, members)
        if exact:
            body.append(f"<p class='meta'>Bit-exact on every layer and output: {escape(', '.join(exact))}.</p>")
        if not cmp.pairs:
            body.append("<p>No backend pair to compare for this input.</p>")
        worst = min((verdicts[(input_name, p.a, p.b)].status for p in cmp.pairs), default="unjudged",
                    key=("fail", "pass", "unjudged").index)
        note = "bit-exact" if not groups else f"{sum(len(v) for v in groups.values())} differing pair(s)"
        summary = (f"<summary><b>Input {escape(input_name)}</b> {parts.badge(worst, _STATUS_TEXT[worst])} "
                   f"<span class='meta'>{note}</span></summary>")
        if n == 0:
            # The first input opens with its plot: the shape of the error against depth at a glance.
            out.append(f"<details class='input'{' open' if groups else ''}>{summary}{''.join(body)}</details>")
        else:
            # The others are parsed only when opened: ten inputs of a 200-operator model are
            # ten thousand table rows the browser need not build to show the page.
            lazy = "".join(body).replace("</script", "<\\/script")
            out.append(f"<details class='input'>{summary}<script type='text/html' class='lazy'>{lazy}</script>"
                       "<noscript>(this input's detail needs JavaScript; every number is in summary.json)"
                       "</noscript></details>")
    if len(run.input_names) > 1:
        out.append(_LAZY_SCRIPT)
    return "".join(out)


# Inline, no external asset: inserts a folded input's detail the first time it is opened.
_LAZY_SCRIPT = ("<script>document.querySelectorAll('details.input').forEach(d => d.addEventListener('toggle', () => {"
                "const s = d.querySelector('script.lazy'); if (d.open && s) { s.insertAdjacentHTML('afterend', "
                "s.textContent); s.remove(); } }));</script>")


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
            + f"<details><summary>layers ({len(pair.compared_layers)} "
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
    html_path.write_text(render(run, verdict, plots, out_dir), encoding="utf-8")
    return html_path, files

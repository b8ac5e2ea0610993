"""The task-level answer (run.task), which every report opens with when a task ran: per
backend pair one sentence (same decisions or what changed) with its verdict, the settings
and the input preprocessing; the tensor diagnosis follows in each report as before."""
from __future__ import annotations

import math
from html import escape

_STATUS = {"pass": "pass", "fail": "FAIL", "unjudged": "reported, not judged"}


def terminal_lines(run, verdict) -> list[str]:
    result = run.task
    if result is None:
        return _preprocessing_lines(run)
    count = len(run.sequences) if result.units == "sequences" else len(run.input_names)
    lines = [f"task {result.task} over {count} {result.units}:"]
    for label, facts in result.backends.items():
        steps = facts.get("trigger_steps")
        if steps is not None:
            lines.append(f"  {label}: triggers at " + ", ".join(
                f"{name} step {s}" if s is not None else f"{name} never" for name, s in steps.items()))
    for outcome in result.pairs:
        status = verdict.task_pairs.get((outcome.a, outcome.b), "unjudged")
        lines.append(f"  {outcome.name} [{_STATUS[status]}]: {outcome.summary}")
    return lines + _preprocessing_lines(run) + [""]


def markdown_lines(run, verdict) -> list[str]:
    """summary.md's opening section: the decisions per pair, before the tensor diagnosis."""
    result = run.task
    if result is None:
        return [f"Inputs: {_md(run.preprocessing)}", ""] if getattr(run, "preprocessing", None) else []
    count = len(run.sequences) if result.units == "sequences" else len(run.input_names)
    settings = ", ".join(f"{k} {v}" for k, v in result.settings.items())
    lines = [f"### Task {_md(result.task)} over {count} {result.units}", ""]
    if settings:
        lines += [f"Settings: {_md(settings)}", ""]
    for label, facts in result.backends.items():
        steps = facts.get("trigger_steps")
        if steps is not None:
            lines.append(f"- `{label}` triggers at " + ", ".join(
                f"{_md(name)} step {s}" if s is not None else f"{_md(name)} never" for name, s in steps.items()))
    if any("trigger_steps" in f for f in result.backends.values()):
        lines.append("")
    lines += ["| pair | verdict | decisions |", "|---|---|---|"]
    for o in result.pairs:
        status = verdict.task_pairs.get((o.a, o.b), "unjudged")
        mark = {"fail": "✗ FAIL", "pass": "pass", "unjudged": "not judged"}[status]
        lines.append(f"| `{o.a}` vs `{o.b}` | {mark} | {_md(o.summary)} |")
    lines.append("")
    if getattr(run, "preprocessing", None):
        lines += [f"Inputs: {_md(run.preprocessing)}", ""]
    return lines


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("<", "&lt;").replace("\n", " ")


def _preprocessing_lines(run) -> list[str]:
    return [f"inputs: {run.preprocessing}"] if getattr(run, "preprocessing", None) else []


def json_section(run, verdict) -> dict | None:
    """summary.json "task": {task, settings, units, backends, pairs: [{a, b, verdict, summary,
    metrics, changed, inputs}]} (None without a task)."""
    result = run.task
    if result is None:
        return None
    return _clean({
        "task": result.task, "settings": result.settings, "units": result.units,
        "backends": result.backends,
        "pairs": [{"a": o.a, "b": o.b, "verdict": verdict.task_pairs.get((o.a, o.b), "unjudged"),
                   "summary": o.summary, "metrics": o.metrics, "changed": list(o.changed),
                   "inputs": o.inputs} for o in result.pairs]})


def html_section(run, verdict, badge) -> str:
    """`badge(status, text)`: the page's verdict badge (html_parts.badge)."""
    result = run.task
    pre = (f"<p class='meta'>Inputs: {escape(run.preprocessing)}</p>"
           if getattr(run, "preprocessing", None) else "")
    if result is None:
        return pre
    rows = []
    for o in result.pairs:
        status = verdict.task_pairs.get((o.a, o.b), "unjudged")
        figures = ", ".join(f"{k.replace('_', ' ')} {_fmt(v)}" for k, v in o.metrics.items())
        rows.append(f"<tr><td>{escape(o.name)}</td><td>{badge(status, _STATUS[status])}</td>"
                    f"<td>{escape(o.summary)}</td><td class='meta'>{escape(figures)}</td></tr>")
    facts = []
    for label, f in result.backends.items():
        if "trigger_steps" in f:
            facts.append(f"<li>{escape(label)}: triggers at " + escape(", ".join(
                f"{n} step {s}" if s is not None else f"{n} never" for n, s in f["trigger_steps"].items()))
                + "</li>")
    settings = ", ".join(f"{k} {v}" for k, v in result.settings.items())
    return (f"<h2 id='task'>Task: {escape(result.task)}</h2>"
            f"<p class='meta'>settings: {escape(settings or 'none')}</p>" + pre
            + (f"<ul>{''.join(facts)}</ul>" if facts else "")
            + "<table><tr><th>pair</th><th>verdict</th><th>decisions</th><th>figures</th></tr>"
            + "".join(rows) + "</table>")


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "-" if v is None else str(v)


def _clean(x):
    """JSON-safe: tuples to lists, NaN/inf to null, numpy scalars to Python numbers."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if hasattr(x, "item") and not isinstance(x, (str, bytes)):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def repro_section(run, out_dir) -> str:
    """Links to the reproducer bundles (their README.md), relative where they sit below the report."""
    from pathlib import Path
    bundles = [Path(b) for b in getattr(run, "repro", [])]
    if not bundles:
        return ""
    items = []
    for b in bundles:
        try:
            href = (b / "README.md").resolve().relative_to(Path(out_dir).resolve()).as_posix()
        except ValueError:
            href = (b / "README.md").resolve().as_uri()
        items.append(f"<li><a href='{escape(href)}'>{escape(b.parent.name)} / {escape(b.name)}</a></li>")
    return (f"<h2 id='repro'>Reproducers</h2><p class='meta'>One folder per layer that introduces "
            f"error between two backends: the single-operator model, its inputs, both outputs and the "
            f"one <code>simrun diff</code> command that shows the difference.</p><ul>{''.join(items)}</ul>")

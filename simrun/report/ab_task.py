"""The task figures of a quantization A/B (`simrun ab --task ...`), per scheme: does a scheme
change what the application decides, against the float model (quantization) and between
backends (implementation)? The A/B's reports (report/ab.py, ab_ci.py) open with them.

summary.json, per scheme (null without a task):

    "task": {"vs_float": OUTCOME|null,      # the float model's decisions vs the quantized
                                            # model's on the measured_on backend
             "between_backends": TASK}      # as simrun diff's summary.json "task" (report/task.py)
    OUTCOME = {"a": "float", "b": label, "summary": str, "metrics": {...}, "changed": [input, ...],
               "inputs": [...]}
"""
from __future__ import annotations

from html import escape

from . import task as diff_task

_STATUS = {"pass": "pass", "fail": "FAIL", "unjudged": "not judged", None: "-"}


def rows(ab) -> list[tuple]:
    """(pair, scheme, verdict or None, changed, of, summary): float vs each scheme first, then
    each backend pair across the schemes, so a pair's schemes stand one under the other."""
    out = []
    for res in ab.schemes:
        o = res.task_vs_float
        if o is not None:
            out.append((o.name, res.scheme, None, len(o.changed), len(o.inputs), o.summary))
    pairs: dict[str, list] = {}
    for res in ab.schemes:
        result = res.run.task if res.run is not None else None
        for o in (result.pairs if result is not None else []):
            status = res.verdict.task_pairs.get((o.a, o.b), "unjudged")
            pairs.setdefault(o.name, []).append((o.name, res.scheme, status, len(o.changed), len(o.inputs),
                                                 o.summary))
    for members in pairs.values():
        out += members
    return out


def task_name(ab) -> str | None:
    for res in ab.schemes:
        if res.run is not None and res.run.task is not None:
            return res.run.task.task
    return None


def terminal_lines(ab) -> list[str]:
    name = task_name(ab)
    if name is None:
        return []
    lines = [f"task {name} per scheme (decisions on {len(ab.input_names)} input(s): each quantized model "
             f"against the float model, then between backends)"]
    table = [("pair", "scheme", "verdict", "changed", "decisions")]
    for pair, scheme, status, changed, of, summary in rows(ab):
        shown = pair if not any(r[0] == pair for r in table) else ""
        table.append((shown, scheme, _STATUS[status], f"{changed} of {of}", summary))
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    for n, row in enumerate(table):
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(row[:4], widths)) + "  " + row[4])
        if n == 0:
            lines.append("  " + "  ".join("-" * w for w in widths) + "  " + "-" * 9)
    return lines + [""]


def scheme_json(res) -> dict | None:
    if res.run is None or res.run.task is None:
        return None
    o = res.task_vs_float
    return {"vs_float": None if o is None else diff_task._clean({
                "a": o.a, "b": o.b, "summary": o.summary, "metrics": o.metrics,
                "changed": list(o.changed), "inputs": o.inputs}),
            "between_backends": diff_task.json_section(res.run, res.verdict)}


def html(ab) -> str:
    name = task_name(ab)
    if name is None:
        return ""
    body = []
    previous = None
    for pair, scheme, status, changed, of, summary in rows(ab):
        first = " class=scheme-first" if pair != previous else ""
        previous = pair
        body.append(f"<tr{first}><td>{escape(pair)}</td><td>{escape(scheme)}</td><td>{_STATUS[status]}</td>"
                    f"<td class='num'>{changed} of {of}</td><td>{escape(summary)}</td></tr>")
    return (f"<h2>Task: {escape(name)}, per scheme</h2><p>Decisions of each quantized model against the "
            f"float model's on the same inputs, then between backends.</p><table><tr><th>pair</th>"
            f"<th>scheme</th><th>verdict</th><th>inputs changed</th><th>decisions</th></tr>"
            + "".join(body) + "</table>")


def markdown_lines(ab) -> list[str]:
    name = task_name(ab)
    if name is None:
        return []
    lines = [f"### Task {name}, per scheme", "", "| pair | scheme | verdict | changed | decisions |",
             "|---|---|---|---|---|"]
    for pair, scheme, status, changed, of, summary in rows(ab):
        lines.append(f"| `{pair}` | {scheme} | {_STATUS[status]} | {changed} of {of} | "
                     f"{summary.replace('|', chr(92) + '|')} |")
    return lines + [""]

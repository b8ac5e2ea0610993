"""What `simrun diff` prints: the diagnosis in sentences first, then one row per input and
backend pair that differs, backend errors, versions and the verdict last.

Rows are kept to what reads in seconds: bit-exact pairs go on one line, and a passing pair
that only repeats another through bit-exact backends (tflm-host vs X when tflm-host and
tflite-reference agree bit for bit) is counted, not shown; report.html and summary.json
have every pair."""
from __future__ import annotations

from ..analysis.diffrun import DiffRun
from .baseline import terminal_lines as baseline_lines
from .cost import terminal_lines as cost_lines
from .digest import agreement_classes, headline
from .remedy import terminal_lines as remedy_lines
from .task import terminal_lines as task_lines

_HEADER = ("input", "pair", "layers", "first divergent", "worst layer", "mismatch", "max |Δ|",
           "introducing", "verdict")


def render(run: DiffRun, verdict) -> str:
    # The answer first: what the differences do to the application's decisions (with a task).
    lines = task_lines(run, verdict)
    lines += ["diagnosis:"] + [f"  {sentence}" for sentence in headline(run, verdict)] + [""]
    lines += remedy_lines(run)
    rows, exact, repeats = [_HEADER], {}, 0
    klass = {b: i for i, c in enumerate(agreement_classes(run)) for b in c}
    verdicts = {(pv.input_name, pv.a, pv.b): pv for pv in verdict.pairs}
    for n, (input_name, cmp) in enumerate(zip(run.input_names, run.comparisons)):
        groups: dict[tuple, list] = {}
        for pair in cmp.pairs:
            pv = verdicts[(input_name, pair.a, pair.b)]
            if not any(s.diverges for s in pair.layers + pair.outputs) and pv.passed:
                exact.setdefault(pair.name, []).append(input_name)
            else:
                groups.setdefault((klass.get(pair.a), klass.get(pair.b)), []).append((pair, pv))
        for members in groups.values():
            # Pairs between the same two bit-exact classes differ identically: every failing one
            # is shown, else one (a judged one before a merely reported one).
            shown = [m for m in members if not m[1].passed] or \
                [min(members, key=lambda m: m[1].status == "unjudged")]
            repeats += len(members) - len(shown)
            for pair, pv in shown:
                first, worst = pair.first_divergent, pair.worst
                rows.append((input_name, pair.name, f"{len(pair.compared_layers)}/{len(pair.layers)}",
                             _short(first), _short(worst), f"{100 * pair.mismatch_ratio:.2f}%",
                             f"{pair.max_abs_delta:g}", _introducing(run, n, pair), pv.status.upper()))
    if len(rows) > 1:
        widths = [max(len(r[i]) for r in rows) for i in range(len(_HEADER))]
        for k, row in enumerate(rows):
            lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
            if k == 0:
                lines.append("  ".join("-" * w for w in widths))
    if repeats:
        lines.append(f"{repeats} more differing pair(s) pass and repeat a row above through backends "
                     f"that agree bit for bit (every pair: report.html, summary.json)")
    if exact:
        every = len(run.input_names)
        lines.append("bit-exact on every layer: " + ", ".join(
            name if len(inputs) == every else f"{name} ({', '.join(inputs)})" for name, inputs in exact.items()))
    if len(rows) == 1 and not exact:
        lines.append("no backend pair to compare")

    if run.backend_errors:
        lines.append("")
        lines.append("backend errors:")
        for label, message in run.backend_errors.items():
            action = verdict.backend_errors.get(label, "fail")
            lines.append(f"  {label} ({action}): {message}")
    lines += cost_lines(run.cost)
    lines += baseline_lines(verdict)
    if run.versions:
        lines.append("")
        lines.append("versions:")
        for label in run.backends:
            if run.versions.get(label):
                lines.append(f"  {label}: " + ", ".join(f"{k} {v}" for k, v in run.versions[label].items()))
    lines.append("")
    for warning in verdict.warnings:
        lines.append(f"warning: {warning}")
    for failure in verdict.failures:
        lines.append(f"FAIL: {failure}")
    against = " against the baseline" if getattr(verdict, "baseline", None) is not None else ""
    lines.append(f"verdict: {'PASSED' if verdict.passed else 'FAILED'}{against} (policy: {verdict.policy_source})")
    return "\n".join(lines)


def _introducing(run: DiffRun, n: int, pair) -> str:
    """How many layers introduce error themselves, and why ("3 rounding, 1 kernel"); "-" undiagnosed."""
    pd = run.pair_diagnosis(n, pair)
    if pd is None:
        return "-"
    counts: dict[str, int] = {}
    for d in pd.introducing:
        counts[d.cause] = counts.get(d.cause, 0) + 1
    return ", ".join(f"{k} {c}" for c, k in counts.items()) if counts else "0"


def _short(layer) -> str:
    if layer is None:
        return "-"
    text = f"{layer.id} {layer.op_name}"
    return text if layer.depth is None else f"{text} (#{layer.depth})"

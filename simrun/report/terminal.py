"""The table `simrun diff` prints: one row per input and backend pair, then
backend errors, versions and the verdict."""
from __future__ import annotations

from ..analysis.compare import DiffRun

_HEADER = ("input", "pair", "layers", "first divergent", "worst layer", "mismatch", "max |Δ|", "verdict")


def render(run: DiffRun, verdict) -> str:
    rows = [_HEADER]
    pair_verdicts = iter(verdict.pairs)
    for input_name, cmp in zip(run.input_names, run.comparisons):
        for pair in cmp.pairs:
            pv = next(pair_verdicts)
            first, worst = pair.first_divergent, pair.worst
            rows.append((input_name, pair.name, f"{len(pair.compared_layers)}/{len(pair.layers)}",
                         _short(first), _short(worst), f"{100 * pair.mismatch_ratio:.2f}%",
                         f"{pair.max_abs_delta:g}", pv.status.upper()))
    lines = []
    if len(rows) > 1:
        widths = [max(len(r[i]) for r in rows) for i in range(len(_HEADER))]
        for n, row in enumerate(rows):
            lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
            if n == 0:
                lines.append("  ".join("-" * w for w in widths))
    else:
        lines.append("no backend pair to compare")

    if run.backend_errors:
        lines.append("")
        lines.append("backend errors:")
        for label, message in run.backend_errors.items():
            action = verdict.backend_errors.get(label, "fail")
            lines.append(f"  {label} ({action}): {message}")
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
    lines.append(f"verdict: {'PASSED' if verdict.passed else 'FAILED'} (policy: {verdict.policy_source})")
    return "\n".join(lines)


def _short(layer) -> str:
    if layer is None:
        return "-"
    text = f"{layer.id} {layer.op_name}"
    return text if layer.depth is None else f"{text} (#{layer.depth})"

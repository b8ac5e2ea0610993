"""What every report says first: the answer in plain sentences and the backend matrix.

The matrix groups backends into *agreement classes*: backends that agree bit for bit on
every layer and output of every input. Most of a 7-backend matrix is usually one class
(tflite-reference, tflm-host and target:*:reference run the same reference kernels), so
the reports describe a difference once per class instead of once per pair, and plot it
once per class against each reference class (see plots.py).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..analysis.compare import PairResult, backend_rank
from ..analysis.diffrun import DiffRun

_STATUS_ORDER = ("fail", "pass", "unjudged")        # worst first


@dataclass
class Cell:
    """One pair over every input: how far apart the two backends are."""
    a: str
    b: str
    bit_exact: bool
    status: str                                     # worst verdict over the inputs
    max_abs_delta: float
    first: object | None                            # earliest first-divergent LayerStats
    first_input: int | None                         # input position where `first` is
    mismatch_ratio: float                           # largest over the inputs
    output_delta: float                             # largest |Δ| of a final output
    output_share: float | None                      # ... as a share of the output's range
    integer: bool

    @property
    def size(self) -> str:
        """The largest |Δ| as the matrices print it (steps for integers, two digits for floats)."""
        return f"{self.max_abs_delta:g}" if self.integer else f"{self.max_abs_delta:.2g}"

    @property
    def where(self) -> str:
        """Where the pair first diverges, as the matrices print it: `#depth`, else `out`."""
        return f"#{self.first.depth}" if self.first is not None and self.first.depth is not None else "out"


def pair_results(run: DiffRun) -> dict[tuple[str, str], list[tuple[int, PairResult]]]:
    """(a, b) -> [(input position, PairResult), ...] over every input."""
    out: dict[tuple[str, str], list] = {}
    for n, cmp in enumerate(run.comparisons):
        for pair in cmp.pairs:
            out.setdefault((pair.a, pair.b), []).append((n, pair))
    return out


def cells(run: DiffRun, verdict) -> dict[tuple[str, str], Cell]:
    statuses: dict[tuple[str, str], list[str]] = {}
    for pv in verdict.pairs:
        statuses.setdefault((pv.a, pv.b), []).append(pv.status)
    out = {}
    for key, results in pair_results(run).items():
        pairs = [p for _, p in results]
        diverging = [(n, p) for n, p in results if p.first_divergent is not None]
        first_n, first_pair = min(diverging, key=lambda np_: np_[1].first_divergent.depth,
                                  default=(None, None))
        outs = [s for p in pairs for s in p.outputs if s.compared]
        shares = [s.relative_error for s in outs if s.relative_error is not None]
        status = min(statuses.get(key, ["unjudged"]), key=_STATUS_ORDER.index)
        out[key] = Cell(
            a=key[0], b=key[1],
            bit_exact=not any(s.diverges for p in pairs for s in p.layers + p.outputs),
            status=status,
            max_abs_delta=max(p.max_abs_delta for p in pairs),
            first=first_pair.first_divergent if first_pair else None,
            first_input=first_n,
            mismatch_ratio=max(p.mismatch_ratio for p in pairs),
            output_delta=max((s.max_abs_delta for s in outs), default=0.0),
            output_share=max(shares) if shares else None,
            integer=any(s.integer for p in pairs for s in p.layers))
    return out


def agreement_classes(run: DiffRun, table: dict[tuple[str, str], Cell] | None = None) -> list[list[str]]:
    """Backends that produced results, grouped by bit-exact agreement, in rank order."""
    table = table if table is not None else cells(run, _NoVerdict())
    ran = sorted({b for c in run.comparisons for b in c.backends}, key=backend_rank)
    parent = {b: b for b in ran}

    def root(x):
        while parent[x] != x:
            x = parent[x]
        return x
    for (a, b), cell in table.items():
        if cell.bit_exact and a in parent and b in parent:
            ra, rb = sorted((root(a), root(b)), key=backend_rank)
            parent[rb] = ra
    classes: dict[str, list[str]] = {}
    for b in ran:
        classes.setdefault(root(b), []).append(b)
    return sorted(classes.values(), key=lambda c: backend_rank(c[0]))


def cell_between(table, x: str, y: str) -> Cell | None:
    return table.get((x, y)) or table.get((y, x))


def headline(run: DiffRun, verdict) -> list[str]:
    """The diagnosis in a few plain sentences, most important first."""
    table = cells(run, verdict)
    classes = agreement_classes(run, table)
    lines = []
    n_inputs = len(run.input_names)
    inputs = f" ({n_inputs} inputs)" if n_inputs > 1 else ""
    if len(classes) == 1 and len(classes[0]) > 1:
        lines.append(f"All {len(classes[0])} backends that ran agree bit for bit on every layer"
                     f"{inputs}: {_names(classes[0])}.")
    elif classes:
        ref = classes[0]
        if len(ref) > 1:
            lines.append(f"{_names(ref)} agree bit for bit on every layer{inputs}.")
        for other in classes[1:]:
            cell = cell_between(table, ref[0], other[0])
            statuses = {c.status for x in ref for y in other
                        if (c := cell_between(table, x, y)) is not None}
            lines.append(_difference_sentence(run, cell, ref, other, statuses))
    for label, message in run.backend_errors.items():
        action = verdict.backend_errors.get(label, "fail")
        lines.append(f"{label} produced no result ({'fails the run' if action == 'fail' else 'warning'}): "
                     f"{_first_line(message)}")
    lines.append(_verdict_sentence(run, verdict, table))
    return lines


def _difference_sentence(run: DiffRun, cell: Cell, ref: list[str], other: list[str],
                         statuses: set[str]) -> str:
    who = _names(other) + (" (bit-exact with each other)" if len(other) > 1 else "")
    against = _names(ref) if len(ref) <= 3 else f"{ref[0]} and the {len(ref) - 1} backends bit-exact with it"
    # A diagnosis says why; without one the sentence says where and how much.
    diag = _diagnosis_summary(run, cell)
    if diag:
        text = f"{who} vs {against}: {diag}"
    else:
        first = cell.first
        where = ("only in the final outputs" if first is None else
                 f"from the first layer ({first.id} {first.op_name}) on" if first.depth == 0 else
                 f"from layer {first.id} {first.op_name} (#{first.depth} in execution order) on")
        unit = "step" if cell.integer and cell.max_abs_delta == 1 else "steps" if cell.integer else ""
        size = f"up to {cell.max_abs_delta:g} {unit}".rstrip() if cell.integer else \
            f"up to {cell.max_abs_delta:.3g}"
        text = f"{who} differs from {against} {where}: {size}, {cell.mismatch_ratio:.2%} of values"
        text += "; " + _output_text(cell)
    if getattr(run, "task", None) is not None and "fail" not in statuses:
        return text + " (tensor drift reported, not judged: the task's decisions are)."
    return text + " " + _status_note(statuses) + "."


def _diagnosis_summary(run: DiffRun, cell: Cell) -> str | None:
    for n, cmp in enumerate(run.comparisons):
        for pair in cmp.pairs:
            if (pair.a, pair.b) == (cell.a, cell.b) and pair.first_divergent is not None:
                pd = run.pair_diagnosis(n, pair)
                if pd is not None and pd.summary:
                    summary = pd.summary
                    prefix = f"{pd.name}: "
                    return summary[len(prefix):] if summary.startswith(prefix) else summary
    return None


def _output_text(cell: Cell) -> str:
    if cell.output_delta == 0:
        return "final outputs identical"
    share = f" ({cell.output_share:.1%} of their range)" if cell.output_share is not None else ""
    size = f"{cell.output_delta:g} step{'s' if cell.output_delta != 1 else ''}" if cell.integer \
        else f"{cell.output_delta:.3g}"
    return f"final outputs differ by up to {size}{share}"


def _status_note(statuses: set[str]) -> str:
    if "fail" in statuses:
        return "(FAILS the policy)"
    if statuses == {"unjudged"}:
        return "(desktop-only: reported, not judged)"
    if "unjudged" in statuses:
        return "(within the policy where it judges; desktop-only pairs reported, not judged)"
    return "(within the policy)"


def _verdict_sentence(run: DiffRun, verdict, table) -> str:
    if verdict.passed and getattr(verdict, "baseline", None) is not None:
        known = len(verdict.known)
        return ("PASSED against the baseline: no regression" +
                (f"; {known} known failure(s) the baseline had too." if known else "."))
    task_judged = [s for s in getattr(verdict, "task_pairs", {}).values() if s != "unjudged"]
    if verdict.passed and getattr(run, "task", None) is not None and task_judged:
        return (f"PASSED: task {run.task.task}: the decisions agree within the policy on "
                f"{len(task_judged)} of {len(verdict.task_pairs)} backend pairs judged.")
    if verdict.passed:
        judged = sum(1 for c in table.values() if c.status != "unjudged")
        if not judged:
            return "PASSED, but the policy judged no pair: every difference here is only reported."
        return f"PASSED: {judged} of {len(table)} backend pairs judged, all within the policy."
    # Nothing compared outranks everything else: the rest explains it.
    first = next((f for f in verdict.failures if f.startswith("nothing was compared")), verdict.failures[0])
    return f"FAILED: {first}" + (f" (and {len(verdict.failures) - 1} more)" if len(verdict.failures) > 1 else "")


def _names(labels: list[str]) -> str:
    if len(labels) <= 2:
        return " and ".join(labels)
    return ", ".join(labels[:-1]) + " and " + labels[-1]


def _first_line(message: str) -> str:
    line = message.strip().splitlines()[0] if message.strip() else "(no message)"
    return line if len(line) <= 160 else line[:157] + "…"


class _NoVerdict:
    pairs: list = []

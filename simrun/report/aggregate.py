"""One pair over every input: each layer's error as min / median / max over the inputs.

report.html's layer table, its operator graph and the Model Explorer overlays all show a pair
of backends across every input at once (a `--count 10` run is one table, not ten): they read
`pair_summary(run, verdict, a, b)`, built here once from the per-input PairResults, their
verdicts and, when a diagnosis ran, the per-input LayerDiagnosis (own error, cause).
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from ..analysis.compare import LayerStats
from ..analysis.diffrun import DiffRun

# Worst first: the cause a layer is shown with when inputs disagree on it.
CAUSE_ORDER = ("kernel", "rounding", "float-contraction", "both-sides", "amplified", "unexplained", "inherited",
               "none")
_VERDICT_ORDER = ("fail", "pass", "unjudged", "not compared")


@dataclass
class LayerRow:
    """One layer output (LayerStats id) of one pair over the inputs that compared it."""
    id: str
    op_index: int | None                    # None for a final model output
    op_name: str
    tensor_name: str
    depth: int | None
    shape: str
    integer: bool
    propagated: list[float] = field(default_factory=list)   # max |Δ| per input that compared it
    own: list[float] = field(default_factory=list)          # own max |Δ| per input isolated
    not_isolated: str | None = None
    causes: list[str] = field(default_factory=list)
    impact: float | None = None             # largest share of the tensor's range
    mismatch: float = 0.0                   # largest share of mismatched values
    histogram: dict[str, int] | None = None  # summed over the inputs
    verdict: str = "not compared"
    reasons: list[str] = field(default_factory=list)
    evidence: str = ""
    diverging_inputs: int = 0

    @property
    def cause(self) -> str | None:
        return min(self.causes, key=CAUSE_ORDER.index) if self.causes else None

    @property
    def diverges(self) -> bool:
        return self.diverging_inputs > 0

    @property
    def own_max(self) -> float | None:
        return max(self.own) if self.own else None

    @property
    def max(self) -> float | None:
        return max(self.propagated) if self.propagated else None

    def spread(self) -> tuple[float, float, float] | None:
        if not self.propagated:
            return None
        return min(self.propagated), statistics.median(self.propagated), max(self.propagated)


@dataclass
class PairSummary:
    a: str
    b: str
    inputs: int                             # inputs this pair was compared on
    status: str                             # worst verdict over the inputs
    rows: list[LayerRow]                    # first input's execution order, then later ones
    first_divergent: str | None             # row id of the earliest first divergent layer
    worst: str | None                       # row id of the layer with the largest own (else propagated) Δ
    diagnosed: bool

    @property
    def name(self) -> str:
        return f"{self.a} vs {self.b}"

    def by_op(self) -> dict[int, list[LayerRow]]:
        """operator index -> its output rows (final-output rows left out)."""
        out: dict[int, list[LayerRow]] = {}
        for row in self.rows:
            if row.op_index is not None:
                out.setdefault(row.op_index, []).append(row)
        return out


def pair_summary(run: DiffRun, verdict, a: str, b: str) -> PairSummary | None:
    verdicts = {(pv.input_name, pv.a, pv.b): pv for pv in verdict.pairs}
    rows: dict[str, LayerRow] = {}
    statuses, inputs, diagnosed = [], 0, False
    first: tuple[int, str] | None = None
    for n, (input_name, cmp) in enumerate(zip(run.input_names, run.comparisons)):
        pair = next((p for p in cmp.pairs if (p.a, p.b) == (a, b)), None)
        if pair is None:
            continue
        inputs += 1
        pv = verdicts[(input_name, a, b)]
        statuses.append(pv.status)
        diagnosed = diagnosed or run.pair_diagnosis(n, pair) is not None
        if pair.first_divergent is not None and pair.first_divergent.depth is not None:
            if first is None or pair.first_divergent.depth < first[0]:
                first = (pair.first_divergent.depth, pair.first_divergent.id)
        for s in pair.layers + pair.outputs:
            row = rows.get(s.id) or rows.setdefault(s.id, _new_row(s, pair))
            _add(row, s, pv, run.layer_diagnosis(n, pair, s))
    if not inputs:
        return None
    status = min(statuses, key=_VERDICT_ORDER.index)
    ordered = list(rows.values())

    def size(r: LayerRow):
        return (r.own_max if r.own_max is not None else -1, r.max if r.max is not None else -1)
    diverging = [r for r in ordered if r.diverges and r.op_index is not None]
    worst = max(diverging, key=size).id if diverging else None
    return PairSummary(a, b, inputs, status, ordered, first[1] if first else None, worst, diagnosed)


def _new_row(s: LayerStats, pair) -> LayerRow:
    if s.status == "shape_mismatch":
        shape = f"{list(s.shape_a)} vs {list(s.shape_b)}"
    elif s.status == "dtype_mismatch":
        shape = f"{s.dtype_a} vs {s.dtype_b}"
    elif s.one_sided:
        shape = f"only {pair.a if s.status == 'only_a' else pair.b}"
    else:
        shape = f"{list(s.shape_a if s.shape_a is not None else s.shape_b)} {s.dtype_a or s.dtype_b}"
    return LayerRow(s.id, s.op_index, s.op_name, s.tensor_name, s.depth, shape, s.integer)


def _add(row: LayerRow, s: LayerStats, pv, d) -> None:
    if s.compared:
        row.propagated.append(float(s.max_abs_delta))
        row.mismatch = max(row.mismatch, s.mismatch_ratio)
        if s.relative_error is not None:
            row.impact = max(row.impact or 0.0, s.relative_error)
        if s.histogram:
            row.histogram = {k: (row.histogram or {}).get(k, 0) + v for k, v in s.histogram.items()}
    if s.diverges:
        row.diverging_inputs += 1
    failing = s.id in pv.failing
    layer = "fail" if failing else "unjudged" if not pv.judged else "not compared" if s.one_sided else "pass"
    row.verdict = min((row.verdict, layer), key=_VERDICT_ORDER.index)
    if failing:
        row.reasons += [r for r in pv.failing[s.id] if r not in row.reasons]
    if d is not None:
        row.causes.append(d.cause)
        if d.own is not None and d.own.compared:
            row.own.append(float(d.own.max_abs_delta))
        elif d.own is None:
            row.not_isolated = d.not_isolated
        if d.cause not in ("none", "inherited") and not row.evidence:
            kernel = f" (kernel: {d.kernel})" if d.kernel and d.kernel not in d.evidence else ""
            row.evidence = d.evidence + kernel


def shown_pairs(run: DiffRun, verdict, classes: list[list[str]]) -> list[tuple[str, str]]:
    """The pairs the page shows in full: between bit-exact classes, one pair per two classes
    that differ (a failing one first, then a judged one), in the order of the classes."""
    status = {}
    for pv in verdict.pairs:
        key = (pv.a, pv.b)
        status[key] = min((status.get(key, "unjudged"), pv.status), key=_VERDICT_ORDER.index)
    klass = {b: i for i, c in enumerate(classes) for b in c}
    differing = {(p.a, p.b) for cmp in run.comparisons for p in cmp.pairs
                 if any(s.diverges for s in p.layers + p.outputs)}
    by_classes: dict[tuple, list] = {}
    for key in sorted(differing, key=lambda k: (klass.get(k[0], 99), klass.get(k[1], 99), k)):
        ca, cb = sorted((klass.get(key[0], 99), klass.get(key[1], 99)))
        by_classes.setdefault((ca, cb), []).append(key)
    rank = {"fail": 0, "pass": 1, "unjudged": 2}
    return [min(keys, key=lambda k: rank.get(status.get(k, "unjudged"), 3)) for keys in by_classes.values()]

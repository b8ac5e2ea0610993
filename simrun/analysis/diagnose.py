"""Why two backends differ: each layer's own error against the error it inherited, and a cause.

Pure functions over Captures; nothing here runs a backend. What they read:
- the Comparison of one input (the normal runs): the *propagated* error of every layer;
- *isolated* Captures of the same input, label -> Capture: each backend re-run with every
  operator fed the reference's values for its inputs (target: Session.invoke(isolate_from=...),
  host: single-operator cut models), so a layer's output there differs from the reference's
  only by what that operator computes itself. The reference's own normal Capture stands for
  its isolated run (it is fed its own values by definition), so the caller puts it in too;
- isolated Captures of *variants* (other numerics of one side, see `variant_labels`): the
  evidence a cause rests on.

A pair's own error at a layer is the two sides' isolated outputs compared: both operators saw
the same inputs, so any difference is theirs. Causes, first match wins:
- none: neither own nor propagated error;
- inherited: own error zero, propagated error not (a value-wise operator whose output differs
  by more steps than its inputs did is *amplified* instead: a steep LOGISTIC / TANH);
- amplified: also when the own error is at most 1 step and the output differs by more steps
  than inputs + own error; only value-wise operators, where a step in equals a step out
  (a convolution sums many inputs, so its steps are not comparable to its inputs');
- rounding: the own error vanishes when one side runs in firmware with the other
  requantization rounding;
- float-contraction: a float layer's own error vanishes with firmware built -ffp-contract=off;
- kernel: the own error persists in the other rounding mode (or, on the desktop, LiteRT's own
  kernels without XNNPACK agree with the other side while XNNPACK does not);
- both-sides: a pair without the reference whose two sides each differ from the reference
  here for a known cause (a device's FMA contraction, tflite-optimized's XNNPACK summation):
  each side's cause from its own pair with the reference (sides.py, .side_causes);
- unexplained: anything else, with the evidence that was tried.
(causes.py finds rounding / float-contraction / kernel / both-sides from the variant runs.)
Layers whose inputs the reference lacks are "not isolated" (reason given), cause from the
propagated error alone: none or unexplained; except a READ_VARIABLE of a streaming model that
returns on both sides what an earlier ASSIGN_VARIABLE stored: inherited through state (state.py,
.through_state names the ASSIGN_VARIABLE and step).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..capture import Capture
from .causes import _num, _unit, cause_from_variants
from .compare import Comparison, LayerStats, PairResult, compare_pair
from .numerics import (NODELEGATE, firmware_of, kernel_family, other_rounding,  # noqa: F401 (re-exported)
                       variant_labels, without_fp_contract)
from .sides import AgainstReference
from .state import explain_reads
from .summary import INTRODUCING, summarize

CAUSES = ("inherited", "rounding", "kernel", "amplified", "float-contraction", "both-sides", "unexplained",
          "none")

# Operators whose every output value depends on one input value (same quantization grid
# size in and out), where "more steps out than in" means the function magnified them.
VALUE_WISE = frozenset({
    "LOGISTIC", "TANH", "EXP", "LOG", "ELU", "GELU", "HARD_SWISH", "LEAKY_RELU", "RELU", "RELU6",
    "RELU_N1_TO_1", "RELU_0_TO_1", "PRELU", "QUANTIZE", "DEQUANTIZE", "SQRT", "RSQRT", "SQUARE",
    "ABS", "NEG", "SIN", "COS", "CAST", "RESHAPE", "SQUEEZE", "EXPAND_DIMS"})


# --- the data model (contract 3: rendered by simrun/report) ------------------------------
@dataclass
class LayerDiagnosis:
    subgraph: int
    op_index: int
    op_name: str
    tensor_index: int
    tensor_name: str
    depth: int | None
    propagated: LayerStats                  # normal runs, a vs b
    own: LayerStats | None                  # isolated runs, a vs b; None: not isolated
    cause: str                              # one of CAUSES
    evidence: str                           # one sentence: what was measured
    kernel: str | None = None               # kernel family that ran on side b ("CMSIS-NN (mve)")
    kernel_a: str | None = None             # ... and on side a
    not_isolated: str | None = None         # why `own` is None
    variants: dict[str, LayerStats] = field(default_factory=dict)  # variant label -> own stats
    # A pair without the reference: each side's own cause against it (sides.py), side -> cause.
    side_causes: dict[str, str] = field(default_factory=dict)
    # Inherited through a resource variable: "ASSIGN_VARIABLE 0:12 at step 3" (state.py).
    through_state: str | None = None

    @property
    def id(self) -> str:
        return self.propagated.id

    @property
    def label(self) -> str:
        return self.propagated.label

    @property
    def introduces(self) -> bool:
        """The layer computes something different itself (its own error is not zero)."""
        return self.cause in INTRODUCING and self.own is not None and self.own.diverges

    @property
    def impact(self) -> float | None:
        """Propagated error in dequantized units as a share of the tensor's dynamic range."""
        return self.propagated.relative_error

    @property
    def own_impact(self) -> float | None:
        return self.own.relative_error if self.own is not None else None


@dataclass
class PairDiagnosis:
    a: str
    b: str
    reference: str                          # the backend whose values fed the isolated runs
    layers: list[LayerDiagnosis]            # execution order of side a
    outputs: list[LayerStats]               # the model's outputs, propagated
    summary: str = ""

    @property
    def name(self) -> str:
        return f"{self.a} vs {self.b}"

    @property
    def introducing(self) -> list[LayerDiagnosis]:
        return [d for d in self.layers if d.introduces]

    def count(self, cause: str) -> int:
        return sum(d.cause == cause for d in self.layers)

    @property
    def output_impact(self) -> float | None:
        values = [s.relative_error for s in self.outputs if s.relative_error is not None]
        return max(values) if values else None

    def layer(self, key: str) -> LayerDiagnosis:
        """By id ("0:3/12"), tensor name or operator index ("3")."""
        for d in self.layers:
            if key in (d.id, d.tensor_name, str(d.op_index)):
                return d
        raise KeyError(f"{self.name}: no layer {key!r}")


@dataclass
class Diagnosis:
    reference: str
    pairs: list[list[PairDiagnosis]]        # per input, parallel to DiffRun.comparisons[i].pairs
    variants: dict[str, str] = field(default_factory=dict)   # extra isolated runs: label -> why
    failed: dict[str, str] = field(default_factory=dict)     # isolated runs that failed: label -> message
    # The isolated Captures per input (label -> Capture), kept for the reproducer bundles.
    isolated: list[dict[str, Capture]] = field(default_factory=list, repr=False, compare=False)

    def pair(self, input_index: int, a: str, b: str) -> PairDiagnosis:
        for p in self.pairs[input_index]:
            if {p.a, p.b} == {a, b}:
                return p
        raise KeyError(f"no diagnosis of {a} vs {b} for input {input_index}")

    def summaries(self, input_index: int = 0) -> list[str]:
        return [p.summary for p in self.pairs[input_index]]


# --- diagnosing ------------------------------------------------------------------------------
def diagnose_run(run, isolated: list[dict[str, Capture]], reference: str, *,
                 variants: dict[str, str] | None = None, failed: dict[str, str] | None = None) -> Diagnosis:
    """Diagnose every pair of every input; attaches the result to `run.diagnosis` and returns it.
    `run` is a simrun.analysis.diffrun.DiffRun (not imported: it holds the Diagnosis made here)."""
    pairs = [diagnose_input(run.model, cmp, isolated[i], reference, run.versions, failed)
             for i, cmp in enumerate(run.comparisons)]
    explain_reads(run.model, run.captures, run.sequences, run.input_names, pairs)
    run.diagnosis = Diagnosis(reference, pairs, dict(variants or {}), dict(failed or {}), list(isolated))
    return run.diagnosis


def diagnose_input(model, comparison: Comparison, isolated: dict[str, Capture], reference: str,
                   versions: dict | None = None, failed: dict[str, str] | None = None) -> list[PairDiagnosis]:
    """The pairs with the reference first: a pair without it reads its sides' diagnoses (sides.py)."""
    against = AgainstReference(reference)
    order = sorted(range(len(comparison.pairs)),
                   key=lambda i: reference not in (comparison.pairs[i].a, comparison.pairs[i].b))
    done: dict[int, PairDiagnosis] = {}
    for i in order:
        done[i] = diagnose_pair(model, comparison.pairs[i], isolated, reference, versions or {},
                                failed or {}, against)
        against.add(done[i])
    return [done[i] for i in range(len(comparison.pairs))]


def own_errors(model, pair: PairResult, isolated: dict[str, Capture]) -> dict[tuple, LayerStats] | None:
    """The pair's own error per layer key, or None when a side has no isolated run."""
    if pair.a not in isolated or pair.b not in isolated:
        return None
    own = compare_pair(model, pair.a, isolated[pair.a], pair.b, isolated[pair.b])
    return {_key(s): s for s in own.layers}


def wanted_variants(model, comparison: Comparison, isolated: dict[str, Capture]) -> dict[str, str]:
    """Variant label -> why, for the isolated runs the causes of this input still need."""
    wanted: dict[str, str] = {}
    for pair in comparison.pairs:
        own = own_errors(model, pair, isolated) or {}
        for s in own.values():
            if s.compared and s.diverges:
                for side in (pair.a, pair.b):
                    for v in variant_labels(side, not s.integer):
                        if v not in isolated:
                            wanted.setdefault(v, f"to test the cause of {side}'s own error "
                                                 f"(first at {s.id} {s.op_name})")
    return wanted


def diagnose_pair(model, pair: PairResult, isolated: dict[str, Capture], reference: str,
                  versions: dict, failed: dict[str, str], against: AgainstReference | None = None) -> PairDiagnosis:
    own = own_errors(model, pair, isolated)
    missing = next((f"no isolated run of {side}" + (f": {failed[side]}" if side in failed else "")
                    for side in (pair.a, pair.b) if side not in isolated), None)
    by_tensor = {(s.subgraph, s.tensor_index): s for s in pair.layers if s.op_index is not None}
    op_inputs = _op_inputs(model)
    layers = []
    for prop in pair.layers:
        if prop.op_index is None or prop.one_sided:
            continue
        d = LayerDiagnosis(prop.subgraph, prop.op_index, prop.op_name, prop.tensor_index,
                           prop.tensor_name, prop.depth, prop, None, "none", "")
        float_layer = prop.compared and not prop.integer
        d.kernel_a = kernel_family(pair.a, prop.op_name, versions.get(pair.a), float_layer)
        d.kernel = kernel_family(pair.b, prop.op_name, versions.get(pair.b), float_layer)
        o = own.get(_key(prop)) if own is not None else None
        if o is None or not o.compared and not o.layout_differs:
            d.not_isolated = missing or _not_isolated_reason(prop, isolated, pair)
        else:
            d.own = o
        in_delta = _input_delta(prop, op_inputs, by_tensor)
        _classify(d, pair, isolated, in_delta, model, against)
        layers.append(d)
    result = PairDiagnosis(pair.a, pair.b, reference, layers, list(pair.outputs))
    result.summary = summarize(result)
    return result


def _classify(d: LayerDiagnosis, pair: PairResult, isolated: dict[str, Capture], in_delta, model,
              against: AgainstReference | None = None) -> None:
    prop, own = d.propagated, d.own
    unit = _unit(prop)
    if own is None:
        d.cause = "unexplained" if prop.diverges else "none"
        d.evidence = (f"not isolated ({d.not_isolated}); propagated max |Δ| {_num(prop.max_abs_delta)} {unit}"
                      if prop.diverges else f"not isolated ({d.not_isolated}); no propagated error")
        return
    if not own.diverges:
        if not prop.diverges:
            d.cause, d.evidence = "none", "no own or propagated error"
            return
        if _amplifies(d, in_delta, 0):
            d.cause = "amplified"
            d.evidence = (f"own error 0; its inputs differ by up to {_num(in_delta)} step(s) and its "
                          f"output by {_num(prop.max_abs_delta)}: {d.op_name} magnifies them")
        else:
            d.cause = "inherited"
            d.evidence = (f"own error 0 with identical inputs; propagated max |Δ| "
                          f"{_num(prop.max_abs_delta)} {unit} comes from earlier layers")
        return
    own_text = (f"own error {_num(own.max_abs_delta)} {_unit(own)} in {own.mismatched} of {own.count} values"
                if own.compared else f"own output differs in layout ({own.status})")
    if own.compared and own.integer and own.max_abs_delta <= 1 and _amplifies(d, in_delta, own.max_abs_delta):
        d.cause = "amplified"
        d.evidence = (f"{own_text}, but its inputs differ by up to {_num(in_delta)} step(s) and its output "
                      f"by {_num(prop.max_abs_delta)}: {d.op_name} magnifies the inherited difference")
        return
    cause_from_variants(d, pair, isolated, model, own_text, against)


def _amplifies(d: LayerDiagnosis, in_delta, own_delta) -> bool:
    prop = d.propagated
    return (d.op_name in VALUE_WISE and prop.integer and in_delta is not None and in_delta > 0
            and prop.max_abs_delta > in_delta + own_delta)


def _input_delta(prop: LayerStats, op_inputs: dict, by_tensor: dict) -> float | None:
    """Largest propagated |Δ| (steps) over the operator's inputs that earlier layers produced;
    model inputs count 0 (every backend gets the same); None when the model does not say."""
    inputs = op_inputs.get((prop.subgraph, prop.op_index))
    if inputs is None:
        return None
    deltas = [by_tensor[(prop.subgraph, t)].max_abs_delta for t in inputs
              if (prop.subgraph, t) in by_tensor and by_tensor[(prop.subgraph, t)].compared]
    return max(deltas, default=0)


def _op_inputs(model) -> dict[tuple[int, int], tuple[int, ...]]:
    try:
        return {(op.subgraph, op.index): op.inputs for op in model.operators()}
    except AttributeError:      # a model stand-in without operators
        return {}


def _not_isolated_reason(prop: LayerStats, isolated: dict[str, Capture], pair: PairResult) -> str:
    for side in (pair.a, pair.b):
        reasons = (isolated[side].meta or {}).get("not_isolated") or {}
        reason = reasons.get(f"{prop.subgraph}:{prop.op_index}")
        if reason:
            return f"{side}: {reason}"
    return "the isolated runs did not capture this layer"


def _key(s: LayerStats) -> tuple:
    return (s.subgraph, s.op_index, s.tensor_index)

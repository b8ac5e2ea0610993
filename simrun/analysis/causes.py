"""The cause of a layer's own error, from the isolated runs of numerics variants.

simrun.analysis.diagnose decides first whether a layer has an own error at all, and whether a
value-wise operator amplifies what it was given; what is left is an operator computing something
different itself, and this module finds why, in this order (first match wins):
firmware variants (the other rounding mode, -ffp-contract=off) that remove it; TFLM's kernels in
both rounding modes reproducing both sides of a desktop pair; LiteRT without XNNPACK agreeing
with the other side; each side's own pair with the reference (simrun.analysis.sides) when both
sides differ from it; then the weaker readings (it persists in the other rounding mode: kernel).
"""
from __future__ import annotations

from ..capture import Capture
from . import sides
from .compare import LayerStats, PairResult, layer_stats
from .numerics import NODELEGATE, firmware_of, variant_labels
from .sides import AgainstReference


def cause_from_variants(d, pair: PairResult, isolated: dict[str, Capture], model, own_text: str,
                        against: AgainstReference | None = None) -> None:
    """Firmware variants first (they switch one numerics choice of the same code), then
    TFLM's kernels in both rounding modes reproducing both sides of a desktop pair, then
    LiteRT without XNNPACK."""
    float_layer = d.own.compared and not d.own.integer
    tests = []
    for side, other in ((pair.a, pair.b), (pair.b, pair.a)):
        for v in variant_labels(side, float_layer):
            s = _layer_stats(model, other, isolated.get(other), v, isolated.get(v), d)
            if s is not None:
                d.variants[v] = s
                tests.append((side, v, s))
    firmware = [t for t in tests if t[1] != NODELEGATE]
    desktop = [t for t in tests if t[1] == NODELEGATE]
    vanished = [t for t in firmware if not t[2].diverges]
    if vanished:
        side, v, _ = vanished[0]
        if float_layer:
            d.cause = "float-contraction"
            d.evidence = (f"{own_text}; isolated in {v} (built -ffp-contract=off) it is 0: fused "
                          f"multiply-add contraction in {side}'s firmware changes the float result")
        else:
            d.cause = "rounding"
            mode = firmware_of(v).rounding
            d.evidence = (f"{own_text}; isolated in {v} it is 0: requantization rounding differs "
                          f"({mode}-rounding firmware removes it)")
        return
    cross = None if float_layer else _cross_rounding(d, pair, isolated, model)
    if cross:
        double, single, x, y = cross
        d.cause = "rounding"
        d.evidence = (f"{own_text}; on the same inputs TFLM's kernels reproduce both: {double} gives "
                      f"{x}'s output, {single} gives {y}'s (single-rounding firmware removes it)")
        d.variants[single] = _layer_stats(model, y, isolated[y], single, isolated[single], d)
        return
    if desktop and not desktop[0][2].diverges:
        side, v, _ = desktop[0]
        d.cause = "kernel"
        d.evidence = (f"{own_text}; {v} (LiteRT's own kernels, no XNNPACK) agrees with "
                      f"{_other(pair, side)} here: the XNNPACK delegate computes this layer differently")
        _set_family(d, pair, side, "XNNPACK delegate (LiteRT default)")
        return
    # The pair's own variants found nothing that removes it: each side's pair with the reference
    # may (a device's FMA contraction on one side, XNNPACK's summation on the other).
    if sides.both_sides(d, pair, against, own_text):
        return
    if firmware:
        side, v, s = firmware[0]
        if not float_layer:
            d.cause = "kernel"
            d.evidence = (f"{own_text}; it persists in the other rounding mode ({v}: max |Δ| "
                          f"{_num(s.max_abs_delta)}): {d.kernel_a} and {d.kernel} compute it differently")
        elif not sides.one_side(d, pair, against, own_text):
            d.cause = "unexplained"
            d.evidence = (f"{own_text}; it persists without FMA contraction ({v}: max |Δ| "
                          f"{_num(s.max_abs_delta)}); kernels {d.kernel_a} vs {d.kernel}")
        return
    # One side equal to the reference: the other's own cause against it, before the guesses below.
    if sides.one_side(d, pair, against, own_text):
        return
    if {pair.a, pair.b} == {"tflite-reference", NODELEGATE}:
        # One LiteRT, one model, only the op resolver differs: its optimized built-in kernels.
        d.cause = "kernel"
        d.evidence = (f"{own_text}; the same LiteRT with its optimized built-in kernels instead of its "
                      f"reference kernels computes this layer differently")
        return
    if desktop:
        side, v, s = desktop[0]
        d.cause = "kernel"
        d.evidence = (f"{own_text}; LiteRT's own kernels without XNNPACK ({v}) differ too "
                      f"(max |Δ| {_num(s.max_abs_delta)}): LiteRT's optimized kernels compute it differently")
        _set_family(d, pair, side, "LiteRT optimized (built-in and XNNPACK)")
        return
    d.cause = "unexplained"
    d.evidence = (f"{own_text}; no variant run could test a cause (kernels {d.kernel_a} vs {d.kernel})")


def _cross_rounding(d, pair: PairResult, isolated: dict[str, Capture], model):
    """For a pair without a target: a target whose double-rounding isolated run equals one side
    and whose single-rounding run equals the other -> (double, single, side, other side)."""
    if firmware_of(pair.a) or firmware_of(pair.b):
        return None
    for double in isolated:
        variant = firmware_of(double)
        single = variant.other_rounding().label if variant and not variant.single_rounding else None
        if single not in isolated:
            continue
        for x, y in ((pair.a, pair.b), (pair.b, pair.a)):
            e1 = _layer_stats(model, x, isolated.get(x), double, isolated[double], d)
            e2 = _layer_stats(model, y, isolated.get(y), single, isolated[single], d)
            if e1 is not None and e2 is not None and not e1.diverges and not e2.diverges:
                return double, single, x, y
    return None


def _set_family(d, pair: PairResult, side: str, family: str) -> None:
    if side == pair.b:
        d.kernel = family
    else:
        d.kernel_a = family


def _other(pair: PairResult, side: str) -> str:
    return pair.b if side == pair.a else pair.a


def _layer_stats(model, a: str, cap_a: Capture | None, b: str, cap_b: Capture | None,
                 d) -> LayerStats | None:
    """One layer of two isolated Captures compared (None: a side lacks it)."""
    if cap_a is None or cap_b is None:
        return None
    ta = _find(cap_a, d)
    tb = _find(cap_b, d)
    if ta is None or tb is None:
        return None
    return layer_stats(model, (d.subgraph, d.op_index, d.tensor_index), d.op_name, d.depth, ta, tb)


def _find(cap: Capture, d):
    for rec in reversed(cap.ops):
        if rec.key == (d.subgraph, d.op_index):
            return next((t for t in rec.outputs if t.index == d.tensor_index), None)
    return None



def _unit(s: LayerStats) -> str:
    if not s.integer:
        return "(float)"
    return "step" if s.max_abs_delta == 1 else "steps"


def _num(x) -> str:
    return "?" if x is None else f"{x:.3g}" if isinstance(x, float) and not float(x).is_integer() else f"{x:g}"

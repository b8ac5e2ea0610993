"""What to do about each cause the diagnosis names, and what simrun checked of it.

    wanted = rounding_checks_wanted(run)            # [(variant, other side)]: whole-model runs
    checks = {key: check_whole_model(model, variant, variant_caps, other, other_caps)}
    run.remedies = remedies(run, checks)            # -> [Remedy], one per backend pair and cause

Pure functions over the DiffRun and its Diagnosis (simrun.analysis.diagnose); the one extra
run they ask for (the whole model in the other-rounding firmware, once per firmware variant)
is made by simrun.pipeline.remedies. Per cause:
- rounding: build the firmware with the other requantization rounding; checked end to end:
  that firmware's whole-model run equals the other side on every layer of these inputs (or
  where it still differs);
- float-contraction: build with -ffp-contract=off; checked per layer by the isolated runs;
- kernel: which other kernel implementation agrees on the same inputs (from the isolated
  runs the diagnosis made), the kernel that computes it differently and where to report
  it, with the reproducer bundle of its layers (simrun.report.repro);
- amplified: the upstream layer whose small difference the value-wise operator magnifies,
  and the layer that introduces that difference: removing it there removes this too;
- both-sides: a pair without the reference whose sides each differ from it: each side's own
  remedies, in its pair with the reference;
- unexplained: the reproducer, for the kernel's maintainers to look at.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .compare import LayerStats, compare_pair, layer_stats
from .numerics import firmware_of, variant_labels
from .summary import INTRODUCING

# Where to report a kernel family's difference (the first matching prefix wins).
UPSTREAM = (("CMSIS-NN", "CMSIS-NN (github.com/ARM-software/CMSIS-NN)"),
            ("TFLM", "TFLite Micro (github.com/tensorflow/tflite-micro)"),
            ("XNNPACK", "XNNPACK (github.com/google/XNNPACK)"),
            ("LiteRT", "LiteRT (github.com/google-ai-edge/LiteRT)"),
            ("TFLite", "LiteRT (github.com/google-ai-edge/LiteRT)"))

# How a remedy was checked: end to end (the whole model), per layer (isolated runs), or not.
STATUSES = ("verified", "refuted", "per-layer", "not checked")


@dataclass
class WholeModelCheck:
    """A firmware variant's normal (not isolated) run compared with the side it should equal."""
    variant: str
    other: str
    inputs: int = 0
    equal: bool | None = None               # None: it did not run (see `message`)
    first: LayerStats | None = None         # earliest layer that still differs
    max_abs_delta: float = 0.0
    mismatch_ratio: float = 0.0             # largest over the inputs
    message: str | None = None              # why it did not run
    from_matrix: bool = False               # the variant was in the backend matrix already


@dataclass
class Remedy:
    a: str
    b: str
    cause: str                              # a cause of simrun.analysis.diagnose.CAUSES
    layers: list[str]                       # "0:3/12 CONV_2D", in execution order
    action: str                             # what to do: one sentence
    check: str                              # what simrun measured of it: one sentence
    status: str                             # one of STATUSES
    variant: str | None = None              # the backend that realises the action (rounding, kernel)
    # (subgraph, op_index, op_name) of the layers a reproducer bundle shows (report/repro.py)
    repro: list[tuple[int, int, str]] = field(default_factory=list)

    @property
    def pair(self) -> str:
        return f"{self.a} vs {self.b}"

    @property
    def text(self) -> str:
        return f"{self.pair}: {self.cause}: {self.action}; {self.check}"


# --- the rounding check's runs -----------------------------------------------------------------
def rounding_checks_wanted(run) -> list[tuple[str, str]]:
    """(variant, other side) per rounding remedy: the firmware whose isolated run removed a
    pair's own error, to be run whole and compared with the side it then should equal."""
    wanted: list[tuple[str, str]] = []
    for (a, b), layers in _introducing_by_pair(run).items():
        key = _rounding_variant(run, a, b, [x for x in layers if x[1].cause == "rounding"])
        if key is not None and key not in wanted:
            wanted.append(key)
    return wanted


def check_whole_model(model, variant: str, variant_caps, other: str, other_caps, *,
                      from_matrix: bool = False) -> WholeModelCheck:
    """Compare the variant's Captures (one per input) with the other side's, every layer."""
    check = WholeModelCheck(variant, other, len(other_caps), True, from_matrix=from_matrix)
    for cap_v, cap_o in zip(variant_caps, other_caps):
        pair = compare_pair(model, other, cap_o, variant, cap_v)
        differing = [s for s in pair.layers + pair.outputs if s.diverges or s.layout_differs]
        if not differing:
            continue
        check.equal = False
        check.max_abs_delta = max(check.max_abs_delta, pair.max_abs_delta)
        check.mismatch_ratio = max(check.mismatch_ratio, pair.mismatch_ratio)
        first = pair.first_divergent or differing[0]
        if check.first is None or (first.depth or 0) < (check.first.depth or 0):
            check.first = first
    return check


def not_run(variant: str, other: str, message: str) -> WholeModelCheck:
    return WholeModelCheck(variant, other, message=message)


# --- the remedies --------------------------------------------------------------------------------
def remedies(run, checks: dict[tuple[str, str], WholeModelCheck] | None = None) -> list[Remedy]:
    """One Remedy per backend pair and cause of its introducing (and amplifying) layers."""
    checks = checks or {}
    out = []
    for (a, b), layers in _introducing_by_pair(run).items():
        by_cause: dict[str, list] = {}
        for n, d in layers:
            by_cause.setdefault(d.cause, []).append((n, d))
        for cause, members in by_cause.items():
            make = _MAKERS.get(cause)
            if make is None:
                continue
            if cause == "kernel":
                # One remedy per pair of kernel families: each has its own place to report to.
                families: dict[tuple, list] = {}
                for n, d in members:
                    families.setdefault((d.kernel_a, d.kernel), []).append((n, d))
                out += [make(run, a, b, group, checks) for group in families.values()]
            else:
                out.append(make(run, a, b, members, checks))
    return out


def _introducing_by_pair(run) -> dict[tuple[str, str], list]:
    """(a, b) -> [(input position, LayerDiagnosis)]: each layer once, on the first input where
    it introduces (or amplifies) error, in execution order."""
    diagnosis = getattr(run, "diagnosis", None)
    out: dict[tuple[str, str], list] = {}
    seen: set = set()
    if diagnosis is None:
        return out
    for n, pairs in enumerate(diagnosis.pairs):
        for p in pairs:
            for d in p.layers:
                if not (d.introduces or d.cause == "amplified") or (p.a, p.b, d.id) in seen:
                    continue
                seen.add((p.a, p.b, d.id))
                out.setdefault((p.a, p.b), []).append((n, d))
    for members in out.values():
        members.sort(key=lambda x: (x[1].depth is None, x[1].depth or 0))
    return out


def _rounding_variant(run, a: str, b: str, members) -> tuple[str, str] | None:
    """The (variant, other side) that removed the own error of the first rounding layer."""
    for n, d in members:
        for v, s in d.variants.items():
            if firmware_of(v) is None or s.diverges:
                continue
            if v in variant_labels(a, False):
                return v, b
            if v in variant_labels(b, False):
                return v, a
            # Desktop pair: TFLM's kernels in the two rounding modes reproduce both sides;
            # this variant equals whichever side it reproduced.
            iso = run.diagnosis.isolated[n] if n < len(run.diagnosis.isolated) else {}
            for side in (a, b):
                st = _isolated_stats(run.model, iso, side, v, d)
                if st is not None and not st.diverges:
                    return v, side
    return None


def _rounding(run, a, b, members, checks) -> Remedy:
    key = _rounding_variant(run, a, b, members)
    names = _layer_names(members)
    if key is None:
        return Remedy(a, b, "rounding", names, "build the firmware with the other requantization rounding",
                      "no firmware variant's run is on record", "not checked")
    variant, other = key
    fw = firmware_of(variant)
    if fw.single_rounding:
        how = ("build TFLM with TFLITE_SINGLE_ROUNDING=1 and CMSIS-NN with CMSIS_NN_USE_SINGLE_ROUNDING "
               f"(simrun build --cpu {fw.cpu} --kernels {fw.kernels} --rounding single)")
    else:
        how = ("build TFLM without TFLITE_SINGLE_ROUNDING and CMSIS-NN without CMSIS_NN_USE_SINGLE_ROUNDING "
               f"(double rounding, the default: simrun build --cpu {fw.cpu} --kernels {fw.kernels})")
    if variant not in (a, b):
        how += f", as {variant}"
    check = checks.get(key)
    if check is None or check.equal is None:
        why = check.message if check is not None else "no whole-model run"
        return Remedy(a, b, "rounding", names, how,
                      f"isolated, {variant} removes the own error of {_count(names)}; not checked end to end: {why}",
                      "per-layer", variant)
    inputs = "this input" if check.inputs == 1 else f"these {check.inputs} inputs"
    source = " (its run in the matrix)" if check.from_matrix else ""
    if check.equal:
        text = f"{variant}{source} equals {other} on every layer of {inputs}"
        return Remedy(a, b, "rounding", names, how, text, "verified", variant)
    first = check.first
    where = "only in the final outputs" if first is None or first.op_index is None else \
        f"from {first.id} {first.op_name}" + (f" (#{first.depth})" if first.depth is not None else "") + " on"
    others = Counter(d.cause for _, d in _introducing_by_pair(run).get((a, b), []) if d.cause != "rounding")
    rest = ("; the pair's other causes remain: " + ", ".join(f"{cause} on {_n_layers(n)}"
                                                             for cause, n in others.items())
            if others else "")
    text = (f"{variant}{source} still differs from {other} {where}: up to {check.max_abs_delta:g} "
            f"step(s), {check.mismatch_ratio:.2%} of values on {inputs}{rest}")
    return Remedy(a, b, "rounding", names, how, text, "refuted", variant)


def _float_contraction(run, a, b, members, checks) -> Remedy:
    variants = sorted({v for _, d in members for v, s in d.variants.items()
                       if firmware_of(v) and firmware_of(v).no_fp_contract and not s.diverges})
    fw = firmware_of(variants[0]) if variants else None
    how = "build the firmware with -ffp-contract=off" + (
        f" (simrun build --cpu {fw.cpu} --kernels {fw.kernels} --fp-contract off)" if fw else "")
    text = (f"isolated, {', '.join(variants)} removes the own error of {_count(_layer_names(members))}"
            if variants else "no -ffp-contract=off run is on record")
    return Remedy(a, b, "float-contraction", _layer_names(members), how, text,
                  "per-layer" if variants else "not checked", variants[0] if variants else None)


def _kernel(run, a, b, members, checks) -> Remedy:
    """Which kernel implementations agree with each side, on the inputs the isolated runs fed."""
    agree = {a: None, b: None}          # side -> labels agreeing with it on every kernel layer
    for n, d in members:
        iso = run.diagnosis.isolated[n] if n < len(run.diagnosis.isolated) else {}
        for side in (a, b):
            # A numerics variant of the side itself (its other rounding mode, LiteRT without
            # XNNPACK) runs the same kernel: its agreement says nothing about which one is off.
            own = set(variant_labels(side, False)) | set(variant_labels(side, True))
            labels = {label for label in iso if label not in (a, b) and label not in own
                      and (st := _isolated_stats(run.model, iso, side, label, d)) is not None
                      and st.compared and not st.diverges}
            agree[side] = labels if agree[side] is None else agree[side] & labels
    agree = {side: sorted(labels or ()) for side, labels in agree.items()}
    # The side no other implementation agrees with computes it differently.
    odd = b if agree[a] and not agree[b] else a if agree[b] and not agree[a] else None
    first = members[0][1]
    family = (first.kernel if odd == b else first.kernel_a) if odd else None
    names = _layer_names(members)
    repro = [(d.subgraph, d.op_index, d.op_name) for _, d in members]
    if odd is None:
        why = (f"{first.kernel_a} ({a}) and {first.kernel} ({b}) compute {_count(names)} differently"
               + ("" if agree[a] or agree[b] else "; no other implementation ran to tell which is off"))
        return Remedy(a, b, "kernel", names, f"report it to {_upstream(first.kernel)} with the reproducer",
                      why, "per-layer" if agree[a] or agree[b] else "not checked", repro=repro)
    good = a if odd == b else b
    alt = agree[good][0]
    s = "" if len(agree[good]) > 1 else "s"
    how = (f"run a kernel that agrees ({', '.join(agree[good])} agree{s} with {good}), or report "
           f"{family} to {_upstream(family)} with the reproducer")
    text = (f"isolated on the same inputs, {', '.join(agree[good])} equal{s} {good} on {_count(names)} "
            f"where {odd} ({family}) does not")
    return Remedy(a, b, "kernel", names, how, text, "per-layer", alt, repro)


def _amplified(run, a, b, members, checks) -> Remedy:
    """Trace each amplifying layer's input back to the layer that introduces the difference."""
    pd = {}
    sources, origins = [], []
    for n, d in members:
        p = pd.get(n) or run.diagnosis.pair(n, a, b)
        pd[n] = p
        src, origin = _trace(run.model, p, d)
        if src is not None:
            sources.append(f"{d.op_name} {d.id} magnifies the {_steps(src.propagated.max_abs_delta)} "
                           f"difference of its input {src.id} {src.op_name}")
            if origin is not None and origin.id not in {o.id for o in origins}:
                origins.append(origin)
    names = _layer_names(members)
    if origins:
        where = ", ".join(f"{o.id} {o.op_name} ({o.cause})" for o in origins)
        how = f"remove the difference where it starts: {where} (its remedy above); the magnified one goes with it"
    else:
        how = "remove the difference of its inputs upstream; the operator itself computes what the reference does"
    more = f" (+{len(sources) - 2} more)" if len(sources) > 2 else ""
    text = "; ".join(sources[:2]) + more if sources else \
        f"isolated on the reference's inputs, {_count(names)} add at most 1 step themselves"
    return Remedy(a, b, "amplified", names, how, text, "per-layer")


def _unexplained(run, a, b, members, checks) -> Remedy:
    names = _layer_names(members)
    first = members[0][1]
    return Remedy(a, b, "unexplained", names,
                  f"report it with the reproducer: no run simrun made tells its cause ({first.evidence})",
                  f"not isolated or no variant to test on {_count(names)}", "not checked",
                  repro=[(d.subgraph, d.op_index, d.op_name) for _, d in members])


def _both_sides(run, a, b, members, checks) -> Remedy:
    """Each side differs from the reference on its own: its remedy is in its own pair with it."""
    ref = run.diagnosis.reference
    causes: dict[str, Counter] = {a: Counter(), b: Counter()}
    for _, d in members:
        for side, cause in d.side_causes.items():
            causes.setdefault(side, Counter())[cause] += 1
    parts = [f"{side} vs {ref}: " + ", ".join(f"{cause} on {_n_layers(n)}" for cause, n in found.most_common())
             for side, found in causes.items() if found]
    names = _layer_names(members)
    return Remedy(a, b, "both-sides", names,
                  f"remove each side's own error against {ref} (the remedies of {a} vs {ref} and {b} vs {ref})",
                  f"isolated on {ref}'s inputs, both sides differ from it on {_count(names)}"
                  + (f" ({'; '.join(parts)})" if parts else ""), "per-layer")


_MAKERS = {"both-sides": _both_sides, "rounding": _rounding, "float-contraction": _float_contraction, "kernel": _kernel,
           "amplified": _amplified, "unexplained": _unexplained}


def _trace(model, p, d):
    """(the input layer with the largest difference, the layer that introduces it) of layer d."""
    try:
        inputs = {(op.subgraph, op.index): op.inputs for op in model.operators()}
    except AttributeError:
        return None, None
    by_tensor = {(x.subgraph, x.tensor_index): x for x in p.layers}
    current, src, guard = d, None, 0
    while guard < len(p.layers):
        guard += 1
        feeding = [by_tensor[(current.subgraph, t)] for t in inputs.get((current.subgraph, current.op_index), ())
                   if (current.subgraph, t) in by_tensor]
        feeding = [x for x in feeding if x.propagated.diverges]
        if not feeding:
            return src, None
        up = max(feeding, key=lambda x: x.propagated.max_abs_delta)
        src = src or up
        if up.cause in INTRODUCING:
            return src, up
        current = up
    return src, None


def _isolated_stats(model, iso: dict, a: str, b: str, d) -> LayerStats | None:
    """Layer d of two isolated Captures compared (None: a side lacks it)."""
    ca, cb = iso.get(a), iso.get(b)
    if ca is None or cb is None:
        return None
    ta, tb = _find(ca, d), _find(cb, d)
    if ta is None or tb is None:
        return None
    return layer_stats(model, (d.subgraph, d.op_index, d.tensor_index), d.op_name, d.depth, ta, tb)


def _find(cap, d):
    for rec in reversed(cap.ops):
        if rec.key == (d.subgraph, d.op_index):
            return next((t for t in rec.outputs if t.index == d.tensor_index), None)
    return None


def _layer_names(members) -> list[str]:
    return [f"{d.id} {d.op_name}" for _, d in members]


def _count(names: list[str]) -> str:
    return f"its {len(names)} layers" if len(names) > 1 else f"{names[0]}"


def _n_layers(n: int) -> str:
    return f"{n} layer" + ("" if n == 1 else "s")


def _steps(x: float) -> str:
    return f"{x:g}-step" if float(x).is_integer() else f"{x:.3g}"


def _upstream(family: str | None) -> str:
    for prefix, where in UPSTREAM:
        if family and family.startswith(prefix):
            return where
    return family or "the kernel's maintainers"

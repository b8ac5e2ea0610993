"""The one-sentence diagnosis of a pair (simrun.analysis.diagnose.PairDiagnosis), as reports lead with it."""
from __future__ import annotations

from collections import Counter

from .numerics import firmware_of

# Causes of a layer that computes something different itself (diagnose.INTRODUCING).
INTRODUCING = ("rounding", "kernel", "float-contraction", "both-sides", "unexplained")


def summarize(p) -> str:
    """"A vs B: 4 of 14 layers introduce error, all CONV_2D, cause rounding (single-rounding
    firmware removes it); the other 10 inherit it; output max error 0.8% of range"."""
    n = len(p.layers)
    intro = [d for d in p.layers if d.cause in INTRODUCING and d.own is not None]
    parts = []
    if not any(d.propagated.diverges or (d.own is not None and d.own.diverges) for d in p.layers) \
            and not any(s.diverges for s in p.outputs):
        return f"{p.name}: bit-exact on all {n} layers" if n != 1 else f"{p.name}: bit-exact on its one layer"
    if intro:
        ops = Counter(d.op_name for d in intro)
        what = f"all {next(iter(ops))}" if len(ops) == 1 else ", ".join(f"{k} x{v}" for k, v in ops.most_common())
        causes = Counter(d.cause for d in intro)
        if len(causes) == 1:
            cause = next(iter(causes))
            why = f"cause {cause}" + _cause_note(cause, intro)
        else:
            why = "causes " + ", ".join(f"{c} {k}" for c, k in causes.most_common())
        parts.append(f"{len(intro)} of {n} layers introduce error, {what}, {why}")
    else:
        parts.append(f"no layer of {n} introduces error")
    inherited, amplified = p.count("inherited"), p.count("amplified")
    if inherited:
        parts.append(f"the other {inherited} inherit it" if intro and inherited + len(intro) == n
                     else f"{inherited} inherit it")
    if amplified:
        ops = sorted({d.op_name for d in p.layers if d.cause == "amplified"})
        parts.append(f"{amplified} amplify an inherited difference ({', '.join(ops)})")
    blind = [d for d in p.layers if d.own is None and d.propagated.diverges]
    if blind:
        parts.append(f"{len(blind)} differing layers not isolated")
    impact = p.output_impact
    if impact is not None:
        parts.append(f"output max error {impact:.2%} of range" if impact else "outputs identical")
    return f"{p.name}: " + "; ".join(parts)


def _cause_note(cause: str, intro: list) -> str:
    if cause == "rounding":
        modes = {firmware_of(v).rounding for d in intro for v, s in d.variants.items()
                 if firmware_of(v) and not s.diverges}
        return f" ({'/'.join(sorted(modes))}-rounding firmware removes it)" if modes else ""
    if cause == "float-contraction":
        return " (firmware built -ffp-contract=off removes it)"
    if cause == "both-sides":
        pairs = sorted({", ".join(f"{side}: {c}" for side, c in d.side_causes.items()) for d in intro})
        return f" ({'; '.join(pairs)})" if pairs else ""
    if cause == "kernel":
        families = sorted({d.kernel for d in intro if d.kernel})
        return f" ({', '.join(families)})" if families else ""
    return ""

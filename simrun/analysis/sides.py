"""A pair without the reference, both of whose sides compute a layer differently from it.

Isolated runs feed every backend the reference's values, so for a pair (a, b) that does not
include the reference, a layer's own error a-vs-b is a's own error against the reference
combined with b's. The variant runs of the pair itself cannot untangle that: switching off
FMA contraction on a device still leaves tflite-optimized's XNNPACK summation on the other side,
and LiteRT without XNNPACK still leaves the device's contraction. Each side's own cause is known
from its own pair with the reference, diagnosed first (diagnose.diagnose_input orders them so);
this module reads those and names each side's.

Pure functions over LayerDiagnosis objects (duck-typed: diagnose.py imports this module).
"""
from __future__ import annotations

from .numerics import firmware_of

# Causes a side's own error against the reference can be explained by.
KNOWN = ("rounding", "kernel", "float-contraction")


class AgainstReference:
    """Each backend's layer diagnoses in its pair with the reference, by layer id."""

    def __init__(self, reference: str):
        self.reference = reference
        self._by_side: dict[str, dict[str, object]] = {}
        self._is_b: dict[str, bool] = {}          # the side is side b of its reference pair

    def add(self, pair_diagnosis) -> None:
        """Keep a diagnosed (reference, x) pair's layers under x."""
        p = pair_diagnosis
        if self.reference not in (p.a, p.b) or p.a == p.b:
            return
        side = p.b if p.a == self.reference else p.a
        self._by_side[side] = {d.id: d for d in p.layers}
        self._is_b[side] = side == p.b

    def layer(self, side: str, layer_id: str):
        """The side's diagnosis of this layer against the reference (None: not diagnosed)."""
        return self._by_side.get(side, {}).get(layer_id)

    def family(self, side: str, layer_id: str) -> str | None:
        """The kernel family that ran the layer on `side`, as its pair with the reference says."""
        d = self.layer(side, layer_id)
        if d is None:
            return None
        return d.kernel if self._is_b[side] else d.kernel_a

    def differing(self, a: str, b: str, layer_id: str):
        """(side, its layer diagnosis against the reference) for each side of (a, b) whose own
        error against the reference is not zero; None when either side lacks that diagnosis
        or the pair includes the reference (its own error is already one side's)."""
        if self.reference in (a, b):
            return None
        found = []
        for side in (a, b):
            d = self.layer(side, layer_id)
            if d is None or d.own is None:
                return None
            if d.own.diverges:
                found.append((side, d))
        return found


def both_sides(d, pair, against: AgainstReference | None, own_text: str) -> bool:
    """Label `d` (pair (a, b), own error not zero) "both-sides" when a and b each differ from the
    reference at this layer for a known cause; True when it did."""
    found = against.differing(pair.a, pair.b, d.id) if against is not None else None
    if not found or len(found) != 2 or any(x.cause not in KNOWN for _, x in found):
        return False
    d.cause = "both-sides"
    d.side_causes = {side: x.cause for side, x in found}
    d.evidence = (f"{own_text}; both sides differ from {against.reference} here, each for its own "
                  f"reason: " + "; ".join(f"{side}: {phrase(x, against.family(side, d.id))}"
                                    for side, x in found))
    for side, _ in found:
        _take_family(d, pair, side, against.family(side, d.id))
    return True


def one_side(d, pair, against: AgainstReference | None, own_text: str) -> bool:
    """When no variant of the pair explains `d`: if one side equals the reference at this layer
    and the other's own error against it has a known cause, that cause is the pair's."""
    found = against.differing(pair.a, pair.b, d.id) if against is not None else None
    if not found or len(found) != 1 or found[0][1].cause not in KNOWN:
        return False
    side, x = found[0]
    other = pair.b if side == pair.a else pair.a
    d.cause = x.cause
    d.side_causes = {side: x.cause}
    d.evidence = (f"{own_text}; {other} equals {against.reference} here, so it is {side}'s own error "
                  f"against {against.reference}: {phrase(x, against.family(side, d.id))}")
    _take_family(d, pair, side, against.family(side, d.id))
    return True


def phrase(x, family: str | None) -> str:
    """A side's cause in a few words: "kernel (XNNPACK delegate (LiteRT default))"."""
    if x.cause == "float-contraction":
        return "float-contraction (fused multiply-add in its firmware; -ffp-contract=off removes it)"
    if x.cause == "rounding":
        modes = sorted({firmware_of(v).rounding for v, s in x.variants.items()
                        if firmware_of(v) and not s.diverges})
        return "rounding" + (f" ({'/'.join(modes)}-rounding firmware removes it)" if modes else
                             " (requantization rounding)")
    return f"kernel ({family})" if family else "kernel"


def _take_family(d, pair, side: str, family: str | None) -> None:
    if not family:
        return
    if side == pair.b:
        d.kernel = family
    else:
        d.kernel_a = family

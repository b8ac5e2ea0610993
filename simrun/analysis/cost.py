"""What each target backend cost: instructions executed per operator, and memory.

Built from the Captures of a diff (`summarize`), read by the reports and the
Robot library. Instruction counts are those of `simrun.device.cost` (exact,
identical on every run of the same firmware and input); they are
instructions executed, not cycles. Memory figures come from Capture.meta
("arena_used", "model_bytes", "firmware_text", "firmware_data"), whichever the
target session put there.

Variant comparisons pair the target backends of one CPU that differ in exactly
one thing: the kernels (reference vs cmsis-nn) or one build option
(double vs single rounding, ...). The first of a pair is the reference
kernels / the default build, so `ratio` < 1 means the second is cheaper.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..backend_id import BackendId

MEMORY_KEYS = ("arena_used", "model_bytes", "firmware_text", "firmware_data")


@dataclass
class LayerCost:
    subgraph: int
    index: int
    op_name: str
    instructions: int | None

    @property
    def id(self) -> str:
        return f"{self.subgraph}:{self.index}"


@dataclass
class BackendCost:
    backend: str
    layers: list[LayerCost]                 # the first input's operators, in execution order
    totals: list[int | None]                # instructions of the whole inference, per input
    memory: dict[str, int] = field(default_factory=dict)

    @property
    def counted(self) -> bool:
        return any(t is not None for t in self.totals)

    @property
    def total(self) -> int | None:
        return self.totals[0] if self.totals else None

    @property
    def varies_with_input(self) -> bool:
        return len({t for t in self.totals if t is not None}) > 1

    def by_op_type(self) -> dict[str, tuple[int, int]]:
        """op name -> (operators, instructions), heaviest first."""
        out: dict[str, list[int]] = {}
        for layer in self.layers:
            if layer.instructions is not None:
                entry = out.setdefault(layer.op_name, [0, 0])
                entry[0] += 1
                entry[1] += layer.instructions
        return {k: (v[0], v[1]) for k, v in sorted(out.items(), key=lambda kv: -kv[1][1])}

    def layer(self, ref: str) -> LayerCost:
        """A layer by id ("0:3"), by index ("3"), or the only layer of an op type ("CONV_2D")."""
        if ref.isdigit():
            ref = f"0:{ref}"
        hits = [lc for lc in self.layers if lc.id == ref] or [lc for lc in self.layers if lc.op_name == ref]
        if len(hits) != 1:
            known = ", ".join(f"{lc.id} {lc.op_name}" for lc in self.layers[:12])
            raise KeyError(f"{self.backend}: {'no' if not hits else 'more than one'} layer {ref!r} "
                           f"(layers: {known}{' ...' if len(self.layers) > 12 else ''})")
        return hits[0]


@dataclass
class VariantCost:
    """Two target variants of one CPU side by side."""
    cpu: str
    a: str
    b: str
    differ_in: str                          # "kernels" or the build option, e.g. "single-rounding"
    by_op_type: dict[str, tuple[int | None, int | None]]   # op name -> (a, b) instructions
    total_a: int | None
    total_b: int | None

    @staticmethod
    def ratio(a: int | None, b: int | None) -> float | None:
        return b / a if a and b is not None else None

    @property
    def total_ratio(self) -> float | None:
        return self.ratio(self.total_a, self.total_b)


@dataclass
class CostSummary:
    backends: list[BackendCost]
    variants: list[VariantCost]

    def backend(self, label: str) -> BackendCost:
        for b in self.backends:
            if b.backend == label:
                return b
        raise KeyError(f"no cost for backend {label!r} (have: {', '.join(b.backend for b in self.backends)})")

    @property
    def counted(self) -> bool:
        return any(b.counted for b in self.backends)


def _variant_key(label: str) -> tuple[str, str, frozenset[str]] | None:
    """(cpu, kernels, build-option suffixes) of a target label; None for any other backend."""
    found = BackendId.lookup(label)
    if found is None or found.variant is None:
        return None
    v = found.variant
    return v.cpu, v.kernels, frozenset(v.suffixes)


def summarize(captures: dict[str, list]) -> CostSummary | None:
    """Cost of every target backend (label -> one Capture per input); None without targets."""
    backends = []
    for label, caps in captures.items():
        if _variant_key(label) is None or not caps:
            continue
        first = caps[0]
        layers = [LayerCost(r.subgraph, r.index, r.op_name, getattr(r, "instructions", None)) for r in first.ops]
        totals = [c.meta.get("instructions_total") for c in caps]
        memory = {k: int(first.meta[k]) for k in MEMORY_KEYS if isinstance(first.meta.get(k), (int, float))}
        backends.append(BackendCost(label, layers, totals, memory))
    if not backends:
        return None
    return CostSummary(backends, _variants(backends))


def _variants(backends: list[BackendCost]) -> list[VariantCost]:
    out = []
    parsed = [(b, _variant_key(b.backend)) for b in backends if b.counted]
    for i, (a, (cpu_a, k_a, opts_a)) in enumerate(parsed):
        for b, (cpu_b, k_b, opts_b) in parsed[i + 1:]:
            if cpu_a != cpu_b:
                continue
            if k_a != k_b and opts_a == opts_b:
                differ = "kernels"
                first, second = (a, b) if k_a == "reference" or (k_b != "reference" and k_a < k_b) else (b, a)
            elif k_a == k_b and len(opts_a ^ opts_b) == 1:
                differ = next(iter(opts_a ^ opts_b))
                first, second = (a, b) if len(opts_a) < len(opts_b) else (b, a)
            else:
                continue
            types_a, types_b = first.by_op_type(), second.by_op_type()
            names = list(dict.fromkeys(list(types_a) + list(types_b)))
            by_type = {n: (types_a.get(n, (0, None))[1], types_b.get(n, (0, None))[1]) for n in names}
            out.append(VariantCost(cpu_a, first.backend, second.backend, differ, by_type,
                                   first.total, second.total))
    return out

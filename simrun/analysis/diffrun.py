"""What one diff measured: the backends' Captures, their comparisons, the diagnosis and the cost.

A DiffRun is the evidence, before any judgement: the policy (simrun.analysis.policy)
judges it and simrun.analysis.result.DiffResult holds both. It lives apart from
compare.py because it holds the Diagnosis (simrun.analysis.diagnose, which builds on
compare) and the CostSummary, typed.

The lookups the policy and the reports need (a pair's or a layer's diagnosis, a layer's
own error and cause) are methods here, so neither has to know how a Diagnosis is indexed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..capture import Capture
from ..model import Model
from .compare import Comparison, LayerStats, PairResult, backend_rank
from .cost import CostSummary
from .diagnose import Diagnosis, LayerDiagnosis, PairDiagnosis
from .remedy import Remedy
from .tasks import TaskResult


@dataclass
class DiffRun:
    """Everything one `simrun diff` measured; the policy and the reports read only this."""
    model: Model                            # (tests pass stand-ins with the same attributes)
    comparisons: list[Comparison]           # one per input
    backend_errors: dict[str, str] = field(default_factory=dict)
    versions: dict[str, dict[str, str]] = field(default_factory=dict)
    input_names: list[str] = field(default_factory=list)
    # Own vs propagated error and a cause per layer, when the run was diagnosed.
    diagnosis: Diagnosis | None = None
    cost: CostSummary | None = None         # the target backends' instructions and memory
    # Stateful models: sequence name -> indices into comparisons of its steps, in order.
    sequences: dict[str, list[int]] = field(default_factory=dict)
    # What the backends returned: label -> one Capture per input (backends that ran) ...
    captures: dict[str, list[Capture]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)      # ... wall time of each backend
    error_codes: dict[str, int] = field(default_factory=dict)    # ... failed: simrun.errors exit code
    # The decisions of a task decoder (--task), when one ran.
    task: TaskResult | None = None
    preprocessing: str | None = None        # how image inputs became model inputs (inputs.preprocessing)
    repro: list[str] = field(default_factory=list)   # reproducer bundle folders (report/repro.py)
    remedies: list[Remedy] = field(default_factory=list)   # what to do per pair and cause (analysis/remedy.py)

    def __post_init__(self):
        if not self.input_names:
            self.input_names = [f"input{i}" for i in range(len(self.comparisons))]
        if len(self.input_names) != len(self.comparisons):
            raise ValueError(f"{len(self.input_names)} input names for {len(self.comparisons)} comparisons")

    @property
    def backends(self) -> list[str]:
        """Every backend that took part: ran (in some comparison) or failed."""
        seen = {b for c in self.comparisons for b in c.backends} | set(self.backend_errors)
        return sorted(seen, key=backend_rank)

    # --- the diagnosis, as the policy and the reports read it -------------------------------
    def pair_diagnosis(self, n: int, pair: PairResult) -> PairDiagnosis | None:
        """The PairDiagnosis of one pair for input n, or None (no diagnosis ran for it)."""
        if self.diagnosis is None or n >= len(self.diagnosis.pairs):
            return None
        try:
            return self.diagnosis.pair(n, pair.a, pair.b)
        except KeyError:
            return None

    def layer_diagnosis(self, n: int, pair: PairResult, s: LayerStats | None) -> LayerDiagnosis | None:
        """The LayerDiagnosis of one layer of one pair for input n, or None (not diagnosed)."""
        pd = self.pair_diagnosis(n, pair)
        if pd is None or s is None or s.op_index is None:
            return None
        # Reports ask once per layer of every pair: index the pair's layers once, on the object.
        by_id = pd.__dict__.get("_layers_by_id")
        if by_id is None or len(by_id) != len(pd.layers):
            by_id = pd.__dict__["_layers_by_id"] = {d.id: d for d in pd.layers}
        return by_id.get(s.id)

    def own_stats(self, n: int, pair: PairResult, s: LayerStats) -> LayerStats | None:
        """The layer's own error (its isolated runs compared), or None (not isolated/diagnosed)."""
        d = self.layer_diagnosis(n, pair, s)
        return None if d is None else d.own

    def layer_cause(self, n: int, pair: PairResult, s: LayerStats) -> str | None:
        d = self.layer_diagnosis(n, pair, s)
        return None if d is None else d.cause

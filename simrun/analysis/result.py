"""A diff's result: what was measured (DiffRun), the policy's verdict on it, and the exit code.

    result = judge(run, policy)                 # simrun.pipeline.diff_run returns one
    result.passed, result.exit_code             # 0 passed, 1 policy, 3 device, 4 environment
    result.verdict.failures                     # one readable reason per failing pair / backend
    result.run.comparisons[n].pair(a, b).layers # per-layer statistics (LayerStats)
    result.run.diagnosis                        # own vs propagated error and a cause per layer

The CLI exits with `exit_code`, the reports read `run` and `verdict`, the Robot library and
the Python API (simrun.diff) hand the whole object out.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..capture import Capture
from ..errors import EXIT_DEVICE, EXIT_OK, EXIT_POLICY
from .compare import LayerStats, PairResult
from .cost import CostSummary
from .diagnose import Diagnosis
from .diffrun import DiffRun
from .policy import Policy, Verdict


@dataclass(frozen=True)
class DiffResult:
    run: DiffRun
    verdict: Verdict
    exit_code: int

    @property
    def passed(self) -> bool:
        return self.verdict.passed

    @property
    def diagnosis(self) -> Diagnosis | None:
        return self.run.diagnosis

    @property
    def cost(self) -> CostSummary | None:
        return self.run.cost

    @property
    def captures(self) -> dict[str, list[Capture]]:
        return self.run.captures

    @property
    def seconds(self) -> dict[str, float]:
        """Wall time of each backend's worker (normal runs, not the diagnosis's isolated ones)."""
        return self.run.seconds

    @property
    def backends(self) -> list[str]:
        return self.run.backends

    def pair(self, a: str, b: str, input: int = 0) -> PairResult:
        """The comparison of backends a and b (either order) for input number `input`."""
        cmp = self.run.comparisons[input]
        for p in cmp.pairs:
            if {p.a, p.b} == {a, b}:
                return p
        raise KeyError(f"no pair {a} vs {b} for {self.run.input_names[input]} "
                       f"(have: {', '.join(p.name for p in cmp.pairs) or 'none'})")

    def layers(self, a: str, b: str, input: int = 0) -> list[LayerStats]:
        """Per-layer statistics of one pair, in execution order."""
        return self.pair(a, b, input).layers


def judge(run: DiffRun, policy: Policy | None = None, baseline=None) -> DiffResult:
    """The policy's verdict on `run` (default: the built-in policy) and the exit code it means.
    With a `baseline` (simrun.analysis.baseline.Snapshot of an earlier summary.json) the verdict
    judges what changed since (simrun.analysis.baseline.gate)."""
    policy = policy or Policy.default()
    verdict = policy.evaluate(run)
    if baseline is not None:
        from .baseline import gate
        verdict = gate(baseline, run, verdict, policy)
    return DiffResult(run, verdict, exit_code(run, verdict))


def exit_code(run: DiffRun, verdict: Verdict) -> int:
    """0 passed, 1 the policy failed on the comparisons; when a backend the policy
    does not excuse failed, that failure's own code (3 on the device, 4 the
    environment), as `simrun run` or `build` would exit: the run is incomplete."""
    if verdict.passed:
        return EXIT_OK
    failed = [run.error_codes.get(label, EXIT_DEVICE) for label, action in verdict.backend_errors.items()
              if action == "fail"]
    return max(failed) if failed else EXIT_POLICY

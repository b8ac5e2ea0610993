"""Assertions over a DiffResult for test suites (pytest or any other runner).

    from simrun.testing import assert_passed, assert_bit_exact, assert_no_own_error

Each raises AssertionError with a message that reads like `simrun diff`'s terminal
diagnosis: the sentences the reports open with, then what failed and where. The pytest
plugin (simrun.pytest_plugin) offers them next to its fixtures.
"""
from __future__ import annotations

from .analysis.compare import LayerStats, PairResult
from .analysis.result import DiffResult


def diagnosis_text(result: DiffResult) -> str:
    """The terminal's opening: diagnosis sentences, failures, the verdict line."""
    from .report.digest import headline
    lines = ["diagnosis:"] + [f"  {sentence}" for sentence in headline(result.run, result.verdict)]
    lines += [f"FAIL: {failure}" for failure in result.verdict.failures]
    lines.append(f"verdict: {'PASSED' if result.passed else 'FAILED'} (policy: {result.verdict.policy_source}); "
                 f"exit code {result.exit_code}")
    return "\n".join(lines)


def assert_passed(result: DiffResult) -> None:
    """The policy passed the run (what `simrun diff` exits 0 for)."""
    if not result.passed:
        raise AssertionError("simrun diff FAILED\n" + diagnosis_text(result))


def assert_bit_exact(result: DiffResult, a: str, b: str) -> None:
    """Backends a and b agree bit for bit on every layer and output of every input."""
    problems = []
    for n, name in enumerate(result.run.input_names):
        pair = _pair(result, a, b, n)
        if any(s.diverges for s in pair.layers + pair.outputs):
            problems.append(f"{name}: {_pair_line(pair)}" + _summary(result, n, pair))
    if problems:
        raise AssertionError(f"{_title(result, a, b)} are not bit-exact:\n  " + "\n  ".join(problems))


def assert_max_abs_delta(result: DiffResult, a: str, b: str, limit: float, layer: str | None = None) -> None:
    """No layer (or no layer matching `layer`) of a vs b differs by more than `limit`
    (integer steps for integer tensors, float units for float ones) on any input."""
    problems = []
    for n, name in enumerate(result.run.input_names):
        pair = _pair(result, a, b, n)
        layers = _matching(pair.layers + pair.outputs, layer)
        for s in layers:
            if s.layout_differs:
                problems.append(f"{name}: {s.label}: {s.status}")
            elif s.compared and s.max_abs_delta > limit:
                problems.append(f"{name}: {s.label}: max |Δ| {s.max_abs_delta:g} > {limit:g}"
                                + _cause(result, n, pair, s))
    if problems:
        raise AssertionError(f"{_title(result, a, b)}: {len(problems)} layer(s) beyond max |Δ| {limit:g}:\n  "
                             + "\n  ".join(problems))


def assert_no_own_error(result: DiffResult, a: str, b: str, layer: str | None = None) -> None:
    """No layer (or no layer matching `layer`) of a vs b computes a difference itself: run on
    the reference's inputs, its outputs agree (inherited error is allowed). Needs a diagnosis."""
    if result.diagnosis is None:
        raise AssertionError(f"{a} vs {b}: no diagnosis to read own error from (run with diagnose=True, "
                             f"at least two backends)")
    problems = []
    for n, name in enumerate(result.run.input_names):
        pair = _pair(result, a, b, n)
        pd = result.run.pair_diagnosis(n, pair)
        if pd is None:
            raise AssertionError(f"{name}: {a} vs {b} was not diagnosed")
        before = len(problems)
        for d in pd.layers:
            if layer is not None and layer not in _names(d.propagated):
                continue
            if d.own is None:
                problems.append(f"{name}: {d.label}: not isolated ({d.not_isolated})")
            elif d.own.diverges:
                problems.append(f"{name}: {d.label}: cause {d.cause}: {d.evidence}")
        if len(problems) > before and pd.summary:
            problems.append(f"{name}: {pd.summary}")
    if problems:
        raise AssertionError(f"{_title(result, a, b)}: layers introduce error of their own:\n  " + "\n  ".join(problems))


# --- helpers ----------------------------------------------------------------------
def _title(result: DiffResult, a: str, b: str) -> str:
    """The pair as the reports name it: the more reference-like backend first."""
    return _pair(result, a, b, 0).name if result.run.comparisons else f"{a} vs {b}"


def _pair(result: DiffResult, a: str, b: str, n: int) -> PairResult:
    try:
        return result.pair(a, b, n)
    except KeyError as err:
        failed = {x: result.run.backend_errors[x] for x in (a, b) if x in result.run.backend_errors}
        why = "; ".join(f"{x} failed: {m}" for x, m in failed.items())
        raise AssertionError(why or err.args[0]) from None


def _pair_line(pair: PairResult) -> str:
    first, worst = pair.first_divergent, pair.worst
    text = f"first divergent layer {first.label}" if first is not None else "layers agree, outputs differ"
    if worst is not None:
        text += f", worst {worst.label} (max |Δ| {worst.max_abs_delta:g}, {100 * worst.mismatch_ratio:.2f}% of values)"
    return text


def _summary(result: DiffResult, n: int, pair: PairResult) -> str:
    pd = result.run.pair_diagnosis(n, pair)
    return f"\n    {pd.summary}" if pd is not None and pd.summary else ""


def _cause(result: DiffResult, n: int, pair: PairResult, s: LayerStats) -> str:
    d = result.run.layer_diagnosis(n, pair, s)
    return f", cause {d.cause}: {d.evidence}" if d is not None else ""


def _names(s: LayerStats) -> set[str]:
    names = {s.id, s.op_name, s.tensor_name, f"{s.subgraph}:{s.op_index}"}
    if s.subgraph == 0 and s.op_index is not None:
        names.add(str(s.op_index))
    return names


def _matching(layers: list[LayerStats], layer: str | None) -> list[LayerStats]:
    if layer is None:
        return layers
    found = [s for s in layers if layer in _names(s)]
    if not found:
        raise AssertionError(f"no layer matches {layer!r}")
    return found

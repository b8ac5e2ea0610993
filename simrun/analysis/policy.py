"""Tolerance policy: turns the metrics of a DiffRun into pass/fail.

A policy is a TOML file. Without one, `Policy.default()` reads the packaged
simrun/data/policy-default.toml, which fails only what a device user must act on:
the emulated device against host TFLM and the TFLite reference kernels beyond
tolerance (`tflm-host vs target:*:reference` bit for bit), own error the device
introduces (when a diagnosis exists), and model outputs that move by more than a
share of their range; differences between desktop interpreters are reported with
their diagnosis but not judged. A backend error fails the run, except one of desktop
TFLite (`tflite-*`, which refuses some TFLM models: that says nothing about the device),
and so does a run in which fewer than two backends produced results (nothing was compared).

A file layers on that default unless it says `extends = "none"` (simrun.analysis.policy_file
says how each table layers); globs of the file that match nothing in a run are named in the
verdict's warnings with the closest name that exists (simrun.analysis.policy_globs).

    extends = "default"          # or "none": start from nothing (pairs = ["*"], the values below)

    [defaults]
    pairs = ["*"]                # pairs to judge: globs on "A vs B" (either order);
                                 # other pairs are reported but not judged
    max_abs_delta = 1            # integer tensors: max |Δ| in integer steps
    max_mismatch_ratio = 1.0     # integer tensors: max share of values with Δ != 0
    float_max_abs_delta = 1e-4   # float tensors: max |Δ| ...
    float_max_rel_delta = 1e-3   # ... or max |Δ| relative to the tensor's magnitude (largest |a|)
    judge_layers = true          # false: only the final outputs are judged (propagated error
                                 # of inner layers reported, not judged; own error still is)
    output_max_range_error = 0.05  # final outputs: largest dequantized |Δ| as a share of the
                                 # output's dynamic range
    own_max_abs_delta = 1        # own error (the layer run in isolation on the reference's
                                 # inputs) in integer steps; judged when a diagnosis exists
    skip = false                 # true: do not judge

    [pair."tflm-host vs target:*:reference"]   # same keys (not `pairs`), for matching pairs
    max_abs_delta = 0

    [op.LOGISTIC]                # same keys, for layers of an operator type (glob; final
    max_abs_delta = 2            # model outputs have the type OUTPUT)

    [layer."*/Softmax*"]         # same keys, for layers whose tensor name (or id such as
    skip = true                  # "0:12/45" / "output/3") matches the glob

    [backend_errors]             # backend label glob -> "fail" | "warn"; first match in
    "tflite-*" = "warn"          # file order wins; unmatched backends: "fail"

    [baseline]                   # --baseline OLD/summary.json (simrun.analysis.baseline):
    own_margin = 0               # own error may grow by this many integer steps
    float_own_margin = 0.0       # float tensors: by this share of the tensor's range
    output_margin = 0.0          # final outputs: error may grow by this share of their range
    bit_exact = true             # a judged pair that stops being bit-exact is a regression

Settings apply from general to specific: defaults, then [pair.*], then [op.*],
then [layer.*]; a later table overrides the keys it sets. A key nobody sets is not
judged (`float_max_rel_delta`, `output_max_range_error`, `own_max_abs_delta` have no
built-in value outside the default file; the values above are those of `extends = "none"`). Layers that only one side of a pair has
are reported, never judged. A dtype or shape mismatch fails.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from pathlib import Path

from .compare import LayerStats, PairResult, backend_rank
from .diffrun import DiffRun
from .task_policy import TaskPolicy, judge_task



@dataclass(frozen=True)
class Tolerance:
    max_abs_delta: float = 1
    max_mismatch_ratio: float = 1.0
    float_max_abs_delta: float = 1e-4
    float_max_rel_delta: float | None = None
    judge_layers: bool = True
    output_max_range_error: float | None = None
    own_max_abs_delta: float | None = None
    skip: bool = False

    def violations(self, s: LayerStats) -> list[str]:
        """Reasons this layer's propagated error is out of tolerance; empty when it is fine."""
        if s.status == "dtype_mismatch":
            return [f"dtype {s.dtype_a} vs {s.dtype_b}"]
        if s.status == "shape_mismatch":
            return [f"shape {list(s.shape_a)} vs {list(s.shape_b)}"]
        if not s.compared:
            return []
        out = []
        is_output = s.op_index is None
        if self.judge_layers:
            out += self._steps(s, "")
        if is_output and self.output_max_range_error is not None:
            share = s.relative_error
            if share is not None and share > self.output_max_range_error:
                out.append(f"output error {share:.2%} of its range > {self.output_max_range_error:.2%}")
        return out

    def own_violations(self, own: LayerStats | None) -> list[str]:
        """Reasons the layer's own error (isolated run) is out of tolerance."""
        if own is None or not own.compared or self.own_max_abs_delta is None:
            return []
        if own.integer:
            if own.max_abs_delta > self.own_max_abs_delta:
                return [f"own error max |Δ| {own.max_abs_delta:g} > {self.own_max_abs_delta:g}"]
            return []
        return self._steps(own, "own error ")

    def _steps(self, s: LayerStats, what: str) -> list[str]:
        if not s.integer:
            if s.max_abs_delta <= self.float_max_abs_delta:
                return []
            rel = s.relative_delta
            if self.float_max_rel_delta is not None and rel is not None:
                if rel <= self.float_max_rel_delta:
                    return []
                return [f"{what}max |Δ| {s.max_abs_delta:.3g} > {self.float_max_abs_delta:g} and "
                        f"{rel:.3g} of the tensor's magnitude > {self.float_max_rel_delta:g}"]
            return [f"{what}max |Δ| {s.max_abs_delta:.3g} > {self.float_max_abs_delta:g}"]
        out = []
        if s.max_abs_delta > self.max_abs_delta:
            out.append(f"{what}max |Δ| {s.max_abs_delta:g} > {self.max_abs_delta:g}")
        if s.mismatch_ratio > self.max_mismatch_ratio:
            out.append(f"{what}mismatch {s.mismatch_ratio:.2%} > {self.max_mismatch_ratio:.2%}")
        return out


@dataclass
class PairVerdict:
    input_name: str
    a: str
    b: str
    judged: bool
    failing: dict[str, list[str]] = field(default_factory=dict)   # layer id -> reasons
    first_failing: LayerStats | None = None
    message: str | None = None              # its line in Verdict.failures, when it fails

    @property
    def passed(self) -> bool:
        return not self.failing

    @property
    def status(self) -> str:
        return "unjudged" if not self.judged else "pass" if self.passed else "fail"


@dataclass
class Verdict:
    passed: bool
    failures: list[str]                     # one readable reason per failing pair / backend
    warnings: list[str]
    pairs: list[PairVerdict]                # parallel to run.comparisons[i].pairs, input by input
    backend_errors: dict[str, str]          # label -> "fail" | "warn" | "known" (failed in the baseline too)
    policy_source: str = "built-in"
    baseline: object = None                 # simrun.analysis.baseline.BaselineResult with --baseline
    known: list[str] = field(default_factory=list)   # failures the baseline had too: not failing
    # With a task (run.task): (a, b) -> "pass" | "fail" | "unjudged" of the decisions.
    task_pairs: dict[tuple[str, str], str] = field(default_factory=dict)

    def pair(self, input_name: str, a: str, b: str) -> PairVerdict:
        for p in self.pairs:
            if (p.input_name, p.a, p.b) == (input_name, a, b):
                return p
        raise KeyError(f"no verdict for {input_name}: {a} vs {b}")


@dataclass
class Policy:
    defaults: Tolerance = field(default_factory=Tolerance)
    pairs_judged: tuple[str, ...] = ("*",)
    pair_rules: list[tuple[str, dict]] = field(default_factory=list)
    op_rules: list[tuple[str, dict]] = field(default_factory=list)
    layer_rules: list[tuple[str, dict]] = field(default_factory=list)
    backend_error_rules: list[tuple[str, str]] = field(default_factory=list)
    source: str = "built-in"

    baseline: dict = field(default_factory=dict)       # [baseline] margins (simrun.analysis.baseline)
    task: TaskPolicy = field(default_factory=TaskPolicy)    # [task]: simrun/analysis/task_policy.py
    source: str = "built-in"
    extends: str | None = None          # what this file layers on (its describe), None: nothing
    own_globs: list[tuple[str, str]] = field(default_factory=list)   # (table, glob) the file writes

    # --- loading (simrun.analysis.policy_file) ---------------------------------
    @classmethod
    def load(cls, path: str | Path | None) -> "Policy":
        """The policy file at `path` layered on the built-in default (None: the default)."""
        from .policy_file import load
        return load(cls, path)

    @classmethod
    def default(cls) -> "Policy":
        return cls.load(None)

    @classmethod
    def parse(cls, text: str, source: str = "policy") -> "Policy":
        from .policy_file import parse
        return parse(cls, text, source)

    @property
    def describe(self) -> str:
        """Where the policy came from, as reports name it."""
        return self.source if self.extends is None else f"{self.source} on top of the {self.extends}"

    # --- judging --------------------------------------------------------------
    def judges(self, a: str, b: str) -> bool:
        return any(_pair_matches(p, a, b) for p in self.pairs_judged)

    def tolerance(self, a: str, b: str, s: LayerStats) -> Tolerance:
        settings: dict = {}
        for pattern, values in self.pair_rules:
            if _pair_matches(pattern, a, b):
                settings.update(values)
        for pattern, values in self.op_rules:
            if fnmatchcase(s.op_name, pattern):
                settings.update(values)
        for pattern, values in self.layer_rules:
            if (s.tensor_name and fnmatchcase(s.tensor_name, pattern)) or fnmatchcase(s.id, pattern):
                settings.update(values)
        return replace(self.defaults, **settings)

    def backend_error_action(self, label: str) -> str:
        return next((action for pattern, action in self.backend_error_rules
                     if fnmatchcase(label, pattern)), "fail")

    def evaluate(self, run: DiffRun) -> Verdict:
        from .policy_globs import unmatched_globs
        pair_verdicts = []
        failures, warnings, actions = self._judge_backends(run)
        warnings += unmatched_globs(self, run)
        task_pairs, drift = {}, {}
        # With a task the decisions are judged; tensor drift is reported (unless asked).
        tensors_judged = run.task is None or self.task.judge_tensors
        if run.task is not None:
            task_failures, task_pairs = judge_task(self.task, run, self.judges)
            failures += task_failures
        for n, (input_name, cmp) in enumerate(zip(run.input_names, run.comparisons)):
            for pair in cmp.pairs:
                pv = self._judge_pair(run, n, input_name, pair)
                pair_verdicts.append(pv)
                if not tensors_judged:
                    pv.judged = False
                if pv.failing and not tensors_judged:
                    first = pv.first_failing
                    drift.setdefault(pair.name, []).append(
                        f"first on {input_name}: {first.label.split(';', 1)[0]} "
                        f"({'; '.join(pv.failing[first.id])})")
                elif pv.failing:
                    first = pv.first_failing
                    cause = run.layer_cause(n, pair, first)
                    # Converter names join every fused op's name with ';': the first one says enough.
                    name = f"{first.id} {first.op_name} {first.tensor_name.split(';', 1)[0]}".rstrip()
                    pv.message = (f"{input_name}: {pair.name}: {len(pv.failing)} layer(s) out of "
                                  f"tolerance, first {name} ({'; '.join(pv.failing[first.id])})"
                                  + (f", cause: {cause}" if cause else ""))
                    failures.append(pv.message)
        for name, found in drift.items():
            warnings.append(f"tensor drift (reported; the task is judged): {name}: beyond the tensor "
                            f"tolerance on {len(found)} input(s), {found[0]}")
        return Verdict(not failures, failures, warnings, pair_verdicts, actions, self.describe,
                       task_pairs=task_pairs)

    def _judge_backends(self, run: DiffRun) -> tuple[list[str], list[str], dict[str, str]]:
        """Failures and warnings about the backends: errors the policy fails or excuses, and
        whether enough backends ran to compare anything. An excused error (the default excuses
        desktop TFLite, `tflite-*`, which refuses some TFLM models: that says nothing about the
        device) leaves the verdict to the backends that ran, as long as two or more did."""
        failures, warnings, actions = [], [], {}
        for label, message in run.backend_errors.items():
            actions[label] = self.backend_error_action(label)
            if actions[label] == "fail":
                failures.append(f"backend {label} failed: {message}")
            else:
                warnings.append(f"backend {label} failed (excused by the policy's [backend_errors], "
                                f"not judged): {message}")
        produced = sorted({b for c in run.comparisons for b in c.backends}, key=backend_rank)
        excused = [label for label, action in actions.items() if action == "warn"]
        if len(produced) < 2:
            # Nothing compared is not a pass: a green CI job must mean something was checked.
            have = f"only {produced[0]}" if produced else "none"
            if excused:
                have += f"; {', '.join(excused)} failed, see backend errors"
                failures.append(f"nothing was compared: fewer than two backends produced results ({have}); "
                                f"a diff needs at least two: {_compare_more(produced, run.backend_errors)}")
            else:
                failures.append(f"nothing was compared: fewer than two backends produced results ({have}); "
                                f"a diff needs at least two")
        elif excused:
            warnings.append(f"the verdict rests on the {len(produced)} backends that ran: "
                            f"{', '.join(produced)}; not compared: {', '.join(excused)} (failed, see "
                            f"backend errors); to compare more, {_compare_more(produced, run.backend_errors)}")
        return failures, warnings, actions

    def _judge_pair(self, run: DiffRun, n: int, input_name: str, pair: PairResult) -> PairVerdict:
        pv = PairVerdict(input_name, pair.a, pair.b, judged=self.judges(pair.a, pair.b))
        if not pv.judged:
            return pv
        for s in pair.layers + pair.outputs:
            tol = self.tolerance(pair.a, pair.b, s)
            if tol.skip:
                continue
            reasons = tol.violations(s)
            if s.op_index is not None:
                reasons += tol.own_violations(run.own_stats(n, pair, s))
            if reasons:
                pv.failing[s.id] = reasons
                if pv.first_failing is None:
                    pv.first_failing = s
        return pv


def _compare_more(produced: list[str], failed) -> str:
    """What to run so that more backends are compared, given those that ran and those that failed."""
    steps = []
    if "tflm-host" not in produced and "tflm-host" not in failed:
        steps.append("add tflm-host (host TFLM, the device's kernels) to the backends")
    if any(label.startswith("target:") for label in failed):
        steps.append("make the target backends run (their errors above say how)")
    elif not any(label.startswith("target:") for label in produced):
        steps.append("add target backends (simrun diff --cpu CPU) to compare the emulated device")
    if not steps:
        steps.append("add target backends for more CPUs or kernels (--cpu, --kernels)")
    return " and ".join(steps)


def _pair_matches(pattern: str, a: str, b: str) -> bool:
    return fnmatchcase(f"{a} vs {b}", pattern) or fnmatchcase(f"{b} vs {a}", pattern)

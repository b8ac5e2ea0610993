"""The policy's `[task]` table: which task decodes the outputs and which task-level change
fails the run. simrun.analysis.policy calls in here; the tensor tolerance stays there.

    [task]
    kind = "detect"                    # classify | detect | wakeword | python:FILE.py:FUNCTION
    score_threshold = 0.3              # any other key: a setting of the task's decoder
    pairs = ["target:* vs *"]          # pairs whose decisions are judged (default: the
                                       # policy's [defaults] pairs)
    judge_tensors = false              # with a task: tensor drift is reported with its
                                       # diagnosis, not failed on (true: judge it as well)
    task_min_top1_agreement = 1.0      # classify: share of inputs with the same top-1 class
    task_max_box_shift_px = 2.0        # detect: largest corner move of a matched box, pixels
    task_max_missed_detections = 0     # detect: detections on one side only, per input
    task_max_class_changes = 0         # detect: matched boxes whose class differs, per input
    task_max_trigger_shift_steps = 0   # wakeword: trigger step difference, per sequence (a
                                       # trigger on one side only always fails)
    task_max_changed_inputs = 0        # python: with a COMPARE function, inputs it calls changed

Without a policy file (or a [task] table), these values apply: every top-1 class, detection,
class and trigger step must agree; box shifts are reported, not judged (what is tolerable
depends on the input's resolution). A failure names the inputs whose decision changed and
the first layer that introduces the error behind it (from the diagnosis), else the first
layer that differs.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import BadInput

JUDGE_KEYS = ("task_min_top1_agreement", "task_max_box_shift_px", "task_max_missed_detections",
              "task_max_class_changes", "task_max_trigger_shift_steps", "task_max_changed_inputs")
_DEFAULTS = {"task_min_top1_agreement": 1.0, "task_max_box_shift_px": None,
             "task_max_missed_detections": 0, "task_max_class_changes": 0,
             "task_max_trigger_shift_steps": 0, "task_max_changed_inputs": 0}


@dataclass(frozen=True)
class TaskPolicy:
    kind: str | None = None
    settings: dict = field(default_factory=dict)            # the decoder's settings
    pairs: tuple[str, ...] | None = None
    judge_tensors: bool = False
    limits: dict = field(default_factory=lambda: dict(_DEFAULTS))

    @classmethod
    def parse(cls, table, source: str, base: "TaskPolicy | None" = None) -> "TaskPolicy":
        """The [task] table layered on `base` (the policy the file extends): the keys it sets
        replace the base's."""
        if not isinstance(table, dict):
            raise BadInput(f"policy {source}: [task] must be a table")
        base = base or cls()
        table = dict(table)
        kind = table.pop("kind", base.kind)
        if kind is not None and not isinstance(kind, str):
            raise BadInput(f"policy {source}: [task] kind must be a string such as \"classify\", got {kind!r}")
        pairs = table.pop("pairs", list(base.pairs) if base.pairs is not None else None)
        if pairs is not None and (not isinstance(pairs, list) or not all(isinstance(p, str) for p in pairs)):
            raise BadInput(f"policy {source}: [task] pairs must be a list of strings, got {pairs!r}")
        judge = table.pop("judge_tensors", base.judge_tensors)
        if not isinstance(judge, bool):
            raise BadInput(f"policy {source}: [task] judge_tensors must be true or false, got {judge!r}")
        limits = dict(base.limits)
        for key in JUDGE_KEYS:
            if key in table:
                value = table.pop(key)
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                    raise BadInput(f"policy {source}: [task] {key} must be a non-negative number, got {value!r}")
                if key == "task_min_top1_agreement" and value > 1:
                    raise BadInput(f"policy {source}: [task] {key} is a share in [0, 1], got {value!r}")
                limits[key] = value
        unknown = [k for k in table if k.startswith("task_")]
        if unknown:
            raise BadInput(f"policy {source}: unknown key {unknown[0]!r} in [task] "
                           f"(task metrics: {', '.join(JUDGE_KEYS)})")
        return cls(kind, {**base.settings, **table}, tuple(pairs) if pairs is not None else None, judge, limits)


def judge_task(task: TaskPolicy, run, judges) -> tuple[list[str], dict]:
    """(failures, status per (a, b): "pass" | "fail" | "unjudged") for run.task.
    `judges(a, b)`: the policy's pair selection, used when [task] names no pairs."""
    from fnmatch import fnmatchcase
    failures, status = [], {}
    result = run.task
    for outcome in result.pairs:
        if task.pairs is not None:
            judged = any(fnmatchcase(f"{outcome.a} vs {outcome.b}", p) or
                         fnmatchcase(f"{outcome.b} vs {outcome.a}", p) for p in task.pairs)
        else:
            judged = judges(outcome.a, outcome.b)
        if not judged:
            status[(outcome.a, outcome.b)] = "unjudged"
            continue
        problems = _violations(task.limits, outcome)
        status[(outcome.a, outcome.b)] = "fail" if problems else "pass"
        for reason, inputs in problems:
            shown = ", ".join(inputs[:8]) + (f" and {len(inputs) - 8} more" if len(inputs) > 8 else "")
            behind = _behind(run, outcome, inputs)
            failures.append(f"task {result.task}: {outcome.a} vs {outcome.b}: the decision changes on "
                            f"{shown} ({reason})" + (f"; {behind}" if behind else ""))
    return failures, status


def _violations(limits: dict, outcome) -> list[tuple[str, list[str]]]:
    """(reason, names of the inputs behind it) per limit the outcome breaks."""
    m, records, out = outcome.metrics, outcome.inputs, []
    known = False
    lim = limits["task_min_top1_agreement"]
    if "top1_agreement" in m:
        known = True
        if lim is not None and m["top1_agreement"] < lim:
            flips = [f"{r['input']} (class {r['class_a']} -> {r['class_b']})" for r in records if r["changed"]]
            out.append((f"top-1 agreement {m['top1_agreement']:.1%} < {lim:.1%}", flips))
    if "matched" in m:
        known = True
        for key, field_, what in (("task_max_missed_detections", "unmatched", "detections on one side only"),
                                  ("task_max_class_changes", "class_changes", "class changes"),
                                  ("task_max_box_shift_px", "max_box_shift_px", "box shift px")):
            lim = limits[key]
            if lim is None:
                continue
            bad = [r for r in records if (r[field_] or 0) > lim]
            if bad:
                worst = max(r[field_] for r in bad)
                out.append((f"{what}: up to {worst:g} > {lim:g}",
                            [f"{r['input']} ({r[field_]:g})" for r in bad]))
    if "sequences" in m:
        known = True
        lim = limits["task_max_trigger_shift_steps"]
        if lim is not None:
            bad = [r for r in records if r["one_sided"] or (r["trigger_shift_steps"] or 0) > lim]
            if bad:
                out.append((f"trigger shift > {lim:g} step(s) or a trigger on one side only",
                            [f"{r['input']} (step {_step(r['trigger_a'])} vs {_step(r['trigger_b'])})"
                             for r in bad]))
    if not known and "inputs_changed" in m:
        lim = limits["task_max_changed_inputs"]
        if lim is not None and m["inputs_changed"] > lim:
            out.append((f"{m['inputs_changed']} input(s) changed > {lim:g}", list(outcome.changed)))
    return out


def _step(step) -> str:
    return "none" if step is None else str(step)


def _behind(run, outcome, inputs: list[str]) -> str:
    """The first layer that introduces the error behind the first changed input."""
    names = [text.split(" (", 1)[0] for text in inputs]
    positions = []
    for name in names:
        if name in run.sequences:
            positions += run.sequences[name]
        elif name in run.input_names:
            positions.append(run.input_names.index(name))
    for n in positions:
        try:
            pair = run.comparisons[n].pair(outcome.a, outcome.b)
        except (KeyError, IndexError):
            continue
        pd = run.pair_diagnosis(n, pair)
        if pd is not None and pd.introducing:
            d = pd.introducing[0]
            return (f"behind it: {d.label.split(';', 1)[0]} introduces the error ({d.cause}) "
                    f"on {run.input_names[n]}")
        if pair.first_divergent is not None:
            return (f"behind it: the first layer that differs is "
                    f"{pair.first_divergent.label.split(';', 1)[0]} on {run.input_names[n]} (not diagnosed)")
    return ""

"""Task decoders: does a difference between backends change what the application decides?

    spec = parse_task("detect", {"score_threshold": 0.3}, model)   # once, before anything runs
    result = evaluate_task(spec, model, input_names, captures, sequences)   # -> TaskResult

One module per task (classify, detect, wakeword, python_decoder) with a frozen Settings
dataclass, `check(settings, model)`, `decode(settings, outputs, context)` (the model's final
outputs, dequantized, for one input of one backend) and `compare(settings, data, a, b)`
(-> PairOutcome over the data set). `evaluate_task` decodes every backend's outputs and
compares every pair; it reads Captures only, never where they came from.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...errors import BadInput
from . import classify, detect, python_decoder, wakeword
from .base import DecodeContext, PairOutcome, TaskData, TaskResult, real_outputs, settings_from

TASKS = {m.NAME: m for m in (classify, detect, wakeword)}
__all__ = ["TASKS", "TaskSpec", "TaskResult", "PairOutcome", "parse_task", "check_model", "evaluate_task",
           "evaluate_outputs"]


@dataclass(frozen=True)
class TaskSpec:
    """A parsed --task: its name, its checked settings and (python:) the user's code."""
    name: str                               # "classify" | "detect" | "wakeword" | "python:FILE:FUNC"
    settings: object                        # the task module's Settings
    code: object | None = field(default=None, compare=False)   # python_decoder.UserCode

    @property
    def module(self):
        return python_decoder if self.code is not None else TASKS[self.name]

    @property
    def needs_sequences(self) -> bool:
        return getattr(self.module, "NEEDS_SEQUENCES", False)

    def settings_json(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in vars(self.settings).items()}


def parse_task(text: str, options: dict | None = None, model=None) -> TaskSpec:
    """'classify' | 'detect' | 'wakeword' | 'python:FILE.py:FUNCTION[:COMPARE]' with settings;
    checked against the model when given. Bad names and settings are one BadInput."""
    options = dict(options or {})
    if text.startswith("python:"):
        code = python_decoder.load(text)
        spec = TaskSpec(text, settings_from(python_decoder.Settings, options, "python"), code)
    elif text in TASKS:
        spec = TaskSpec(text, settings_from(TASKS[text].Settings, options, text))
    else:
        raise BadInput(f"unknown task {text!r}: use {', '.join(TASKS)} or python:FILE.py:FUNCTION")
    if model is not None:
        check_model(spec, model)
    return spec


def check_model(spec: TaskSpec, model) -> None:
    """The task's settings against one model (a python: decoder is the user's to check)."""
    if spec.code is not None:
        return
    spec.module.check(spec.settings, model)
    # Decode outputs of the model's shapes once now: a head the decoder cannot read is a
    # usage error before minutes of backends, not after.
    h, w, names, ranges = _context_fields(model)
    zeros = [np.zeros(tuple(max(d, 1) for d in o.shape)) for o in model.outputs]
    spec.module.decode(spec.settings, zeros, DecodeContext("(shape check)", h, w, names, "-", ranges))


def evaluate_task(spec: TaskSpec, model, input_names: list[str], captures: dict[str, list],
                  sequences: dict[str, list[int]] | None = None, pairs=None) -> TaskResult:
    """Decode every backend's outputs for every input and compare every pair (default: every
    pair of backends that produced results, the more reference-like first)."""
    outputs = {label: [real_outputs(model, cap) for cap in caps] for label, caps in captures.items()}
    return evaluate_outputs(spec, model, input_names, outputs, sequences, pairs)


def evaluate_outputs(spec: TaskSpec, model, input_names: list[str], outputs: dict[str, list],
                     sequences: dict[str, list[int]] | None = None, pairs=None) -> TaskResult:
    """evaluate_task from real-valued outputs: label -> per input, the model's final outputs in
    `model`'s output order (the quantization A/B puts the float model's beside a scheme's)."""
    from ..compare import default_pairs
    ctx_base = _context_fields(model)
    decisions = {}
    for label, per_input in outputs.items():
        decisions[label] = [
            _decode(spec, outs, DecodeContext(name, *ctx_base[:3], label, ctx_base[3]))
            for name, outs in zip(input_names, per_input)]
    data = TaskData(list(input_names), decisions, dict(sequences or {}))
    result = TaskResult(spec.name, spec.settings_json(), [],
                        units="sequences" if spec.needs_sequences else "inputs")
    for label in decisions:
        facts = getattr(spec.module, "backend_facts", None)
        if facts is not None:
            result.backends[label] = facts(spec.settings, data, label)
    for a, b in pairs if pairs is not None else default_pairs(decisions):
        if spec.code is not None:
            result.pairs.append(python_decoder.compare(spec.settings, spec.code, data, a, b))
        else:
            result.pairs.append(spec.module.compare(spec.settings, data, a, b))
    return result


def decision_json(spec: TaskSpec, decision):
    return spec.module.to_json(decision)


def _decode(spec: TaskSpec, outputs, ctx: DecodeContext):
    if spec.code is not None:
        return python_decoder.decode(spec.code, outputs, ctx)
    return spec.module.decode(spec.settings, outputs, ctx)


def _context_fields(model):
    info = model.inputs[0] if len(model.inputs) == 1 else None
    h = w = None
    if info is not None and len(info.shape) == 4:
        h, w = int(info.shape[1]), int(info.shape[2])
    ranges = []
    for out in model.outputs:
        q = out.quantization
        if q.scale and out.dtype is not None and out.dtype.kind in "iu":
            lim = np.iinfo(out.dtype)
            ranges.append(((lim.min - q.zero_point[0]) * q.scale[0], (lim.max - q.zero_point[0]) * q.scale[0]))
        else:
            ranges.append(None)
    return h, w, tuple(o.name for o in model.outputs), tuple(ranges)

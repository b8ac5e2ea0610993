"""wakeword: when a streaming detector fires, step by step over each sequence.

Each step's probability is one value of one output (`output`, `class_index`; needed when
the output has several values). `activation = "auto"` takes the values as probabilities
when the output's representable range (quantized) or its values (float) lie in 0..1, else
applies softmax over the output's values (several) or a sigmoid (one). The trigger step of
a backend is the first step whose probability reaches `cutoff`. Per sequence: each side's
trigger step, the trigger shift in steps (None when neither fires; `one_sided` when only
one does) and the largest probability difference with its step.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import BadInput
from .base import DecodeContext, PairOutcome, TaskData, plural

NAME = "wakeword"
NEEDS_SEQUENCES = True


@dataclass(frozen=True)
class Settings:
    output: int = 0
    class_index: int = -1                   # which value of the output; -1: the only one
    cutoff: float = 0.5
    activation: str = "auto"                # auto | none | softmax | sigmoid


def check(settings: Settings, model) -> None:
    if not 0 <= settings.output < len(model.outputs):
        raise BadInput(f"task wakeword: output {settings.output} does not exist; the model has "
                       f"{len(model.outputs)} output(s)")
    info = model.outputs[settings.output]
    size = int(np.prod([max(d, 1) for d in info.shape]))
    if settings.class_index == -1 and size != 1:
        raise BadInput(f"task wakeword: output {info.name!r} holds {size} values; say which is the "
                       f"wake word's with class_index (--task-option class_index=N or [task] class_index)")
    if settings.class_index >= size or settings.class_index < -1:
        raise BadInput(f"task wakeword: class_index {settings.class_index} is outside output "
                       f"{info.name!r} ({size} values)")
    if settings.activation not in ("auto", "none", "softmax", "sigmoid"):
        raise BadInput(f"task wakeword: activation must be auto, none, softmax or sigmoid, "
                       f"got {settings.activation!r}")


def decode(settings: Settings, outputs: list[np.ndarray], ctx: DecodeContext) -> float:
    values = np.asarray(outputs[settings.output], dtype=np.float64).reshape(-1)
    k = 0 if settings.class_index == -1 else settings.class_index
    activation = settings.activation
    if activation == "auto":
        span = ctx.output_ranges[settings.output]
        # A quantized output's representable range says it for every step alike.
        prob = (span[0] >= -1e-6 and span[1] <= 1.0 + 1e-2) if span is not None else \
            bool(values.min() >= 0.0 and values.max() <= 1.0)
        activation = "none" if prob else ("softmax" if values.size > 1 else "sigmoid")
    if activation == "softmax":
        e = np.exp(values - values.max())
        return float(e[k] / e.sum())
    if activation == "sigmoid":
        return float(1.0 / (1.0 + np.exp(-values[k])))
    return float(values[k])


def trigger(probabilities: list[float], cutoff: float) -> int | None:
    return next((i for i, p in enumerate(probabilities) if p >= cutoff), None)


def _sequences(data: TaskData) -> dict[str, list[int]]:
    return data.sequences or {name: [i] for i, name in enumerate(data.input_names)}


def backend_facts(settings: Settings, data: TaskData, label: str) -> dict:
    probs = data.decisions[label]
    return {"trigger_steps": {name: trigger([probs[i] for i in steps], settings.cutoff)
                              for name, steps in _sequences(data).items()}}


def compare(settings: Settings, data: TaskData, a: str, b: str) -> PairOutcome:
    records, changed = [], []
    for name, steps in _sequences(data).items():
        pa = [data.decisions[a][i] for i in steps]
        pb = [data.decisions[b][i] for i in steps]
        ta, tb = trigger(pa, settings.cutoff), trigger(pb, settings.cutoff)
        deltas = [abs(x - y) for x, y in zip(pa, pb)]
        worst = int(np.argmax(deltas)) if deltas else None
        record = {"input": name, "steps": len(steps), "trigger_a": ta, "trigger_b": tb,
                  "trigger_shift_steps": None if ta is None or tb is None else abs(tb - ta),
                  "one_sided": (ta is None) != (tb is None),
                  "max_prob_delta": deltas[worst] if deltas else 0.0, "max_prob_delta_step": worst,
                  "changed": ta != tb}
        records.append(record)
        if record["changed"]:
            changed.append(name)
    shifts = [r["trigger_shift_steps"] for r in records if r["trigger_shift_steps"] is not None]
    metrics = {"sequences": len(records), "sequences_changed": len(changed),
               "one_sided_triggers": sum(r["one_sided"] for r in records),
               "max_trigger_shift_steps": max(shifts) if shifts else None,
               "max_prob_delta": max((r["max_prob_delta"] for r in records), default=0.0)}
    described = []
    for r in records:
        ta = "no trigger" if r["trigger_a"] is None else f"step {r['trigger_a']}"
        tb = "no trigger" if r["trigger_b"] is None else f"step {r['trigger_b']}"
        described.append(f"{r['input']}: {ta} on {a}, {tb} on {b}" if r["changed"] else
                         f"{r['input']}: {ta} on both")
    summary = (f"{len(changed)} of {plural(len(records), 'sequence')} trigger differently" if changed
               else f"same trigger step on all {plural(len(records), 'sequence')}")
    summary += f" (cutoff {settings.cutoff:g}; " + "; ".join(described[:4]) + \
        (" ..." if len(described) > 4 else "") + \
        f"); probabilities differ by up to {metrics['max_prob_delta']:.3g}"
    return PairOutcome(a, b, metrics, records, changed, summary)


def to_json(decision: float) -> float:
    return round(decision, 6)

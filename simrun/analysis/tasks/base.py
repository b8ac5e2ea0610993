"""The values every task shares: what a decoder is given, what a comparison of two backends'
decisions returns, and how settings from the CLI or the policy file are checked once."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from ...errors import BadInput


@dataclass(frozen=True)
class DecodeContext:
    """What a decoder may need besides the output arrays."""
    input_name: str
    input_height: int | None                # the model input's H and W (NHWC), None otherwise
    input_width: int | None
    output_names: tuple[str, ...]
    backend: str
    # Each output's representable real range (quantized outputs), None for float outputs.
    output_ranges: tuple[tuple[float, float] | None, ...] = ()


@dataclass(frozen=True)
class TaskData:
    """Every backend's decisions, input by input (steps in input order for sequences)."""
    input_names: list[str]
    decisions: dict[str, list]              # label -> one decoded result per input
    sequences: dict[str, list[int]]         # sequence name -> indices of its steps


@dataclass
class PairOutcome:
    """Two backends' decisions compared over the data set."""
    a: str
    b: str
    metrics: dict[str, float | int | None]  # over the data set (see each task's module)
    inputs: list[dict]                      # one record per input (or per sequence): what changed
    changed: list[str]                      # inputs (or sequences) whose decision differs
    summary: str                            # one sentence

    @property
    def name(self) -> str:
        return f"{self.a} vs {self.b}"


@dataclass
class TaskResult:
    """The task-level answer of a run: settings used, per-backend facts and every pair."""
    task: str                               # "classify", "detect", "wakeword", "python:FILE:FUNC"
    settings: dict
    pairs: list[PairOutcome]
    backends: dict[str, dict] = field(default_factory=dict)   # label -> per-backend facts
    units: str = "inputs"                   # what the records of PairOutcome.inputs are

    def pair(self, a: str, b: str) -> PairOutcome:
        for p in self.pairs:
            if {p.a, p.b} == {a, b}:
                return p
        raise KeyError(f"no task result for {a} vs {b}")


def settings_from(cls, options: dict, task: str):
    """The task's frozen settings dataclass from option values; unknown keys and wrong types
    are one BadInput naming the key and what is allowed."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, value in options.items():
        if key not in fields:
            raise BadInput(f"task {task}: unknown setting {key!r} (allowed: {', '.join(fields) or 'none'})")
        default = fields[key].default
        values[key] = _coerce(value, default, f"task {task}: setting {key}")
    return cls(**values)


def _coerce(value, default, where: str):
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise BadInput(f"{where} must be true or false, got {value!r}")
    if isinstance(default, int) and not isinstance(default, bool):
        try:
            if isinstance(value, bool) or float(value) != int(float(value)):
                raise ValueError
            return int(float(value))
        except (TypeError, ValueError):
            raise BadInput(f"{where} must be a whole number, got {value!r}") from None
    if isinstance(default, float):
        try:
            if isinstance(value, bool):
                raise ValueError
            out = float(value)
        except (TypeError, ValueError):
            raise BadInput(f"{where} must be a number, got {value!r}") from None
        if not math.isfinite(out):
            raise BadInput(f"{where} must be finite, got {value!r}")
        return out
    if isinstance(default, tuple):
        items = value if isinstance(value, (list, tuple)) else str(value).split(",")
        try:
            return tuple(int(x) for x in items)
        except (TypeError, ValueError):
            raise BadInput(f"{where} must be a list of whole numbers, got {value!r}") from None
    return str(value)


def real_outputs(model, capture) -> list[np.ndarray]:
    """The capture's final outputs in the model's output order, dequantized (a side that
    recorded no quantization parameters borrows the model's)."""
    by_index = {t.index: t for t in capture.outputs}
    out = []
    for info in model.outputs:
        t = by_index.get(info.index)
        if t is None:
            raise BadInput(f"{capture.backend}: no value for model output {info.name!r}")
        if not t.quantization.scale and info.quantization.scale:
            t = dataclasses.replace(t, quantization=info.quantization)
        out.append(t.dequantized())
    return out


def finite(x):
    """JSON has no NaN/inf."""
    return None if isinstance(x, float) and not math.isfinite(x) else x


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")

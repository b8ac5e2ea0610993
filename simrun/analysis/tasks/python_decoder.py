"""python:FILE.py:FUNCTION[:COMPARE]: the user's own decoder.

FUNCTION(outputs, context) gets the model's outputs in model order, dequantized to float64
numpy arrays, and a DecodeContext (input_name, input_height, input_width, output_names,
backend, output_ranges); a function of one parameter gets the outputs only. What it returns
decides the comparer:
- a list of detections, each a dict {"box": [x1, y1, x2, y2] in input pixels, "score": s,
  "class": c} -> the detect comparer (IoU matching, box shift, one-sided detections);
- an int or a str -> the class comparer (top-1 agreement);
- a float or an array of numbers -> the value comparer (largest |Δ|; a value is no decision);
- anything else: give COMPARE, a function (result_a, result_b) -> dict with "same" (bool:
  the decision agrees) and any numbers (reported per input; the largest over the data set).
COMPARE, when given, is used for every result. The file runs once, as a module, when the
task is parsed: a missing file or function is an error before any backend runs.
"""
from __future__ import annotations

import importlib.util
import inspect
import numbers
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import BadInput
from . import boxes, classify
from .base import DecodeContext, PairOutcome, TaskData, plural

NAME = "python"


@dataclass(frozen=True)
class Settings:
    match_iou: float = 0.5                  # the detect comparer's matching threshold


@dataclass(frozen=True)
class UserCode:
    file: Path
    decode: object                          # the user's functions
    compare: object | None
    takes_context: bool


def load(spec: str) -> UserCode:
    """'python:FILE.py:FUNCTION[:COMPARE]' -> the functions, or one BadInput naming the problem."""
    parts = spec.split(":")
    if len(parts) not in (3, 4) or parts[0] != "python" or not parts[1] or not parts[2]:
        raise BadInput(f"task {spec!r}: write python:FILE.py:FUNCTION (or python:FILE.py:FUNCTION:COMPARE)")
    path = Path(parts[1])
    if not path.is_file():
        raise BadInput(f"task {spec!r}: no such file {path}")
    name = f"simrun_user_decoder_{abs(hash(str(path.resolve())))}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise BadInput(f"task {spec!r}: {path} is not a Python file")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as err:                # the user's code: any error is theirs to fix
        raise BadInput(f"task {spec!r}: running {path} failed: {type(err).__name__}: {err}") from None
    funcs = []
    for fname in parts[2:]:
        func = getattr(module, fname, None)
        if not callable(func):
            raise BadInput(f"task {spec!r}: {path} defines no function {fname!r}")
        funcs.append(func)
    try:
        takes_context = len(inspect.signature(funcs[0]).parameters) >= 2
    except (TypeError, ValueError):
        takes_context = True
    return UserCode(path, funcs[0], funcs[1] if len(funcs) > 1 else None, takes_context)


def decode(code: UserCode, outputs: list[np.ndarray], ctx: DecodeContext):
    try:
        result = code.decode(outputs, ctx) if code.takes_context else code.decode(outputs)
    except Exception as err:
        raise BadInput(f"task python: decoder {code.file}:{getattr(code.decode, '__name__', '?')} failed "
                       f"on {ctx.input_name} ({ctx.backend}): {type(err).__name__}: {err}") from None
    return _normalize(result, code, ctx)


def _normalize(result, code: UserCode, ctx: DecodeContext):
    if code.compare is not None:
        return result
    if isinstance(result, (list, tuple)) and all(isinstance(d, dict) and "box" in d for d in result):
        try:
            return [boxes.Detection(tuple(float(v) for v in d["box"]), float(d.get("score", 1.0)),
                                    d.get("class", d.get("label", 0))) for d in result]
        except (TypeError, ValueError) as err:
            raise BadInput(f"task python: a detection from {code.file} on {ctx.input_name} is not "
                           f"{{'box': [x1, y1, x2, y2], 'score': s, 'class': c}} ({err})") from None
    if isinstance(result, (str, numbers.Integral)) and not isinstance(result, bool):
        return result if isinstance(result, str) else int(result)
    try:
        return np.asarray(result, dtype=np.float64)
    except (TypeError, ValueError):
        raise BadInput(f"task python: {code.file} returned {type(result).__name__} on {ctx.input_name}: "
                       f"return a list of boxes, a class or a value, or give a COMPARE function "
                       f"(python:FILE.py:FUNCTION:COMPARE)") from None


def compare(settings: Settings, code: UserCode, data: TaskData, a: str, b: str) -> PairOutcome:
    da, db = data.decisions[a], data.decisions[b]
    names = data.input_names
    if code.compare is not None:
        return _user_compare(code, names, da, db, a, b)
    kinds = {_kind(x) for x in da + db}
    if len(kinds) > 1:
        raise BadInput(f"task python: {code.file} returned different kinds of result "
                       f"({', '.join(sorted(kinds))}); return one kind, or give a COMPARE function")
    kind = kinds.pop() if kinds else "value"
    if kind == "boxes":
        return boxes.summarize(a, b, [boxes.compare_one(n, x, y, settings.match_iou)
                                      for n, x, y in zip(names, da, db)], settings.match_iou)
    if kind == "class":
        records = [{"input": n, "class_a": x, "class_b": y, "changed": x != y}
                   for n, x, y in zip(names, da, db)]
        return classify.summarize(a, b, records, [r["input"] for r in records if r["changed"]])
    records = []
    for n, x, y in zip(names, da, db):
        delta = float(np.abs(x - y).max()) if x.shape == y.shape and x.size else None
        records.append({"input": n, "max_abs_delta": delta, "changed": False})
    worst = max((r["max_abs_delta"] for r in records if r["max_abs_delta"] is not None), default=0.0)
    return PairOutcome(a, b, {"inputs": len(records), "max_abs_delta": worst}, records, [],
                       f"values differ by up to {worst:.4g} over {plural(len(records), 'input')}")


def _kind(x) -> str:
    return "boxes" if isinstance(x, list) else "class" if isinstance(x, (int, str)) else "value"


def _user_compare(code: UserCode, names, da, db, a: str, b: str) -> PairOutcome:
    records, changed, metrics = [], [], {"inputs": len(names)}
    for n, x, y in zip(names, da, db):
        try:
            got = code.compare(x, y)
        except Exception as err:
            raise BadInput(f"task python: compare function of {code.file} failed on {n}: "
                           f"{type(err).__name__}: {err}") from None
        if not isinstance(got, dict) or not isinstance(got.get("same"), bool):
            raise BadInput(f"task python: compare function of {code.file} must return a dict with "
                           f"'same': true/false (and numbers), got {got!r} on {n}")
        record = {"input": n, "changed": not got["same"]}
        for key, value in got.items():
            if key != "same" and isinstance(value, numbers.Real) and not isinstance(value, bool):
                record[key] = float(value)
                metrics[key] = max(metrics.get(key, float(value)), float(value))
        records.append(record)
        if record["changed"]:
            changed.append(n)
    metrics["inputs_changed"] = len(changed)
    summary = (f"decision changes on {len(changed)} of {plural(len(names), 'input')}: " + ", ".join(changed[:5])
               if changed else f"same decision on all {plural(len(names), 'input')}")
    return PairOutcome(a, b, metrics, records, changed, summary)


def to_json(decision):
    if isinstance(decision, list):
        return [d.to_json() if isinstance(d, boxes.Detection) else d for d in decision]
    if isinstance(decision, np.ndarray):
        return decision.tolist() if decision.size <= 16 else f"array {list(decision.shape)}"
    return decision if isinstance(decision, (int, str, float)) else repr(decision)

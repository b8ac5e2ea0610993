"""classify: the class each backend picks and how far its scores moved.

Decoded per input from one model output (`output`, default 0; its values dequantized, the
last axis is the classes): the top-1 class, the top-k classes and the scores. Two backends
are compared per input — same top-1 class or not, the share of top-k classes both have, the
score delta of a's top-1 class and the largest score delta over every class — and over the
data set: `top1_agreement` (share of inputs with the same top-1 class), `top1_changes`,
`mean_topk_overlap`, `max_score_delta`. Scores are what the model outputs (probabilities
after a softmax head, logits without one), in real units.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import BadInput
from .base import DecodeContext, PairOutcome, TaskData, plural

NAME = "classify"


@dataclass(frozen=True)
class Settings:
    output: int = 0                         # which model output holds the class scores
    top_k: int = 5                          # top-k overlap over this many classes (at most all)


@dataclass(frozen=True)
class Decision:
    top1: int
    topk: tuple[int, ...]
    scores: np.ndarray

    def to_json(self) -> dict:
        return {"class": self.top1, "top_k": list(self.topk), "score": float(self.scores[self.top1])}


def check(settings: Settings, model) -> None:
    if not 0 <= settings.output < len(model.outputs):
        raise BadInput(f"task classify: output {settings.output} does not exist; the model has "
                       f"{len(model.outputs)} output(s)")
    if settings.top_k < 1:
        raise BadInput(f"task classify: top_k must be at least 1, got {settings.top_k}")


def decode(settings: Settings, outputs: list[np.ndarray], ctx: DecodeContext) -> Decision:
    scores = np.asarray(outputs[settings.output], dtype=np.float64).reshape(-1)
    if not scores.size:
        raise BadInput(f"task classify: output {settings.output} is empty")
    # Stable order: ties go to the lower class index on every backend alike.
    order = np.argsort(-scores, kind="stable")
    k = min(settings.top_k, scores.size)
    return Decision(int(order[0]), tuple(int(c) for c in order[:k]), scores)


def compare(settings: Settings, data: TaskData, a: str, b: str) -> PairOutcome:
    records, changed = [], []
    for name, da, db in zip(data.input_names, data.decisions[a], data.decisions[b]):
        records.append(compare_one(name, da, db))
        if records[-1]["changed"]:
            changed.append(name)
    return summarize(a, b, records, changed)


def compare_one(name: str, da: Decision, db: Decision) -> dict:
    k = len(da.topk)
    delta = np.abs(db.scores - da.scores) if da.scores.shape == db.scores.shape else None
    return {"input": name, "class_a": da.top1, "class_b": db.top1, "changed": da.top1 != db.top1,
            "topk_overlap": len(set(da.topk) & set(db.topk)) / k if k else 1.0,
            "score_a": float(da.scores[da.top1]),
            "score_b": float(db.scores[da.top1]) if da.top1 < db.scores.size else None,
            "score_delta": float(delta[da.top1]) if delta is not None else None,
            "max_score_delta": float(delta.max()) if delta is not None and delta.size else None}


def summarize(a: str, b: str, records: list[dict], changed: list[str]) -> PairOutcome:
    n = len(records)
    deltas = [r["max_score_delta"] for r in records if r.get("max_score_delta") is not None]
    overlaps = [r["topk_overlap"] for r in records if r.get("topk_overlap") is not None]
    metrics = {"inputs": n, "top1_agreement": (n - len(changed)) / n if n else 1.0,
               "top1_changes": len(changed),
               "mean_topk_overlap": sum(overlaps) / len(overlaps) if overlaps else None,
               "max_score_delta": max(deltas) if deltas else None}
    flips = [f"{r['input']} ({r['class_a']} -> {r['class_b']})" for r in records if r["changed"]]
    score = f"; scores move by up to {metrics['max_score_delta']:.3g}" if deltas else ""
    if flips:
        summary = (f"top-1 class changes on {len(flips)} of {plural(n, 'input')}: "
                   + ", ".join(flips[:5]) + (" ..." if len(flips) > 5 else "") + score)
    else:
        summary = f"same top-1 class on all {plural(n, 'input')} (agreement 100%){score}"
    return PairOutcome(a, b, metrics, records, changed, summary)


def to_json(decision: Decision) -> dict:
    return decision.to_json()

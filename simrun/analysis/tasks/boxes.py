"""Boxes: IoU, non-maximum suppression, and matching two backends' detections one to one.

A detection is a box (x1, y1, x2, y2) in input pixels, a score and a class. Matching pairs
detections of side a and side b greedily by IoU, highest first, each used once, when the IoU
reaches `match_iou`; the class is not required to agree (a class change is counted instead).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import PairOutcome, plural


@dataclass(frozen=True)
class Detection:
    box: tuple[float, float, float, float]   # x1, y1, x2, y2 in input pixels
    score: float
    cls: int | str

    def to_json(self) -> dict:
        return {"box": [round(v, 3) for v in self.box], "score": round(self.score, 4), "class": self.cls}


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of a ([N, 4] xyxy) with every box of b ([M, 4])."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(union > 0, inter / union, 0.0)
    # Boxes of no area (a size quantized to 0) overlap nothing, yet the same box is the same.
    same = np.all(a[:, None, :] == b[None, :, :], axis=2)
    return np.where(same, 1.0, out)


def nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou_threshold: float,
        max_detections: int, class_agnostic: bool = False) -> list[int]:
    """Greedy NMS (per class unless class_agnostic): indices kept, highest score first.
    Ties in score keep the lower index, so equal inputs give equal results on every backend."""
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    suppressed = np.zeros(len(scores), dtype=bool)
    ious = iou_matrix(boxes, boxes)
    for i in order:
        if suppressed[i]:
            continue
        keep.append(int(i))
        if len(keep) >= max_detections:
            break
        same = np.ones(len(scores), dtype=bool) if class_agnostic else classes == classes[i]
        suppressed |= same & (ious[i] > iou_threshold)
    return keep


def match(a: list[Detection], b: list[Detection], match_iou: float) -> list[tuple[int, int, float]]:
    """(index in a, index in b, IoU) of the matched detections."""
    ious = iou_matrix(_array(a), _array(b))
    candidates = sorted(((ious[i, j], i, j) for i in range(len(a)) for j in range(len(b))
                         if ious[i, j] >= match_iou), key=lambda t: (-t[0], t[1], t[2]))
    used_a, used_b, out = set(), set(), []
    for iou, i, j in candidates:
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            out.append((i, j, float(iou)))
    return sorted(out)


def compare_one(name: str, a: list[Detection], b: list[Detection], match_iou: float) -> dict:
    pairs = match(a, b, match_iou)
    shifts = [max(abs(x - y) for x, y in zip(a[i].box, b[j].box)) for i, j, _ in pairs]
    score_deltas = [abs(a[i].score - b[j].score) for i, j, _ in pairs]
    only_a = [a[i].to_json() for i in sorted(set(range(len(a))) - {i for i, _, _ in pairs})]
    only_b = [b[j].to_json() for j in sorted(set(range(len(b))) - {j for _, j, _ in pairs})]
    class_changes = [{"a": a[i].to_json(), "b": b[j].to_json()} for i, j, _ in pairs if a[i].cls != b[j].cls]
    ious = [iou for _, _, iou in pairs]
    return {"input": name, "detections_a": len(a), "detections_b": len(b), "matched": len(pairs),
            "only_a": only_a, "only_b": only_b, "unmatched": len(only_a) + len(only_b),
            "class_changes": len(class_changes), "changed_classes": class_changes,
            "moved": sum(1 for s in shifts if s > 0),
            "min_iou": min(ious) if ious else None, "mean_iou": sum(ious) / len(ious) if ious else None,
            "max_box_shift_px": max(shifts) if shifts else 0.0,
            "max_score_delta": max(score_deltas) if score_deltas else 0.0,
            "changed": bool(only_a or only_b or class_changes)}


def summarize(a: str, b: str, records: list[dict], match_iou: float) -> PairOutcome:
    total = lambda key: sum(r[key] for r in records)   # noqa: E731
    ious = [(r["mean_iou"], r["matched"]) for r in records if r["mean_iou"] is not None]
    mins = [r["min_iou"] for r in records if r["min_iou"] is not None]
    metrics = {"inputs": len(records), "detections_a": total("detections_a"),
               "detections_b": total("detections_b"), "matched": total("matched"),
               "only_a": sum(len(r["only_a"]) for r in records),
               "only_b": sum(len(r["only_b"]) for r in records),
               "class_changes": total("class_changes"), "moved": total("moved"),
               "mean_iou": (sum(m * n for m, n in ious) / sum(n for _, n in ious)) if ious else None,
               "min_iou": min(mins) if mins else None,
               "max_box_shift_px": max((r["max_box_shift_px"] for r in records), default=0.0),
               "max_score_delta": max((r["max_score_delta"] for r in records), default=0.0),
               "inputs_changed": sum(1 for r in records if r["changed"])}
    changed = [r["input"] for r in records if r["changed"]]
    parts = [f"{metrics['matched']} of {plural(metrics['detections_a'], 'detection')} matched "
             f"(IoU >= {match_iou:g}" + (f", min {metrics['min_iou']:.3f}" if mins else "") + ")"]
    if metrics["moved"]:
        parts.append(f"{metrics['moved']} move by up to {metrics['max_box_shift_px']:.2f} px")
    for side, label in (("only_a", a), ("only_b", b)):
        found = [(d["score"], r["input"]) for r in records for d in r[side]]
        if found:
            best = max(found)
            parts.append(f"{len(found)} only on {label} (highest score {best[0]:.2f} on {best[1]})")
    parts.append(f"{plural(metrics['class_changes'], 'class change')}" if metrics["class_changes"]
                 else "no class change")
    summary = f"over {plural(len(records), 'input')}: " + "; ".join(parts)
    return PairOutcome(a, b, metrics, records, changed, summary)


def _array(dets: list[Detection]) -> np.ndarray:
    return np.array([d.box for d in dets], dtype=np.float64).reshape(-1, 4)

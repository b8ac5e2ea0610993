"""detect: the boxes each backend's detector head gives, matched between backends.

Output formats (`format`, default auto):
- `yolo`: one output [1, 4+nc, N] or [1, N, 4+nc] (YOLOv8 export): boxes cx, cy, w, h
  (`box_format = "xyxy"` for corners) then nc class scores per anchor;
- `yolo-dfl`: one output [1, 4*reg_max+nc, N] (raw YOLOv8 head): box sides as Distribution
  Focal Loss bins, decoded against anchor points of the grid at every stride (`strides`);
- `boxes-scores`: two outputs, boxes [1, N, 4] and scores [1, N, nc];
- `postprocess`: TFLite_Detection_PostProcess's four outputs: boxes [1, N, 4] (ymin, xmin,
  ymax, xmax, normalized), classes [1, N], scores [1, N], count [1] (already suppressed).
auto picks postprocess for four outputs, boxes-scores for two, yolo for one.
Coordinates in 0..1 (`coordinates = "auto"` sees every |value| <= 2) are scaled by the
input's width and height, so box shifts are in input pixels. Scores outside 0..1 are taken
as logits (sigmoid). Then: score >= `score_threshold`, NMS per class at `iou_threshold`
(class_agnostic for one NMS over every class), at most `max_detections`.
Two backends' detections are matched by IoU (>= `match_iou`): see boxes.py.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import BadInput
from . import boxes
from .base import DecodeContext, PairOutcome, TaskData

NAME = "detect"
FORMATS = ("auto", "yolo", "yolo-dfl", "boxes-scores", "postprocess")


@dataclass(frozen=True)
class Settings:
    format: str = "auto"
    score_threshold: float = 0.25
    iou_threshold: float = 0.45             # NMS
    match_iou: float = 0.5                  # matching detections between backends
    max_detections: int = 100
    box_format: str = "xywh"                # yolo / boxes-scores: "xywh" (centre, size) or "xyxy"
    coordinates: str = "auto"               # "auto" | "pixels" | "normalized"
    reg_max: int = 16                       # yolo-dfl: bins per box side
    strides: tuple[int, ...] = (8, 16, 32)  # yolo-dfl: grid strides in input pixels
    class_agnostic: bool = False


def check(settings: Settings, model) -> None:
    if settings.format not in FORMATS:
        raise BadInput(f"task detect: format {settings.format!r} is not one of {', '.join(FORMATS)}")
    if settings.box_format not in ("xywh", "xyxy"):
        raise BadInput(f"task detect: box_format must be xywh or xyxy, got {settings.box_format!r}")
    if settings.coordinates not in ("auto", "pixels", "normalized"):
        raise BadInput(f"task detect: coordinates must be auto, pixels or normalized, "
                       f"got {settings.coordinates!r}")
    for key in ("score_threshold", "iou_threshold", "match_iou"):
        if not 0.0 <= getattr(settings, key) <= 1.0:
            raise BadInput(f"task detect: {key} must be in [0, 1], got {getattr(settings, key)}")
    fmt = _format(settings, model.outputs)
    wanted = {"yolo": 1, "yolo-dfl": 1, "boxes-scores": 2, "postprocess": 4}[fmt]
    if len(model.outputs) != wanted:
        raise BadInput(f"task detect: format {fmt} reads {wanted} output(s); the model has "
                       f"{len(model.outputs)}")


def _format(settings: Settings, outputs) -> str:
    if settings.format != "auto":
        return settings.format
    return {1: "yolo", 2: "boxes-scores", 4: "postprocess"}.get(len(outputs), "yolo")


def decode(settings: Settings, outputs: list[np.ndarray], ctx: DecodeContext) -> list[boxes.Detection]:
    fmt = _format(settings, outputs)
    if fmt == "postprocess":
        return _postprocess(settings, outputs, ctx)
    if fmt == "boxes-scores":
        box, score = sorted(outputs, key=lambda a: a.shape[-1] != 4)
        box, score = box.reshape(-1, 4), score.reshape(box.shape[0] if box.size else 0, -1)
        xyxy = _corners(box, settings.box_format)
    else:
        rows = _anchor_rows(outputs[0], settings, fmt)
        if fmt == "yolo-dfl":
            xyxy = _dfl_boxes(rows[:, :4 * settings.reg_max], settings, ctx)
            score = rows[:, 4 * settings.reg_max:]
        else:
            xyxy = _corners(rows[:, :4], settings.box_format)
            score = rows[:, 4:]
    if score.size and (score.min() < 0.0 or score.max() > 1.0):
        score = 1.0 / (1.0 + np.exp(-score))
    xyxy = _to_pixels(xyxy, settings, ctx)
    return _select(settings, xyxy, score)


def _anchor_rows(out: np.ndarray, settings: Settings, fmt: str) -> np.ndarray:
    """[N, channels] from [1, C, N] or [1, N, C]: the channel axis is the one long enough for
    the box channels and a score, the shorter one when both are (heads have more anchors)."""
    a = out.reshape(out.shape[-2:]) if out.ndim >= 2 else out.reshape(1, -1)
    need = 4 * settings.reg_max if fmt == "yolo-dfl" else 4
    fits = [n > need for n in a.shape]
    first_is_channels = fits[0] and (not fits[1] or a.shape[0] < a.shape[1])
    rows = a.T if first_is_channels else a
    if rows.shape[1] <= need:
        raise BadInput(f"task detect: format {fmt} needs more than {need} channels per anchor; the "
                       f"output has shape {list(out.shape)}")
    return rows


def _corners(box: np.ndarray, box_format: str) -> np.ndarray:
    if box_format == "xyxy":
        return box.astype(np.float64)
    cx, cy, w, h = (box[:, k].astype(np.float64) for k in range(4))
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


def _dfl_boxes(bins: np.ndarray, settings: Settings, ctx: DecodeContext) -> np.ndarray:
    """Box sides as the expectation over reg_max bins (softmax), around the anchor points."""
    if ctx.input_height is None:
        raise BadInput("task detect: yolo-dfl needs an NHWC image input to place its anchor grid")
    n = bins.shape[0]
    logits = bins.reshape(n, 4, settings.reg_max)
    e = np.exp(logits - logits.max(axis=2, keepdims=True))
    dist = (e / e.sum(axis=2, keepdims=True)) @ np.arange(settings.reg_max, dtype=np.float64)
    points, strides = [], []
    for s in settings.strides:
        gh, gw = ctx.input_height // s, ctx.input_width // s
        ys, xs = np.meshgrid(np.arange(gh) + 0.5, np.arange(gw) + 0.5, indexing="ij")
        points.append(np.stack([xs.ravel(), ys.ravel()], axis=1))
        strides.append(np.full(gh * gw, float(s)))
    anchors, stride = np.concatenate(points), np.concatenate(strides)
    if len(anchors) != n:
        raise BadInput(f"task detect: {n} anchors in the output, but strides "
                       f"{list(settings.strides)} on a {ctx.input_width}x{ctx.input_height} input give "
                       f"{len(anchors)}; set strides")
    lt, rb = dist[:, :2], dist[:, 2:]
    return np.concatenate([anchors - lt, anchors + rb], axis=1) * stride[:, None]


def _to_pixels(xyxy: np.ndarray, settings: Settings, ctx: DecodeContext) -> np.ndarray:
    normalized = settings.coordinates == "normalized" or (
        settings.coordinates == "auto" and (not xyxy.size or np.abs(xyxy).max() <= 2.0))
    if not normalized:
        return xyxy
    if ctx.input_width is None:
        raise BadInput("task detect: normalized boxes need an NHWC image input to scale them to "
                       "pixels; set coordinates = \"pixels\"")
    return xyxy * np.array([ctx.input_width, ctx.input_height] * 2, dtype=np.float64)


def _select(settings: Settings, xyxy: np.ndarray, score: np.ndarray) -> list[boxes.Detection]:
    if not score.size:
        return []
    cls = score.argmax(axis=1)
    best = score[np.arange(len(cls)), cls]
    keep = np.flatnonzero(best >= settings.score_threshold)
    chosen = boxes.nms(xyxy[keep], best[keep], cls[keep], settings.iou_threshold,
                       settings.max_detections, settings.class_agnostic)
    return [boxes.Detection(tuple(float(v) for v in xyxy[keep[i]]), float(best[keep[i]]), int(cls[keep[i]]))
            for i in chosen]


def _postprocess(settings: Settings, outputs: list[np.ndarray], ctx: DecodeContext) -> list[boxes.Detection]:
    by_kind = sorted(range(4), key=lambda k: (outputs[k].shape[-1] != 4, outputs[k].size == 1))
    box_i, count_i = by_kind[0], by_kind[-1]
    classes_i, scores_i = [k for k in range(4) if k not in (box_i, count_i)]   # model order
    yxyx = outputs[box_i].reshape(-1, 4).astype(np.float64)
    count = int(round(float(outputs[count_i].reshape(-1)[0])))
    count = max(0, min(count, len(yxyx)))
    xyxy = _to_pixels(yxyx[:count][:, [1, 0, 3, 2]], settings, ctx)
    classes = outputs[classes_i].reshape(-1)[:count]
    scores = outputs[scores_i].reshape(-1)[:count].astype(np.float64)
    return [boxes.Detection(tuple(float(v) for v in xyxy[i]), float(scores[i]), int(round(float(classes[i]))))
            for i in range(count) if scores[i] >= settings.score_threshold][:settings.max_detections]


def compare(settings: Settings, data: TaskData, a: str, b: str) -> PairOutcome:
    records = [boxes.compare_one(name, da, db, settings.match_iou)
               for name, da, db in zip(data.input_names, data.decisions[a], data.decisions[b])]
    return boxes.summarize(a, b, records, settings.match_iou)


def to_json(decision: list[boxes.Detection]) -> list[dict]:
    return [d.to_json() for d in decision]

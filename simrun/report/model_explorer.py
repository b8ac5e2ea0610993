"""Model Explorer overlays: per-node data files for the model's main graph.

Google's Model Explorer (`ai-edge-model-explorer`) draws a .tflite graph and colours its
nodes by *node data*: JSON of its `ModelNodeData` shape, {graph id: GraphNodeData}, each
GraphNodeData {"name", "results": {node id: {"value", "bgColor"}}}. Its flatbuffer adapter
names the main graph after subgraph 0 ("main" when the subgraph has no name) and every
operator node by its operator index ("0", "1", ...), which is how the results are keyed here.

One file per shown pair (the judged pairs, else every pair against the most reference-like
backend) and metric, each value the worst over the inputs:
    <a>_vs_<b>.propagated.json   max |Δ| of the operator's outputs in the normal runs
    <a>_vs_<b>.own.json          max |Δ| when fed the reference's inputs (isolated); diagnosis only
    <a>_vs_<b>.cause.json        the cause, a categorical value in the cause's colour; diagnosis only
    <a>_vs_<b>.impact.json       largest error as % of the tensor's range
    instructions.<backend>.json  instructions the operator executed (first input), counted backends
Every operator of the main graph has a value; where there is no number the value says why
("not compared", "not isolated", "not counted") on a grey node. Colours come from
report/palette.py, the same as report.html's graph.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..analysis.diffrun import DiffRun
from . import palette
from .aggregate import CAUSE_ORDER, PairSummary, pair_summary
from .digest import agreement_classes

FOLDER = "model-explorer"


def graph_id(model) -> str | None:
    """Model Explorer's id of the model's main graph, or None for a model without a graph table."""
    main = getattr(model, "main", None)
    if main is None:
        return None
    # simrun.model names an unnamed subgraph "subgraph<i>"; Model Explorer names subgraph 0 "main".
    return "main" if main.name in ("", f"subgraph{main.index}") else main.name


def overlay_pairs(run: DiffRun, verdict) -> list[tuple[str, str]]:
    judged = []
    for pv in verdict.pairs:
        if pv.judged and (pv.a, pv.b) not in judged:
            judged.append((pv.a, pv.b))
    if judged:
        return judged
    classes = agreement_classes(run)
    ref = classes[0][0] if classes else None
    return list(dict.fromkeys((p.a, p.b) for cmp in run.comparisons for p in cmp.pairs if ref in (p.a, p.b)))


def overlays(run: DiffRun, verdict) -> dict[str, dict]:
    """file name -> ModelNodeData JSON (as dicts); {} when the model has no graph table."""
    gid = graph_id(run.model)
    if gid is None:
        return {}
    ops = run.model.main.operators
    out = {}
    for a, b in overlay_pairs(run, verdict):
        ps = pair_summary(run, verdict, a, b)
        if ps is None:
            continue
        stem = f"{_safe(a)}_vs_{_safe(b)}"
        for metric, results in _pair_metrics(ps, ops).items():
            title = f"{metric}: {a} vs {b}" + (f" (worst of {ps.inputs} inputs)" if ps.inputs > 1 else "")
            out[f"{stem}.{metric}.json"] = {gid: {"name": title, "results": results}}
    if run.cost is not None:
        for bc in run.cost.backends:
            if not bc.counted:
                continue
            counts = {lc.index: lc.instructions for lc in bc.layers if lc.subgraph == 0}
            top = max((v for v in counts.values() if v), default=0)
            results = {}
            for op in ops:
                v = counts.get(op.index)
                results[str(op.index)] = (_value(v, palette.count_colour(v, top)) if v is not None
                                          else _value("not counted", palette.NO_DATA))
            out[f"instructions.{_safe(bc.backend)}.json"] = {
                gid: {"name": f"instructions: {bc.backend}", "results": results}}
    return out


def _pair_metrics(ps: PairSummary, ops) -> dict[str, dict]:
    by_op = ps.by_op()
    metrics: dict[str, dict] = {"propagated": {}, "impact": {}}
    if ps.diagnosed:
        metrics.update(own={}, cause={})
    for op in ops:
        key = str(op.index)
        rows = by_op.get(op.index, [])
        integer = any(r.integer for r in rows)
        prop = [r.max for r in rows if r.max is not None]
        metrics["propagated"][key] = (_value(max(prop), palette.error_colour(max(prop), integer)) if prop
                                      else _value("not compared", palette.NO_DATA))
        impact = [r.impact for r in rows if r.impact is not None]
        metrics["impact"][key] = (_value(round(100 * max(impact), 4), palette.impact_colour(max(impact)))
                                  if impact else _value("no range" if prop else "not compared", palette.NO_DATA))
        if ps.diagnosed:
            own = [r.own_max for r in rows if r.own_max is not None]
            metrics["own"][key] = (_value(max(own), palette.error_colour(max(own), integer)) if own
                                   else _value("not isolated" if rows else "not compared", palette.NO_DATA))
            causes = [r.cause for r in rows if r.cause is not None]
            cause = min(causes, key=_cause_rank) if causes else None
            metrics["cause"][key] = (_value(cause, palette.CAUSE_COLOURS[cause]) if cause
                                     else _value("not diagnosed", palette.NO_DATA))
    return metrics


def _cause_rank(cause: str) -> int:
    return CAUSE_ORDER.index(cause) if cause in CAUSE_ORDER else len(CAUSE_ORDER)


def _value(value, colour: str) -> dict:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return {"value": value, "bgColor": colour}


def _safe(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-." else "_" for c in label)


def write(run: DiffRun, verdict, folder: Path) -> list[Path]:
    """Write the overlays into folder (created when there is one); the paths written."""
    files = overlays(run, verdict)
    if not files:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in files.items():
        path = folder / name
        path.write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")
        paths.append(path)
    return paths


def open_command(model_path: str, paths: list[Path]) -> str:
    """The shell command that opens the model with these overlays in Model Explorer."""
    return f"model-explorer {model_path} --node_data_paths={','.join(str(p) for p in paths)}"

"""summary.json: the whole DiffRun and its verdict, for scripts and tests.

Shape (schema 1); every float that is NaN/inf is null:

    {
      "schema": 1,
      "model": {"path": str|null, "sha256": str},
      "inputs": [str, ...],                        # input names, in comparison order
      "backends": [label, ...],                    # every backend that ran or failed
      "versions": {label: {package: version}},
      "backend_errors": {label: {"message": str, "action": "fail"|"warn"}},
      "policy": str,                               # where the policy came from
      "verdict": {"passed": bool, "failures": [str], "warnings": [str]},
      "comparisons": [{
        "input": str,
        "backends": [label, ...],                  # backends with a capture for this input
        "pairs": [{
          "a": label, "b": label,                  # a is the reference-like side
          "verdict": "pass"|"fail"|"unjudged",
          "first_divergent": LAYER|null,           # first layer (execution order) with any difference
          "first_failing": LAYER|null,             # first layer out of tolerance
          "worst": LAYER|null,                     # the layer with the largest difference
          "layers_total": int, "layers_compared": int, "layers_diverging": int,
          "mismatch_ratio": float,                 # over every value of every compared layer
          "max_abs_delta": number,
          "layers": [LAYER, ...],                  # a's execution order, then b-only layers
          "outputs": [LAYER, ...]                  # the model's final outputs
        }]
      }]
    }

    LAYER = {"id": "0:12/45" | "output/45", "subgraph", "op_index" (null for outputs),
             "op_name", "tensor_index", "tensor_name", "depth" (null if a lacks it),
             "status": "compared"|"shape_mismatch"|"dtype_mismatch"|"only_a"|"only_b",
             "shape_a", "shape_b", "dtype_a", "dtype_b", "integer": bool,
             "count", "mismatched", "mismatch_ratio", "max_abs_delta" (integer steps for
             integer tensors), "histogram": {"<=-3","-2","-1","0","+1","+2",">=+3": int}|null,
             "mae", "rmse", "cosine" (dequantized; null when not compared),
             "verdict": "pass"|"fail"|"unjudged"|"not compared", "reasons": [str]}
"""
from __future__ import annotations

import json
from pathlib import Path

from ..analysis.compare import DiffRun, LayerStats, finite_or_none


def summary(run: DiffRun, verdict) -> dict:
    comparisons = []
    pair_verdicts = iter(verdict.pairs)
    for input_name, cmp in zip(run.input_names, run.comparisons):
        pairs = []
        for pair in cmp.pairs:
            pv = next(pair_verdicts)
            layers = [layer_dict(s, pv) for s in pair.layers]
            pairs.append({
                "a": pair.a, "b": pair.b, "verdict": pv.status,
                "first_divergent": layer_dict(pair.first_divergent, pv),
                "first_failing": layer_dict(pv.first_failing, pv),
                "worst": layer_dict(pair.worst, pv),
                "layers_total": len(pair.layers),
                "layers_compared": len(pair.compared_layers),
                "layers_diverging": sum(s.diverges for s in pair.layers),
                "mismatch_ratio": pair.mismatch_ratio,
                "max_abs_delta": finite_or_none(pair.max_abs_delta),
                "layers": layers,
                "outputs": [layer_dict(s, pv) for s in pair.outputs],
            })
        comparisons.append({"input": input_name, "backends": list(cmp.backends), "pairs": pairs})
    return {
        "schema": 1,
        "model": {"path": str(getattr(run.model, "path", None) or "") or None,
                  "sha256": getattr(run.model, "sha256", None)},
        "inputs": list(run.input_names),
        "backends": run.backends,
        "versions": run.versions,
        "backend_errors": {label: {"message": msg, "action": verdict.backend_errors.get(label, "fail")}
                           for label, msg in run.backend_errors.items()},
        "policy": getattr(verdict, "policy_source", None),
        "verdict": {"passed": verdict.passed, "failures": list(verdict.failures),
                    "warnings": list(verdict.warnings)},
        "comparisons": comparisons,
    }


def layer_verdict(s: LayerStats, pv) -> str:
    if s.id in pv.failing:
        return "fail"
    if not pv.judged:
        return "unjudged"
    return "not compared" if s.one_sided else "pass"


def layer_dict(s: LayerStats | None, pv) -> dict | None:
    if s is None:
        return None
    return {
        "id": s.id, "subgraph": s.subgraph, "op_index": s.op_index, "op_name": s.op_name,
        "tensor_index": s.tensor_index, "tensor_name": s.tensor_name, "depth": s.depth,
        "status": s.status,
        "shape_a": list(s.shape_a) if s.shape_a is not None else None,
        "shape_b": list(s.shape_b) if s.shape_b is not None else None,
        "dtype_a": s.dtype_a, "dtype_b": s.dtype_b, "integer": s.integer,
        "count": s.count, "mismatched": s.mismatched, "mismatch_ratio": s.mismatch_ratio,
        "max_abs_delta": finite_or_none(s.max_abs_delta), "histogram": s.histogram,
        "mae": finite_or_none(s.mae), "rmse": finite_or_none(s.rmse), "cosine": finite_or_none(s.cosine),
        "verdict": layer_verdict(s, pv), "reasons": pv.failing.get(s.id, []),
    }


def write(run: DiffRun, verdict, path: Path) -> Path:
    path.write_text(json.dumps(summary(run, verdict), indent=1, allow_nan=False) + "\n")
    return path

"""summary.json: the whole DiffRun and its verdict, for scripts and tests.

Shape (schema_version 2; compact JSON, one line); every float that is NaN/inf is null:

    {
      "schema_version": 2,                         # 1 had "schema": 1 and none of the run keys
      "kind": "simrun diff",
      "complete": true,                            # false: the run stopped early (see below)
      "exit_code": int|null,                       # the run's exit code (DiffResult.exit_code)
      # the answer first:
      "verdict": {"passed": bool, "failures": [str], "warnings": [str],
                  "known": [str]},                 # with --baseline: failures it had too
      "task": TASK|null,                           # with --task: the decisions (simrun/report/task.py)
      "diagnosis": [str],                          # the sentences the reports open with
      "remedies": [REMEDY, ...],                   # what to do per pair and cause (below)
      "run": RUN|null,                             # provenance: simrun/report/provenance.py
      "model": {"path": str|null, "sha256": str},
      "inputs": [str, ...],                        # input names, in comparison order
      "backends": [label, ...],                    # every backend that ran or failed
      "versions": {label: {package: version}},
      "backend_errors": {label: {"message": str, "action": "fail"|"warn"|"known"}},
      "policy": {"source": str, "path": str|null,  # the policy file (null: built-in), its
                 "sha256": str|null, "text": str|null},   # sha256 and its whole text
      "baseline": BASELINE|null,                   # --baseline: layout in simrun/report/baseline.py
      "preprocessing": str|null,                   # how image files became model inputs
      "repro": [str, ...],                         # reproducer bundle folders (simrun/report/repro.py)
      "agreement": [[label, ...], ...],            # backends bit-exact with each other, rank order
      "isolation": {"reference": label,            # null when no diagnosis ran
                    "variants": {label: why}, "failed": {label: message}} | null,
      "cost": COST|null,                           # target cost and memory: layout in simrun/report/cost.py
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
          "diagnosis": str|null,                   # one sentence: which layers introduce error, why
          "output_relative_error": float|null,     # largest output error / the output's range
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
             "max_error" (largest dequantized |Δ|), "relative_error" (max_error / the
             tensor's range: the impact in real units), "relative_delta" (max_error / the
             largest |value|),
             "verdict": "pass"|"fail"|"unjudged"|"not compared", "reasons": [str],
             # from the diagnosis; all null when none ran (and for final outputs):
             "own": OWN|null,              # the layer run on the reference's inputs (isolated)
             "cause": "inherited"|"rounding"|"kernel"|"amplified"|"float-contraction"|
                      "both-sides"|"unexplained"|"none"|null,
             "side_causes": {backend: cause}|null,  # both-sides: each side's cause against the reference
             "through_state": str|null,    # inherited through a resource variable: "ASSIGN_VARIABLE 0:9 at step 2 (...)"
             "evidence": str|null,         # one sentence: what was measured
             "kernel": str|null, "kernel_a": str|null,   # kernel family on side b / side a
             "not_isolated": str|null}     # why own is null

    OWN = {"status", "count", "mismatched", "mismatch_ratio", "max_abs_delta", "histogram",
           "max_error", "relative_error"}   # as in LAYER, for the isolated outputs

    RUN = {"simrun": version, "command": [argv...], "started"/"finished": ISO 8601 UTC,
           "seconds", "exit_code", "exit_meaning", "message" (why it stopped, else null),
           "backend_seconds": {label: s}, "host": {"os", "python", "machine",
           "emulators": {tool: version line}}, "model_file": {"path", "sha256"},
           "input_files": [{"spec", "path", "sha256"}]  (path/sha256 null for random:SEED),
           "baseline_file": {"path", "sha256"}|null  (diff --baseline),
           "policy": as above}

A run that stopped before its verdict (bad input, exit 2; Ctrl-C, 130; a backend setup
failure) writes {"schema_version", "kind", "complete": false, "exit_code", "error": message,
"run": RUN, "verdict": {"passed": false, "failures": [message], "warnings": []}} and nothing else.

    REMEDY = {"a", "b", "cause", "layers": ["0:3/12 CONV_2D", ...], "action": str,
              "check": str,               # what simrun measured of the action
              "status": "verified"|"refuted"|"per-layer"|"not checked",   # verified/refuted: the
                                          # whole model in the other-rounding firmware vs the other side
              "variant": label|null,      # the backend that realises it
              "repro": [folder, ...]}     # reproducer bundles of its layers

    TASK = {"task": str, "settings": {key: value}, "units": "inputs"|"sequences",
            "backends": {label: {...}},   # wakeword: {"trigger_steps": {sequence: step|null}}
            "pairs": [{"a", "b", "verdict": "pass"|"fail"|"unjudged", "summary": str,
                       "metrics": {name: number|null},   # over the data set (README: Tasks)
                       "changed": [input, ...],          # inputs whose decision differs
                       "inputs": [{"input": str, "changed": bool, ...}]}]}   # per input
"""
from __future__ import annotations

import json
from pathlib import Path

from ..analysis.compare import LayerStats, finite_or_none
from ..analysis.diffrun import DiffRun
from .baseline import summary as baseline_summary
from .cost import cost_json
from .provenance import SCHEMA_VERSION
from . import remedy, sequences, task
from .digest import agreement_classes, headline


KIND = "simrun diff"


def summary(run: DiffRun, verdict, record=None, exit_code: int | None = None) -> dict:
    """`record`: the RunRecord (simrun.report.provenance) of the command, None outside one;
    `exit_code`: the DiffResult's."""
    comparisons = []
    pair_verdicts = iter(verdict.pairs)
    for n, (input_name, cmp) in enumerate(zip(run.input_names, run.comparisons)):
        pairs = []
        for pair in cmp.pairs:
            pv = next(pair_verdicts)
            pd = run.pair_diagnosis(n, pair)
            layers = [layer_dict(s, pv, run.layer_diagnosis(n, pair, s)) for s in pair.layers]
            shares = [s.relative_error for s in pair.outputs if s.relative_error is not None]
            pairs.append({
                "a": pair.a, "b": pair.b, "verdict": pv.status,
                "first_divergent": layer_dict(pair.first_divergent, pv, run.layer_diagnosis(n, pair, pair.first_divergent)),
                "first_failing": layer_dict(pv.first_failing, pv, run.layer_diagnosis(n, pair, pv.first_failing)),
                "worst": layer_dict(pair.worst, pv, run.layer_diagnosis(n, pair, pair.worst)),
                "layers_total": len(pair.layers),
                "layers_compared": len(pair.compared_layers),
                "layers_diverging": sum(s.diverges for s in pair.layers),
                "mismatch_ratio": pair.mismatch_ratio,
                "max_abs_delta": finite_or_none(pair.max_abs_delta),
                "diagnosis": pd.summary if pd is not None else None,
                "output_relative_error": finite_or_none(max(shares)) if shares else None,
                "layers": layers,
                "outputs": [layer_dict(s, pv) for s in pair.outputs],
            })
        comparisons.append({"input": input_name, "backends": list(cmp.backends), "pairs": pairs})
    run_json = record.to_json(exit_code, run.seconds) if record is not None else None
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": KIND,
        "complete": True,
        "exit_code": exit_code,
        # The answer first: the verdict, the decisions (with a task), the diagnosis, what to do.
        "verdict": {"passed": verdict.passed, "failures": list(verdict.failures),
                    "warnings": list(verdict.warnings), "known": list(getattr(verdict, "known", []))},
        "task": task.json_section(run, verdict),
        "diagnosis": headline(run, verdict),
        "remedies": remedy.json_section(run),
        "run": run_json,
        "model": {"path": str(getattr(run.model, "path", None) or "") or None,
                  "sha256": getattr(run.model, "sha256", None)},
        "inputs": list(run.input_names),
        "backends": run.backends,
        "versions": run.versions,
        "backend_errors": {label: {"message": msg, "action": verdict.backend_errors.get(label, "fail")}
                           for label, msg in run.backend_errors.items()},
        "policy": run_json["policy"] if run_json else {
            "source": getattr(verdict, "policy_source", None), "path": None, "sha256": None, "text": None},
        "preprocessing": run.preprocessing,
        "repro": list(run.repro),
        "agreement": agreement_classes(run),
        "isolation": _isolation(run),
        "cost": cost_json(run.cost),
        "comparisons": comparisons,
        "sequences": sequences.summarize(run) if run.sequences else None,
        "baseline": baseline_summary(verdict),
    }


def _isolation(run: DiffRun) -> dict | None:
    diagnosis = getattr(run, "diagnosis", None)
    if diagnosis is None:
        return None
    return {"reference": diagnosis.reference, "variants": dict(diagnosis.variants),
            "failed": dict(diagnosis.failed)}


def layer_verdict(s: LayerStats, pv) -> str:
    if not pv.judged:           # also a pair whose drift a task verdict reports, not judges
        return "unjudged"
    if s.id in pv.failing:
        return "fail"
    return "not compared" if s.one_sided else "pass"


def layer_dict(s: LayerStats | None, pv, d=None) -> dict | None:
    """One layer; `d` is its LayerDiagnosis (simrun.analysis.diagnose) or None."""
    if s is None:
        return None
    out = {
        "id": s.id, "subgraph": s.subgraph, "op_index": s.op_index, "op_name": s.op_name,
        "tensor_index": s.tensor_index, "tensor_name": s.tensor_name, "depth": s.depth,
        "status": s.status,
        "shape_a": list(s.shape_a) if s.shape_a is not None else None,
        "shape_b": list(s.shape_b) if s.shape_b is not None else None,
        "dtype_a": s.dtype_a, "dtype_b": s.dtype_b, "integer": s.integer,
        "count": s.count, "mismatched": s.mismatched, "mismatch_ratio": s.mismatch_ratio,
        "max_abs_delta": finite_or_none(s.max_abs_delta), "histogram": s.histogram,
        "mae": finite_or_none(s.mae), "rmse": finite_or_none(s.rmse), "cosine": finite_or_none(s.cosine),
        "max_error": finite_or_none(s.max_error), "relative_error": finite_or_none(s.relative_error),
        "relative_delta": finite_or_none(s.relative_delta),
        "verdict": layer_verdict(s, pv), "reasons": pv.failing.get(s.id, []),
        "own": None, "cause": None, "evidence": None, "kernel": None, "kernel_a": None,
        "not_isolated": None, "side_causes": None, "through_state": None,
    }
    if d is not None:
        out.update(own=_own_dict(d.own), cause=d.cause, evidence=d.evidence, kernel=d.kernel,
                   kernel_a=d.kernel_a, not_isolated=d.not_isolated, side_causes=d.side_causes or None,
                   through_state=d.through_state)
    return out


def _own_dict(s: LayerStats | None) -> dict | None:
    if s is None:
        return None
    return {"status": s.status, "count": s.count, "mismatched": s.mismatched,
            "mismatch_ratio": s.mismatch_ratio, "max_abs_delta": finite_or_none(s.max_abs_delta),
            "histogram": s.histogram, "max_error": finite_or_none(s.max_error),
            "relative_error": finite_or_none(s.relative_error)}


def stopped(kind: str, record) -> dict:
    """summary.json of a run that stopped before its verdict."""
    return {"schema_version": SCHEMA_VERSION, "kind": kind, "complete": False,
            "exit_code": record.exit_code, "error": record.message, "run": record.to_json(),
            "verdict": {"passed": False, "failures": [record.message or "stopped"], "warnings": []}}


def write_json(doc: dict, path: Path) -> Path:
    # Compact: with indent, json falls back to its pure-Python encoder, which took most of the
    # report time on a 31-layer model (pretty-print with `python -m json.tool` or jq).
    path.write_text(json.dumps(doc, allow_nan=False, separators=(",", ":")) + "\n")
    return path


def write(run: DiffRun, verdict, path: Path, record=None, exit_code: int | None = None) -> Path:
    return write_json(summary(run, verdict, record, exit_code), path)

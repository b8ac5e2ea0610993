"""Reports of a quantization A/B (simrun.quant.ab.ABRun): terminal tables, summary.json,
report.html, with the schemes side by side; each scheme's full differential report
(the `simrun diff` one) goes into a subdirectory named after the scheme.

summary.json (schema_version 2, kind "simrun ab"; NaN/inf are null; version 1 had
"schema": "simrun-ab/1" and no run keys):

    {
      "schema_version": 2, "kind": "simrun ab", "complete": true,
      "exit_code": int|null, "run": RUN|null,    # provenance, as in simrun diff's summary.json
      "source": {"kind": "keras"|"savedmodel", "path": str, "sha256": str},
      "float_model": str,                        # the float .tflite the A/B compared against
      "tensorflow": str,                         # version that converted every model
      "dataset": {"spec": str, "samples": int, "sha256": str},   # representative dataset
      "inputs": [str, ...],                      # the inputs every model ran on
      "backends": [label, ...],                  # the matrix run on every scheme
      "passed": bool,                            # every scheme passed the policy
      "schemes": [{
        "scheme": "per-channel"|"per-tensor"|"int16x8",
        "task": {...}|null,                      # with --task: decisions vs float and between
                                                 #   backends (layout in simrun/report/ab_task.py)
        "model": str, "settings": str,           # the .tflite and its converter settings JSON
        "converter": {...},                      # settings["converter"]: what was set
        "weights": {"per_channel": int, "per_tensor": int},   # weight tensors as converted
        "quantization_error": {                  # quantized vs float, same real inputs
          "measured_on": label|null,             # backend whose capture was compared
          "error": str|null,                     # why there are no figures
          "outputs": [ERROR, ...],               # every model output (multi-output: each)
          "layers": [ERROR, ...],                # operator outputs sharing a name with float
          "worst_output_rel_error": float|null
        },
        "implementation_error": {                # between backends on this quantized model
          "report": str,                         # <scheme>/summary.json: the full diff report
          "verdict": {"passed": bool, "failures": [str]},
          "backend_errors": {label: str},
          "mismatch_ratio": float,               # over every pair, layer and input
          "max_abs_delta": number,
          "pairs": [{
            "a": label, "b": label,
            "count": int, "mismatched": int, "mismatch_ratio": float,
            "max_abs_delta": number,             # integer steps
            "output_max_abs_delta": number,      # at the model outputs only
            "diverging_inputs": int,
            "first_divergent": {"id", "op_name", "tensor_name", "depth"}|null,
            "own_layers": int|null,              # with a diagnosis: layers introducing error
                                                 #   themselves on some input
            "inherited_layers": int|null,        # ... and layers only carrying it on
            "causes": {cause: int},              # diagnosed causes, counted per layer and input
            "summary": str                       # the diagnosis' sentence, "" without one
          }]
        }
      }]
    }

    ERROR = {"name", "op_name", "depth", "shape", "count", "mae", "max_error",
             "max_error_steps" (max_error over the tensor's scale), "rel_error"
             (||q - f|| / ||f||), "cosine", "range" (max - min of the float values), "step"}
"""
from __future__ import annotations

import json
from html import escape
from pathlib import Path

from ..analysis.compare import finite_or_none
from ..quant.ab import ABRun, SchemeResult, implementation_figures
from . import ab_task

KIND = "simrun ab"


# --- summary.json ------------------------------------------------------------------------------
def summary(ab: ABRun, record=None) -> dict:
    from .provenance import SCHEMA_VERSION
    return {
        "schema_version": SCHEMA_VERSION, "kind": KIND, "complete": True,
        "exit_code": record.exit_code if record is not None else None,
        # Backend times per scheme: "per-channel tflm-host".
        "run": record.to_json(backend_seconds={f"{res.scheme} {label}": sec for res in ab.schemes
                                               if res.run is not None for label, sec in res.run.seconds.items()})
        if record is not None else None,
        "source": ab.source, "float_model": str(ab.float_model),
        "tensorflow": ab.tensorflow, "dataset": ab.dataset, "inputs": list(ab.input_names),
        "backends": list(ab.labels), "passed": passed(ab),
        "schemes": [_scheme(res) for res in ab.schemes],
    }


def passed(ab: ABRun) -> bool:
    return all(res.verdict is None or res.verdict.passed for res in ab.schemes)


def _scheme(res: SchemeResult) -> dict:
    result = res.settings.get("result", {})
    worst = max((e.rel_error for e in res.outputs), default=None)
    figures = implementation_figures(res.run) if res.run is not None else []
    count = sum(f.count for f in figures)
    return {
        "scheme": res.scheme, "model": str(res.model_path),
        "settings": str(res.model_path.with_suffix(".json")),
        "converter": res.settings.get("converter", {}),
        "weights": {"per_channel": result.get("per_channel_weight_tensors"),
                    "per_tensor": result.get("per_tensor_weight_tensors")},
        "quantization_error": {
            "measured_on": res.measured_on, "error": res.error,
            "outputs": [e.as_dict() for e in res.outputs],
            "layers": [e.as_dict() for e in res.layers],
            "worst_output_rel_error": finite_or_none(worst),
        },
        "task": ab_task.scheme_json(res),
        "implementation_error": {
            "report": f"{res.scheme}/summary.json",
            "verdict": {"passed": res.verdict.passed, "failures": list(res.verdict.failures)}
            if res.verdict is not None else None,
            "backend_errors": dict(res.run.backend_errors) if res.run is not None else {},
            "mismatch_ratio": sum(f.mismatched for f in figures) / count if count else 0.0,
            "max_abs_delta": finite_or_none(max((f.max_abs_delta for f in figures), default=0)),
            "pairs": [_pair(f) for f in figures],
        },
    }


def _pair(f) -> dict:
    first = f.first_divergent
    return {
        "a": f.a, "b": f.b, "count": f.count, "mismatched": f.mismatched,
        "mismatch_ratio": f.mismatch_ratio, "max_abs_delta": finite_or_none(f.max_abs_delta),
        "output_max_abs_delta": finite_or_none(f.output_max_abs_delta),
        "diverging_inputs": f.diverging_inputs,
        "first_divergent": None if first is None else {
            "id": first.id, "op_name": first.op_name, "tensor_name": first.tensor_name,
            "depth": first.depth},
        "own_layers": f.own_layers, "inherited_layers": f.inherited_layers,
        "causes": dict(f.causes), "summary": f.summary,
    }


# --- terminal ----------------------------------------------------------------------------------
def render(ab: ABRun) -> str:
    # The answer first: with a task, whether a scheme changes the decisions.
    lines = ab_task.terminal_lines(ab)
    lines += [f"quantization error vs float (float model on the same real inputs, {len(ab.input_names)} "
             f"input(s); dequantized units)"]
    rows = [("output", "scheme", "MAE", "max err", "steps", "rel err", "cosine", "range")]
    names = list(dict.fromkeys(e.name for res in ab.schemes for e in res.outputs))
    for name in names:
        for res in ab.schemes:
            e = next((x for x in res.outputs if x.name == name), None)
            if e is not None:
                label = f"{name} [{'x'.join(map(str, e.shape))}]"
                rows.append((label if res is _first_with(ab, name) else "", res.scheme, _g(e.mae),
                             _g(e.max_error), _g(e.max_error_steps, 3), _pct(e.rel_error),
                             f"{e.cosine:.5f}", _g(e.range)))
    lines += _table(rows)
    for res in ab.schemes:
        if res.error:
            lines.append(f"  {res.scheme}: no quantization figures: {res.error}")
        elif res.layers:
            worst = max(res.layers, key=lambda e: e.rel_error)
            lines.append(f"  {res.scheme}: {len(res.layers)} layers compared with float (on "
                         f"{res.measured_on}); worst rel err {_pct(worst.rel_error)} at "
                         f"#{worst.depth} {worst.op_name} {_short(worst.name)}")
    lines += ["", "implementation error between backends (the same quantized model, pooled over inputs)"]
    rows = [("pair", "scheme", "mismatch", "max |Δ|", "out |Δ|", "first divergent", "own/inherited")]
    per_scheme = {res.scheme: implementation_figures(res.run) if res.run else [] for res in ab.schemes}
    pairs = list(dict.fromkeys(f.name for figs in per_scheme.values() for f in figs))
    for pair in pairs:
        for res in ab.schemes:
            f = next((x for x in per_scheme[res.scheme] if x.name == pair), None)
            if f is None:
                continue
            first = f.first_divergent
            rows.append((pair if not any(r[0] == pair for r in rows) else "", res.scheme,
                         f"{100 * f.mismatch_ratio:.2f}%", f"{f.max_abs_delta:g}",
                         f"{f.output_max_abs_delta:g}",
                         "-" if first is None else f"{first.id} {first.op_name} (#{first.depth})",
                         "-" if f.own_layers is None else f"{f.own_layers}/{f.inherited_layers}"))
    lines += _table(rows)
    for res in ab.schemes:
        if res.run is not None and res.run.backend_errors:
            for label, msg in res.run.backend_errors.items():
                lines.append(f"  {res.scheme}: {label} failed: {msg}")
    verdicts = [f"{res.scheme} {'PASSED' if res.verdict.passed else 'FAILED'}"
                for res in ab.schemes if res.verdict is not None]
    if verdicts:
        lines += ["", "policy per scheme: " + ", ".join(verdicts)]
    return "\n".join(lines)


def _first_with(ab: ABRun, name: str):
    return next(res for res in ab.schemes if any(e.name == name for e in res.outputs))


def _table(rows) -> list[str]:
    if len(rows) == 1:
        return ["  (nothing to show)"]
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    out = []
    for n, row in enumerate(rows):
        out.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return out


def _g(x, digits: int = 4) -> str:
    return "-" if x is None else f"{x:.{digits}g}"


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def _short(name: str, width: int = 40) -> str:
    first = name.split(";")[0]
    return first if len(first) <= width else "…" + first[-width + 1:]


# --- report.html -------------------------------------------------------------------------------
_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h2 { margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: .6em 0; }
th, td { border: 1px solid #ddd; padding: 2px 7px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.scheme-first td { border-top: 2px solid #999; }
.pass { color: #2e7d32; font-weight: bold; } .fail { color: #c62828; font-weight: bold; }
code { font-family: ui-monospace, monospace; font-size: 12px; }
"""


def render_html(ab: ABRun) -> str:
    s = summary(ab)
    out = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
           f"<title>simrun ab: {escape(str(ab.source.get('path') or 'model'))}</title>",
           f"<style>{_CSS}</style></head><body><h1>simrun ab</h1>",
           f"<p>float model <code>{escape(str(ab.source.get('path')))}</code> ({escape(ab.source['kind'])}), "
           f"TensorFlow {escape(ab.tensorflow)}; representative dataset <code>{escape(ab.dataset['spec'])}</code> "
           f"({ab.dataset['samples']} samples); inputs: {escape(', '.join(ab.input_names))}; "
           f"backends: {escape(', '.join(ab.labels))}</p>",
           "<h2>Schemes</h2><table><tr><th>scheme</th><th>model</th><th>weights per channel / per tensor</th>"
           "<th>converter settings</th><th>policy</th><th>differential report</th></tr>"]
    for sch in s["schemes"]:
        v = sch["implementation_error"]["verdict"]
        verdict = "-" if v is None else ("<span class='pass'>PASSED</span>" if v["passed"]
                                         else "<span class='fail'>FAILED</span>")
        out.append(f"<tr><td>{escape(sch['scheme'])}</td><td><code>{escape(Path(sch['model']).name)}</code></td>"
                   f"<td class='num'>{sch['weights']['per_channel']} / {sch['weights']['per_tensor']}</td>"
                   f"<td><code>{escape(json.dumps(sch['converter']))}</code></td><td>{verdict}</td>"
                   f"<td><a href='{escape(sch['scheme'])}/report.html'>{escape(sch['scheme'])}/report.html</a></td></tr>")
    out.append("</table>" + ab_task.html(ab) + "<h2>Quantization error vs float, at the outputs</h2>"
               "<table><tr><th>output</th><th>scheme</th><th>MAE</th><th>max error</th><th>steps</th>"
               "<th>rel error</th><th>cosine</th><th>float range</th></tr>")
    for name in dict.fromkeys(e["name"] for sch in s["schemes"] for e in sch["quantization_error"]["outputs"]):
        for n, sch in enumerate(s["schemes"]):
            e = next((x for x in sch["quantization_error"]["outputs"] if x["name"] == name), None)
            if e is not None:
                shape = "x".join(map(str, e["shape"]))
                out.append(f"<tr{' class=scheme-first' if n == 0 else ''}><td><code>{escape(name)}</code> [{shape}]</td>"
                           f"<td>{escape(sch['scheme'])}</td>" + _num_cells(e) + "</tr>")
    out.append("</table><h2>Quantization error vs float, per layer</h2><table><tr><th>#</th><th>operator</th>"
               "<th>tensor</th>" + "".join(f"<th>{escape(sch['scheme'])} rel error</th>" for sch in s["schemes"])
               + "</tr>")
    layers = {}
    for sch in s["schemes"]:
        for e in sch["quantization_error"]["layers"]:
            layers.setdefault(e["name"], e)
    for name, e in sorted(layers.items(), key=lambda kv: kv[1]["depth"] if kv[1]["depth"] is not None else 1e9):
        cells = []
        for sch in s["schemes"]:
            x = next((x for x in sch["quantization_error"]["layers"] if x["name"] == name), None)
            cells.append(f"<td class='num'>{_pct(x['rel_error']) if x else '-'}</td>")
        out.append(f"<tr><td class='num'>{e['depth']}</td><td>{escape(e['op_name'])}</td>"
                   f"<td><code>{escape(_short(name, 60))}</code></td>{''.join(cells)}</tr>")
    out.append("</table><h2>Implementation error between backends</h2><table><tr><th>pair</th><th>scheme</th>"
               "<th>mismatch</th><th>max |Δ|</th><th>outputs max |Δ|</th><th>first divergent</th>"
               "<th>own / inherited layers</th><th>diagnosis</th></tr>")
    for pair in dict.fromkeys((p["a"], p["b"]) for sch in s["schemes"] for p in sch["implementation_error"]["pairs"]):
        for n, sch in enumerate(s["schemes"]):
            p = next((x for x in sch["implementation_error"]["pairs"] if (x["a"], x["b"]) == pair), None)
            if p is None:
                continue
            first = p["first_divergent"]
            where = "-" if first is None else escape(f"{first['id']} {first['op_name']} (#{first['depth']})")
            own = "-" if p["own_layers"] is None else f"{p['own_layers']} / {p['inherited_layers']}"
            out.append(f"<tr{' class=scheme-first' if n == 0 else ''}><td>{escape(' vs '.join(pair))}</td>"
                       f"<td>{escape(sch['scheme'])}</td><td class='num'>{_pct(p['mismatch_ratio'])}</td>"
                       f"<td class='num'>{p['max_abs_delta']}</td><td class='num'>{p['output_max_abs_delta']}</td>"
                       f"<td>{where}</td><td class='num'>{own}</td><td>{escape(p['summary'])}</td></tr>")
    for sch in s["schemes"]:
        for label, msg in sch["implementation_error"]["backend_errors"].items():
            out.append(f"<tr><td colspan=8>{escape(sch['scheme'])}: {escape(label)} failed: {escape(msg)}</td></tr>")
    out.append("</table></body></html>")
    return "\n".join(out)


def _num_cells(e: dict) -> str:
    return "".join(f"<td class='num'>{v}</td>" for v in (
        _g(e["mae"]), _g(e["max_error"]), _g(e["max_error_steps"], 3), _pct(e["rel_error"]),
        "-" if e["cosine"] is None else f"{e['cosine']:.5f}", _g(e["range"])))


def write_reports(ab: ABRun, out_dir: Path, record=None) -> dict[str, Path]:
    """summary.json, junit.xml, summary.md and report.html in out_dir, each scheme's
    differential report (the `simrun diff` files) in out_dir/<scheme>/. Written in place:
    out_dir is the A/B's own folder, holding its models (`simrun ab` writes it whole into a
    temporary folder and moves it into place, simrun.report.folder)."""
    from . import write_into as write_diff_reports
    from .ab_ci import junit_tree, markdown
    from .junit import write_tree
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for res in ab.schemes:
        if res.result is not None:
            write_diff_reports(out_dir / res.scheme, res.result, title=f"simrun ab {res.scheme}")
    json_path = out_dir / "summary.json"
    json_path.write_text(json.dumps(summary(ab, record), indent=1, allow_nan=False) + "\n")
    html_path = out_dir / "report.html"
    html_path.write_text(render_html(ab))
    exit_code = record.exit_code if record is not None else None
    junit_path = write_tree(junit_tree(ab, exit_code, record), out_dir / "junit.xml")
    md_path = out_dir / "summary.md"
    md_path.write_text(markdown(ab, exit_code))
    return {"json": json_path, "html": html_path, "junit": junit_path, "markdown": md_path}


def relocate(ab: ABRun, old: Path, new: Path) -> None:
    """Point every path of `ab` under `old` at the same file under `new`: the A/B ran in a
    temporary folder that is about to be moved to `new`, and its reports name the final place."""
    def moved(path):
        try:
            return Path(new) / Path(path).relative_to(old)
        except (TypeError, ValueError):
            return path
    ab.float_model = moved(ab.float_model)
    for res in ab.schemes:
        res.model_path = moved(res.model_path)
        if res.run is not None and getattr(res.run.model, "path", None) is not None:
            res.run.model.path = moved(res.run.model.path)

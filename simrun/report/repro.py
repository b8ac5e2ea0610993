"""Reproducer bundles: for every layer that introduces error between two backends, a folder
that reproduces the difference on its own, to attach to an upstream bug report.

    repro/<a>_vs_<b>/<sg>_<op>_<OP_NAME>/
      model.tflite     the single-operator model, cut as the isolated runs cut it
                       (simrun.backends.isolate): the operator, its options, weights and
                       quantization, its non-constant inputs as model inputs
      input.npz        the values that fed it (the diagnosis reference's, arr_0, arr_1, ...)
      output_a.npz     each backend's output of the operator on exactly these values
      output_b.npz     (arr_0, ... in the cut model's output order)
      policy.toml      bit for bit: any difference fails
      repro.json       pair, layer, input it came from, cause and evidence, backend versions,
                       firmware variant, the command and its expected result
      README.md        the same in words

One bundle per (pair, layer): the first input on which the layer introduces error. The
command (`simrun diff model.tflite --input input.npz --backends A,B --no-diagnose --policy
policy.toml --report report`, run inside the bundle) is expected to exit 1 with the outputs
differing as repro.json says.
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np

from ..backends import parse_backend
from ..backends.isolate import cut_models
from ..errors import EXIT_POLICY

POLICY = """# Bit for bit: the reproducer expects the two backends to differ.
extends = "none"
[defaults]
pairs = ["*"]
max_abs_delta = 0
max_mismatch_ratio = 0.0
float_max_abs_delta = 0.0
"""


def write_bundles(run, samples: list[list[np.ndarray]], out_dir: Path) -> list[Path]:
    """Write one bundle per (pair, introducing layer) into out_dir; returns the bundle folders
    (none without a diagnosis). `samples`: the model inputs, in run.input_names order."""
    diagnosis = getattr(run, "diagnosis", None)
    if diagnosis is None or not diagnosis.isolated:
        return []
    out_dir = Path(out_dir)
    cuts = {cut.op_index: cut for cut in cut_models(run.model)[0]}
    written, done = [], set()
    for n, cmp in enumerate(run.comparisons):
        for pair in cmp.pairs:
            pd = run.pair_diagnosis(n, pair)
            if pd is None:
                continue
            for d in pd.introducing:
                key = (pair.a, pair.b, d.subgraph, d.op_index)
                cut = cuts.get(d.op_index) if d.subgraph == 0 else None
                if key in done or cut is None:
                    continue
                bundle = _bundle(run, n, pair, d, cut, samples[n], diagnosis, out_dir)
                if bundle is not None:
                    done.add(key)
                    written.append(bundle)
    return written


def _bundle(run, n, pair, d, cut, sample, diagnosis, out_dir: Path) -> Path | None:
    isolated = diagnosis.isolated[n]
    ref = isolated.get(diagnosis.reference)
    sides = [isolated.get(pair.a), isolated.get(pair.b)]
    if ref is None or None in sides:
        return None
    feed = {index: np.asarray(a) for index, a in zip(run.model.main.inputs, sample)}
    for rec in ref.ops:
        if rec.subgraph == 0:
            feed.update({t.index: t.values for t in rec.outputs})
    if any(i not in feed for i in cut.inputs):
        return None
    outputs = []
    for cap in sides:
        got = {t.index: t.values for rec in cap.ops if rec.key == (0, d.op_index) for t in rec.outputs}
        if any(i not in got for i in cut.outputs):
            return None
        outputs.append([got[i] for i in cut.outputs])

    folder = out_dir.joinpath(*bundle_key(pair.a, pair.b, d.subgraph, d.op_index, d.op_name))
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / "model.tflite").write_bytes(cut.data)
    np.savez(folder / "input.npz", *[feed[i] for i in cut.inputs])
    np.savez(folder / "output_a.npz", *outputs[0])
    np.savez(folder / "output_b.npz", *outputs[1])
    (folder / "policy.toml").write_text(POLICY)
    command = ["simrun", "diff", "model.tflite", "--input", "input.npz", "--backends",
               f"{pair.a},{pair.b}", "--no-diagnose", "--policy", "policy.toml", "--report", "report"]
    expected = [_difference(va, vb) for va, vb in zip(*outputs)]
    info = {
        "schema": 1,
        "pair": [pair.a, pair.b],
        "layer": {"id": d.id, "subgraph": d.subgraph, "op_index": d.op_index, "op_name": d.op_name,
                  "tensor_name": d.tensor_name},
        "model_sha256": getattr(run.model, "sha256", None),
        "input": run.input_names[n],
        "reference": diagnosis.reference,
        "cause": d.cause, "evidence": d.evidence, "kernel_a": d.kernel_a, "kernel_b": d.kernel,
        "versions": {label: dict(run.versions.get(label, {})) for label in (pair.a, pair.b)},
        "firmware": {label: _firmware(label) for label in (pair.a, pair.b) if _firmware(label)},
        "command": command,
        "expected": {"exit_code": EXIT_POLICY if any(e["mismatched"] for e in expected) else 0,
                     "outputs": expected},
    }
    (folder / "repro.json").write_text(json.dumps(info, indent=1) + "\n")
    (folder / "README.md").write_text(_readme(info))
    return folder


def _difference(a: np.ndarray, b: np.ndarray) -> dict:
    if a.dtype.kind in "iub":
        delta = b.astype(np.int64) - a.astype(np.int64)
    else:
        delta = b.astype(np.float64) - a.astype(np.float64)
    nonzero = np.flatnonzero(delta)
    worst = float(np.abs(delta).max()) if delta.size else 0.0
    return {"dtype": str(a.dtype), "shape": list(a.shape), "count": int(a.size),
            "mismatched": int(nonzero.size),
            "max_abs_delta": int(worst) if a.dtype.kind in "iub" else worst,
            "first_index": int(nonzero[0]) if nonzero.size else None}


def _firmware(label: str) -> dict | None:
    variant = parse_backend(label).variant
    if variant is None:
        return None
    return {"cpu": variant.cpu, "kernels": variant.kernels, "rounding": variant.rounding,
            "fp_contract": variant.fp_contract}


def _readme(info: dict) -> str:
    a, b = info["pair"]
    layer = info["layer"]
    outs = "; ".join(f"output {k}: {e['mismatched']} of {e['count']} values differ, max |Δ| "
                     f"{e['max_abs_delta']:g}" for k, e in enumerate(info["expected"]["outputs"]))
    versions = "\n".join(f"- {label}: " + ", ".join(f"{k} {v}" for k, v in info["versions"][label].items())
                         for label in (a, b))
    return (f"# {layer['op_name']} differs between {a} and {b}\n\n"
            f"Layer {layer['id']} `{layer['tensor_name']}` of the model (sha256 {info['model_sha256']}), "
            f"cut out as a single-operator model (`model.tflite`) and fed the values it received on "
            f"input `{info['input']}` (`input.npz`, from {info['reference']}).\n\n"
            f"Cause (simrun's diagnosis): **{info['cause']}**: {info['evidence']}\n\n"
            f"Reproduce, in this folder:\n\n    {' '.join(info['command'])}\n\n"
            f"Expected: exit code {info['expected']['exit_code']}; {outs} "
            f"(`output_a.npz` is {a}'s result, `output_b.npz` {b}'s).\n\n"
            f"Versions:\n{versions}\n"
            + ("".join(f"\nFirmware {label}: " + ", ".join(f"{k} {v}" for k, v in fw.items()) + "\n"
                       for label, fw in info["firmware"].items())))


def bundle_key(a: str, b: str, subgraph: int, op_index: int, op_name: str) -> tuple[str, str]:
    """The bundle's two folder names below the repro folder: <a>_vs_<b>, <sg>_<op>_<OP_NAME>."""
    return _slug(f"{a}_vs_{b}"), _slug(f"{subgraph}_{op_index}_{op_name}")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")

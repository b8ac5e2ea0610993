"""Reproducer bundles: every layer that introduces error between two backends gets a folder
whose one command reproduces the difference on the single-operator model alone.

The error is XNNPACK's (tflite-optimized rounds requantization once where the reference
kernels round twice): on our own int8 model (tests/testmodels.py) it starts in the first
CONV_2D, 1 step in a few values."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from simrun.errors import EXIT_POLICY, EXIT_USAGE
from simrun.model import Model

from test_diff import simrun_diff
from testmodels import conv_logistic_int8

REPO = Path(__file__).resolve().parents[1]
STRICT = 'extends = "none"\n[defaults]\npairs = ["*"]\nmax_abs_delta = 0\n'
pytestmark = pytest.mark.backends           # every test here runs the host interpreters


@pytest.fixture(scope="module")
def failed_run(tmp_path_factory, tf_model):
    work = tmp_path_factory.mktemp("repro")
    model = tf_model(conv_logistic_int8)
    (work / "strict.toml").write_text(STRICT)
    report = work / "report"
    code = simrun_diff(model, "--input", "random:1", "--backends", "tflite-reference,tflite-optimized",
                       "--policy", work / "strict.toml", "--report", report)
    return code, report, json.loads((report / "summary.json").read_text()), model


def test_a_failed_policy_writes_a_bundle_per_introducing_layer_into_the_report(failed_run):
    code, report, s, _ = failed_run
    assert code == EXIT_POLICY
    [pair] = s["comparisons"][0]["pairs"]
    introducing = [layer for layer in pair["layers"] if layer["own"] and layer["own"]["mismatched"]
                   and layer["cause"] not in ("inherited", "amplified", None)]
    assert introducing
    bundles = sorted(Path(p) for p in s["repro"])
    assert len(bundles) == len(introducing)
    assert all(b.parent == report / "repro" / "tflite-reference_vs_tflite-optimized" for b in bundles)
    for b in bundles:
        assert {f.name for f in b.iterdir()} == {"model.tflite", "input.npz", "output_a.npz", "output_b.npz",
                                                 "policy.toml", "repro.json", "README.md"}
        info = json.loads((b / "repro.json").read_text())
        assert info["pair"] == ["tflite-reference", "tflite-optimized"] and info["cause"] == "kernel"
        assert info["versions"]["tflite-optimized"]["resolver"] == "BUILTIN"
        cut = Model.from_file(b / "model.tflite")
        assert [op.op_name for op in cut.operators()] == [info["layer"]["op_name"]]
        with np.load(b / "output_a.npz") as a, np.load(b / "output_b.npz") as o:
            differ = int(np.count_nonzero(a["arr_0"] != o["arr_0"]))
        assert differ == info["expected"]["outputs"][0]["mismatched"] > 0
    html = (report / "report.html").read_text()
    assert "Reproducers" in html and "repro/tflite-reference_vs_tflite-optimized/0_0_CONV_2D/README.md" in html


def test_a_bundle_reproduces_the_difference_with_its_one_command_in_a_fresh_folder(failed_run, tmp_path):
    _, report, s, model = failed_run
    source = report / "repro" / "tflite-reference_vs_tflite-optimized" / "0_0_CONV_2D"
    fresh = tmp_path / "fresh"
    shutil.copytree(source, fresh)
    info = json.loads((fresh / "repro.json").read_text())
    assert info["command"][:2] == ["simrun", "diff"]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", "simrun", *info["command"][1:]], cwd=fresh, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == info["expected"]["exit_code"] == EXIT_POLICY, proc.stdout + proc.stderr
    got = json.loads((fresh / "report" / "summary.json").read_text())
    [pair] = got["comparisons"][0]["pairs"]
    for out, expected in zip(pair["outputs"], info["expected"]["outputs"]):
        assert (out["count"], out["mismatched"], out["max_abs_delta"]) == \
            (expected["count"], expected["mismatched"], expected["max_abs_delta"])
    # the same layer, the same difference as in the full model's isolated run
    [layer] = [x for x in s["comparisons"][0]["pairs"][0]["layers"] if x["id"] == info["layer"]["id"]]
    assert layer["own"]["mismatched"] == info["expected"]["outputs"][0]["mismatched"]


def test_repro_needs_the_diagnosis(tmp_path):
    model = REPO.parent / "shared" / "models" / "hello_world_int8.tflite"
    if not model.exists():
        pytest.skip(f"{model} not found")
    assert simrun_diff(model, "--repro", tmp_path / "r", "--no-diagnose", "--backends",
                       "tflm-host,tflite-reference", "--report", tmp_path / "rep") == EXIT_USAGE
    assert not (tmp_path / "r").exists()

"""`simrun diff --task ...` end to end on host backends: a classifier over a folder of images,
a YOLO-style int8 detector (tflite-optimized's kernels move its boxes; tflm-host equals the
reference), the same detector through a python: decoder, a streaming model's wake-word
trigger steps, and the policy judging decisions instead of tensors.

Models are built with TensorFlow at test time (tests/testmodels.py) or read from
../shared/models (vww_96_int8)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from simrun.analysis.policy import Policy
from simrun.analysis.tasks import parse_task
from simrun.errors import EXIT_OK, EXIT_POLICY, EXIT_USAGE
from simrun.inputs import load_named_inputs
from simrun.model import Model
from simrun.pipeline import diff_run

from test_diff import simrun_diff
from testmodels import DETECT_SIZE, streaming_int8, yolo_detector_int8

HOST = "tflite-reference,tflite-optimized,tflm-host"
pytestmark = pytest.mark.backends           # every test here runs the host interpreters


def _summary(report: Path) -> dict:
    return json.loads((report / "summary.json").read_text())


def _task_pair(s: dict, a: str, b: str) -> dict:
    [p] = [p for p in s["task"]["pairs"] if {p["a"], p["b"]} == {a, b}]
    return p


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> Path:
    pytest.importorskip("PIL")
    from PIL import Image
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(3)
    for i in range(6):
        # smooth random scenes (blurred noise), not white noise: more like a camera's
        base = rng.integers(0, 256, (12, 16, 3)).astype(np.uint8)
        Image.fromarray(base).resize((160, 120), Image.BILINEAR).save(folder / f"scene_{i:02d}.png")
    return folder


@pytest.fixture(scope="module")
def vww(models_dir) -> Path:
    return models_dir / "vww_96_int8.tflite"


@pytest.fixture(scope="module")
def detector(tf_model) -> Path:
    return tf_model(yolo_detector_int8)


# --- classify -------------------------------------------------------------------------------
def test_classify_over_a_folder_reports_top1_agreement_per_pair_everywhere(vww, image_folder, tmp_path, capsys):
    report = tmp_path / "report"
    code = simrun_diff(vww, "--input", image_folder, "--task", "classify", "--backends", HOST,
                       "--no-diagnose", "--report", report)
    out = capsys.readouterr().out
    assert code == EXIT_OK, out
    s = _summary(report)
    assert s["inputs"] == [f"scene_{i:02d}.png" for i in range(6)]
    assert "resized bilinearly" in s["preprocessing"] and "96x96" in s["preprocessing"]
    assert s["task"]["task"] == "classify" and len(s["task"]["pairs"]) == 3
    for pair in s["task"]["pairs"]:
        assert pair["metrics"]["inputs"] == 6 and 0.0 <= pair["metrics"]["top1_agreement"] <= 1.0
        assert [r["input"] for r in pair["inputs"]] == s["inputs"]
    exact = _task_pair(s, "tflite-reference", "tflm-host")
    assert exact["metrics"]["top1_agreement"] == 1.0 and exact["metrics"]["max_score_delta"] == 0.0
    # the answer first: the task's lines come before the tensor diagnosis in the terminal ...
    assert out.index("task classify over 6 inputs") < out.index("diagnosis:")
    assert "tflite-reference vs tflm-host [pass]: same top-1 class on all 6 inputs" in out
    assert "inputs: images: converted to RGB" in out
    # ... and in report.html
    html = (report / "report.html").read_text()
    assert html.index("Task: classify") < html.index("class='diagnosis'")
    for pair in s["task"]["pairs"]:
        assert f"{pair['a']} vs {pair['b']}" in html
    assert "top1 agreement" in html


@pytest.fixture(scope="module")
def vww_run(vww, image_folder):
    """tflite-optimized drifts inside vww (up to 8-9 steps) with the same top-1 class."""
    model = Model.from_file(vww)
    named = load_named_inputs(model, [str(image_folder)], count=4)
    return diff_run(model, [n for n, _ in named], [x for _, x in named],
                    ["tflite-reference", "tflite-optimized"], diagnose=False,
                    task=parse_task("classify", {}, model)).run


STRICT = """
extends = "none"
[defaults]
pairs = ["*"]
max_abs_delta = 0
[task]
{task}
"""


def test_a_task_policy_passes_where_tensors_drift_but_decisions_do_not(vww_run):
    pair = vww_run.comparisons[0].pair("tflite-reference", "tflite-optimized")
    assert pair.max_abs_delta >= 2                                    # tensors drift ...
    assert vww_run.task.pair("tflite-reference", "tflite-optimized").metrics["top1_agreement"] == 1.0
    verdict = Policy.parse(STRICT.format(task="task_min_top1_agreement = 1.0")).evaluate(vww_run)
    assert verdict.passed, verdict.failures                           # ... decisions do not
    assert verdict.task_pairs == {("tflite-reference", "tflite-optimized"): "pass"}
    assert any(w.startswith("tensor drift (reported; the task is judged): tflite-reference vs "
                            "tflite-optimized") for w in verdict.warnings)
    # asked to judge tensors as well, the same drift fails
    both = Policy.parse(STRICT.format(task="judge_tensors = true")).evaluate(vww_run)
    assert not both.passed and all("layer(s) out of tolerance" in f for f in both.failures)


# --- detect ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def detect_report(detector, tmp_path_factory):
    report = tmp_path_factory.mktemp("detect") / "report"
    # At score 0.6 one detection of the reference kernels falls below the cutoff under XNNPACK.
    code = simrun_diff(detector, "--input", "random:1", "--count", "6", "--task", "detect",
                       "--task-option", "score_threshold=0.6", "--backends", HOST, "--report", report)
    return code, _summary(report)


def test_detect_reports_matches_iou_box_shift_and_one_sided_detections_per_pair(detect_report):
    _, s = detect_report
    exact = _task_pair(s, "tflite-reference", "tflm-host")["metrics"]
    assert exact["matched"] == exact["detections_a"] == exact["detections_b"] > 0
    assert exact["max_box_shift_px"] == 0.0 and exact["only_a"] == exact["only_b"] == 0
    assert exact["min_iou"] == 1.0
    moved = _task_pair(s, "tflm-host", "tflite-optimized")
    m = moved["metrics"]
    # tflite-optimized's rounding moves boxes (in input pixels: 1 step of 1/255 of 32 px is 0.125)
    assert m["moved"] > 0 and 0.0 < m["max_box_shift_px"] < DETECT_SIZE / 4
    assert 0.0 < m["min_iou"] < 1.0 and m["matched"] > 0
    for r in moved["inputs"]:
        assert r["unmatched"] == len(r["only_a"]) + len(r["only_b"])
        assert r["changed"] == bool(r["unmatched"] or r["class_changes"])
    assert s["task"]["settings"]["score_threshold"] == 0.6


def test_a_device_side_decision_change_fails_naming_the_inputs_and_the_introducing_layer(detect_report):
    code, s = detect_report
    moved = _task_pair(s, "tflm-host", "tflite-optimized")
    assert moved["changed"], "the test detector's decisions were expected to change under XNNPACK"
    assert moved["metrics"]["only_a"] + moved["metrics"]["only_b"] > 0
    assert code == EXIT_POLICY and moved["verdict"] == "fail"
    [failure] = [f for f in s["verdict"]["failures"] if "tflm-host vs tflite-optimized" in f]
    assert failure.startswith("task detect: tflm-host vs tflite-optimized: the decision changes on ")
    for name in moved["changed"]:
        assert name in failure
    assert "introduces the error" in failure and "CONV_2D" in failure
    # the tensor drift is reported, not failed on
    assert not any("out of tolerance" in f for f in s["verdict"]["failures"])
    assert all(p["verdict"] == "unjudged" for c in s["comparisons"] for p in c["pairs"])


DECODER = '''
import numpy as np

SIZE = 32


def iou(a, b):
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(x2 - x1, 0) * max(y2 - y1, 0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def decode(outputs, context):
    rows = outputs[0][0].T                         # [N, 4 + nc]
    cx, cy, w, h = (rows[:, k] * SIZE for k in range(4))
    corners = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    cls = rows[:, 4:].argmax(axis=1)
    score = rows[np.arange(len(rows)), 4 + cls]
    kept = []
    for i in np.argsort(-score, kind="stable"):
        if score[i] < 0.6:
            break
        if all(cls[j] != cls[i] or iou(corners[i], corners[j]) <= 0.45 for j in kept):
            kept.append(i)
    return [{"box": corners[i].tolist(), "score": float(score[i]), "class": int(cls[i])} for i in kept]
'''


def test_a_python_decoder_gives_the_same_numbers_as_the_built_in_detect(detector, detect_report, tmp_path):
    (tmp_path / "yolo_decoder.py").write_text(DECODER)
    report = tmp_path / "report"
    simrun_diff(detector, "--input", "random:1", "--count", "6", "--task",
                f"python:{tmp_path / 'yolo_decoder.py'}:decode", "--backends", HOST,
                "--no-diagnose", "--report", report)
    s = _summary(report)
    built_in = detect_report[1]
    for a, b in (("tflite-reference", "tflm-host"), ("tflm-host", "tflite-optimized")):
        mine, theirs = _task_pair(s, a, b), _task_pair(built_in, a, b)
        for key in ("detections_a", "detections_b", "matched", "only_a", "only_b", "moved",
                    "class_changes"):
            assert mine["metrics"][key] == theirs["metrics"][key], key
        for key in ("max_box_shift_px", "mean_iou", "min_iou", "max_score_delta"):
            assert mine["metrics"][key] == pytest.approx(theirs["metrics"][key]), key
        assert mine["changed"] == theirs["changed"]


# --- wakeword -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def stream_model(tf_model) -> Path:
    return tf_model(streaming_int8)


def test_wakeword_reports_trigger_steps_per_backend_over_sequences(stream_model, tmp_path, capsys):
    report = tmp_path / "report"
    code = simrun_diff(stream_model, "--input", "random:5", "--input", "random:6", "--steps", "6",
                       "--task", "wakeword", "--task-option", "class_index=1", "--task-option",
                       "cutoff=0.6", "--backends", HOST, "--no-diagnose", "--report", report)
    out = capsys.readouterr().out
    s = _summary(report)
    task = s["task"]
    assert task["units"] == "sequences" and task["settings"]["cutoff"] == 0.6
    assert set(task["backends"]) == {"tflite-reference", "tflite-optimized", "tflm-host"}
    for label, facts in task["backends"].items():
        assert set(facts["trigger_steps"]) == {"random:5", "random:6"}
        assert f"{label}: triggers at random:5 " in out
    exact = _task_pair(s, "tflite-reference", "tflm-host")
    assert exact["metrics"]["max_prob_delta"] == 0.0 and not exact["changed"]
    for r in exact["inputs"]:
        assert r["steps"] == 6 and r["trigger_a"] == r["trigger_b"]
        assert r["trigger_a"] == task["backends"]["tflite-reference"]["trigger_steps"][r["input"]]
    assert code == (EXIT_POLICY if any(p["verdict"] == "fail" for p in task["pairs"]) else EXIT_OK)


def test_wakeword_without_a_sequence_is_a_usage_error(stream_model, tmp_path, capsys):
    code = simrun_diff(stream_model, "--task", "wakeword", "--task-option", "class_index=1",
                       "--backends", "tflm-host,tflite-reference", "--report", tmp_path / "r")
    assert code == EXIT_USAGE


def test_task_options_and_names_are_checked_before_any_backend_runs(detector, tmp_path):
    for argv in (["--task", "segment"], ["--task", "detect", "--task-option", "score=0.3"],
                 ["--task-option", "score_threshold=0.3"], ["--task", "detect", "--task-option", "oops"]):
        assert simrun_diff(detector, *argv, "--backends", "tflm-host,tflite-reference",
                           "--report", tmp_path / "r") == EXIT_USAGE
        # No backend ran: the report folder holds only the stopped run's summary (report/outcome.py)
        doc = json.loads((tmp_path / "r" / "summary.json").read_text())
        assert doc["complete"] is False and doc["exit_code"] == EXIT_USAGE
        assert not (tmp_path / "r" / "report.html").exists()


@pytest.mark.tflm
@pytest.mark.qemu
@pytest.mark.slow
def test_the_emulated_device_keeps_every_detection_of_host_tflm(detector, tflm_firmware, tmp_path):
    """Needs the TFLM sources (skipped otherwise): the reference-kernel firmware decides as
    host TFLM does, box for box, where tflite-optimized does not (above)."""
    tflm_firmware("cortex-m4")
    report = tmp_path / "report"
    code = simrun_diff(detector, "--input", "random:1", "--count", "3", "--task", "detect",
                       "--backends", "tflm-host,target", "--cpu", "cortex-m4", "--kernels", "reference",
                       "--report", report, "--timeout", "600")
    s = _summary(report)
    m = _task_pair(s, "tflm-host", "target:cortex-m4:reference")["metrics"]
    assert code == EXIT_OK, s["verdict"]
    assert m["matched"] == m["detections_a"] == m["detections_b"] > 0 and m["max_box_shift_px"] == 0.0


def test_the_python_api_takes_a_task(models_dir):
    import simrun
    result = simrun.diff(models_dir / "hello_world_int8.tflite", "random:2", count=3, task="classify",
                         task_options={"top_k": 1}, backends="tflm-host,tflite-reference", diagnose=False)
    [outcome] = result.run.task.pairs
    assert outcome.metrics["inputs"] == 3 and outcome.metrics["top1_agreement"] == 1.0
    assert result.verdict.task_pairs == {("tflite-reference", "tflm-host"): "pass"} and result.passed

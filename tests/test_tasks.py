"""Task decoders on arrays made here (no backend runs): the output formats each decoder reads,
the comparers, the [task] policy table and its failures, and folders of inputs."""
from __future__ import annotations

import numpy as np
import pytest

from simrun.analysis.policy import Policy
from simrun.analysis.task_policy import TaskPolicy, judge_task
from simrun.analysis.tasks import TaskResult, parse_task
from simrun.analysis.tasks import boxes, classify, detect, wakeword
from simrun.analysis.tasks.base import DecodeContext, TaskData
from simrun.errors import BadInput

CTX = DecodeContext("img.png", 32, 32, ("out",), "b", (None,))


def _settings(module, **kw):
    return parse_task(module.NAME, kw).settings


# --- classify -------------------------------------------------------------------------------
def test_classify_counts_flips_topk_overlap_and_score_deltas():
    s = _settings(classify, top_k=2)
    a = [classify.decode(s, [np.array([[0.1, 0.7, 0.2]])], CTX), classify.decode(s, [np.array([[0.5, 0.2, 0.3]])], CTX)]
    b = [classify.decode(s, [np.array([[0.1, 0.6, 0.3]])], CTX), classify.decode(s, [np.array([[0.2, 0.3, 0.5]])], CTX)]
    out = classify.compare(s, TaskData(["x", "y"], {"a": a, "b": b}, {}), "a", "b")
    assert out.metrics["top1_agreement"] == 0.5 and out.metrics["top1_changes"] == 1
    assert out.changed == ["y"]
    assert out.inputs[1]["class_a"] == 0 and out.inputs[1]["class_b"] == 2
    assert out.inputs[0]["topk_overlap"] == 1.0 and out.inputs[1]["topk_overlap"] == 0.5
    assert out.metrics["max_score_delta"] == pytest.approx(0.3)
    assert "y (0 -> 2)" in out.summary


# --- detect ---------------------------------------------------------------------------------
def _yolo(boxes_xywh, scores):
    """[1, 4+nc, N] as a YOLOv8 export gives it."""
    return np.concatenate([np.array(boxes_xywh, float), np.array(scores, float)], axis=1).T[None]


def test_detect_reads_yolo_heads_in_both_layouts_and_scales_normalized_boxes():
    # (the channel axis is the shorter one: real heads have far more anchors than channels)
    head = _yolo([[0.5, 0.5, 0.25, 0.25], [0.5, 0.5, 0.25, 0.25]] + [[0.1, 0.1, 0.1, 0.1]] * 6,
                 [[0.9, 0.1], [0.8, 0.1]] + [[0.1, 0.2]] * 6)
    s = _settings(detect)
    for layout in (head, head.transpose(0, 2, 1)):
        dets = detect.decode(s, [layout], CTX)
        # the duplicate is suppressed (NMS), the low score dropped; 0..1 boxes become pixels
        assert [d.cls for d in dets] == [0]
        assert dets[0].box == pytest.approx((12.0, 12.0, 20.0, 20.0))
        assert dets[0].score == pytest.approx(0.9)


def test_detect_reads_separate_boxes_and_scores_and_postprocess_outputs():
    s = _settings(detect, box_format="xyxy", coordinates="pixels")
    dets = detect.decode(s, [np.array([[[0.3, 0.7]]]), np.array([[[1, 2, 9, 10]]], float)], CTX)
    assert dets[0].box == (1.0, 2.0, 9.0, 10.0) and dets[0].cls == 1
    post = [np.array([[[0.0, 0.25, 0.5, 0.75], [0.1, 0.1, 0.2, 0.2]]]),       # ymin xmin ymax xmax
            np.array([[3.0, 1.0]]), np.array([[0.9, 0.6]]), np.array([1.0])]    # classes scores count
    dets = detect.decode(_settings(detect), post, CTX)
    assert len(dets) == 1 and dets[0].cls == 3 and dets[0].box == pytest.approx((8.0, 0.0, 24.0, 16.0))


def test_detect_decodes_dfl_boxes_around_the_anchor_grid():
    reg_max, strides = 4, (16, 32)          # 2x2 + 1x1 anchors on 32x32
    n = 5
    bins = np.full((n, 4, reg_max), -20.0)
    bins[:, :, 1] = 20.0                     # every side 1 stride from its anchor point
    scores = np.full((n, 1), -5.0)
    scores[0, 0] = 5.0                       # logits: only the first anchor scores
    out = np.concatenate([bins.reshape(n, -1), scores], axis=1).T[None]
    s = _settings(detect, format="yolo-dfl", reg_max=reg_max, strides="16,32", coordinates="pixels")
    [d] = detect.decode(s, [out], CTX)
    assert d.box == pytest.approx((-8.0, -8.0, 24.0, 24.0))    # anchor (0.5, 0.5) * 16, ±1 stride
    assert d.score == pytest.approx(1 / (1 + np.exp(-5.0)))


def test_matching_reports_shift_one_sided_detections_and_class_changes():
    a = [boxes.Detection((0, 0, 10, 10), 0.9, 0), boxes.Detection((20, 20, 30, 30), 0.8, 1),
         boxes.Detection((0, 20, 5, 25), 0.3, 0)]
    b = [boxes.Detection((1, 0, 11, 10), 0.85, 0), boxes.Detection((20, 20, 30, 30), 0.8, 2)]
    r = boxes.compare_one("x", a, b, 0.5)
    assert r["matched"] == 2 and r["class_changes"] == 1 and r["max_box_shift_px"] == 1.0
    assert [d["score"] for d in r["only_a"]] == [0.3] and r["only_b"] == [] and r["changed"]
    assert r["max_score_delta"] == pytest.approx(0.05)
    # zero-area boxes (a size quantized to 0) still match themselves
    z = [boxes.Detection((5, 5, 5, 9), 0.5, 0)]
    assert boxes.compare_one("z", z, z, 0.5)["matched"] == 1


def test_detect_settings_are_checked_by_name_and_type():
    with pytest.raises(BadInput, match="unknown setting 'score'"):
        parse_task("detect", {"score": 0.3})
    with pytest.raises(BadInput, match="score_threshold must be a number"):
        parse_task("detect", {"score_threshold": "high"})
    with pytest.raises(BadInput, match="unknown task 'segment'"):
        parse_task("segment")


# --- wakeword -------------------------------------------------------------------------------
def test_wakeword_trigger_steps_shift_and_largest_probability_difference():
    s = _settings(wakeword, cutoff=0.5)
    data = TaskData([f"s@{k}" for k in range(5)] + [f"t@{k}" for k in range(2)],
                    {"a": [0.1, 0.2, 0.6, 0.9, 0.9, 0.1, 0.2], "b": [0.1, 0.55, 0.7, 0.9, 0.9, 0.1, 0.6]},
                    {"s": [0, 1, 2, 3, 4], "t": [5, 6]})
    out = wakeword.compare(s, data, "a", "b")
    rs, rt = out.inputs
    assert (rs["trigger_a"], rs["trigger_b"], rs["trigger_shift_steps"]) == (2, 1, 1)
    assert rt["one_sided"] and rt["trigger_shift_steps"] is None
    assert rs["max_prob_delta"] == pytest.approx(0.35) and rs["max_prob_delta_step"] == 1
    assert out.changed == ["s", "t"]
    assert wakeword.backend_facts(s, data, "a") == {"trigger_steps": {"s": 2, "t": None}}


def test_wakeword_applies_softmax_to_logits_and_reads_probabilities_as_they_are():
    s = _settings(wakeword, class_index=1)
    logits = DecodeContext("x", None, None, ("o",), "b", ((-10.0, 10.0),))
    probs = DecodeContext("x", None, None, ("o",), "b", ((0.0, 0.996),))
    assert wakeword.decode(s, [np.array([0.0, 0.0])], logits) == pytest.approx(0.5)
    assert wakeword.decode(s, [np.array([0.2, 0.7])], probs) == pytest.approx(0.7)


# --- python: --------------------------------------------------------------------------------
def test_python_decoder_errors_name_the_file_and_the_function(tmp_path):
    with pytest.raises(BadInput, match="no such file"):
        parse_task(f"python:{tmp_path}/none.py:decode")
    (tmp_path / "dec.py").write_text("def decode(outputs):\n    return int(outputs[0].argmax())\n")
    with pytest.raises(BadInput, match="defines no function 'decoder'"):
        parse_task(f"python:{tmp_path}/dec.py:decoder")
    (tmp_path / "bad.py").write_text("import not_a_module_anywhere\n")
    with pytest.raises(BadInput, match="ModuleNotFoundError"):
        parse_task(f"python:{tmp_path}/bad.py:decode")
    spec = parse_task(f"python:{tmp_path}/dec.py:decode")
    from simrun.analysis.tasks import python_decoder
    assert python_decoder.decode(spec.code, [np.array([1.0, 3.0])], CTX) == 1


# --- the [task] policy table ----------------------------------------------------------------
def test_task_table_parses_kind_settings_and_limits():
    p = Policy.parse('[task]\nkind = "detect"\nscore_threshold = 0.3\ntask_max_box_shift_px = 2.5\n'
                     'judge_tensors = true\n')
    assert p.task.kind == "detect" and p.task.settings == {"score_threshold": 0.3}
    assert p.task.limits["task_max_box_shift_px"] == 2.5 and p.task.judge_tensors
    assert Policy.default().task.limits["task_min_top1_agreement"] == 1.0
    for text, message in (('[task]\ntask_max_shift = 1\n', "unknown key 'task_max_shift'"),
                          ('[task]\ntask_min_top1_agreement = 2\n', "share in"),
                          ('[task]\ntask_max_missed_detections = -1\n', "non-negative"),
                          ('[task]\nkind = 3\n', "kind must be a string")):
        with pytest.raises(BadInput, match=message):
            Policy.parse(text)


class _Run:
    """The parts of a DiffRun judge_task reads."""
    def __init__(self, result):
        self.task, self.sequences, self.input_names, self.comparisons = result, {}, ["x", "y"], []

    def pair_diagnosis(self, n, pair):
        return None


def test_task_failure_names_the_inputs_whose_decision_changed():
    s = _settings(classify)
    dec = lambda v: classify.decode(s, [np.array(v)], CTX)   # noqa: E731
    data = TaskData(["x", "y"], {"a": [dec([0.9, 0.1]), dec([0.6, 0.4])],
                                 "b": [dec([0.8, 0.2]), dec([0.4, 0.6])]}, {})
    result = TaskResult("classify", {}, [classify.compare(s, data, "a", "b")])
    failures, status = judge_task(TaskPolicy(), _Run(result), lambda a, b: True)
    assert status == {("a", "b"): "fail"}
    assert len(failures) == 1 and "y (class 0 -> 1)" in failures[0] and "x" not in failures[0].split("on ")[1]
    lenient = TaskPolicy(limits={**TaskPolicy().limits, "task_min_top1_agreement": 0.5})
    assert judge_task(lenient, _Run(result), lambda a, b: True) == ([], {("a", "b"): "pass"})
    # pairs the policy does not judge are reported only
    assert judge_task(TaskPolicy(), _Run(result), lambda a, b: False)[1] == \
        {("a", "b"): "unjudged"}


def test_task_settings_come_from_the_policy_and_the_command_line_overrides_them(models_dir):
    from simrun.commands.diff import task_spec
    from simrun.model import Model
    model = Model.from_file(models_dir / "vww_96_int8.tflite")
    with_kind = Policy.parse('[task]\nkind = "classify"\ntop_k = 1\n')
    assert task_spec(None, [], with_kind, model).settings.top_k == 1
    assert task_spec(None, ["top_k=2"], with_kind, model).settings.top_k == 2
    # settings without a kind apply to the --task given; another task than the policy's kind
    # does not get them (top_k is no wakeword setting)
    no_kind = Policy.parse('[task]\ntop_k = 1\n')
    assert task_spec("classify", [], no_kind, model).settings.top_k == 1
    assert task_spec("wakeword", ["class_index=1"], with_kind, model).settings.class_index == 1
    assert task_spec(None, [], Policy.default(), model) is None
    with pytest.raises(BadInput, match="--task-option needs a task"):
        task_spec(None, ["top_k=1"], Policy.default(), model)

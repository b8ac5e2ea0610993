"""What to do per cause, on hand-built Captures (the chain of tests/test_diagnose.py): the
rounding remedy checked by one whole-model run of the other-rounding firmware, the kernel
remedy naming the implementation that agrees, the amplified one tracing back to the layer
that introduces the difference; and every report showing them after the diagnosis."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from simrun.analysis.compare import compare
from simrun.analysis.diagnose import diagnose_run
from simrun.analysis.diffrun import DiffRun
from simrun.analysis.policy import Policy
from simrun.analysis.remedy import remedies, rounding_checks_wanted
from simrun.pipeline.remedies import check_remedies
from simrun.report import json_report, markdown, terminal
from synthetic_captures import make_capture

from test_diagnose import REF, SINGLE, TGT, VERSIONS, ChainModel, planted

TREF = "target:cortex-m55:reference"


def diagnosed(normal: dict, isolated: dict):
    """A diagnosed DiffRun whose normal Captures are in run.captures (as the pipeline leaves them)."""
    model = ChainModel()
    caps = {k: make_capture(k, v) for k, v in normal.items()}
    run = DiffRun(model, [compare(model, caps)], versions=dict(VERSIONS),
                  captures={k: [c] for k, c in caps.items()})
    iso = {k: make_capture(k, v) for k, v in isolated.items()}
    iso[REF] = caps[REF]
    diagnose_run(run, [iso], REF)
    return run


class Runner:
    """Stands in for run_backend: the whole-model Captures a label would return, counted."""

    def __init__(self, outputs: dict):
        self.outputs, self.calls = outputs, []

    def __call__(self, label, model_path, samples, options, sequences):
        self.calls.append(label)
        return [make_capture(label, self.outputs[label])]


def test_rounding_is_verified_by_one_whole_model_run_of_the_other_rounding_firmware():
    layers, normal_b, own_only = planted()
    run = diagnosed({REF: layers, TGT: normal_b}, {TGT: own_only, SINGLE: layers})
    assert rounding_checks_wanted(run) == [(SINGLE, REF)]
    runner = Runner({SINGLE: layers})
    [r] = check_remedies(run, [[np.zeros(1)]], runner=runner)
    assert runner.calls == [SINGLE]                     # one run, not one per layer
    assert (r.a, r.b, r.cause, r.status, r.variant) == (REF, TGT, "rounding", "verified", SINGLE)
    assert r.layers == ["0:2/12 CONV_2D"]
    assert "TFLITE_SINGLE_ROUNDING=1" in r.action and "CMSIS_NN_USE_SINGLE_ROUNDING" in r.action
    assert "simrun build --cpu cortex-m55 --kernels cmsis-nn --rounding single" in r.action
    assert r.check == f"{SINGLE} equals {REF} on every layer of this input"


def test_rounding_refuted_end_to_end_says_where_the_whole_model_still_differs():
    layers, normal_b, own_only = planted()
    still = [v.copy() for v in layers]
    still[4][0, 0, 0, 0] += 2                           # something rounding does not remove
    run = diagnosed({REF: layers, TGT: normal_b}, {TGT: own_only, SINGLE: layers})
    [r] = check_remedies(run, [[np.zeros(1)]], runner=Runner({SINGLE: still}))
    assert r.status == "refuted"
    assert r.check.startswith(f"{SINGLE} still differs from {REF} from 0:4/14 RESHAPE (#4) on: up to 2 step(s)")


def test_a_variant_in_the_matrix_is_reused_and_a_failing_one_leaves_the_per_layer_check():
    layers, normal_b, own_only = planted()
    run = diagnosed({REF: layers, TGT: normal_b, SINGLE: layers}, {TGT: own_only, SINGLE: layers})
    runner = Runner({})
    [r] = [x for x in check_remedies(run, [[np.zeros(1)]], runner=runner) if x.b == TGT and x.a == REF]
    assert runner.calls == [] and r.status == "verified" and "(its run in the matrix)" in r.check

    from simrun.errors import BackendError

    def failing(label, *args):
        raise BackendError(label, "the firmware did not build")
    run = diagnosed({REF: layers, TGT: normal_b}, {TGT: own_only, SINGLE: layers})
    [r] = check_remedies(run, [[np.zeros(1)]], runner=failing)
    assert r.status == "per-layer" and "the firmware did not build" in r.check
    assert f"isolated, {SINGLE} removes the own error of 0:2/12 CONV_2D" in r.check


def test_kernel_names_the_implementation_that_agrees_and_where_to_report():
    layers, normal_b, own_only = planted()
    run = diagnosed({REF: layers, TGT: normal_b}, {TGT: own_only, SINGLE: own_only, TREF: layers})
    [r] = remedies(run)
    assert r.cause == "kernel" and r.variant == TREF and r.status == "per-layer"
    assert r.action == (f"run a kernel that agrees ({TREF} agrees with {REF}), or report CMSIS-NN (mve path) "
                        "to CMSIS-NN (github.com/ARM-software/CMSIS-NN) with the reproducer")
    assert f"{TGT} (CMSIS-NN (mve path)) does not" in r.check
    assert r.repro == [(0, 2, "CONV_2D")]
    assert rounding_checks_wanted(run) == []           # no whole-model run for a kernel cause


def test_amplified_traces_back_to_the_layer_that_introduces_the_difference():
    layers, normal_b, own_only = planted(layer=2)
    normal_b[5][0, 1, 1, 3] = np.clip(int(layers[5][0, 1, 1, 3]) + 4, -128, 127)  # 1 step in, 4 out
    run = diagnosed({REF: layers, TGT: normal_b}, {TGT: own_only, SINGLE: layers})
    by_cause = {r.cause: r for r in remedies(run)}
    amp = by_cause["amplified"]
    assert amp.layers == ["0:5/15 LOGISTIC"]
    assert "LOGISTIC 0:5/15 magnifies the 1-step difference of its input 0:4/14 RESHAPE" in amp.check
    assert "0:2/12 CONV_2D (rounding)" in amp.action
    assert by_cause["rounding"].layers == ["0:2/12 CONV_2D"]


def test_every_report_shows_the_remedy_after_the_diagnosis():
    layers, normal_b, own_only = planted()
    run = diagnosed({REF: layers, TGT: normal_b}, {TGT: own_only, SINGLE: layers})
    check_remedies(run, [[np.zeros(1)]], runner=Runner({SINGLE: layers}))
    verdict = Policy.default().evaluate(run)
    text = terminal.render(run, verdict)
    assert text.index("diagnosis:") < text.index("what to do:") < text.index("first divergent")
    assert f"[verified end to end] {SINGLE} equals {REF} on every layer of this input" in text
    md = markdown.render(run, verdict)
    assert md.index("- ") < md.index("### What to do") < md.index("### Backend agreement")
    assert "**rounding**" in md and "*verified end to end*" in md
    s = json.loads(json.dumps(json_report.summary(run, verdict)))
    [j] = s["remedies"]
    assert j["status"] == "verified" and j["variant"] == SINGLE and j["cause"] == "rounding"
    keys = list(s)
    assert keys.index("verdict") < keys.index("task") < keys.index("diagnosis") < keys.index("remedies") \
        < keys.index("run") < keys.index("comparisons")
    from simrun.report import html
    page = html.render(run, verdict, {})
    assert page.index("class='diagnosis'") < page.index("What to do</h3>") < page.index("id='backends'")


# --- end to end on the host backends ---------------------------------------------------------
@pytest.mark.backends
def test_the_detector_diff_opens_with_the_task_then_names_what_to_do_in_every_report(tf_model, tmp_path, capsys):
    """YOLO-style detector, tflite-optimized differs: the XNNPACK layers' remedy names LiteRT
    without XNNPACK as agreeing, the LOGISTICs' traces back to a CONV_2D, each names its bundle."""
    from test_diff import simrun_diff
    from testmodels import yolo_detector_int8
    report = tmp_path / "report"
    code = simrun_diff(tf_model(yolo_detector_int8), "--input", "random:1", "--count", "6", "--task", "detect",
                       "--task-option", "score_threshold=0.6", "--backends",
                       "tflite-reference,tflite-optimized,tflm-host", "--report", report)
    assert code == 1                                    # a detection changes (tests/test_task_diff.py)
    out = capsys.readouterr().out
    assert out.index("task detect over 6 inputs:") < out.index("diagnosis:") < out.index("what to do:")
    s = json.loads((report / "summary.json").read_text())
    mine = [r for r in s["remedies"] if (r["a"], r["b"]) == ("tflite-reference", "tflite-optimized")]
    xnn = [r for r in mine if r["cause"] == "kernel" and "XNNPACK (github.com/google/XNNPACK)" in r["action"]]
    assert xnn and "tflite-optimized-nodelegate" in xnn[0]["action"] and xnn[0]["status"] == "per-layer"
    # every kernel layer has its bundle, named in the terminal too
    for r in (r for r in mine if r["cause"] == "kernel"):
        assert len(r["repro"]) == len(r["layers"])
        assert all(Path(b).parents[1] == report / "repro" for b in r["repro"])
        assert f"reproducer: {r['repro'][0]}" in out
    [amp] = [r for r in mine if r["cause"] == "amplified"]
    assert amp["layers"][0].endswith("LOGISTIC") and "CONV_2D (kernel)" in amp["action"]
    md = (report / "summary.md").read_text()
    assert md.index("### Task detect over 6 inputs") < md.index("- tflite-reference and tflm-host agree") \
        < md.index("### What to do") < md.index("### Backend agreement")
    page = (report / "report.html").read_text()
    assert page.index("id='task'") < page.index("class='diagnosis'") < page.index("id='remedies'")
    assert "repro/tflite-reference_vs_tflite-optimized/0_0_CONV_2D/README.md" in page


@pytest.mark.tflm
def test_the_rounding_remedy_on_the_emulated_device_is_one_whole_model_run_checked_directly(
        models_dir, tflm_firmware, tmp_path, capsys):
    """With TFLM sources (skipped otherwise): on kws_ref_model tflite-optimized's layers are
    `rounding` against cortex-m55's reference firmware; the remedy runs the single-rounding
    firmware once on the whole model, and what it says matches that firmware compared directly."""
    from simrun.analysis.compare import compare_pair
    from simrun.backends import run_backend
    from simrun.device.build import ensure_firmware
    from simrun.inputs import load_named_inputs
    from simrun.model import Model
    from test_diff import simrun_diff
    tflm_firmware("cortex-m55", "reference")
    ensure_firmware("cortex-m55", "reference", rounding="single")
    path = models_dir / "kws_ref_model.tflite"
    report = tmp_path / "report"
    simrun_diff(path, "--input", "random:1", "--backends", "tflite-reference,tflite-optimized,target",
                "--cpu", "cortex-m55", "--kernels", "reference", "--report", report, "--timeout", "600")
    err = capsys.readouterr().err
    assert err.count("on the whole model to check the rounding remedy") == 1    # one run for every pair
    s = json.loads((report / "summary.json").read_text())
    variant = "target:cortex-m55:reference:single-rounding"
    [r] = [r for r in s["remedies"] if {r["a"], r["b"]} == {"target:cortex-m55:reference", "tflite-optimized"}
           and r["cause"] == "rounding"]
    assert r["variant"] == variant and r["status"] in ("verified", "refuted")
    model = Model.from_file(path)
    samples = [sample for _, sample in load_named_inputs(model, ["random:1"])]
    direct = compare_pair(model, "tflite-optimized", run_backend("tflite-optimized", path, samples)[0],
                          variant, run_backend(variant, path, samples)[0])
    equal = not any(x.diverges for x in direct.layers + direct.outputs)
    assert (r["status"] == "verified") == equal, r["check"]
    assert r["check"].startswith(f"{variant} equals tflite-optimized on every layer" if equal
                                 else f"{variant} still differs from tflite-optimized")


def test_float_layers_get_fp_contract_off_xnnpack_and_each_sides_remedy():
    """tests/test_diagnose_sides.py's float chain: the device's FMA contraction, XNNPACK's own
    summation, and the pair of the two, each with its action."""
    from test_diagnose_sides import OPT, TGT as FTGT, _float_run
    run, _ = _float_run()
    by = {(r.a, r.b, r.cause): r for r in remedies(run)}
    fma = by[REF, FTGT, "float-contraction"]
    assert "-ffp-contract=off" in fma.action and "--fp-contract off" in fma.action
    assert fma.status == "per-layer" and fma.variant == FTGT + ":no-fp-contract"
    xnn = by[REF, OPT, "kernel"]
    assert "tflite-optimized-nodelegate" in xnn.action and "XNNPACK (github.com/google/XNNPACK)" in xnn.action
    both = [r for (a, b, cause), r in by.items() if cause == "both-sides"]
    assert len(both) == 1 and {both[0].a, both[0].b} == {FTGT, OPT}
    assert f"{FTGT} vs {REF}: float-contraction on 1 layer" in both[0].check
    assert f"{OPT} vs {REF}: kernel on 1 layer" in both[0].check

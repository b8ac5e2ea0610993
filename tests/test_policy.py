"""simrun.analysis.policy: tolerance files, overrides and the verdict they give."""
from __future__ import annotations

import numpy as np
import pytest

from simrun.analysis.compare import compare
from simrun.analysis.diffrun import DiffRun
from simrun.errors import BadInput
from simrun.analysis.policy import Policy

from synthetic_captures import FakeModel, attach_diagnosis, base_layers, make_capture, off_by


def run_with(ref_layers, other_layers, other="tflm-host", backend_errors=None) -> DiffRun:
    model = FakeModel()
    caps = {"tflite-reference": make_capture("tflite-reference", ref_layers),
            other: make_capture(other, other_layers)}
    return DiffRun(model, [compare(model, caps)], backend_errors=backend_errors or {})


def policy(text: str) -> Policy:
    return Policy.parse(text, "test.toml")


def test_default_policy_allows_one_step_but_not_two():
    layers = base_layers()
    assert Policy.default().evaluate(run_with(layers, off_by(layers, 1, 1))).passed
    verdict = Policy.default().evaluate(run_with(layers, off_by(layers, 3, 2)))
    assert not verdict.passed
    (failure,) = verdict.failures
    assert "tflite-reference vs tflm-host" in failure and "0:3/13" in failure and "max |Δ| 2 > 1" in failure
    pv = verdict.pairs[0]
    assert pv.first_failing.depth == 3
    assert set(pv.failing) == {"0:3/13", "0:4/14", "0:5/15", "output/15"}


def test_default_policy_reports_desktop_only_drift_without_failing():
    layers = base_layers()
    # Two desktop interpreters: reported, not judged, however far apart (the vww_96_int8 case).
    run = run_with(layers, off_by(layers, 1, 8), other="tflite-optimized")
    verdict = Policy.default().evaluate(run)
    assert verdict.passed and verdict.pairs[0].status == "unjudged"
    # ...unless the policy asks (on top of the default, which judges only outputs against
    # tflite-optimized, whose 8-step inner drift reaches the output as 3 % of its range).
    assert policy('[defaults]\npairs = ["*"]\n').evaluate(run).passed
    assert not policy('[defaults]\npairs = ["*"]\n[pair."tflite-optimized* vs *"]\n'
                      'judge_layers = true\n').evaluate(run).passed
    assert not policy('extends = "none"\n').evaluate(run).passed


def test_default_policy_judges_only_outputs_against_the_optimized_interpreter():
    layers = base_layers()
    inner = off_by(layers, 1, 8)
    inner[-1] = layers[-1].copy()                   # inner layers drift 8 steps, the output agrees
    run = DiffRun(FakeModel(), [compare(FakeModel(), {
        "tflm-host": make_capture("tflm-host", layers),
        "tflite-optimized": make_capture("tflite-optimized", inner)})])
    verdict = Policy.default().evaluate(run)
    assert verdict.passed and verdict.pairs[0].status == "pass"
    # An output moved by 13 of 255 steps (5.1 % of its range) is beyond the 5 % the default allows.
    moved = off_by(layers, len(layers) - 1, 13)
    run.comparisons[0] = compare(FakeModel(), {"tflm-host": make_capture("tflm-host", layers),
                                               "tflite-optimized": make_capture("tflite-optimized", moved)})
    verdict = Policy.default().evaluate(run)
    assert not verdict.passed
    assert set(verdict.pairs[0].failing) == {"output/15"}
    assert "output error 5.10% of its range > 5.00%" in verdict.failures[0]


def test_fewer_than_two_backends_is_not_a_pass():
    layers = base_layers(2)
    model = FakeModel()
    alone = DiffRun(model, [compare(model, {"tflm-host": make_capture("tflm-host", layers)})],
                    backend_errors={"tflite-reference": "refused"})
    verdict = policy('[backend_errors]\n"*" = "warn"\n').evaluate(alone)
    assert not verdict.passed
    assert verdict.failures == ["nothing was compared: fewer than two backends produced results "
                                "(only tflm-host; tflite-reference failed, see backend errors); a diff "
                                "needs at least two: add target backends (simrun diff --cpu CPU) to "
                                "compare the emulated device"]
    verdict = Policy.default().evaluate(DiffRun(model, [], backend_errors={"tflm-host": "crashed"}))
    assert not verdict.passed and "(none)" in verdict.failures[-1]


def test_default_policy_wants_host_and_target_reference_bit_exact():
    layers = base_layers()
    run = run_with(layers, off_by(layers, 5, 1), other="target:cortex-m4:reference")
    run.comparisons[0] = compare(run.model, {
        "tflm-host": make_capture("tflm-host", layers),
        "target:cortex-m4:reference": make_capture("target:cortex-m4:reference", off_by(layers, 5, 1))})
    verdict = Policy.default().evaluate(run)
    assert not verdict.passed and "max |Δ| 1 > 0" in verdict.failures[0]


def test_mismatch_ratio_limit():
    layers = base_layers()
    bumped = [v.copy() for v in layers]
    bumped[2][0, 0, 0, :] += 1                  # 8 of 128 values: 6.25 %
    lenient = policy("[defaults]\nmax_mismatch_ratio = 0.1\n")
    strict = policy("[defaults]\nmax_mismatch_ratio = 0.05\n")
    assert lenient.evaluate(run_with(layers, bumped)).passed
    verdict = strict.evaluate(run_with(layers, bumped))
    assert not verdict.passed and "mismatch 6.25% > 5.00%" in verdict.failures[0]


def test_override_per_operator_type():
    layers = base_layers()
    last = len(layers) - 1                      # the LOGISTIC layer
    run = run_with(layers, off_by(layers, last, 2))
    text = "[defaults]\nmax_abs_delta = 1\n[op.LOGISTIC]\nmax_abs_delta = 2\n"
    verdict = policy(text).evaluate(run)
    # the final output is the same tensor but judged as OUTPUT: still one step too far
    assert set(verdict.pairs[0].failing) == {f"output/{10 + last}"}
    text += "[op.OUTPUT]\nmax_abs_delta = 2\n"
    assert policy(text).evaluate(run).passed


def test_override_per_layer_name_glob_and_id():
    layers = base_layers()
    run = run_with(layers, off_by(layers, 4, 3))
    assert not policy("").evaluate(run).passed
    assert policy('[layer."layer[45]/*"]\nmax_abs_delta = 3\n').evaluate(run).passed
    assert policy('[layer."layer*"]\nskip = true\n').evaluate(run).passed
    only_one = policy('[layer."0:4/14"]\nskip = true\n').evaluate(run)
    assert set(only_one.pairs[0].failing) == {"0:5/15", "output/15"}


def test_specific_tables_override_general_ones():
    layers = base_layers()
    run = run_with(layers, off_by(layers, 0, 1), other="tflite-optimized")
    text = ('extends = "none"\n[defaults]\nmax_abs_delta = 5\n'
            '[pair."tflite-optimized vs tflite-reference"]\nmax_abs_delta = 0\n'   # either order matches
            '[op."CONV_*"]\nmax_abs_delta = 1\n')
    failing = policy(text).evaluate(run).pairs[0].failing
    assert "0:0/10" not in failing and "0:2/12" not in failing      # CONV_2D: op table wins
    assert "0:1/11" in failing                                      # DEPTHWISE: pair table


def test_pairs_not_selected_are_reported_unjudged():
    layers = base_layers()
    run = run_with(layers, off_by(layers, 0, 50), other="tflite-optimized")
    verdict = policy('[defaults]\npairs = ["tflm-host vs *"]\n').evaluate(run)
    assert verdict.passed and verdict.pairs[0].status == "unjudged"


def test_shape_mismatch_fails():
    layers = base_layers(2)
    verdict = Policy.default().evaluate(run_with(layers, [layers[0], layers[1].reshape(16, 8)]))
    assert not verdict.passed and "shape [1, 4, 4, 8] vs [16, 8]" in verdict.failures[0]


def test_float_tolerance():
    from simrun.capture import Quantization
    model = FakeModel()
    a = [np.array([1.0, 2.0], np.float32)]
    b = [np.array([1.0, 2.01], np.float32)]       # 0.01: beyond 1e-4 and beyond 1e-3 of magnitude 2
    caps = {"tflite-reference": make_capture("tflite-reference", a, ("FC",), quant=Quantization()),
            "tflm-host": make_capture("tflm-host", b, ("FC",), quant=Quantization())}
    run = DiffRun(model, [compare(model, caps)])
    assert not Policy.default().evaluate(run).passed
    assert policy("[defaults]\nfloat_max_abs_delta = 0.02\n").evaluate(run).passed


def test_backend_errors_fail_or_warn():
    layers = base_layers(2)
    errors = {"tflite-optimized": "quantized_dimension must be in range", "target:cortex-m4:cmsis-nn": "timeout"}
    run = run_with(layers, layers, other="tflm-host", backend_errors=errors)
    # The default excuses desktop TFLite's refusal (it says nothing about the device), not the device's.
    verdict = Policy.default().evaluate(run)
    assert verdict.backend_errors == {"tflite-optimized": "warn", "target:cortex-m4:cmsis-nn": "fail"}
    assert [w for w in verdict.warnings if "tflite-optimized" in w and "quantized_dimension" in w]
    assert len(verdict.failures) == 1 and "timeout" in verdict.failures[0]
    # A file's [backend_errors] globs are tried before the default's: "*" = "fail" fails both.
    verdict = policy('[backend_errors]\n"*" = "fail"\n').evaluate(run)
    assert not verdict.passed and len(verdict.failures) == 2
    assert any("quantized_dimension must be in range" in f for f in verdict.failures)
    verdict = policy('[backend_errors]\n"target:*" = "warn"\n').evaluate(run)
    assert verdict.passed and set(verdict.backend_errors.values()) == {"warn"}


@pytest.mark.parametrize("text, message", [
    ("[defaults]\nmax_abs_delt = 1\n", "unknown key 'max_abs_delt' in [defaults]"),
    ("[defaults]\nmax_abs_delta = \"one\"\n", "max_abs_delta must be a non-negative number, got 'one'"),
    ("[defaults]\nmax_abs_delta = -1\n", "must be a non-negative number"),
    ("[defaults]\nmax_mismatch_ratio = 5\n", "max_mismatch_ratio is a share in [0, 1]"),
    ("[op.LOGISTIC]\nmax_abs_delta = true\n", "[op.\"LOGISTIC\"] max_abs_delta must be a non-negative number"),
    ("[layer.\"x\"]\nskip = 1\n", "skip must be true or false"),
    ("[tolerances]\n", "unknown key 'tolerances' in the top level"),
    ("[backend_errors]\n\"*\" = \"ignore\"\n", "must be \"fail\" or \"warn\""),
    ("[defaults]\npairs = \"*\"\n", "pairs must be a list of strings"),
    ("[defaults\n", "not valid TOML"),
    ("op = 3\n", "`op` must be a table"),
])
def test_bad_policy_text_is_a_clear_error(text, message):
    with pytest.raises(BadInput) as err:
        policy(text)
    assert message in str(err.value) and "test.toml" in str(err.value)


def test_policy_file_loading(tmp_path):
    with pytest.raises(BadInput, match="cannot read policy"):
        Policy.load(tmp_path / "missing.toml")
    path = tmp_path / "p.toml"
    path.write_text("[defaults]\nmax_abs_delta = 7\n")
    p = Policy.load(path)
    assert p.defaults.max_abs_delta == 7 and p.source == str(path)
    assert Policy.load(None).pair_rules        # the packaged default has the bit-exact pair


def _device_run(device_layers, isolated, causes):
    layers = base_layers()
    model = FakeModel()
    run = DiffRun(model, [compare(model, {
        "tflm-host": make_capture("tflm-host", layers),
        "target:cortex-m4:cmsis-nn": make_capture("target:cortex-m4:cmsis-nn", device_layers)})])
    attach_diagnosis(run, 0, "tflm-host", "target:cortex-m4:cmsis-nn", layers, isolated, causes)
    return run


def test_own_error_the_device_introduces_fails_with_its_cause():
    layers = base_layers()
    # A planted device error: layer 2 adds 2 steps itself (own), the layers after inherit them.
    planted = off_by(layers, 2, 2)
    isolated = off_by(layers, 2, 2)
    for i in range(3, len(layers)):
        isolated[i] = layers[i].copy()
    run = _device_run(planted, isolated, {"0:2/12": "kernel"})
    verdict = Policy.default().evaluate(run)
    assert not verdict.passed
    failing = verdict.pairs[0].failing
    assert failing["0:2/12"] == ["max |Δ| 2 > 1", "own error max |Δ| 2 > 1"]
    assert failing["0:3/13"] == ["max |Δ| 2 > 1"]              # inherited: propagated error only
    assert verdict.failures[0].endswith("own error max |Δ| 2 > 1), cause: kernel")
    # Own error is judged on its own key: propagated room does not excuse it.
    loose = policy('[defaults]\npairs = ["*"]\nmax_abs_delta = 5\nown_max_abs_delta = 1\n')
    assert set(loose.evaluate(run).pairs[0].failing) == {"0:2/12"}
    assert policy('[defaults]\nmax_abs_delta = 5\nown_max_abs_delta = 2\n').evaluate(run).passed


def test_own_error_is_judged_where_propagated_error_is_not():
    layers = base_layers()
    drift = off_by(layers, 1, 1)
    isolated = off_by(layers, 1, 3)             # the device's own error: 3 steps at layer 1 only
    for i in range(2, len(layers)):
        isolated[i] = layers[i].copy()
    run = _device_run(drift, isolated, {"0:1/11": "rounding"})
    outputs_only = policy('[defaults]\njudge_layers = false\nown_max_abs_delta = 1\n')
    verdict = outputs_only.evaluate(run)
    assert set(verdict.pairs[0].failing) == {"0:1/11"}
    assert verdict.pairs[0].failing["0:1/11"] == ["own error max |Δ| 3 > 1"]


def test_float_tolerance_relative_to_magnitude():
    from simrun.capture import Quantization
    model = FakeModel()
    big = [np.array([1000.0, 2000.0], np.float32)]
    near = [np.array([1000.0, 2000.5], np.float32)]        # 0.5 absolute, 2.5e-4 of the magnitude
    caps = {"tflm-host": make_capture("tflm-host", big, ("FC",), quant=Quantization()),
            "target:cortex-m4:reference": make_capture("target:cortex-m4:reference", near, ("FC",),
                                                        quant=Quantization())}
    run = DiffRun(model, [compare(model, caps)])
    # The default allows 1e-3 of the magnitude; TOML has no null to unset a key: start from nothing.
    assert policy('[defaults]\nfloat_max_abs_delta = 1e-4\n').evaluate(run).passed
    strict = policy('extends = "none"\n[defaults]\nfloat_max_abs_delta = 1e-4\n')
    assert not strict.evaluate(run).passed
    verdict = policy('[defaults]\nfloat_max_abs_delta = 1e-4\nfloat_max_rel_delta = 1e-3\n').evaluate(run)
    assert verdict.passed, verdict.failures
    verdict = policy('[defaults]\nfloat_max_abs_delta = 1e-4\nfloat_max_rel_delta = 1e-4\n').evaluate(run)
    assert not verdict.passed and "of the tensor's magnitude > 0.0001" in verdict.failures[0]


@pytest.mark.parametrize("text, message", [
    ("[defaults]\njudge_layers = 1\n", "judge_layers must be true or false"),
    ("[defaults]\noutput_max_range_error = 2\n", "output_max_range_error is a share in [0, 1]"),
    ("[pair.\"*\"]\nown_max_abs_delta = -1\n", "own_max_abs_delta must be a non-negative number"),
    ("[defaults]\nfloat_max_rel_delta = nan\n", "float_max_rel_delta must be a non-negative number"),
    ("[op.CONV_2D]\nown_max_abs = 1\n", "unknown key 'own_max_abs'"),
])
def test_bad_new_policy_keys_are_clear_errors(text, message):
    with pytest.raises(BadInput) as err:
        policy(text)
    assert message in str(err.value)


def test_default_policy_does_not_judge_xnnpack_own_error():
    layers = base_layers()
    other = off_by(layers, 1, 2)
    for i in range(2, len(layers)):
        other[i] = layers[i].copy()              # own error 2 at layer 1, outputs agree
    model = FakeModel()
    for a, b in (("tflm-host", "tflite-optimized"), ("tflite-optimized", "target:cortex-m4:cmsis-nn")):
        run = DiffRun(model, [compare(model, {a: make_capture(a, layers), b: make_capture(b, other)})])
        attach_diagnosis(run, 0, a, b, layers, other, {"0:1/11": "kernel"})
        verdict = Policy.default().evaluate(run)
        assert verdict.passed and verdict.pairs[0].status == "pass", (a, b, verdict.failures)
    # the same own error of a device against host TFLM fails
    run = _device_run(other, other, {"0:1/11": "kernel"})
    assert Policy.default().evaluate(run).pairs[0].failing["0:1/11"] == ["max |Δ| 2 > 1", "own error max |Δ| 2 > 1"]


# --- policies that layer on the default; globs that match nothing -----------------------------

def _kws_like_run() -> DiffRun:
    """The kws_ref_model case: desktop TFLite's optimized kernels drift 2 steps inside the
    model, host TFLM and the reference kernels agree, the final outputs are identical."""
    layers = base_layers()
    drift = off_by(layers, 1, 2)
    drift[-1] = layers[-1].copy()
    model = FakeModel()
    caps = {"tflite-reference": make_capture("tflite-reference", layers),
            "tflm-host": make_capture("tflm-host", layers),
            "tflite-optimized": make_capture("tflite-optimized", drift)}
    return DiffRun(model, [compare(model, caps)])


def test_a_partial_file_keeps_the_default_it_does_not_mention():
    run = _kws_like_run()
    default = Policy.default().evaluate(run)
    assert default.passed
    # The built-in value, restated: before layering this file judged every pair from scratch
    # and failed the 2-step inner drift against tflite-optimized.
    partial = policy("[defaults]\nmax_abs_delta = 1\n")
    verdict = partial.evaluate(run)
    assert verdict.passed and not verdict.warnings
    assert [p.status for p in verdict.pairs] == [p.status for p in default.pairs]
    base = Policy.default()
    assert (partial.pairs_judged, partial.pair_rules, partial.backend_error_rules) == \
        (base.pairs_judged, base.pair_rules, base.backend_error_rules)
    assert verdict.policy_source == "test.toml on top of the default policy (simrun/data/policy-default.toml)"
    # extends = "none": the old blank slate, every pair judged layer by layer.
    blank = policy('extends = "none"\n[defaults]\nmax_abs_delta = 1\n')
    assert blank.pairs_judged == ("*",) and not blank.pair_rules
    assert not blank.evaluate(run).passed and blank.evaluate(run).policy_source == "test.toml"


def test_a_file_layers_table_by_table():
    p = policy('[defaults]\nmax_abs_delta = 3\npairs = ["*"]\n'
               '[pair."tflite-optimized* vs *"]\njudge_layers = true\n'
               '[backend_errors]\n"tflite-optimized" = "fail"\n')
    base = Policy.default()
    assert p.defaults.max_abs_delta == 3 and p.defaults.output_max_range_error == 0.05   # kept
    assert p.pairs_judged == ("*",)                                                       # replaced
    assert p.pair_rules == base.pair_rules + [("tflite-optimized* vs *", {"judge_layers": True})]
    assert p.backend_error_action("tflite-optimized") == "fail"       # the file's glob first
    assert p.backend_error_action("tflite-reference") == "warn"       # the default's after it
    with pytest.raises(BadInput, match='extends must be "default".*got \'defaults\''):
        policy('extends = "defaults"\n')


def test_globs_that_match_nothing_warn_with_the_closest_name():
    run = _kws_like_run()
    text = ('[op.CONV2D]\nmax_abs_delta = 2\n'
            '[pair."tflm-host vs tflite-optimised"]\nmax_abs_delta = 2\n'
            '[layer."model/nonexistent"]\nskip = true\n'
            '[backend_errors]\n"tflite-refrence" = "fail"\n'
            '[op."DEPTHWISE_*"]\nmax_abs_delta = 2\n'            # matches: no warning
            '[pair."tflite-optimized vs tflm-host"]\nmax_abs_delta = 2\n')   # either order matches
    verdict = policy(text).evaluate(run)
    assert verdict.passed                    # a warning, not a failure
    assert verdict.warnings == [
        'policy test.toml: [pair."tflm-host vs tflite-optimised"] matches no backend pair of this run; '
        'did you mean tflm-host vs tflite-optimized?',
        'policy test.toml: [op."CONV2D"] matches no operator type of this run; did you mean CONV_2D?',
        'policy test.toml: [layer."model/nonexistent"] matches no layer (tensor name or id) of this run',
        'policy test.toml: [backend_errors] "tflite-refrence" matches no backend of this run; '
        'did you mean tflite-reference?',
    ]
    # Only the file's own globs: the default's target pairs do not warn on a host-only run.
    assert not Policy.default().evaluate(run).warnings
    bad_pairs = policy('[defaults]\npairs = ["tflm-hots vs *"]\n').evaluate(run)
    assert bad_pairs.warnings == ['policy test.toml: [defaults] pairs entry "tflm-hots vs *" matches no '
                                  'backend pair of this run; did you mean tflm-host vs *?']


# --- a desktop interpreter's refusal is not the device's failure ------------------------------

def test_a_desktop_refusal_leaves_the_verdict_to_the_backends_that_ran():
    layers = base_layers()
    model = FakeModel()
    refused = "quantized_dimension must be in range [0, 1). Was 3"
    run = DiffRun(model, [compare(model, {
        "tflm-host": make_capture("tflm-host", layers),
        "target:cortex-m55:reference": make_capture("target:cortex-m55:reference", layers),
        "target:cortex-m55:cmsis-nn": make_capture("target:cortex-m55:cmsis-nn", layers)})],
        backend_errors={"tflite-optimized": refused, "tflite-reference": refused})
    verdict = Policy.default().evaluate(run)
    assert verdict.passed, verdict.failures
    assert verdict.backend_errors == {"tflite-optimized": "warn", "tflite-reference": "warn"}
    assert sum(refused in w for w in verdict.warnings) == 2
    assert ("the verdict rests on the 3 backends that ran: tflm-host, target:cortex-m55:reference, "
            "target:cortex-m55:cmsis-nn; not compared: tflite-optimized, tflite-reference (failed, see "
            "backend errors); to compare more, add target backends for more CPUs or kernels") in verdict.warnings[-1]
    # The device failing is not excused, and the same run without the device compares one backend.
    run.backend_errors["target:cortex-m55:cmsis-nn"] = "emulator timed out after 120 s"
    assert not Policy.default().evaluate(run).passed
    alone = DiffRun(model, [compare(model, {"tflm-host": make_capture("tflm-host", layers)})],
                    backend_errors={"tflite-optimized": refused, "tflite-reference": refused})
    (failure,) = Policy.default().evaluate(alone).failures
    assert failure.startswith("nothing was compared") and "--cpu CPU" in failure
    # Target backends asked for that failed themselves: the step is to make them run, not to add them.
    alone.backend_errors["target:cortex-m4:reference"] = "could not download tflite_micro"
    failures = Policy.default().evaluate(alone).failures
    assert "make the target backends run (their errors above say how)" in failures[-1]
    assert "--cpu CPU" not in failures[-1]

"""simrun.analysis.policy: tolerance files, overrides and the verdict they give."""
from __future__ import annotations

import numpy as np
import pytest

from simrun.analysis.compare import DiffRun, compare
from simrun.errors import BadInput
from simrun.analysis.policy import Policy

from synthetic_captures import FakeModel, base_layers, make_capture, off_by


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


def test_default_policy_gives_desktop_optimized_kernels_three_steps():
    layers = base_layers()
    assert Policy.default().evaluate(run_with(layers, off_by(layers, 1, 3), other="tflite-optimized")).passed
    verdict = Policy.default().evaluate(run_with(layers, off_by(layers, 1, 4), other="tflite-optimized"))
    assert not verdict.passed and "max |Δ| 4 > 3" in verdict.failures[0]


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
    text = ('[defaults]\nmax_abs_delta = 5\n'
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
    b = [np.array([1.0, 2.001], np.float32)]
    caps = {"tflite-reference": make_capture("tflite-reference", a, ("FC",), quant=Quantization()),
            "tflm-host": make_capture("tflm-host", b, ("FC",), quant=Quantization())}
    run = DiffRun(model, [compare(model, caps)])
    assert not Policy.default().evaluate(run).passed
    assert policy("[defaults]\nfloat_max_abs_delta = 0.01\n").evaluate(run).passed


def test_backend_errors_fail_or_warn():
    layers = base_layers(2)
    errors = {"tflite-optimized": "quantized_dimension must be in range", "target:cortex-m4:cmsis-nn": "timeout"}
    run = run_with(layers, layers, other="tflm-host", backend_errors=errors)
    verdict = Policy.default().evaluate(run)
    assert not verdict.passed and len(verdict.failures) == 2
    assert any("quantized_dimension must be in range" in f for f in verdict.failures)
    verdict = policy('[backend_errors]\n"tflite-*" = "warn"\n"*" = "fail"\n').evaluate(run)
    assert verdict.backend_errors == {"tflite-optimized": "warn", "target:cortex-m4:cmsis-nn": "fail"}
    assert [w for w in verdict.warnings if "tflite-optimized" in w]
    assert len(verdict.failures) == 1 and "timeout" in verdict.failures[0]


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

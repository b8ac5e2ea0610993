"""The pipeline's choices that need no backend: which reference, which variants it will not run."""
from __future__ import annotations

from simrun.pipeline import choose_reference
from simrun.pipeline.diff import _cannot_run


def test_reference_defaults_to_tflite_reference_then_tflm_host():
    assert choose_reference({"tflm-host": 1, "tflite-reference": 1, "tflite-optimized": 1}) == "tflite-reference"
    assert choose_reference({"tflm-host": 1, "target:cortex-m4:reference": 1}) == "tflm-host"
    # neither ran: the most reference-like backend that did
    assert choose_reference({"target:cortex-m4:cmsis-nn": 1, "target:cortex-m4:reference": 1}) == \
        "target:cortex-m4:reference"
    assert choose_reference({"tflm-host": 1, "tflite-optimized": 1}, "tflite-optimized") == "tflite-optimized"
    assert choose_reference({"tflm-host": 1}, "tflite-reference") is None      # asked for, did not run


def test_no_fp_contract_variant_for_a_cpu_without_fpu():
    assert "no FPU" in _cannot_run("target:cortex-m3:reference:no-fp-contract")
    assert _cannot_run("target:cortex-m4:reference:no-fp-contract") is None
    assert _cannot_run("target:cortex-m55:cmsis-nn:single-rounding") is None
    assert "cannot run" in _cannot_run("target:cortex-m99:reference:single-rounding")

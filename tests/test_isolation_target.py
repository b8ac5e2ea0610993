"""Isolation on the emulated target (Session.invoke(isolate_from=...) through the backend) and the
diagnosis it feeds. Needs TFLM sources (SIMRUN_SOURCES_DIR) and QEMU; skips, saying why, without.

- Lossless: target:cortex-m55:reference isolated against tflm-host (the same reference kernels
  on the host) shows zero own error on every layer of every int8 model in ../shared/models and
  of the TensorFlow-built test models.
- Against tflite-optimized: every layer whose own error vanishes in single-rounding firmware is
  labelled rounding; on the conv/depthwise/LOGISTIC test model there is at least one.
"""
from __future__ import annotations

import numpy as np
import pytest

from simrun.backends import run_backend
from simrun.run_options import RunOptions
from simrun.model import Model

TARGET = "target:cortex-m55:reference"
INT8_MODELS = ("hello_world_int8.tflite", "micro_speech_quantized.tflite", "person_detect.tflite",
               "keyword_scrambled_8bit.tflite", "vww_96_int8.tflite", "kws_ref_model.tflite")
pytestmark = [pytest.mark.tflm, pytest.mark.qemu, pytest.mark.slow]


@pytest.fixture(scope="module")
def test_models(tf_model):
    from testmodels import conv_logistic_int8, logistic_only_int8
    return {"conv_logistic_int8": tf_model(conv_logistic_int8), "logistic_only_int8": tf_model(logistic_only_int8)}


def _model_path(name, models_dir, test_models):
    return test_models[name] if name in test_models else models_dir / name


@pytest.mark.parametrize("name", INT8_MODELS + ("conv_logistic_int8", "logistic_only_int8"))
def test_target_isolated_against_host_tflm_has_no_own_error(name, tflm_firmware, models_dir, test_models):
    from conftest import random_input
    tflm_firmware("cortex-m55", "reference")            # skips, saying why, without sources
    path = _model_path(name, models_dir, test_models)
    model = Model.from_file(path)
    x = random_input(model, seed=0)
    (ref,) = run_backend("tflm-host", path, [x])
    (iso,) = run_backend(TARGET, path, [x], RunOptions(timeout=600), isolate_from=[ref])
    assert iso.meta["isolated_from"] == "tflm-host"
    assert iso.meta.get("not_isolated", {}) == {}
    want = {(r.subgraph, r.index, t.index): t.values for r in ref.ops for t in r.outputs}
    got = {(r.subgraph, r.index, t.index): t.values for r in iso.ops for t in r.outputs}
    assert got.keys() == want.keys()
    differing = [k for k in want if not np.array_equal(got[k], want[k])]
    assert differing == [], f"{name}: own error on {len(differing)} of {len(want)} layers"


def test_rounding_is_named_where_single_rounding_firmware_removes_the_error(tflm_firmware, test_models):
    from conftest import random_input
    from simrun.pipeline import diff_run
    tflm_firmware("cortex-m55", "reference")
    path = test_models["conv_logistic_int8"]
    model = Model.from_file(path)
    run = diff_run(model, ["random:0"], [random_input(model, 0)],
                   ["tflite-reference", "tflite-optimized", TARGET], RunOptions(timeout=600))
    d = run.diagnosis
    assert d.failed == {} and f"{TARGET}:single-rounding" in d.variants
    pd = d.pair(0, "tflite-optimized", TARGET)
    vanishing = [x for x in pd.layers if x.own is not None and x.own.diverges
                 and f"{TARGET}:single-rounding" in x.variants
                 and not x.variants[f"{TARGET}:single-rounding"].diverges]
    assert vanishing, pd.summary
    assert all(x.cause == "rounding" for x in vanishing), [(x.label, x.cause) for x in vanishing]
    assert "cause rounding (single-rounding firmware removes it)" in pd.summary


def test_float_contraction_is_named_where_firmware_without_fma_removes_the_error(tflm_firmware, models_dir):
    """hello_world_float: the cortex-m55 firmware (GCC's default -ffp-contract=fast, VFMA) differs
    from host TFLM by about 1e-7 in its FULLY_CONNECTED layers; built -ffp-contract=off it does not."""
    from conftest import random_input
    from simrun.pipeline import diff_run
    tflm_firmware("cortex-m55", "reference")
    model = Model.from_file(models_dir / "hello_world_float.tflite")
    run = diff_run(model, ["random:0"], [random_input(model, 0)], ["tflm-host", TARGET], RunOptions(timeout=600))
    d = run.diagnosis
    assert d.failed == {} and f"{TARGET}:no-fp-contract" in d.variants
    pd = d.pair(0, "tflm-host", TARGET)
    introducing = [x for x in pd.layers if x.own is not None and x.own.diverges]
    assert introducing, pd.summary
    assert [x.cause for x in introducing] == ["float-contraction"] * len(introducing), \
        [(x.label, x.cause, x.evidence) for x in introducing]
    assert "cause float-contraction" in pd.summary

"""simrun under pytest: diff a model on the host backends and assert what must hold.

Run with `python -m pytest examples/test_model_numerics.py` (add `-n auto` with pytest-xdist).
The model: MLPerf Tiny's keyword-spotting reference model (mlcommons/tiny,
benchmark/training/keyword_spotting/trained_models/kws_ref_model.tflite), in ./models
beside this file or in the folder $SIMRUN_MODELS names.
"""
import os
from pathlib import Path

from simrun.testing import assert_bit_exact, assert_no_own_error, assert_passed

MODELS = Path(os.environ.get("SIMRUN_MODELS", Path(__file__).parent / "models"))


def test_host_tflm_agrees_with_the_tflite_reference_kernels(simrun_diff):
    result = simrun_diff(MODELS / "kws_ref_model.tflite", inputs=["random:0", "random:1"],
                         backends=["tflite-reference", "tflm-host", "tflite-optimized"])
    assert_passed(result)                                    # the verdict `simrun diff` exits 0 for
    assert_bit_exact(result, "tflite-reference", "tflm-host")
    assert_no_own_error(result, "tflite-reference", "tflm-host")
    assert result.exit_code == 0 and set(result.seconds) == {"tflite-reference", "tflm-host",
                                                             "tflite-optimized"}

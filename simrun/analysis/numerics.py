"""Backend labels as numerics: which kernel family ran an operator, and which variant of a
backend (other rounding mode, no FMA contraction, no XNNPACK) tests a cause of its error.

Labels are read through simrun.backend_id (the one parser of
`target:<cpu>:<kernels>[:single-rounding][:no-fp-contract]`); a label outside that grammar
is simply not a target here.
"""
from __future__ import annotations

from ..backend_id import NODELEGATE, BackendId, FirmwareVariant

# Operators TFLM runs with a CMSIS-NN kernel when built with kernels=cmsis-nn (the files in
# tflite-micro/tensorflow/lite/micro/kernels/cmsis_nn at the pinned commit); their float
# versions fall back to TFLM's reference code.
CMSIS_NN_OPS = frozenset({
    "ADD", "BATCH_MATMUL", "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MAXIMUM", "MINIMUM",
    "MUL", "PAD", "MAX_POOL_2D", "AVERAGE_POOL_2D", "SOFTMAX", "SVDF", "TRANSPOSE",
    "TRANSPOSE_CONV", "UNIDIRECTIONAL_SEQUENCE_LSTM"})


def firmware_of(label: str) -> FirmwareVariant | None:
    """The firmware variant a target label names; None for any other backend."""
    found = BackendId.lookup(label)
    return found.variant if found else None


def other_rounding(label: str) -> str | None:
    v = firmware_of(label)
    return v.other_rounding().label if v else None


def without_fp_contract(label: str) -> str | None:
    v = firmware_of(label)
    alt = v.without_fp_contract() if v else None
    return alt.label if alt else None


def variant_labels(label: str, float_layer: bool) -> list[str]:
    """The isolated runs that test a cause for an own error on side `label`."""
    found = BackendId.lookup(label)
    return [n.label for n in found.neighbours(float_layer)] if found else []


def kernel_family(label: str, op_name: str, versions: dict | None = None, float_layer: bool = False) -> str:
    """Which implementation of `op_name` ran on backend `label` (from its label and versions)."""
    v = firmware_of(label)
    if v:
        rounding = " single-rounding" if v.single_rounding else ""
        if v.kernels == "cmsis-nn" and op_name in CMSIS_NN_OPS and not float_layer:
            path = (versions or {}).get("firmware.cmsis_nn_path")
            return f"CMSIS-NN{rounding}" + (f" ({path} path)" if path else "")
        return f"TFLM reference{rounding}"
    return {"tflm-host": "TFLM reference (host)", "tflite-reference": "TFLite reference",
            "tflite-optimized": "LiteRT optimized (XNNPACK delegate or built-in)",
            NODELEGATE: "LiteRT optimized built-in (no XNNPACK)"}.get(label, label)

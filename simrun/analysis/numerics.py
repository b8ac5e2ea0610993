"""Backend labels as numerics: which kernel family ran an operator, and which variant of a
backend (other rounding mode, no FMA contraction, no XNNPACK) tests a cause of its error.

Labels are plain strings here (analysis does not import the backends): the grammar is
`target:<cpu>:<kernels>[:single-rounding][:no-fp-contract]` (simrun.backends.parse_backend).
"""
from __future__ import annotations

# Operators TFLM runs with a CMSIS-NN kernel when built with kernels=cmsis-nn (the files in
# tflite-micro/tensorflow/lite/micro/kernels/cmsis_nn at the pinned commit); their float
# versions fall back to TFLM's reference code.
CMSIS_NN_OPS = frozenset({
    "ADD", "BATCH_MATMUL", "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MAXIMUM", "MINIMUM",
    "MUL", "PAD", "MAX_POOL_2D", "AVERAGE_POOL_2D", "SOFTMAX", "SVDF", "TRANSPOSE",
    "TRANSPOSE_CONV", "UNIDIRECTIONAL_SEQUENCE_LSTM"})
NODELEGATE = "tflite-optimized-nodelegate"


# --- variants --------------------------------------------
def target_parts(label: str) -> tuple[str, str, bool, bool] | None:
    """target:<cpu>:<kernels>[:single-rounding][:no-fp-contract] -> (cpu, kernels, single, no_fma)."""
    parts = label.split(":")
    if len(parts) < 3 or parts[0] != "target" or not set(parts[3:]) <= {"single-rounding", "no-fp-contract"}:
        return None
    return parts[1], parts[2], "single-rounding" in parts[3:], "no-fp-contract" in parts[3:]


def target_label_of(cpu: str, kernels: str, single: bool, no_fma: bool) -> str:
    return f"target:{cpu}:{kernels}" + (":single-rounding" if single else "") + (":no-fp-contract" if no_fma else "")


def other_rounding(label: str) -> str | None:
    t = target_parts(label)
    return target_label_of(t[0], t[1], not t[2], t[3]) if t else None


def without_fp_contract(label: str) -> str | None:
    t = target_parts(label)
    return target_label_of(t[0], t[1], t[2], True) if t and not t[3] else None


def variant_labels(label: str, float_layer: bool) -> list[str]:
    """The isolated runs that test a cause for an own error on side `label`."""
    if label == "tflite-optimized":
        return [NODELEGATE]
    alt = without_fp_contract(label) if float_layer else other_rounding(label)
    return [alt] if alt else []


def kernel_family(label: str, op_name: str, versions: dict | None = None, float_layer: bool = False) -> str:
    """Which implementation of `op_name` ran on backend `label` (from its label and versions)."""
    t = target_parts(label)
    if t:
        rounding = " single-rounding" if t[2] else ""
        if t[1] == "cmsis-nn" and op_name in CMSIS_NN_OPS and not float_layer:
            path = (versions or {}).get("firmware.cmsis_nn_path")
            return f"CMSIS-NN{rounding}" + (f" ({path} path)" if path else "")
        return f"TFLM reference{rounding}"
    return {"tflm-host": "TFLM reference (host)", "tflite-reference": "TFLite reference",
            "tflite-optimized": "LiteRT optimized (XNNPACK delegate or built-in)",
            NODELEGATE: "LiteRT optimized built-in (no XNNPACK)"}.get(label, label)

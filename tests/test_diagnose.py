"""Diagnosis on hand-built Captures: own vs propagated error and the cause of each layer.

A chain of six int8 layers (tests/synthetic_captures.py); operator i reads the output of
operator i-1. We plant an error in one layer of the normal run of side b, let it propagate,
and build the isolated runs that a backend fed the reference's inputs would return."""
from __future__ import annotations

import numpy as np
import pytest

from simrun.analysis.compare import compare
from simrun.analysis.diffrun import DiffRun
from simrun.analysis.diagnose import (CAUSES, diagnose_run, kernel_family, other_rounding,
                                      variant_labels, wanted_variants, without_fp_contract)
from simrun.capture import OpRecord, Quantization, Tensor
from simrun.model import OperatorInfo
from synthetic_captures import OP_NAMES, FakeModel, base_layers, make_capture, off_by

REF, TGT = "tflite-reference", "target:cortex-m55:cmsis-nn"
SINGLE = "target:cortex-m55:cmsis-nn:single-rounding"
VERSIONS = {TGT: {"firmware.cmsis_nn_path": "mve"}}


class ChainModel(FakeModel):
    """Operator i reads tensor 10 + i - 1 (operator 0 reads the model input, tensor 0)."""

    def operators(self):
        return [OperatorInfo(0, i, name, (10 + i - 1 if i else 0,), (10 + i,))
                for i, name in enumerate(OP_NAMES)]


def planted(layer=2, delta=1):
    """Normal runs: b off by `delta` from `layer` on; isolated: only `layer` itself off."""
    layers = base_layers()
    normal_b = off_by(layers, layer, delta, (0, 1, 1, 3))
    own_only = [v.copy() for v in layers]
    own_only[layer][0, 1, 1, 3] = normal_b[layer][0, 1, 1, 3]
    return layers, normal_b, own_only


def run_with(normal: dict, isolated: dict, model=None, versions=None):
    model = model or ChainModel()
    caps = {k: make_capture(k, v) for k, v in normal.items()}
    run = DiffRun(model, [compare(model, caps)], versions=versions or dict(VERSIONS))
    iso = {k: make_capture(k, v) for k, v in isolated.items()}
    iso[REF] = caps[REF]
    return run, iso


def test_rounding_inherited_and_none():
    layers, normal_b, own_only = planted()
    run, iso = run_with({REF: layers, TGT: normal_b}, {TGT: own_only, SINGLE: layers})
    diag = diagnose_run(run, [iso], REF, variants={SINGLE: "rounding"})
    assert run.diagnosis is diag
    p = diag.pair(0, REF, TGT)
    causes = [d.cause for d in p.layers]
    assert causes == ["none", "none", "rounding", "inherited", "inherited", "inherited"]
    d = p.layers[2]
    assert d.own.max_abs_delta == 1 and d.propagated.max_abs_delta == 1 and d.introduces
    assert SINGLE in d.evidence and "single-rounding firmware removes it" in d.evidence
    assert d.kernel == "CMSIS-NN (mve path)" and d.kernel_a == "TFLite reference"
    assert p.layers[3].own.max_abs_delta == 0 and not p.layers[3].introduces
    # the sentence names counts, the op type, the cause and the output's impact
    assert p.summary.startswith(f"{REF} vs {TGT}: 1 of 6 layers introduce error, all CONV_2D, "
                                "cause rounding (single-rounding firmware removes it)")
    assert "3 inherit it" in p.summary and "of range" in p.summary
    assert set(c for c in causes) <= set(CAUSES)


def test_kernel_when_the_error_persists_in_the_other_rounding_mode():
    layers, normal_b, own_only = planted()
    run, iso = run_with({REF: layers, TGT: normal_b}, {TGT: own_only, SINGLE: own_only})
    p = diagnose_run(run, [iso], REF).pair(0, REF, TGT)
    d = p.layers[2]
    assert d.cause == "kernel" and "persists in the other rounding mode" in d.evidence
    assert d.variants[SINGLE].max_abs_delta == 1
    assert "cause kernel (CMSIS-NN (mve path))" in p.summary


def test_unexplained_without_a_variant_and_the_wanted_variant_named():
    layers, normal_b, own_only = planted()
    run, iso = run_with({REF: layers, TGT: normal_b}, {TGT: own_only})
    assert wanted_variants(run.model, run.comparisons[0], iso) == {
        SINGLE: f"to test the cause of {TGT}'s own error (first at 0:2/12 CONV_2D)"}
    d = diagnose_run(run, [iso], REF).pair(0, REF, TGT).layers[2]
    assert d.cause == "unexplained" and "no variant run" in d.evidence


def test_amplified_by_a_steep_value_wise_layer():
    layers, normal_b, own_only = planted(layer=4)
    normal_b[5][0, 1, 1, 3] = np.clip(int(layers[5][0, 1, 1, 3]) + 4, -128, 127)  # 1 step in, 4 out
    run, iso = run_with({REF: layers, TGT: normal_b}, {TGT: own_only, SINGLE: layers})
    p = diagnose_run(run, [iso], REF).pair(0, REF, TGT)
    assert [d.cause for d in p.layers[4:]] == ["rounding", "amplified"]
    assert "LOGISTIC magnifies" in p.layers[5].evidence
    assert "1 amplify an inherited difference (LOGISTIC)" in p.summary


def test_a_convolution_growing_a_difference_is_inherited_not_amplified():
    layers, normal_b, own_only = planted(layer=0)
    normal_b[1][0, 2, 2, 2] += 3                 # DEPTHWISE_CONV_2D: sums many inputs
    run, iso = run_with({REF: layers, TGT: normal_b}, {TGT: own_only})
    assert diagnose_run(run, [iso], REF).pair(0, REF, TGT).layers[1].cause == "inherited"


def test_not_isolated_layers_say_why():
    layers, normal_b, own_only = planted()
    run, iso = run_with({REF: layers, TGT: normal_b}, {TGT: own_only, SINGLE: layers})
    cap = iso[TGT]
    cap.ops = [r for r in cap.ops if r.index != 3]
    cap.meta["not_isolated"] = {"0:3": "input tensor 12 has no reference value"}
    p = diagnose_run(run, [iso], REF).pair(0, REF, TGT)
    d = p.layers[3]
    assert d.own is None and d.cause == "unexplained"
    assert d.not_isolated == f"{TGT}: input tensor 12 has no reference value"
    assert "1 differing layers not isolated" in p.summary


def test_a_failed_isolated_run_leaves_every_layer_not_isolated():
    layers, normal_b, _ = planted()
    run, iso = run_with({REF: layers, TGT: normal_b}, {})
    p = diagnose_run(run, [iso], REF, failed={TGT: "emulator timed out"}).pair(0, REF, TGT)
    assert all(d.own is None for d in p.layers)
    assert p.layers[2].not_isolated == f"no isolated run of {TGT}: emulator timed out"
    assert p.layers[0].cause == "none" and p.layers[2].cause == "unexplained"


def test_bit_exact_pair():
    layers = base_layers()
    run, iso = run_with({REF: layers, "tflm-host": layers}, {"tflm-host": layers})
    p = diagnose_run(run, [iso], REF).pair(0, REF, "tflm-host")
    assert {d.cause for d in p.layers} == {"none"}
    assert p.summary == f"{REF} vs tflm-host: bit-exact on all 6 layers"


def test_desktop_pair_xnnpack_told_from_litert_kernels():
    layers, normal_b, own_only = planted()
    opt = "tflite-optimized"
    run, iso = run_with({REF: layers, opt: normal_b}, {opt: own_only, "tflite-optimized-nodelegate": layers})
    d = diagnose_run(run, [iso], REF).pair(0, REF, opt).layers[2]
    assert d.cause == "kernel" and d.kernel == "XNNPACK delegate (LiteRT default)"
    assert "agrees with tflite-reference" in d.evidence
    run, iso = run_with({REF: layers, opt: normal_b}, {opt: own_only, "tflite-optimized-nodelegate": own_only})
    d = diagnose_run(run, [iso], REF).pair(0, REF, opt).layers[2]
    assert d.cause == "kernel" and "differ too" in d.evidence


def test_float_contraction():
    rng = np.random.default_rng(1)
    layers = [rng.normal(size=(1, 8)).astype(np.float32) for _ in OP_NAMES]
    b = [v.copy() for v in layers]
    for v in b[2:]:
        v[0, 0] += 1e-6
    own = [v.copy() for v in layers]
    own[2] = b[2].copy()
    nofma = without_fp_contract(TGT)
    none = Quantization()
    model = ChainModel()
    caps = {REF: make_capture(REF, layers, quant=none), TGT: make_capture(TGT, b, quant=none)}
    run = DiffRun(model, [compare(model, caps)])
    iso = {REF: caps[REF], TGT: make_capture(TGT, own, quant=none),
           nofma: make_capture(nofma, layers, quant=none)}
    d = diagnose_run(run, [iso], REF).pair(0, REF, TGT).layers[2]
    assert d.cause == "float-contraction" and "-ffp-contract=off" in d.evidence
    assert d.own.max_error == pytest.approx(1e-6, rel=0.1) and d.impact > 0


def test_impact_is_relative_to_the_tensor_range():
    layers, normal_b, own_only = planted(delta=2)
    run, iso = run_with({REF: layers, TGT: normal_b}, {TGT: own_only})
    d = diagnose_run(run, [iso], REF).pair(0, REF, TGT).layers[2]
    # 2 steps of a 255-step int8 range
    assert d.impact == pytest.approx(2 / 255) and d.own_impact == pytest.approx(2 / 255)


def test_variant_labels():
    assert other_rounding(TGT) == SINGLE and other_rounding(SINGLE) == TGT
    assert without_fp_contract(SINGLE) == SINGLE + ":no-fp-contract"
    assert without_fp_contract(TGT + ":no-fp-contract") is None
    assert variant_labels("tflite-optimized", False) == ["tflite-optimized-nodelegate"]
    assert variant_labels("tflm-host", False) == []
    assert variant_labels(TGT, True) == [TGT + ":no-fp-contract"]
    assert kernel_family("target:cortex-m4:cmsis-nn", "LOGISTIC") == "TFLM reference"
    assert kernel_family(SINGLE, "CONV_2D", {"firmware.cmsis_nn_path": "mve"}) == \
        "CMSIS-NN single-rounding (mve path)"
    assert kernel_family(TGT, "CONV_2D", float_layer=True) == "TFLM reference"


def test_firmware_rounding_evidence_wins_over_litert_without_xnnpack():
    """target vs tflite-optimized: single-rounding firmware removes the own error (rounding),
    even where LiteRT without XNNPACK also happens to agree with the target."""
    opt, tref = "tflite-optimized", "target:cortex-m55:reference"
    layers, normal_b, own_only = planted()
    run, iso = run_with({REF: layers, opt: normal_b, tref: layers},
                        {opt: own_only, tref: layers, tref + ":single-rounding": own_only,
                         "tflite-optimized-nodelegate": layers})
    d = diagnose_run(run, [iso], REF).pair(0, opt, tref).layer("2")
    assert d.cause == "rounding" and "target:cortex-m55:reference:single-rounding it is 0" in d.evidence


def test_a_desktop_pair_gets_rounding_when_tflm_reproduces_both_sides():
    """tflite-reference vs tflite-optimized: the double-rounding firmware equals the reference,
    the single-rounding one equals tflite-optimized on the same inputs."""
    opt, tref = "tflite-optimized", "target:cortex-m55:reference"
    layers, normal_b, own_only = planted()
    run, iso = run_with({REF: layers, opt: normal_b}, {opt: own_only, tref: layers,
                                                        tref + ":single-rounding": own_only,
                                                        "tflite-optimized-nodelegate": layers})
    p = diagnose_run(run, [iso], REF).pair(0, REF, opt)
    d = p.layer("2")
    assert d.cause == "rounding" and d.kernel == "LiteRT optimized (XNNPACK delegate or built-in)"
    assert f"{tref} gives {REF}'s output, {tref}:single-rounding gives {opt}'s" in d.evidence
    assert "cause rounding (single-rounding firmware removes it)" in p.summary

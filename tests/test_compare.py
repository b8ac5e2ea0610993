"""Alignment and metrics of simrun.analysis.compare on hand-built Captures."""
from __future__ import annotations

import numpy as np
import pytest

from simrun.capture import Capture, OpRecord, Quantization, Tensor
from simrun.analysis.compare import HIST_BINS, compare, default_pairs
from simrun.errors import BadInput
from simrun.model import Model

from synthetic_captures import OP_NAMES, FakeModel, base_layers, make_capture, off_by


def test_identical_captures_have_no_divergence():
    layers = base_layers()
    cmp = compare(FakeModel(), {"tflm-host": make_capture("tflm-host", layers),
                                "tflite-reference": make_capture("tflite-reference", layers)})
    (pair,) = cmp.pairs
    assert (pair.a, pair.b) == ("tflite-reference", "tflm-host")   # reference-like side first
    assert pair.first_divergent is None and pair.worst is None
    assert len(pair.layers) == len(layers)
    for depth, s in enumerate(pair.layers):
        assert s.compared and s.depth == depth and s.mismatched == 0 and s.max_abs_delta == 0
        assert s.count == layers[depth].size
        assert s.histogram["0"] == s.count
        assert s.mae == 0.0 and s.rmse == 0.0 and s.cosine == pytest.approx(1.0)
    assert [o.mismatched for o in pair.outputs] == [0]


def test_off_by_one_in_a_deep_layer_is_the_first_divergent():
    layers = base_layers()
    cmp = compare(FakeModel(), {"tflite-reference": make_capture("tflite-reference", layers),
                                "tflite-optimized": make_capture("tflite-optimized", off_by(layers, 4, -1))})
    pair = cmp.pair("tflite-reference", "tflite-optimized")
    assert pair.first_divergent.depth == 4
    assert pair.first_divergent.op_name == OP_NAMES[4]
    assert pair.first_divergent.id == "0:4/14"
    assert [s.mismatched for s in pair.layers] == [0, 0, 0, 0, 1, 1]
    deep = pair.layers[4]
    assert deep.max_abs_delta == 1 and deep.mismatch_ratio == pytest.approx(1 / deep.count)
    assert deep.histogram["-1"] == 1 and deep.histogram["0"] == deep.count - 1
    assert deep.mae == pytest.approx(0.05 / deep.count)          # one step of scale 0.05
    assert deep.rmse == pytest.approx(0.05 / np.sqrt(deep.count))
    assert 0.99 < deep.cosine < 1.0
    assert pair.outputs[0].mismatched == 1


def test_histogram_bins_large_deltas_and_signs():
    a = np.zeros((1, 10), np.int8)
    b = np.array([[0, 1, -1, 2, -2, 3, -3, 100, -100, 0]], np.int8)
    cmp = compare(FakeModel(), {"tflite-reference": make_capture("tflite-reference", [a], ("CONV_2D",)),
                                "tflm-host": make_capture("tflm-host", [b], ("CONV_2D",))})
    s = cmp.pairs[0].layers[0]
    assert s.histogram == dict(zip(HIST_BINS, (2, 1, 1, 2, 1, 1, 2)))
    assert s.max_abs_delta == 100 and s.mismatched == 8


def test_int8_extremes_do_not_overflow():
    a = np.full((4,), -128, np.int8)
    b = np.full((4,), 127, np.int8)
    cmp = compare(FakeModel(), {"tflite-reference": make_capture("tflite-reference", [a], ("ADD",)),
                                "tflm-host": make_capture("tflm-host", [b], ("ADD",))})
    assert cmp.pairs[0].layers[0].max_abs_delta == 255


def test_per_channel_dequantization_weights_each_channel():
    # Channel c has scale 10**c: the same one-step error costs 1, 10, 100 after dequantization.
    q = Quantization((1.0, 10.0, 100.0), (0, 0, 0), quantized_dimension=1)
    a = np.zeros((2, 3), np.int8)
    for channel, expected_mae in ((0, 1 / 6), (1, 10 / 6), (2, 100 / 6)):
        b = a.copy()
        b[0, channel] = 1
        cmp = compare(FakeModel(), {"tflite-reference": make_capture("tflite-reference", [a], ("FC",), quant=q),
                                    "tflm-host": make_capture("tflm-host", [b], ("FC",), quant=q)})
        s = cmp.pairs[0].layers[0]
        assert s.max_abs_delta == 1
        assert s.mae == pytest.approx(expected_mae)


def test_capture_without_quantization_borrows_the_models():
    q = Quantization((0.5,), (0,))
    a = np.zeros((4,), np.int8)
    b = np.array([2, 0, 0, 0], np.int8)
    model = FakeModel({(0, 10): q})
    cmp = compare(model, {"tflite-reference": make_capture("tflite-reference", [a], ("FC",), quant=Quantization()),
                          "tflm-host": make_capture("tflm-host", [b], ("FC",), quant=Quantization())})
    assert cmp.pairs[0].layers[0].mae == pytest.approx(2 * 0.5 / 4)


def test_shape_and_dtype_mismatch_are_reported_not_raised():
    layers = base_layers(3)
    reshaped = [layers[0], layers[1].reshape(1, 16, 8), layers[2].astype(np.int16)]
    cmp = compare(FakeModel(), {"tflite-reference": make_capture("tflite-reference", layers),
                                "tflm-host": make_capture("tflm-host", reshaped)})
    pair = cmp.pairs[0]
    assert [s.status for s in pair.layers] == ["compared", "shape_mismatch", "dtype_mismatch"]
    assert pair.layers[1].shape_a == (1, 4, 4, 8) and pair.layers[1].shape_b == (1, 16, 8)
    assert pair.layers[2].dtype_b == "int16"
    assert pair.first_divergent is pair.layers[1]
    assert pair.worst.status in ("shape_mismatch", "dtype_mismatch")


def test_layers_present_on_one_side_only_are_listed():
    layers = base_layers(3)
    # host TFLM also runs a second subgraph (e.g. a WHILE body) that desktop TFLite does not expose
    extra = [OpRecord(1, 0, "ADD", [Tensor(3, "body/add", np.ones((2,), np.int8))])]
    cmp = compare(FakeModel(), {"tflite-optimized": make_capture("tflite-optimized", layers[:2]),
                                "tflm-host": make_capture("tflm-host", layers, extra_ops=extra)})
    pair = cmp.pairs[0]
    assert (pair.a, pair.b) == ("tflm-host", "tflite-optimized")
    statuses = {s.id: s.status for s in pair.layers}
    assert statuses == {"0:0/10": "compared", "0:1/11": "compared", "0:2/12": "only_a", "1:0/3": "only_a"}
    assert pair.first_divergent is None
    # the final outputs differ in which tensor they are: each is only on one side
    assert sorted(o.status for o in pair.outputs) == ["only_a", "only_b"]


def test_float_tensors_measure_in_float_units():
    a = np.array([1.0, 2.0, 3.0], np.float32)
    b = np.array([1.0, 2.0, 3.25], np.float32)
    cmp = compare(FakeModel(), {"tflite-reference": make_capture("tflite-reference", [a], ("FC",), quant=Quantization()),
                                "tflite-optimized": make_capture("tflite-optimized", [b], ("FC",), quant=Quantization())})
    s = cmp.pairs[0].layers[0]
    assert not s.integer and s.histogram is None
    assert s.max_abs_delta == pytest.approx(0.25) and s.mismatched == 1


def test_float_nan_agrees_with_nan_and_differs_from_numbers():
    a = np.array([np.nan, np.nan, np.inf, 1.0], np.float32)
    b = np.array([np.nan, 1.0, np.inf, 1.0], np.float32)
    cmp = compare(FakeModel(), {"tflite-reference": make_capture("tflite-reference", [a], ("FC",), quant=Quantization()),
                                "tflm-host": make_capture("tflm-host", [b], ("FC",), quant=Quantization())})
    s = cmp.pairs[0].layers[0]
    assert s.mismatched == 1 and s.max_abs_delta == np.inf


def test_default_pairs_put_reference_like_backends_first():
    labels = ["target:cortex-m55:cmsis-nn", "tflite-optimized", "tflm-host",
              "target:cortex-m55:reference", "tflite-reference"]
    pairs = default_pairs(labels)
    assert len(pairs) == 10
    assert pairs[0] == ("tflite-reference", "tflm-host")
    assert ("target:cortex-m55:reference", "target:cortex-m55:cmsis-nn") in pairs
    assert ("tflm-host", "target:cortex-m55:reference") in pairs


def test_explicit_pairs_and_unknown_backend():
    layers = base_layers(2)
    caps = {n: make_capture(n, layers) for n in ("tflite-reference", "tflm-host", "tflite-optimized")}
    cmp = compare(FakeModel(), caps, pairs=[("tflm-host", "tflite-optimized")])
    assert [p.name for p in cmp.pairs] == ["tflm-host vs tflite-optimized"]
    with pytest.raises(BadInput, match="no capture from target:cortex-m4:reference"):
        compare(FakeModel(), caps, pairs=[("tflm-host", "target:cortex-m4:reference")])


def test_capture_of_another_model_is_rejected():
    other = make_capture("tflm-host", base_layers(1))
    other.model_sha256 = "cd" * 32
    with pytest.raises(BadInput, match="for model sha256 cdcd"):
        compare(FakeModel(), {"tflm-host": other, "tflite-reference": make_capture("tflite-reference", base_layers(1))})


def test_real_model_metadata_names_layers(models_dir):
    model = Model.from_file(models_dir / "hello_world_int8.tflite")
    caps = {}
    for label, bump in (("tflite-reference", 0), ("tflm-host", 3)):
        ops = []
        for op in model.operators():
            out = op.outputs[0]
            info = model.tensor(op.subgraph, out)
            values = np.zeros(info.shape, info.dtype)
            if op.index == 1:
                values.flat[0] = bump
            # Captures without names or quantization: compare fills both in from the model
            ops.append(OpRecord(op.subgraph, op.index, op.op_name, [Tensor(out, "", values)]))
        caps[label] = Capture(label, model.sha256, ops)
    pair = compare(model, caps).pairs[0]
    assert pair.first_divergent.op_name == "FULLY_CONNECTED" and pair.first_divergent.depth == 1
    assert pair.first_divergent.tensor_name == model.tensor(0, model.operators()[1].outputs[0]).name
    scale = model.tensor(0, model.operators()[1].outputs[0]).quantization.scale[0]
    assert pair.first_divergent.max_abs_delta == 3
    assert pair.first_divergent.mae == pytest.approx(3 * scale / pair.first_divergent.count)

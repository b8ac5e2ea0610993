"""Host isolation (single-operator cut models) and the diagnosis of host-only pairs.

No TFLM sources needed: desktop LiteRT and the tflite-micro wheel run the cut models. The
TensorFlow-built conv/depthwise/LOGISTIC model (tests/testmodels.py) is where tflite-optimized
(XNNPACK) differs from tflite-reference by 1-2 steps."""
from __future__ import annotations

import numpy as np
import pytest

from simrun.backends import run_backend
from simrun.backends.isolate import CutRunner, cut_models, run_isolated
from simrun.capture import Capture
from simrun.model import Model, _schema

REF = "tflite-reference"


@pytest.fixture(scope="module")
def conv_model(tf_model):
    from testmodels import conv_logistic_int8
    return tf_model(conv_logistic_int8)


@pytest.fixture(scope="module")
def conv_run(conv_model):
    """(model, inputs, the reference's captures) for two random inputs."""
    from conftest import random_input
    model = Model.from_file(conv_model)
    inputs = [random_input(model, seed) for seed in (0, 1)]
    return model, inputs, run_backend(REF, conv_model, inputs)


def _layers(cap: Capture) -> dict:
    return {(r.subgraph, r.index, t.index): t.values for r in cap.ops for t in r.outputs}


def test_cut_models_keep_operator_tensors_weights_and_quantization(models_dir):
    model = Model.from_file(models_dir / "micro_speech_quantized.tflite")
    cuts, refused = cut_models(model)
    assert refused == {} and [c.op_index for c in cuts] == [op.index for op in model.main.operators]
    schema = _schema()
    full = schema.ModelT.InitFromPackedBuf(model.data, 0)
    for cut in cuts:
        op = model.main.operators[cut.op_index]
        small = Model(cut.data)
        (only,) = small.main.operators
        assert only.op_name == op.op_name
        for old, new in zip(op.inputs + op.outputs, only.inputs + only.outputs):
            a, b = model.tensor(0, old), small.tensor(0, new)
            assert (a.name, a.dtype, a.shape, a.quantization, a.is_constant) == \
                   (b.name, b.dtype, b.shape, b.quantization, b.is_constant)
        # weights and biases byte for byte; the fed inputs are the non-constant ones
        cut_t = schema.ModelT.InitFromPackedBuf(cut.data, 0)
        for old, new in zip(op.inputs, only.inputs):
            if model.tensor(0, old).is_constant:
                want = full.buffers[full.subgraphs[0].tensors[old].buffer].data
                got = cut_t.buffers[cut_t.subgraphs[0].tensors[new].buffer].data
                assert np.array_equal(want, got)
        assert [small.main.tensors[i].name for i in small.main.inputs] == \
               [model.tensor(0, i).name for i in cut.inputs]
        assert all(not model.tensor(0, i).is_constant for i in cut.inputs)


def test_the_reference_isolated_against_itself_is_lossless(conv_run, conv_model):
    model, inputs, ref = conv_run
    iso = run_backend(REF, conv_model, inputs, isolate_from=ref)
    for cap, r in zip(iso, ref):
        assert cap.meta["isolated_from"] == REF and cap.meta["not_isolated"] == {}
        got, want = _layers(cap), _layers(r)
        assert got.keys() == want.keys() and len(got) == len(model.main.operators)
        assert all(np.array_equal(got[k], want[k]) for k in want)
        assert np.array_equal(cap.outputs[0].values, r.outputs[0].values)


def test_host_tflm_fed_the_reference_introduces_no_error(conv_run, conv_model):
    """Same reference kernels: every layer's own error against tflite-reference is zero."""
    _, inputs, ref = conv_run
    for cap, r in zip(run_backend("tflm-host", conv_model, inputs, isolate_from=ref), ref):
        got, want = _layers(cap), _layers(r)
        assert got.keys() == want.keys()
        assert [k for k in want if not np.array_equal(got[k], want[k])] == []


def test_xnnpack_own_error_is_small_and_inherited_error_is_not_own(conv_run, conv_model):
    """tflite-optimized differs from the reference in its normal run; isolated, its convolutions
    differ by at most the 1-2 steps of their own requantization."""
    _, inputs, ref = conv_run
    normal = run_backend("tflite-optimized", conv_model, inputs[:1])[0]
    iso = run_backend("tflite-optimized", conv_model, inputs[:1], isolate_from=ref[:1])[0]
    want, got, prop = _layers(ref[0]), _layers(iso), _layers(normal)
    own = {k: int(np.abs(got[k].astype(int) - want[k].astype(int)).max()) for k in want}
    propagated = {k: int(np.abs(prop[k].astype(int) - want[k].astype(int)).max()) for k in want}
    assert any(own.values()) and max(own.values()) <= 2
    assert sum(propagated.values()) > sum(own.values())


def test_inputs_the_reference_lacks_are_reported_not_isolated(conv_run, conv_model):
    model, inputs, ref = conv_run
    first = model.main.operators[0]
    crippled = Capture(REF, ref[0].model_sha256, [r for r in ref[0].ops if r.index != 0],
                       ref[0].outputs, ref[0].versions)
    (cap,) = run_backend("tflm-host", conv_model, inputs[:1], isolate_from=[crippled])
    consumers = [op for op in model.main.operators if first.outputs[0] in op.inputs]
    for op in consumers:
        assert cap.meta["not_isolated"][f"0:{op.index}"] == \
            f"input tensor {first.outputs[0]} has no value in the reference capture"
        assert all(r.index != op.index for r in cap.ops)
    assert "0:0" not in cap.meta["not_isolated"]


def test_a_cut_model_the_backend_refuses_is_reported(conv_run):
    model, inputs, ref = conv_run

    def refuse(data: bytes) -> CutRunner:
        raise RuntimeError("Didn't find op for builtin opcode 'CONV_2D'. Registration failed.")

    caps = run_isolated(model, "tflm-host", inputs, ref, refuse, {})
    assert all(c.ops == [] for c in caps)
    assert caps[0].meta["not_isolated"]["0:0"].startswith(
        "tflm-host refused the cut model: Didn't find op for builtin opcode 'CONV_2D'")


def test_isolate_from_needs_one_capture_per_input(conv_run, conv_model):
    from simrun.errors import BadInput
    _, inputs, ref = conv_run
    with pytest.raises(BadInput, match="1 reference captures for 2 inputs"):
        run_backend("tflm-host", conv_model, inputs, isolate_from=ref[:1])


def test_host_pipeline_diagnoses_every_pair(conv_model):
    """What the README's first run shows: a host-only diff with a diagnosis per pair."""
    from conftest import random_input
    from simrun.pipeline import diff_run
    model = Model.from_file(conv_model)
    events = []
    run = diff_run(model, ["random:0"], [random_input(model, 0)],
                   ["tflite-reference", "tflm-host", "tflite-optimized"],
                   progress=lambda label, event, secs, msg: events.append((label, event, msg)))
    d = run.diagnosis
    assert d.reference == REF and d.failed == {}
    assert list(d.variants) == ["tflite-optimized-nodelegate"]
    assert ("tflite-optimized-nodelegate (isolated)", "finished", "") in events
    assert any(label == "diagnosis" and "running tflite-optimized-nodelegate" in msg
               for label, _, msg in events)
    assert d.pair(0, REF, "tflm-host").summary == \
        f"{REF} vs tflm-host: bit-exact on all {len(model.main.operators)} layers"
    opt = d.pair(0, REF, "tflite-optimized")
    assert opt.introducing and {x.cause for x in opt.introducing} == {"kernel"}
    assert {x.kernel for x in opt.introducing} == {"XNNPACK delegate (LiteRT default)"}
    assert opt.summary.startswith(f"{REF} vs tflite-optimized: {len(opt.introducing)} of {len(model.main.operators)} layers "
                                  "introduce error")


def test_no_diagnose_and_a_bad_reference(conv_model, capsys, tmp_path):
    from simrun.cli import main
    code = main(["diff", str(conv_model), "--backends", "tflm-host,tflite-reference",
                 "--reference", "tflite-optimized", "--report", str(tmp_path / "r")])
    assert code == 2
    assert "--reference tflite-optimized: not among the backends" in capsys.readouterr().err
    from conftest import random_input
    from simrun.pipeline import diff_run
    model = Model.from_file(conv_model)
    run = diff_run(model, ["r"], [random_input(model, 0)], ["tflite-reference", "tflm-host"],
                   diagnose=False)
    assert run.diagnosis is None


@pytest.mark.parametrize("name", ["hello_world_float", "hello_world_int8", "keyword_scrambled_8bit",
                                  "kws_ref_model", "micro_speech_quantized", "person_detect",
                                  "vww_96_int8"])
@pytest.mark.backends
def test_host_tflm_cut_models_are_lossless_on_every_shared_model(name, models_dir):
    """Each operator cut out and fed tflm-host's own values gives tflm-host's own outputs."""
    from conftest import random_input
    path = models_dir / f"{name}.tflite"
    x = random_input(Model.from_file(path), seed=0)
    ref = run_backend("tflm-host", path, [x])
    (iso,) = run_backend("tflm-host", path, [x], isolate_from=ref)
    assert iso.meta["not_isolated"] == {}
    got, want = _layers(iso), _layers(ref[0])
    assert got.keys() == want.keys()
    assert [k for k in want if not np.array_equal(got[k], want[k])] == []

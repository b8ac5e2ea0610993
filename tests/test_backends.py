"""Backends run in their own process and return Captures aligned with the model; a
refusal, an abort or a timeout becomes a BackendError while the rest of a matrix runs."""
from __future__ import annotations

import numpy as np
import pytest

from simrun.backend_id import HOST_KINDS, BackendId
from simrun.backends import HOST_BACKENDS, parse_backend, run_backend, run_matrix, runner_module
from simrun.capture import Capture
from simrun.errors import BackendError, BadInput
from simrun.inputs import load_inputs
from simrun.model import Model
from simrun.run_options import RunOptions


def _inputs(model: Model, count: int = 2):
    return load_inputs(model, ["random:5"], count=count)


def test_labels_parse_and_typos_are_bad_input():
    assert parse_backend("tflite-reference") == BackendId(host="tflite-reference")
    assert runner_module(parse_backend("tflite-reference")) == "host_tflite"
    assert parse_backend("target:cortex-m55:cmsis-nn") == BackendId.target("cortex-m55", "cmsis-nn")
    for bad, why in (("tflite", "unknown backend"), ("target:cortex-m99:reference", "unknown CPU"),
                     ("target:cortex-m55:fast", "unknown kernels"), ("target:cortex-m55", "expected")):
        with pytest.raises(BadInput, match=why):
            parse_backend(bad)


@pytest.mark.backends
@pytest.mark.parametrize("label", HOST_KINDS)
def test_host_backend_captures_every_operator_output(models_dir, label):
    path = models_dir / "micro_speech_quantized.tflite"
    model = Model.from_file(path)
    inputs = _inputs(model)
    caps = run_backend(label, path, inputs)
    assert len(caps) == 2 and all(isinstance(c, Capture) for c in caps)
    cap = caps[0]
    assert cap.backend == label and cap.model_sha256 == model.sha256
    assert [(r.subgraph, r.index, r.op_name) for r in cap.ops] == \
           [(o.subgraph, o.index, o.op_name) for o in model.operators()]
    for rec, op in zip(cap.ops, model.operators()):
        assert [t.index for t in rec.outputs] == list(op.outputs)
        for t in rec.outputs:
            info = model.tensor(op.subgraph, t.index)
            assert t.values.dtype == info.dtype and t.shape == info.shape
            assert t.quantization == info.quantization
    # The final output is the last operator's output, and inputs differ -> outputs differ.
    assert np.array_equal(cap.outputs[0].values, cap.ops[-1].outputs[0].values)
    assert not all(np.array_equal(a.values, b.values)
                   for a, b in zip(caps[0].ops[0].outputs, caps[1].ops[0].outputs))
    assert "numpy" in cap.versions and cap.versions["runtime"] in (
        "ai-edge-litert", "tensorflow.lite", "tflite-micro")


@pytest.mark.backends
def test_host_backends_agree_on_a_float_model(models_dir):
    path = models_dir / "hello_world_float.tflite"
    inputs = _inputs(Model.from_file(path), 1)
    outs = {b: run_backend(b, path, inputs)[0].outputs[0].values for b in HOST_BACKENDS}
    assert np.allclose(outs["tflite-reference"], outs["tflm-host"], atol=1e-5)
    assert np.allclose(outs["tflite-reference"], outs["tflite-optimized"], atol=1e-4)


@pytest.mark.backends
def test_person_detect_refused_by_desktop_tflite_run_by_tflm(models_dir):
    path = models_dir / "person_detect.tflite"
    inputs = _inputs(Model.from_file(path), 1)
    result = run_matrix(list(HOST_BACKENDS), path, inputs)
    for label in ("tflite-optimized", "tflite-reference"):
        assert "quantized_dimension must be in range" in result.errors[label]
        assert "ai-edge-litert" in result.versions[label] or "tensorflow" in result.versions[label]
    assert list(result.captures) == ["tflm-host"]
    assert len(result.captures["tflm-host"][0].ops) == 31


@pytest.mark.backends
def test_keyword_aborts_litert_reference_while_tflm_completes(models_dir):
    path = models_dir / "keyword_scrambled_8bit.tflite"
    inputs = _inputs(Model.from_file(path), 1)
    result = run_matrix(["tflite-reference", "tflm-host"], path, inputs)
    # LiteRT with preserve-all-tensors corrupts its heap on this model (SVDF);
    # the worker dies by a signal once freeing memory notices.
    assert result.errors["tflite-reference"].startswith("aborted by SIG")
    assert "tflm-host" in result.captures and "tflm-host" not in result.errors
    assert len(result.captures["tflm-host"][0].ops) == len(Model.from_file(path).operators())


@pytest.mark.backends
def test_timeout_is_a_backend_error(models_dir):
    path = models_dir / "hello_world_int8.tflite"
    inputs = _inputs(Model.from_file(path), 1)
    with pytest.raises(BackendError, match=r"tflm-host: timed out after 0\.05 s"):
        run_backend("tflm-host", path, inputs, RunOptions(timeout=0.05))


@pytest.mark.backends
def test_an_unreadable_model_is_a_backend_error_not_a_crash(tmp_path):
    bogus = tmp_path / "bogus.tflite"
    bogus.write_bytes(b"\0\0\0\0TFL3" + b"\0" * 64)
    with pytest.raises(BackendError, match="tflm-host: .*no subgraphs"):
        run_backend("tflm-host", bogus, [[np.zeros((1, 1), np.int8)]])


@pytest.mark.backends
def test_an_operator_version_the_desktop_lacks_is_a_refusal(models_dir, tmp_path):
    """Like TF 2.20's reference resolver without TILE v3: a model newer than the
    interpreter is refused by name, and TFLM (which ignores op versions) still runs."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    data = (models_dir / "hello_world_int8.tflite").read_bytes()
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))
    for code in model.operatorCodes:
        code.version = 99
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path = tmp_path / "future.tflite"
    path.write_bytes(bytes(builder.Output()))

    result = run_matrix(list(HOST_BACKENDS), path, _inputs(Model.from_file(path), 1))
    for label in ("tflite-optimized", "tflite-reference"):
        assert "FULLY_CONNECTED' version '99'" in result.errors[label]
    assert list(result.captures) == ["tflm-host"]


@pytest.mark.tflm
@pytest.mark.qemu
def test_target_timeout_stops_the_emulator(models_dir):
    """A timed-out target worker is stopped with its emulator (conftest fails the
    test if a qemu-system-arm outlives it)."""
    from simrun.device.sources import local_sources
    if local_sources() is None:
        pytest.skip("needs TFLM/CMSIS sources: set SIMRUN_SOURCES_DIR to the pinned trees")
    import shutil
    for tool in ("qemu-system-arm", "arm-none-eabi-gcc", "cmake"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} not on PATH")
    from simrun.device.build import ensure_firmware
    firmware = ensure_firmware("cortex-m55", "reference")     # cached after the first build
    path = models_dir / "person_detect.tflite"
    inputs = _inputs(Model.from_file(path), 30)
    with pytest.raises(BackendError, match=r"timed out after 3 s while (loading|invoking)"):
        run_backend("target:cortex-m55:reference", path, inputs,
                    RunOptions(timeout=3, firmware_elf=firmware.elf))


def test_tflm_host_grows_its_arena_for_large_activations(tf_model):
    """The wheel's default arena (10x the model) cannot preserve 32 KiB of
    activations of a 1 KiB model; the backend sizes it from the tensors instead."""
    from testmodels import logistic_only_int8

    path = tf_model(logistic_only_int8, width=16384)
    assert path.stat().st_size * 10 < 2 * 16384
    x = np.zeros((1, 16384), np.int8)
    cap = run_backend("tflm-host", path, [[x]])[0]
    assert cap.outputs[0].shape == (1, 16384)


def test_tflm_logistic_equals_tflite_reference_on_every_int8_code(tf_model):
    from testmodels import logistic_only_int8

    path = tf_model(logistic_only_int8, width=256)
    x = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
    ref = run_backend("tflite-reference", path, [[x]])[0].outputs[0].values
    host = run_backend("tflm-host", path, [[x]])[0].outputs[0].values
    assert np.array_equal(ref, host)
    assert len(np.unique(host)) > 100          # the input really spans the sigmoid

"""The reference-kernel TFLM firmware on QEMU equals host TFLM bit for bit, layer by layer.

Needs the TFLM source trees (SIMRUN_SOURCES_DIR) to build the firmware; skipped
with the reason otherwise. The host side is the tflite-micro wheel with
kPreserveAllTensors, read directly here (not through simrun.backends) so this
test checks the controller against an independent path.
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import random_input
from simrun.model import Model

pytestmark = [pytest.mark.tflm, pytest.mark.qemu, pytest.mark.slow]

INT8_MODELS = ("hello_world_int8.tflite", "micro_speech_quantized.tflite",
               "keyword_scrambled_8bit.tflite", "person_detect.tflite")
CPUS = ("cortex-m55", "cortex-m4")


def host_tflm(model: Model, inputs: list[np.ndarray]):
    from tflite_micro.python.tflite_micro import runtime
    interp = runtime.Interpreter.from_bytes(
        model.data, intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
    for i, x in enumerate(inputs):
        interp.set_input(x, i)
    interp.invoke()
    return interp


@pytest.mark.parametrize("cpu", CPUS)
@pytest.mark.parametrize("model_name", INT8_MODELS)
def test_every_layer_bit_identical_to_host_tflm(tflm_firmware, models_dir, cpu, model_name):
    from simrun.device.session import Session

    model = Model.from_file(models_dir / model_name)
    inputs = random_input(model, seed=7)
    fw = tflm_firmware(cpu)
    with Session(fw.elf, cpu=cpu, timeout=600) as s:
        s.load_model(model)
        cap = s.invoke(inputs, capture_layers=True)
    assert cap.backend == f"target:{cpu}:reference"
    assert [(r.subgraph, r.index, r.op_name) for r in cap.ops] == \
        [(op.subgraph, op.index, op.op_name) for op in model.operators()]
    host = host_tflm(model, inputs)
    compared = 0
    for rec in cap.ops:
        op = model.subgraphs[rec.subgraph].operators[rec.index]
        assert [t.index for t in rec.outputs] == list(op.outputs)
        for t in rec.outputs:
            expected = host.GetTensor(t.index, rec.subgraph)["tensor_data"]
            assert t.values.dtype == expected.dtype and t.values.shape == expected.shape, \
                f"{rec.op_name} {rec.subgraph}:{rec.index} tensor {t.index}"
            assert np.array_equal(t.values, expected), \
                f"{model_name} on {cpu}: {rec.op_name} {rec.subgraph}:{rec.index} tensor {t.index} differs " \
                f"({int(np.sum(t.values != expected))} of {t.values.size} values)"
            assert t.quantization == model.tensor(rec.subgraph, t.index).quantization
            compared += 1
    assert compared >= len(cap.ops)
    for i, t in enumerate(cap.outputs):
        assert np.array_equal(t.values, host.get_output(i))


def test_tflm_arena_too_small_names_the_bytes(tflm_firmware, models_dir):
    from simrun.errors import ArenaTooSmall
    from simrun.device.session import Session

    model = Model.from_file(models_dir / "person_detect.tflite")
    with Session(tflm_firmware("cortex-m55").elf, cpu="cortex-m55", timeout=120, arena_limit=20000) as s:
        with pytest.raises(ArenaTooSmall) as info:
            s.load_model(model)
    assert info.value.bytes_needed > 20000 and "arena has 20000" in str(info.value)

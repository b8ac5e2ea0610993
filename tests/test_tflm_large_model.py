"""Buffers sized by the board at run time (issue 10): a TensorFlow-built int8 model of more
than 8 MiB whose arena needs more than 32 MiB runs on cortex-m55 (mps3-an547, 512 MiB bulk
region) with per-layer capture, bit-exact against host TFLM, layer by layer. The model is
built by the test (tests/testmodels.py), never committed. Needs TFLM sources and TensorFlow."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import random_input
from simrun.model import Model

pytestmark = [pytest.mark.tflm, pytest.mark.qemu, pytest.mark.slow]
MiB = 1 << 20


@pytest.fixture(scope="module")
def large_model(tf_model):
    from testmodels import large_int8
    return tf_model(large_int8)


def test_large_model_and_arena_bit_exact_on_cortex_m55(tflm_firmware, large_model):
    from tflite_micro.python.tflite_micro import runtime

    from simrun.device.session import Session

    model = Model.from_file(large_model)
    assert len(model.data) >= 8 * MiB
    inputs = random_input(model, seed=11)
    with Session(tflm_firmware("cortex-m55").elf, cpu="cortex-m55", timeout=900) as s:
        s.load_model(model)
        assert s.memory_mapped
        cap = s.invoke(inputs, capture_layers=True)
    assert cap.meta["model_bytes"] == len(model.data)
    assert cap.meta["arena_used"] >= 32 * MiB
    assert [(r.subgraph, r.index) for r in cap.ops] == [(op.subgraph, op.index) for op in model.operators()]
    host = runtime.Interpreter.from_bytes(model.data,
                                          intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
    for i, x in enumerate(inputs):
        host.set_input(x, i)
    host.invoke()
    biggest = 0
    for rec in cap.ops:
        for t in rec.outputs:
            expected = host.GetTensor(t.index, rec.subgraph)["tensor_data"]
            assert t.values.shape == expected.shape and np.array_equal(t.values, expected), \
                f"{rec.op_name} {rec.subgraph}:{rec.index} tensor {t.index} differs from host TFLM"
            biggest = max(biggest, t.values.nbytes)
    assert biggest >= 16 * MiB                        # a 16 MiB output came through the capture
    for i, t in enumerate(cap.outputs):
        assert np.array_equal(t.values, host.get_output(i))

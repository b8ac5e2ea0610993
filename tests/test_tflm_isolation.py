"""Isolation on the TFLM firmware (contract 1): person_detect, every operator fed host TFLM's
values for its inputs, equals host TFLM on every layer (the reference kernels add no error of
their own), and the begin hook's input descriptions mark weights and biases as constant (they
are never overwritten: a weight tensor is not in the reference capture, so overwriting one would
show as "not captured"). Needs the TFLM sources."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import random_input
from simrun.capture import Capture, OpRecord, Tensor
from simrun.model import Model

pytestmark = [pytest.mark.tflm, pytest.mark.qemu, pytest.mark.slow]


def host_capture(model: Model, inputs) -> Capture:
    from tflite_micro.python.tflite_micro import runtime
    interp = runtime.Interpreter.from_bytes(model.data,
                                            intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
    for i, x in enumerate(inputs):
        interp.set_input(x, i)
    interp.invoke()
    ops = [OpRecord(op.subgraph, op.index, op.op_name,
                    [Tensor(t, "", interp.GetTensor(t, op.subgraph)["tensor_data"]) for t in op.outputs])
           for op in model.operators()]
    return Capture("tflm-host", model.sha256, ops)


@pytest.mark.parametrize("memory", ["auto", "gdb"])
def test_isolated_reference_firmware_has_no_own_error(tflm_firmware, models_dir, memory):
    from simrun.device.session import Session

    model = Model.from_file(models_dir / "person_detect.tflite")
    inputs = random_input(model, seed=3)
    ref = host_capture(model, inputs)
    with Session(tflm_firmware("cortex-m55").elf, cpu="cortex-m55", timeout=600, memory=memory) as s:
        s.load_model(model)
        iso = s.invoke(inputs, isolate_from=ref)
    assert iso.meta["isolated_from"] == "tflm-host" and iso.meta["not_isolated"] == {}
    assert len(iso.ops) == len(ref.ops) == 31
    for got, want in zip(iso.ops, ref.ops, strict=True):
        assert got.key == want.key
        for a, b in zip(got.outputs, want.outputs, strict=True):
            assert a.index == b.index and np.array_equal(a.values, b.values), f"{got.op_name} {got.key}"


def test_isolation_names_operators_whose_inputs_the_reference_lacks(tflm_firmware, models_dir):
    from simrun.device.session import Session

    model = Model.from_file(models_dir / "person_detect.tflite")
    inputs = random_input(model, seed=3)
    ref = host_capture(model, inputs)
    dropped = ref.ops[4]
    ref.ops = [r for r in ref.ops if r is not dropped]
    with Session(tflm_firmware("cortex-m55").elf, cpu="cortex-m55", timeout=600) as s:
        s.load_model(model)
        iso = s.invoke(inputs, isolate_from=ref)
    consumers = {f"{op.subgraph}:{op.index}" for op in model.operators()
                 if set(op.inputs) & {t.index for t in dropped.outputs}}
    assert consumers and set(iso.meta["not_isolated"]) == consumers
    assert all("not captured by tflm-host" in why for why in iso.meta["not_isolated"].values())

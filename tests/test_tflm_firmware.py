"""The TFLM firmware under QEMU: final outputs against the tflite-micro host wheel,
both kernel variants, cortex-m55 (MVE) and cortex-m4 (DSP); plus the firmware's
refusals (unsupported operator, arena too small) and nested subgraph events.

Needs SIMRUN_SOURCES_DIR (the firmware is built or taken from the cache),
qemu-system-arm and arm-none-eabi-gcc; skips with the reason otherwise.
"""
from __future__ import annotations

import os
import re

import numpy as np
import pytest

from conftest import random_input
from simrun.model import Model
from simrun.device.targets import TARGETS

pytestmark = [pytest.mark.tflm, pytest.mark.qemu, pytest.mark.slow]

CPUS = ("cortex-m55", "cortex-m4")
VARIANTS = ("reference", "cmsis-nn")
# Every int8 model in ../shared/models: keyword_scrambled exercises CMSIS-NN's SVDF,
# which refuses to prepare unless the build picks an OPTIMIZE_KERNELS_FOR mode.
MODELS = ("hello_world_int8.tflite", "person_detect.tflite", "micro_speech_quantized.tflite",
          "keyword_scrambled_8bit.tflite")


def host_outputs(model: Model, inputs: list[np.ndarray]) -> list[np.ndarray]:
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(model.data)
    for i, x in enumerate(inputs):
        interp.set_input(x, i)
    interp.invoke()
    return [interp.get_output(i) for i in range(len(model.outputs))]


@pytest.mark.parametrize("kernels", VARIANTS)
@pytest.mark.parametrize("cpu", CPUS)
@pytest.mark.parametrize("model_name", MODELS)
def test_final_outputs_match_host_tflm(tflm_firmware, models_dir, cpu, kernels, model_name):
    check_final_outputs(tflm_firmware, models_dir, cpu, kernels, model_name)


# The other CPUs of the targets table, on the model that exercises the most kernels:
# every row of the table builds in both variants and runs on its board.
@pytest.mark.parametrize("kernels", VARIANTS)
@pytest.mark.parametrize("cpu", [c for c in TARGETS if c not in CPUS])
def test_every_other_target_runs_person_detect(tflm_firmware, models_dir, cpu, kernels):
    check_final_outputs(tflm_firmware, models_dir, cpu, kernels, "person_detect.tflite")


def check_final_outputs(tflm_firmware, models_dir, cpu, kernels, model_name):
    from simrun.device.session import Session

    model = Model.from_file(models_dir / model_name)
    fw = tflm_firmware(cpu, kernels)
    expected_runs = []
    got_runs = []
    with Session(fw.elf, cpu=cpu, timeout=300) as s:
        s.load_model(model)
        assert [t.shape for t in s.input_details] == [tuple(i.shape) for i in model.inputs]
        for seed in (1, 2):  # two invokes in one session: the ready/done loop works
            inputs = random_input(model, seed)
            cap = s.invoke(inputs, capture_layers=False)
            got_runs.append([t.values for t in cap.outputs])
            expected_runs.append(host_outputs(model, inputs))
    assert cap.backend == f"target:{cpu}:{kernels}"
    for got, expected in zip(got_runs, expected_runs):
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            assert g.dtype == e.dtype and g.shape == e.shape
            if kernels == "reference":
                assert np.array_equal(g, e), f"{model_name} on {cpu}: reference kernels differ from host TFLM"
            else:
                # CMSIS-NN requantizes with the same fixed-point scheme; allow one step.
                diff = np.abs(g.astype(np.int32) - e.astype(np.int32))
                assert diff.max() <= 1, f"{model_name} on {cpu}/cmsis-nn: max diff {diff.max()}"


def _convert(fn, signature) -> bytes:
    tf = pytest.importorskip("tensorflow", reason="tensorflow builds the small test models")

    concrete = tf.function(fn, input_signature=signature).get_concrete_function()
    conv = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    return conv.convert()


@pytest.fixture(scope="module")
def topk_model() -> bytes:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    tf = pytest.importorskip("tensorflow", reason="tensorflow builds the small test models")
    return _convert(lambda x: tf.math.top_k(x, k=2).values, [tf.TensorSpec([1, 8], tf.float32)])


@pytest.fixture(scope="module")
def while_model() -> bytes:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    tf = pytest.importorskip("tensorflow", reason="tensorflow builds the small test models")

    def fn(x):
        i = tf.constant(0)
        _, y = tf.while_loop(lambda i, y: i < 3, lambda i, y: (i + 1, y * 2.0 + 1.0), (i, x))
        return y
    return _convert(fn, [tf.TensorSpec([1, 4], tf.float32)])


def test_unsupported_operator_is_named(tflm_firmware, topk_model):
    from simrun.errors import UnsupportedOperator
    from simrun.device.session import Session

    with Session(tflm_firmware("cortex-m55", "reference").elf, cpu="cortex-m55", timeout=60) as s:
        with pytest.raises(UnsupportedOperator) as err:
            s.load_model(topk_model)
    assert err.value.name == "TOPK_V2"


def test_arena_too_small_reports_bytes_needed(tflm_firmware, models_dir):
    from simrun.errors import ArenaTooSmall
    from simrun.device.session import Session

    fw = tflm_firmware("cortex-m4", "reference")
    with Session(fw.elf, cpu="cortex-m4", timeout=60) as s:
        s.load_model(models_dir / "person_detect.tflite")
        cap = s.invoke(random_input(Model.from_file(models_dir / "person_detect.tflite"), 3),
                       capture_layers=False)
        used = cap.meta["arena_used"]
    with Session(fw.elf, cpu="cortex-m4", timeout=60, arena_limit=4096) as s:
        with pytest.raises(ArenaTooSmall) as err:
            s.load_model(models_dir / "person_detect.tflite")
    # The firmware measures with the whole buffer: TFLM's need plus 16 bytes of alignment slack.
    assert err.value.bytes_needed == used + 16


def test_while_loop_reports_nested_subgraph_events(tflm_firmware, while_model):
    from simrun.device.session import Session

    model = Model(while_model)
    assert len(model.subgraphs) == 3  # main, cond, body
    x = np.array([[1.0, -2.0, 0.5, 3.0]], dtype=np.float32)
    with Session(tflm_firmware("cortex-m55", "reference").elf, cpu="cortex-m55", timeout=120) as s:
        s.load_model(model)
        cap = s.invoke([x], capture_layers=True)
    np.testing.assert_allclose(cap.outputs[0].values, x * 8.0 + 7.0)
    seen = [(r.subgraph, r.index, r.op_name) for r in cap.ops]
    assert ("WHILE" in {name for _, _, name in seen})
    inner = {sg for sg, _, _ in seen if sg != 0}
    assert inner == {1, 2}, seen
    # Body ops really ran in subgraph 2 (or 1): every inner record names an op of that subgraph.
    for sg, idx, name in seen:
        assert model.subgraphs[sg].operators[idx].op_name == name


@pytest.mark.parametrize("cpu,kernels", [("cortex-m55", "cmsis-nn"), ("cortex-m4", "reference")])
def test_renode_path_captures_every_layer_like_qemu(tflm_firmware, models_dir, renode_replica, cpu, kernels):
    """The TFLM firmware through the Renode launcher, dialect and relay (the replica runs it on QEMU
    underneath): a 300 KB model written with X packets, every operator's outputs read in
    1024-byte packets, stray stops on every breakpoint. Must equal the QEMU path bit for bit; on
    cortex-m55, which Renode 1.16.1 cannot run TFLM on, the fault must name what it lacks."""
    from simrun.device.session import Session

    model = Model.from_file(models_dir / "person_detect.tflite")
    fw = tflm_firmware(cpu, kernels)
    inputs = random_input(model, 3)
    if cpu == "cortex-m55":
        # Renode 1.16.1 lacks the Armv8.1-M scalar shifts GCC emits for TFLM's 64-bit shifts on MVE
        # cores (seen on the real one: `asrl` in tflite::CalculateOpDataDepthwiseConv); the replica
        # models that. The fault must name the instruction, its function and what to do.
        from simrun.errors import TargetFault
        with Session(fw.elf, cpu=cpu, timeout=300, emulator="renode") as s:
            with pytest.raises(TargetFault) as info:
                s.load_model(model)
                s.invoke(inputs, capture_layers=True)
        msg = str(info.value)
        assert "UsageFault on cortex-m55" in msg and "UNDEFINSTR" in msg
        assert re.search(r"the instruction is `(asrl|lsll|lsrl|\w*sh\w*l) [^`]+` at 0x[0-9a-f]{8} in tflite::", msg), msg
        assert "Renode 1.16.1 does not implement it" in msg and "run cortex-m55 on QEMU (--emulator qemu)" in msg
        return
    caps = {}
    for emulator in ("qemu", "renode"):
        with Session(fw.elf, cpu=cpu, timeout=300, emulator=emulator) as s:
            s.load_model(model)
            caps[emulator] = s.invoke(inputs, capture_layers=True)
    q, r = caps["qemu"], caps["renode"]
    assert len(r.ops) == len(q.ops) == len(model.subgraphs[0].operators)
    for a, b in zip(q.ops, r.ops, strict=True):
        assert (a.subgraph, a.index, a.op_name) == (b.subgraph, b.index, b.op_name)
        for ta, tb in zip(a.outputs, b.outputs, strict=True):
            assert np.array_equal(ta.values, tb.values), f"{a.op_name} {a.index} differs on the Renode path"
    for got, expected in zip([t.values for t in r.outputs], host_outputs(model, inputs), strict=True):
        assert np.array_equal(got.reshape(expected.shape), expected)

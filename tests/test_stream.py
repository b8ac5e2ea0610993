"""Streaming models with state: resource variables (CALL_ONCE, VAR_HANDLE, READ_VARIABLE,
ASSIGN_VARIABLE) on every backend, sequences of inputs that carry state from step to step,
and TFLM's own reason when it cannot prepare a (hybrid) model.

The models are built with TensorFlow at test time (tests/testmodels.py)."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

import numpy as np
import pytest

from simrun.backend_id import HOST_KINDS
from simrun.backends import _describe_exit, run_backend
from simrun.run_options import RunOptions
from simrun.commands import diff
from simrun.errors import BackendError, SimrunError
from simrun.inputs import load_sequences
from simrun.model import Model

from testmodels import STREAM_FEATURES, STREAM_FRAMES, STREAM_HISTORY, hybrid_conv, streaming_int8

STEPS = 6
STATE_OPS = ("CALL_ONCE", "VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE")


@pytest.fixture(scope="module")
def stream_model(tf_model) -> Model:
    return Model.from_file(tf_model(streaming_int8))


def _sequence(model: Model, seed: int = 11, steps: int = STEPS):
    [(_, named)] = load_sequences(model, [f"random:{seed}"], steps=steps)
    return [sample for _, sample in named]


def _op(cap, name: str, subgraph: int = 0):
    [rec] = [r for r in cap.ops if r.op_name == name and r.subgraph == subgraph]
    return rec


def test_the_streaming_model_keeps_its_state_in_a_resource_variable(stream_model):
    names = [op.op_name for op in stream_model.operators()]
    for op in STATE_OPS:
        assert op in names
    assert len(stream_model.subgraphs) == 2 and stream_model.call_once_subgraphs == {1}
    assert stream_model.inputs[0].shape == (1, STREAM_FRAMES, STREAM_FEATURES)
    assert str(stream_model.inputs[0].dtype) == "int8"
    read = next(op for op in stream_model.operators() if op.op_name == "READ_VARIABLE")
    assert stream_model.tensor(0, read.outputs[0]).shape == (1, STREAM_HISTORY, STREAM_FEATURES)
    handles = [stream_model.tensor(op.subgraph, op.outputs[0])
               for op in stream_model.operators() if op.op_name == "VAR_HANDLE"]
    assert handles and all(h.type_name == "RESOURCE" and not h.holds_data for h in handles)


@pytest.mark.parametrize("label", HOST_KINDS)
def test_host_backend_runs_a_sequence_with_state_and_every_layer(stream_model, label):
    """Each step captures every operator that ran; the resource handles are named, not
    read; the state read at step k is what step k-1 assigned (one interpreter, never
    reset), and CALL_ONCE's initialisation ran at step 0 only."""
    sequence = _sequence(stream_model)
    caps = run_backend(label, stream_model.path, sequence, sequences=[STEPS])
    assert len(caps) == STEPS
    init_ops = [(1, op.index) for op in stream_model.subgraphs[1].operators]
    main_ops = [(0, op.index) for op in stream_model.main.operators]
    for step, cap in enumerate(caps):
        assert (cap.meta["sequence"], cap.meta["step"]) == (0, step)
        keys = [r.key for r in cap.ops]
        assert keys == (main_ops + init_ops if step == 0 else main_ops)
        assert ("call_once_skipped" in cap.meta) == (step > 0)
        handle = stream_model.main.operators[_op(cap, "VAR_HANDLE").index].outputs[0]
        assert f"0:{handle}" in cap.meta["no_data_tensors"]
        assert _op(cap, "VAR_HANDLE").outputs == []
        for rec in cap.ops:                      # every tensor that holds data was read
            op = stream_model.subgraphs[rec.subgraph].operators[rec.index]
            assert [t.index for t in rec.outputs] == \
                [i for i in op.outputs if stream_model.tensor(rec.subgraph, i).holds_data]
    initial = stream_model.tensor(1, stream_model.subgraphs[1].operators[-1].inputs[1])
    assert initial.is_constant
    zero = initial.quantization.zero_point[0]
    assert np.all(_op(caps[0], "READ_VARIABLE").outputs[0].values == zero)
    for before, after in zip(caps, caps[1:]):
        carried = _op(before, "STRIDED_SLICE").outputs[0].values
        assert np.array_equal(_op(after, "READ_VARIABLE").outputs[0].values, carried)
        assert not np.all(carried == zero)       # the state really holds past frames
    assert len({c.outputs[0].values.tobytes() for c in caps}) > 1


def test_each_sequence_starts_from_the_initial_state(stream_model):
    """Two sequences in one run: the second starts on a fresh interpreter, so the same
    frames give the same outputs as in the first; run as one stream they would not."""
    steps = _sequence(stream_model, steps=3)
    caps = run_backend("tflm-host", stream_model.path, steps + steps, sequences=[3, 3])
    assert [(c.meta["sequence"], c.meta["step"]) for c in caps] == \
        [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    for a, b in zip(caps[:3], caps[3:]):
        assert np.array_equal(a.outputs[0].values, b.outputs[0].values)
    fresh = _op(caps[3], "READ_VARIABLE").outputs[0].values
    assert np.array_equal(fresh, _op(caps[0], "READ_VARIABLE").outputs[0].values)
    stream = run_backend("tflm-host", stream_model.path, steps + steps)    # no cut: one stream
    carried = _op(stream[3], "READ_VARIABLE").outputs[0].values
    assert np.array_equal(carried, _op(stream[2], "STRIDED_SLICE").outputs[0].values)
    assert not np.array_equal(carried, fresh)


def test_reference_backends_are_bit_exact_at_every_step(stream_model, tmp_path):
    """`simrun diff --steps`: per-step comparisons, and the sequence section says where a
    pair first parts (here: LiteRT's and TFLM's reference kernels never do)."""
    code = simrun_diff(stream_model.path, "--input", "random:4", "--steps", 5,
                       "--backends", "tflite-reference,tflm-host", "--report", tmp_path)
    assert code == 0
    summary = json.loads((tmp_path / "summary.json").read_text())["sequences"]
    [seq] = summary
    assert seq["sequence"] == "random:4" and seq["steps"] == 5
    [pair] = seq["pairs"]
    assert pair["pair"] == "tflite-reference vs tflm-host"
    assert pair["first_divergent"] is None and pair["divergent_steps"] == 0
    assert [s["step"] for s in pair["steps"]] == list(range(5))
    assert all(s["layers_compared"] >= 6 for s in pair["steps"])
    junit = (tmp_path / "junit.xml").read_text()
    assert "random:4@4" in junit
    page = (tmp_path / "report.html").read_text()
    assert "<h2>Sequences</h2>" in page and "identical at every step and layer" in page


def test_the_first_divergent_step_and_layer_are_reported():
    """A synthetic sequence where the backends agree for two steps, then one layer parts."""
    from simrun.analysis.compare import compare
    from simrun.analysis.diffrun import DiffRun
    from simrun.capture import Capture, OpRecord, Tensor
    from simrun.report import sequences

    class _Model:
        sha256 = ""

        def tensor(self, sg, idx):
            raise IndexError

    def cap(label, value):
        t = Tensor(3, "conv", np.array([[value, 1]], np.int8))
        return Capture(label, "", [OpRecord(0, 0, "CONV_2D", [t])], [t])

    comparisons = [compare(_Model(), {"tflm-host": cap("tflm-host", v), "target:cortex-m4:cmsis-nn":
                                      cap("target:cortex-m4:cmsis-nn", v + (k >= 2))})
                   for k, v in enumerate((5, 6, 7, 8))]
    run = DiffRun(_Model(), comparisons, input_names=[f"s@{k}" for k in range(4)],
                  sequences={"s": [0, 1, 2, 3]})
    [seq] = sequences.summarize(run)
    [pair] = seq["pairs"]
    assert pair["first_divergent"]["step"] == 2 and pair["first_divergent"]["layer"] == "0:0/3"
    assert pair["divergent_steps"] == 2
    text = sequences.render(run)
    assert "first diverges at step 2, layer 0:0/3 CONV_2D conv; 2 of 4 steps differ" in text
    assert "step   1: 0 divergent" in text and "step   3: 2 divergent" in text
    page = sequences.html(run)
    assert "first diverges at step 2, layer <code>0:0/3</code> CONV_2D" in page
    assert page.count("<tr>") == 1 + 4             # header and one row per step


def simrun_diff(*argv) -> int:
    parser = argparse.ArgumentParser(prog="simrun")
    diff.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["diff", *map(str, argv)])
    try:
        return args.func(args)
    except SimrunError:
        return 2


@pytest.mark.parametrize("argv, why", [
    (["--sequence"], "a random sequence needs --steps N"),
    (["--steps", "0"], "--steps must be at least 1"),
    (["--steps", "3", "--count", "2"], "--count does not apply to sequences"),
])
def test_sequence_usage_errors_exit_2(stream_model, tmp_path, capsys, argv, why):
    from simrun.errors import BadInput
    parser = argparse.ArgumentParser(prog="simrun")
    diff.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["diff", str(stream_model.path), *argv, "--report", str(tmp_path)])
    with pytest.raises(BadInput, match=why):
        args.func(args)
    # The report folder says the run stopped, with the usage error's exit code.
    stopped = json.loads((tmp_path / "summary.json").read_text())
    assert stopped["complete"] is False and stopped["exit_code"] == 2 and why in stopped["error"]


def test_an_npy_sequence_has_time_as_its_leading_axis(stream_model, tmp_path):
    frames = np.random.default_rng(2).uniform(-1, 1, (7, STREAM_FRAMES, STREAM_FEATURES))
    np.save(tmp_path / "walk.npy", frames.astype(np.float32))
    [(name, steps)] = load_sequences(stream_model, [str(tmp_path / "walk.npy")])
    assert name == "walk.npy" and [n for n, _ in steps] == [f"walk.npy@{k}" for k in range(7)]
    assert all(s[0].shape == (1, STREAM_FRAMES, STREAM_FEATURES) and s[0].dtype == np.int8
               for _, s in steps)


def test_a_crash_while_reading_names_the_tensor(stream_model, tmp_path):
    """The worker names every tensor before it reads it: a reader that dies (as TFLM's did
    on a resource handle) leaves the operator and tensor in the parent's message."""
    script = tmp_path / "crash.py"
    script.write_text(
        "import os, signal, sys\n"
        "from simrun.backends.collect import collect\n"
        "from simrun.model import Model\n"
        "m = Model.from_file(sys.argv[1])\n"
        "def read(sg, idx):\n"
        "    if m.tensor(sg, idx).name == 'concat':\n"
        "        os.kill(os.getpid(), signal.SIGSEGV)\n"
        "    return None\n"
        "collect(m, 'x', read, versions={}, invocation=2)\n")
    proc = subprocess.run([sys.executable, str(script), str(stream_model.path)],
                          capture_output=True, text=True, timeout=60)
    message = _describe_exit(proc.returncode, proc.stderr)
    assert message.startswith("aborted by SIGSEGV while reading tensor 0:"), message
    assert "('concat'), output of CONCATENATION 0:" in message
    assert "after invoking input 2" in message


def test_tflm_host_reports_why_it_cannot_prepare_a_hybrid_model(tf_model):
    """Float activations with int8 weights: TFLM's kernels refuse them in Prepare, and the
    host backend says so instead of doubling its arena to 1.4 GB and blaming the arena."""
    path = tf_model(hybrid_conv)
    model = Model.from_file(path)
    [conv] = model.operators()
    assert [str(model.tensor(0, i).dtype) for i in conv.inputs[:2]] == ["float32", "int8"]
    with pytest.raises(BackendError) as err:
        run_backend("tflm-host", path, [[np.zeros((1, 12, 12, 8), np.float32)]], RunOptions(timeout=120))
    message = err.value.message
    assert "TFLM cannot prepare this model" in message
    assert "Hybrid models are not supported on TFLite Micro" in message
    assert "CONV_2D" in message and "arena" not in message


@pytest.mark.tflm
@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("cpu", ("cortex-m55", "cortex-m4"))
def test_streaming_sequence_on_the_target_matches_host_tflm(stream_model, tflm_firmware, cpu):
    """The firmware creates resource variables, so the model allocates and runs on both
    kernel variants; the events the device reports show CALL_ONCE's subgraph running at
    step 0 only; the reference variant equals tflm-host at every step and layer; a second
    sequence starts on a rebooted target from the initial state."""
    from simrun.analysis.compare import compare

    steps = _sequence(stream_model, seed=21)
    inputs, cuts = steps + steps[:2], [STEPS, 2]
    host = run_backend("tflm-host", stream_model.path, inputs, sequences=cuts)
    for kernels in ("reference", "cmsis-nn"):
        label = f"target:{cpu}:{kernels}"
        caps = run_backend(label, stream_model.path, inputs, RunOptions(firmware_elf=tflm_firmware(cpu, kernels).elf),
                           sequences=cuts)
        assert len(caps) == len(inputs)
        compared = divergent = 0
        for i, (h, t) in enumerate(zip(host, caps)):
            step = t.meta["step"]
            assert {r.subgraph for r in t.ops} == ({0, 1} if step == 0 else {0}), \
                f"{label} step {step}: CALL_ONCE's subgraph must run at step 0 only"
            assert sorted(r.key for r in t.ops) == sorted(r.key for r in h.ops)
            handle = stream_model.main.operators[_op(t, "VAR_HANDLE").index].outputs[0]
            assert f"0:{handle}" in t.meta["no_data_tensors"] and _op(t, "VAR_HANDLE").outputs == []
            pair = compare(stream_model, {"tflm-host": h, label: t}).pairs[0]
            assert not any(s.one_sided or s.layout_differs for s in pair.layers)
            if kernels == "reference":
                assert pair.first_divergent is None, \
                    f"{label} step {i}: {pair.first_divergent.label} differs from tflm-host"
                assert all(np.array_equal(a.values, b.values) for a, b in zip(h.outputs, t.outputs))
            compared += len(pair.compared_layers)
            divergent += sum(s.diverges for s in pair.layers)
        print(f"{label}: {len(caps)} steps, {compared} layers compared, {divergent} differ from tflm-host")
        assert compared >= 6 * len(inputs)
        # The second sequence repeats the first one's frames from a fresh state.
        for a, b in zip(caps[:2], caps[STEPS:]):
            assert np.array_equal(a.outputs[0].values, b.outputs[0].values)
        assert not np.array_equal(_op(caps[1], "READ_VARIABLE").outputs[0].values,
                                  _op(caps[0], "READ_VARIABLE").outputs[0].values)

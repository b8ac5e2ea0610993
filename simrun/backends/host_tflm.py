"""Host TFLM (`tflm-host`): the tflite-micro wheel's interpreter with kPreserveAllTensors.

The same reference kernels the firmware builds with "reference", compiled for
the host: target reference vs tflm-host should agree bit for bit.
"""
from __future__ import annotations

import os
import sys

import numpy as np

from ..backend_id import BackendId
from ..capture import Capture
from ..errors import BackendError
from ..model import Model
from ..run_options import RunOptions
from .collect import first_sentence, invoke_each, package_versions, stage
from .isolate import CutRunner, run_isolated


def run(model_path: str, inputs: list[list[np.ndarray]], *, backend: BackendId, options: RunOptions,
        isolate_from: list[Capture] | None = None, arena_size: int | None = None) -> list[Capture]:
    # `options`: only the parent's time limit concerns a host interpreter.
    label = backend.label
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError:
        raise BackendError(label, "the tflite-micro wheel is not installed (pip install tflite-micro)") from None
    model = Model.from_file(model_path)
    versions = {"runtime": "tflite-micro", **package_versions("tflite-micro", "numpy")}
    if isolate_from is not None:
        return run_isolated(model, label, inputs, isolate_from,
                            lambda data: _cut_runner(runtime, data, label, arena_size), versions)
    stage("creating the interpreter")
    interp = _interpreter(runtime, model, label, arena_size)

    def read(subgraph: int, index: int):
        try:
            return interp.GetTensor(index, subgraph)["tensor_data"]
        except (RuntimeError, ValueError, KeyError):
            return None

    def set_inputs(sample: list[np.ndarray]) -> None:
        for position, array in enumerate(sample):
            interp.set_input(array, position)

    captures = invoke_each(model, label, inputs, set_inputs=set_inputs, invoke=interp.invoke,
                           read=read, versions=versions)
    stage("releasing the interpreter")
    del interp
    return captures


def _cut_runner(runtime, data: bytes, label: str, arena_size: int | None) -> CutRunner:
    """A single-operator model (simrun.backends.isolate) in the same interpreter."""
    interp = _interpreter(runtime, Model(data), label, arena_size)
    return CutRunner(lambda pos, a: interp.set_input(a, pos), interp.invoke, interp.get_output)


# Preserve-all-tensors gives every tensor its own arena slot; past this the
# wheel's failure is the model's, not the arena's.
_MAX_ARENA = 1 << 31
# What TFLM's allocators print when the arena is short (micro_allocator.cc,
# single_arena_buffer_allocator.cc, greedy_memory_planner.cc); any other refusal
# is the model's (an unsupported type combination, a kernel's Prepare) and more
# arena cannot help.
_ARENA_SHORT = ("missing: ", "Arena size is too small", "too small for")


def _interpreter(runtime, model: Model, label: str, arena_size: int | None):
    """The wheel sizes its arena as 10x the model by default, too small for a small
    model with large activations once every tensor is preserved. Start from the
    model's own tensor bytes and double while TFLM says the arena is short, unless
    the caller fixed the size. The wheel's exception only says "TFLM failed to
    allocate tensors"; TFLM's reason goes to the C stderr, which is read back here."""
    size = arena_size or max(10 * len(model.data), 2 * _tensor_bytes(model) + (256 << 10))
    while True:
        with _native_stderr() as log:
            try:
                return runtime.Interpreter.from_bytes(
                    model.data, arena_size=size,
                    intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
            except (ValueError, RuntimeError) as err:
                message = first_sentence(str(err))
        said = log.lines()
        if not any(mark in line for line in said for mark in _ARENA_SHORT):
            reason = "; ".join(said[-3:]) or message
            raise BackendError(label, f"TFLM cannot prepare this model: {reason}") from None
        if arena_size or size * 2 > _MAX_ARENA:
            raise BackendError(label, f"refused the model: {message}; the arena is too small "
                                      f"({size} bytes): {said[-1]}") from None
        size *= 2


class _native_stderr:
    """Send file descriptor 2 to a temporary file for a while (the tflite-micro wheel
    prints with C stdio), then replay it to the real stderr and keep its lines."""

    def __enter__(self):
        import tempfile
        sys.stderr.flush()
        self._file = tempfile.TemporaryFile()
        self._saved = os.dup(2)
        os.dup2(self._file.fileno(), 2)
        self._text = ""
        return self

    def __exit__(self, *exc):
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._file.seek(0)
        self._text = self._file.read().decode(errors="replace")
        self._file.close()
        sys.stderr.write(self._text)
        sys.stderr.flush()
        return False

    def lines(self) -> list[str]:
        return [ln.strip() for ln in self._text.splitlines() if ln.strip()]


def _tensor_bytes(model: Model) -> int:
    return sum(int(np.prod(t.shape, dtype=np.int64)) * t.dtype.itemsize
               for sg in model.subgraphs for t in sg.tensors
               if t.dtype is not None and not t.is_constant)

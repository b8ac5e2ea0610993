"""Host TFLM (`tflm-host`): the tflite-micro wheel's interpreter with kPreserveAllTensors.

The same reference kernels the firmware builds with "reference", compiled for
the host: target reference vs tflm-host should agree bit for bit.
"""
from __future__ import annotations

import numpy as np

from ..capture import Capture
from ..errors import BackendError
from ..model import Model
from .collect import first_sentence, invoke_each, package_versions, stage
from .isolate import CutRunner, run_isolated


def run(model_path: str, inputs: list[list[np.ndarray]], *, label: str,
        arena_size: int | None = None, isolate_from: list[Capture] | None = None) -> list[Capture]:
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


def _interpreter(runtime, model: Model, label: str, arena_size: int | None):
    """The wheel sizes its arena as 10x the model by default, too small for a small
    model with large activations once every tensor is preserved. Start from the
    model's own tensor bytes and double on an allocation failure, unless the
    caller fixed the size."""
    size = arena_size or max(10 * len(model.data), 2 * _tensor_bytes(model) + (256 << 10))
    while True:
        try:
            return runtime.Interpreter.from_bytes(
                model.data, arena_size=size,
                intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
        except (ValueError, RuntimeError) as err:
            message = first_sentence(str(err))
            if arena_size or "allocate" not in message or size * 2 > _MAX_ARENA:
                raise BackendError(label, f"refused the model: {message} "
                                          f"(arena {size} bytes)") from None
            size *= 2


def _tensor_bytes(model: Model) -> int:
    return sum(int(np.prod(t.shape, dtype=np.int64)) * t.dtype.itemsize
               for sg in model.subgraphs for t in sg.tensors
               if t.dtype is not None and not t.is_constant)

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


def run(model_path: str, inputs: list[list[np.ndarray]], *, label: str,
        arena_size: int | None = None) -> list[Capture]:
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError:
        raise BackendError(label, "the tflite-micro wheel is not installed (pip install tflite-micro)") from None
    model = Model.from_file(model_path)
    versions = {"runtime": "tflite-micro", **package_versions("tflite-micro", "numpy")}
    stage("creating the interpreter")
    try:
        interp = runtime.Interpreter.from_bytes(
            model.data, arena_size=arena_size,
            intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
    except (ValueError, RuntimeError) as err:
        raise BackendError(label, f"refused the model: {first_sentence(str(err))}") from None

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
    stage("saving captures")
    return captures

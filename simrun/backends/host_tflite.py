"""Desktop TFLite: `tflite-optimized`, `tflite-reference`, `tflite-optimized-nodelegate`.

Interpreted with ai-edge-litert (LiteRT); TensorFlow's own `tf.lite` is used only
when ai-edge-litert is not installed, because importing TensorFlow costs seconds.
"optimized" is the BUILTIN resolver, i.e. what a desktop user gets, including the
default XNNPACK delegate (it still fills every preserved intermediate tensor);
"reference" is BUILTIN_REF; "optimized-nodelegate" is BUILTIN_WITHOUT_DEFAULT_DELEGATES,
TFLite's own optimized kernels with XNNPACK left out.
"""
from __future__ import annotations

import numpy as np

from ..backend_id import BackendId
from ..capture import Capture
from ..errors import BackendError
from ..model import Model
from ..run_options import RunOptions
from .collect import first_sentence, invoke_each, package_versions, stage
from .isolate import CutRunner, run_isolated


def _interpreter_api():
    """(Interpreter, OpResolverType, runtime versions) from LiteRT, else tf.lite."""
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
        return Interpreter, OpResolverType, {"runtime": "ai-edge-litert",
                                             **package_versions("ai-edge-litert", "numpy")}
    except ImportError:
        pass
    try:
        from tensorflow.lite.python.interpreter import Interpreter, OpResolverType
    except ImportError:
        raise BackendError("tflite", "neither ai-edge-litert nor tensorflow is installed "
                                     "(pip install ai-edge-litert)") from None
    return Interpreter, OpResolverType, {"runtime": "tensorflow.lite",
                                         **package_versions("tensorflow", "numpy")}


# Which LiteRT op resolver each host kind runs with.
RESOLVERS = {"tflite-optimized": "BUILTIN", "tflite-reference": "BUILTIN_REF",
             "tflite-optimized-nodelegate": "BUILTIN_WITHOUT_DEFAULT_DELEGATES"}


def run(model_path: str, inputs: list[list[np.ndarray]], *, backend: BackendId, options: RunOptions,
        isolate_from: list[Capture] | None = None, num_threads: int = 1) -> list[Capture]:
    # `options`: only the parent's time limit concerns a host interpreter.
    label = backend.label
    Interpreter, OpResolverType, versions = _interpreter_api()
    versions["resolver"] = RESOLVERS[backend.host]
    model = Model.from_file(model_path)
    resolver = getattr(OpResolverType, versions["resolver"])
    if isolate_from is not None:
        return run_isolated(model, label, inputs, isolate_from,
                            lambda data: _cut_runner(Interpreter, resolver, data, num_threads), versions)
    stage(f"creating the interpreter ({versions['resolver']})")
    try:
        interp = Interpreter(model_content=model.data, num_threads=num_threads,
                             experimental_op_resolver_type=resolver,
                             experimental_preserve_all_tensors=True)
        interp.allocate_tensors()
    except (ValueError, RuntimeError) as err:
        raise BackendError(label, f"refused the model: {first_sentence(str(err))}") from None

    def read(subgraph: int, index: int):
        try:
            return interp.get_tensor(index, subgraph)
        except ValueError:          # e.g. a tensor with no data in a subgraph that never ran
            return None

    def set_inputs(sample: list[np.ndarray]) -> None:
        for tensor_index, array in zip(model.main.inputs, sample):
            interp.set_tensor(tensor_index, array)

    captures = invoke_each(model, label, inputs, set_inputs=set_inputs, invoke=interp.invoke,
                           read=read, versions=versions)
    stage("releasing the interpreter")
    del interp
    return captures


def _cut_runner(Interpreter, resolver, data: bytes, num_threads: int) -> CutRunner:
    """A single-operator model (simrun.backends.isolate) in the same interpreter and resolver."""
    interp = Interpreter(model_content=data, num_threads=num_threads,
                         experimental_op_resolver_type=resolver)
    interp.allocate_tensors()
    ins = [d["index"] for d in interp.get_input_details()]
    outs = [d["index"] for d in interp.get_output_details()]
    return CutRunner(lambda pos, a: interp.set_tensor(ins[pos], a), interp.invoke,
                     lambda pos: interp.get_tensor(outs[pos]))

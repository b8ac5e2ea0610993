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

from ..capture import Capture
from ..errors import BackendError
from ..model import Model
from .collect import first_sentence, invoke_each, package_versions, stage


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


def run(model_path: str, inputs: list[list[np.ndarray]], *, label: str,
        kernels: str = "optimized", num_threads: int = 1) -> list[Capture]:
    Interpreter, OpResolverType, versions = _interpreter_api()
    versions["resolver"] = {"optimized": "BUILTIN",
                            "reference": "BUILTIN_REF",
                            "optimized-nodelegate": "BUILTIN_WITHOUT_DEFAULT_DELEGATES"}[kernels]
    model = Model.from_file(model_path)
    stage(f"creating the interpreter ({versions['resolver']})")
    try:
        interp = Interpreter(model_content=model.data, num_threads=num_threads,
                             experimental_op_resolver_type=getattr(OpResolverType, versions["resolver"]),
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


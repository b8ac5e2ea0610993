"""Keywords that run backends and read captures: layer and model outputs, counts, saving."""
from __future__ import annotations

import numpy as np
from robot.api.deco import keyword

from ..capture import Capture
from ..errors import SimrunError
from .context import Component, assert_arrays_equal


class CaptureKeywords(Component):
    """Running backends and reading their captures."""

    @keyword
    def run_backend(self, name: str) -> Capture:
        """Runs the current model and input on one backend and stores its capture under ``name``.

        ``name`` is ``tflite-optimized``, ``tflite-reference``, ``tflm-host``
        or ``target:<cpu>:<kernels>``. A backend that refuses the model or
        crashes fails this keyword with ``BackendError`` and is recorded, so
        `Backend Should Have Failed With` can check it afterwards.

        Example:
        | Run Backend    tflm-host
        | Run Keyword And Expect Error    *quantized_dimension*    Run Backend    tflite-reference
        """
        return self.ctx.run_backend(name)

    @keyword
    def get_layer_output(self, layer: str, label: str | None = None, output: int = 0) -> np.ndarray:
        """Returns one output tensor of one layer as a numpy array.

        ``layer`` is ``<subgraph>:<operator>``, an operator index in
        subgraph 0, or an output tensor name. ``label`` selects the capture
        (default: the last one stored); ``output`` the operator's output
        number.

        Example:
        | ${conv} =    Get Layer Output    0:0
        | ${same} =    Get Layer Output    MobilenetV1/Conv2d_0/Relu6    label=tflm-host
        """
        cap = self.ctx.capture(label)
        for rec in cap.ops:
            for t in rec.outputs:
                if t.name == layer:
                    return t.values
        sg, _, idx = layer.rpartition(":")
        try:
            key = (int(sg or 0), int(idx))
        except ValueError:
            raise SimrunError(f"{cap.backend}: no layer or output tensor named {layer!r}") from None
        try:
            outputs = cap.op(*key).outputs
        except KeyError as err:
            raise SimrunError(str(err.args[0])) from None
        if not 0 <= output < len(outputs):
            raise SimrunError(f"{cap.backend}: layer {layer} has {len(outputs)} outputs, no output {output}")
        return outputs[output].values

    @keyword
    def get_model_output(self, label: str | None = None, output: int = 0) -> np.ndarray:
        """Returns one of the model's final outputs from a capture as a numpy array.

        Example:
        | ${scores} =    Get Model Output
        """
        cap = self.ctx.capture(label)
        if not 0 <= output < len(cap.outputs):
            raise SimrunError(f"{cap.backend}: the capture has {len(cap.outputs)} outputs, no output {output}")
        return cap.outputs[output].values

    @keyword
    def captured_layer_count_should_be(self, count: int, label: str | None = None) -> None:
        """Checks how many operators a capture holds.

        Example:
        | Captured Layer Count Should Be    4
        """
        self.ctx.check_layer_count(count, label)

    @keyword
    def arrays_should_be_equal(self, actual, expected, msg: str | None = None) -> None:
        """Checks that two arrays have the same shape, dtype and values.

        Example:
        | Arrays Should Be Equal    ${target}    ${reference}
        """
        assert_arrays_equal(actual, expected, msg)

    @keyword
    def save_capture(self, path: str, label: str | None = None) -> str:
        """Saves a capture as ``.npz`` (simrun's capture format). Returns the path.

        Example:
        | Save Capture    ${OUTPUT DIR}/target.npz
        """
        return str(self.ctx.capture(label).save(path))

"""Keywords for the model and its inputs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from robot.api.deco import keyword

from ..errors import SimrunError
from ..model import Model
from .context import Component


class ModelKeywords(Component):
    """The model and its inputs."""

    @keyword
    def load_model(self, path: str) -> None:
        """Reads a ``.tflite`` model; also loads it into the running session, if any.

        Forgets the input, captures, backend errors and comparison of the
        previous model.

        A model too large for the firmware, an unsupported operator or an
        arena that is too small fails here with the matching error
        (``ModelTooLarge``, ``UnsupportedOperator``, ``ArenaTooSmall``).

        Example:
        | Load Model    ${CURDIR}/../../shared/models/person_detect.tflite
        """
        self.ctx.model = Model.from_file(Path(path).resolve())
        self.ctx.fixture_model = None
        self.ctx.forget_results()
        if self.ctx.session is not None:
            self.ctx.session.load_model(self.ctx.model)

    @keyword
    def set_input_from_file(self, path: str) -> None:
        """Uses the input in ``path``: ``.npy``, ``.npz`` or an image.

        Images are resized and quantized with the model's input parameters.
        A file that holds several inputs uses the first. For a fixture model
        (`Load Fixture Model`) the file is a ``.npy`` of int8 values.

        Example:
        | Set Input From File    ${CURDIR}/data/person.png
        """
        self._set_inputs(str(path))

    @keyword
    def set_random_input(self, seed: int = 0) -> None:
        """Uses seeded random data within the range of every model input.

        Example:
        | Set Random Input    seed=42
        """
        self._set_inputs(f"random:{seed}")

    @keyword
    def set_input_array(self, *arrays) -> None:
        """Uses the given numpy arrays, one per model input, as the input.

        Example:
        | ${x} =    Evaluate    numpy.zeros((1, 1), dtype=numpy.int8)    numpy
        | Set Input Array    ${x}
        """
        if self.ctx.fixture_model is None:
            self.ctx.require_model()
        self.ctx.inputs = [np.asarray(a) for a in arrays]

    def _set_inputs(self, spec: str) -> None:
        if self.ctx.fixture_model is not None:
            self.ctx.inputs = [_fixture_input(self.ctx.fixture_model, spec)]
            return
        from ..inputs import load_inputs
        self.ctx.inputs = load_inputs(self.ctx.require_model(), [spec])[0]


def _fixture_input(model, spec: str) -> np.ndarray:
    """The fixture is not a TFLite model, so simrun.inputs cannot read its input shape."""
    if spec.startswith("random:"):
        rng = np.random.default_rng(int(spec.split(":", 1)[1]))
        return rng.integers(-128, 128, (1, model.input_len), dtype=np.int8)
    if not spec.endswith(".npy"):
        raise SimrunError(f"fixture input {spec!r}: use a .npy file or random:SEED")
    x = np.load(spec, allow_pickle=False)
    if x.dtype != np.int8 or x.size != model.input_len:
        raise SimrunError(f"fixture input {spec}: need {model.input_len} int8 values, got {x.dtype}{list(x.shape)}")
    return x.reshape(1, model.input_len)

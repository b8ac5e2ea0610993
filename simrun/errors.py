"""Errors a user can act on. The CLI prints their message and exits non-zero
without a traceback; anything else is a bug and keeps its traceback."""


class SimrunError(Exception):
    """Base class: str(err) is the whole message shown to the user."""


class ToolMissing(SimrunError):
    """An external program (qemu-system-arm, arm-none-eabi-gcc, cmake, renode) is not installed."""


class SourcesMissing(SimrunError):
    """TFLM / CMSIS-NN / CMSIS core sources are neither given locally nor downloadable."""


class BadInput(SimrunError):
    """A model, input file or option the user gave is unusable."""


class BackendError(SimrunError):
    """A backend refused the model or failed; reported per backend, never fatal to a matrix."""

    def __init__(self, backend: str, message: str):
        super().__init__(f"{backend}: {message}")
        self.backend = backend
        self.message = message

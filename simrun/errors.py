"""Errors a user can act on. The CLI prints their message and exits non-zero
without a traceback; anything else is a bug and keeps its traceback."""


class SimrunError(Exception):
    """Base class: str(err) is the whole message shown to the user."""


class ToolMissing(SimrunError):
    """An external program (qemu-system-arm, arm-none-eabi-gcc, cmake, renode) is not installed."""


def require_tool(name: str, install_hint: str) -> str:
    """The path of program `name` on PATH, else ToolMissing that says how to install it."""
    import shutil
    path = shutil.which(name)
    if not path:
        raise ToolMissing(f"{name} not found: {install_hint}")
    return path


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


# --- emulator controller (issue 3) -------------------------------------------

class AbiMismatch(SimrunError):
    """The firmware ELF lacks simrun ABI symbols or reports another ABI version."""


class ModelTooLarge(BadInput):
    """The model does not fit the firmware's simrun_model buffer (refused before launch)."""


class EmulatorError(SimrunError):
    """The emulator could not be started, or its GDB stub misbehaved or went away."""


class EmulatorTimeout(EmulatorError):
    """The wall-clock budget ran out; the emulator was killed."""

    def __init__(self, message: str, operator: str | None = None):
        super().__init__(message)
        self.operator = operator


class FirmwareError(SimrunError):
    """The firmware reported an error status (bad model, allocation or invoke failure)."""


class UnsupportedOperator(FirmwareError):
    def __init__(self, name: str, message: str | None = None):
        super().__init__(message or f"operator {name} is not supported by this firmware")
        self.name = name


class ArenaTooSmall(FirmwareError):
    def __init__(self, bytes_needed: int, arena_bytes: int | None = None):
        need = f"{bytes_needed} bytes needed" if bytes_needed else "bytes needed unknown"
        have = f", arena has {arena_bytes}" if arena_bytes is not None else ""
        super().__init__(f"tensor arena too small ({need}{have})")
        self.bytes_needed = bytes_needed
        self.arena_bytes = arena_bytes


class TargetFault(SimrunError):
    """The emulated core took a fault; registers and the running operator are attached."""

    def __init__(self, message: str, registers: dict[str, int], operator: str | None = None):
        super().__init__(message)
        self.registers = registers
        self.operator = operator

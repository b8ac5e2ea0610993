"""Errors a user can act on. The CLI prints their message and exits with the
error's `exit_code` without a traceback; anything else is a bug and keeps its traceback.

The exit codes below mean the same in every command; `simrun --help` and the
README list them from EXIT_CODES.
"""

EXIT_OK = 0            # done; the tolerance policy passed
EXIT_POLICY = 1        # the tolerance policy failed; in `diff --baseline`, a regression against it
EXIT_USAGE = 2         # usage or input error: bad arguments, model, input, policy or ELF file
EXIT_DEVICE = 3        # the model failed on a backend or the device: firmware error, fault,
#                        timeout, unsupported operator, arena too small; in `diff`, a backend the
#                        policy does not excuse (the default excuses desktop TFLite, tflite-*)
EXIT_ENVIRONMENT = 4   # the environment lacks something: tool, sources, emulator, build failure
EXIT_INTERRUPTED = 130  # Ctrl-C

EXIT_CODES = {
    EXIT_OK: "ok (the tolerance policy passed)",
    EXIT_POLICY: "the tolerance policy failed (with --baseline: a regression against it)",
    EXIT_USAGE: "usage or input error (arguments, model, input, policy or ELF file)",
    EXIT_DEVICE: "the model failed on a backend or the device (firmware error, fault, timeout, "
                 "unsupported operator, arena too small)",
    EXIT_ENVIRONMENT: "the environment lacks something (tool, sources, emulator, cache, build failure)",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
}


class SimrunError(Exception):
    """Base class: str(err) is the whole message shown to the user."""

    exit_code = EXIT_ENVIRONMENT


class ToolMissing(SimrunError):
    """An external program (qemu-system-arm, arm-none-eabi-gcc, cmake, renode) is not installed."""

    exit_code = EXIT_ENVIRONMENT


def require_tool(name: str, install_hint: str) -> str:
    """The path of program `name` on PATH, else ToolMissing that says how to install it."""
    import shutil
    path = shutil.which(name)
    if not path:
        raise ToolMissing(f"{name} not found: {install_hint}")
    return path


class SourcesMissing(SimrunError):
    """TFLM / CMSIS-NN / CMSIS core sources are neither given locally nor downloadable."""

    exit_code = EXIT_ENVIRONMENT


class BadInput(SimrunError):
    """A model, input file or option the user gave is unusable."""

    exit_code = EXIT_USAGE


class BackendError(SimrunError):
    """A backend refused the model or failed; reported per backend, never fatal to a matrix.
    `exit_code` is the one of the error behind it (e.g. 4 for missing sources), 3 if unknown."""

    def __init__(self, backend: str, message: str, exit_code: int = EXIT_DEVICE):
        super().__init__(f"{backend}: {message}")
        self.backend = backend
        self.message = message
        self.exit_code = exit_code


# --- emulator controller (issue 3) -------------------------------------------

class AbiMismatch(SimrunError):
    """The firmware ELF lacks simrun ABI symbols or reports another ABI version."""

    exit_code = EXIT_USAGE      # an ELF given with --elf that is not a simrun firmware


class ModelTooLarge(BadInput):
    """The model does not fit the board's bulk RAM (simrun_bulk) with an arena and capture log; refused
    before any emulator starts, naming the CPUs whose board can hold it."""


class EmulatorError(SimrunError):
    """The emulator could not be started, or its GDB stub misbehaved or went away."""

    exit_code = EXIT_ENVIRONMENT


class EmulatorTimeout(EmulatorError):
    """The wall-clock budget ran out; the emulator was killed."""

    exit_code = EXIT_DEVICE

    def __init__(self, message: str, operator: str | None = None):
        super().__init__(message)
        self.operator = operator


class FirmwareError(SimrunError):
    """The firmware reported an error status (bad model, allocation or invoke failure)."""

    exit_code = EXIT_DEVICE


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

    exit_code = EXIT_DEVICE

    def __init__(self, message: str, registers: dict[str, int], operator: str | None = None):
        super().__init__(message)
        self.registers = registers
        self.operator = operator


def require_writable_dir(path, error: type[SimrunError], what: str, fix: str):
    """Create `path` if needed and prove it takes a file (as root, os.access says yes
    to /proc); else `error` naming it and `fix`. Returns the path."""
    import os
    import tempfile
    from pathlib import Path
    path = Path(path).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".simrun-write-test-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise error(f"{what} {path} is not writable ({err.strerror or err}): {fix}") from None
    return path


class CacheUnwritable(SimrunError):
    """The firmware cache directory cannot be created or written."""

    exit_code = EXIT_ENVIRONMENT


def exit_code_of(exc: BaseException) -> int | None:
    """The code `simrun` exits with when `exc` ends a command (simrun.cli.main's rules):
    a SimrunError's own, 130 for Ctrl-C, 4 for a file the environment refuses, 1 for a bug
    (Python's code for an uncaught exception); None for SystemExit and the like."""
    if isinstance(exc, SimrunError):
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, OSError):
        return EXIT_ENVIRONMENT
    if isinstance(exc, Exception):
        return 1
    return None

"""Emulator launchers: start an emulator halted with a GDB stub, and stop it.

A launcher only knows how to start its emulator; everything after the GDB
connection is the shared controller in simrun.device.session. Every process started
here runs in its own process group, gets SIGKILL when the Python thread that
started it dies (PR_SET_PDEATHSIG), is killed at interpreter exit (atexit) and
by EmulatorProcess.stop(), which is idempotent.
"""
from __future__ import annotations

from pathlib import Path

from ...errors import EmulatorError
from ..targets import EMULATORS
from .process import EmulatorProcess

__all__ = ["EmulatorProcess", "launch"]


def launch(emulator: str, elf: Path, cpu: str, workdir: Path, deadline: float | None = None,
           ram=None, qemu_args: list[str] | None = None) -> EmulatorProcess:
    """Start `emulator` ("qemu" or "renode") halted at reset with `elf` loaded.

    Renode is started and waited for (its readiness line) within `deadline`.
    ram (a memory.RamFile): back the board's main RAM with that file, so the
    host can map it; emulators that cannot ignore it (process.ram stays None).
    qemu_args: extra QEMU options (the instruction-counting plugin).
    """
    if emulator == "qemu":
        from .qemu import launch_qemu
        return launch_qemu(elf, cpu, workdir, ram, qemu_args or [])
    if emulator == "renode":
        from .renode import launch_renode
        return launch_renode(elf, cpu, workdir, deadline)
    raise EmulatorError(f"unknown emulator {emulator!r}; known: {', '.join(EMULATORS)}")

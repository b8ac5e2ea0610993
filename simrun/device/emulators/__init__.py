"""The emulators a session can drive, behind one interface (base.Emulator).

    emu = make_emulator("qemu")              # or "renode"; gdb="127.0.0.1:3333" attaches instead

QEMU (qemu.py), Renode (renode.py) and an emulator the user started (attach.py)
each implement Emulator; what each can and cannot do is `emu.capabilities`.
Every process started here runs in its own process group, gets SIGKILL when the
Python thread that started it dies (PR_SET_PDEATHSIG), is killed at interpreter
exit (atexit) and by Emulator.stop(), which is idempotent (process.py).
"""
from __future__ import annotations

from ...errors import EmulatorError
from ..targets import EMULATORS
from .attach import AttachedEmulator
from .base import AbortReport, Capability, Emulator, LoggedFault
from .process import EmulatorProcess
from .qemu import QemuEmulator
from .renode import RenodeEmulator

__all__ = ["AbortReport", "AttachedEmulator", "Capability", "Emulator", "EmulatorProcess", "LoggedFault",
           "QemuEmulator", "RenodeEmulator", "make_emulator", "slowdown"]

IMPLEMENTATIONS: dict[str, type[Emulator]] = {"qemu": QemuEmulator, "renode": RenodeEmulator}
assert set(IMPLEMENTATIONS) == set(EMULATORS), "every emulator the targets table names has an implementation"


def make_emulator(name: str = "qemu", gdb: str | None = None) -> Emulator:
    """The emulator `name` ("qemu" or "renode"), not started; with gdb="HOST:PORT" (loopback only)
    the one the user started and serves there, whatever `name` says."""
    if gdb is not None:
        return AttachedEmulator(gdb)
    try:
        return IMPLEMENTATIONS[name]()
    except KeyError:
        raise EmulatorError(f"unknown emulator {name!r}; known: {', '.join(EMULATORS)}") from None


def slowdown(name: str) -> float:
    """Emulator `name`'s stated slowdown against QEMU (scales default time limits). In attach mode
    too: `--emulator` names which emulator the user started."""
    try:
        return IMPLEMENTATIONS[name].slowdown
    except KeyError:
        raise EmulatorError(f"unknown emulator {name!r}; known: {', '.join(EMULATORS)}") from None

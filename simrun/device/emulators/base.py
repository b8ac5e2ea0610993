"""One interface for every emulator the session drives: QEMU, Renode, or one the user started.

Modelled on pyocd's DebugProbe: one base class, and what an implementation can
or cannot do is data (a set of `Capability`), not a question the session asks
about an emulator's name. The session only ever calls these methods:

    emu.instruction_counter(image)     # before anything starts: the counter this emulator supports
    emu.start(elf, cpu, workdir, deadline, map_ram=...)   # halted at reset, elf loaded
    gdb = emu.connect(deadline)        # its GDB server (the one controller for all emulators)
    mem = emu.memory(gdb, start, size) # the board RAM mapped into this process, else GDB packets
    emu.logged_fault()                 # after every stop: a fault it logged instead of raising
    emu.abort_report()                 # after a GDB `X` stop: what it said, where
    emu.title(); emu.known_gap(insn); emu.missing_instruction(insn, cpu)   # when it lacks one
    emu.disconnect(gdb); emu.stop()    # at the end: close or detach; kill what we started

Everything after the GDB connection (breakpoints, memory, the capture log) is
the same for all of them; what differs in the GDB protocol itself is the
stub's dialect (gdbprotocol.StubDialect, read from its qSupported reply).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path

from ..cost import Counter, StopCounter
from ..disassembly import Instruction
from ..elf import FirmwareImage
from ..gdbremote import GdbRemote
from ..memory import GdbMemory
from .process import EmulatorProcess


class Capability(enum.Enum):
    """What an emulator can do; the session decides from these, never from a name."""

    MAPPED_RAM = "its board RAM can be a file the host maps (no GDB packets for model and capture)"
    BUS_FILES = ("copies bulk memory between its bus and a file on a Monitor command (Renode: "
                 "emulators/renode_memory.py), so model and capture skip the GDB packets")
    COUNTER_PLUGIN = "counts instructions as it runs, without stopping (our QEMU TCG plugin)"
    COUNTER_AT_STOPS = "reports its own executed-instruction count at a stop (a monitor command)"
    FAULT_LOG = ("logs some faults instead of raising them in the core (Renode: unmapped accesses); "
                 "the session reads the log at every stop and stops after every operator to name it")


@dataclass(frozen=True)
class LoggedFault:
    """A fault the emulator reported in its log, not in the core: what, the detail, registers."""

    kind: str
    detail: str
    registers: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class AbortReport:
    """What the emulator said when it aborted the core (GDB `X` stop), and the PC if it named one."""

    note: str = ""
    pc: int | None = None


class Emulator:
    """An emulator for one session: started (or reached) per model, stopped at the end.

    Subclasses set `name` and `capabilities` and implement `_launch` (start the
    process) and `connect`; the rest has defaults that fit an emulator whose
    process we own and whose faults all show in the core.
    """

    name = "emulator"
    capabilities: frozenset[Capability] = frozenset()
    # Starting can take long (Renode: seconds of .NET start-up): at least this many seconds, whatever
    # the session's per-step timeout.
    min_start_seconds = 60.0
    # How many times QEMU's wall-clock time a run takes here, measured; the default time limits
    # (RunOptions.timeout, Session's per-wait timeout) are QEMU's times this.
    slowdown = 1.0

    def __init__(self) -> None:
        self.process: EmulatorProcess | None = None

    def has(self, capability: Capability) -> bool:
        return capability in self.capabilities

    def lacks(self) -> list[Capability]:
        """What this emulator cannot do (for messages and `simrun doctor`)."""
        return [c for c in Capability if c not in self.capabilities]

    # --- lifetime -----------------------------------------------------------------
    def instruction_counter(self, image: FirmwareImage) -> Counter:
        """The per-operator instruction counter this emulator supports, built before it starts
        (so a missing tool fails before any process exists). Default: its own count, read at stops."""
        return StopCounter(image)

    def start(self, elf: Path, cpu: str, workdir: Path, deadline: float, map_ram: bool = True) -> None:
        """Start the emulator halted at reset with `elf` loaded, its files in `workdir` (private to
        this start, removed by the session). map_ram: back the board RAM with a file if it can."""
        self.process = self._launch(Path(elf), cpu, Path(workdir), deadline, map_ram)

    def _launch(self, elf: Path, cpu: str, workdir: Path, deadline: float, map_ram: bool) -> EmulatorProcess:
        raise NotImplementedError

    def connect(self, deadline: float) -> GdbRemote:
        """The started emulator's GDB server, connected (handshake not yet done)."""
        if self.process is None:
            raise RuntimeError(f"{self.name}: connect() before start()")
        return self.process.connect(deadline)

    def disconnect(self, gdb: GdbRemote) -> None:
        """End the control connection (an emulator we own is killed next anyway)."""
        gdb.close()

    def stop(self) -> None:
        """Kill what start() started and remove its files. Idempotent."""
        if self.process is not None:
            self.process.stop()
            self.process = None

    @property
    def pid(self) -> int | None:
        """The emulator's own process id while it runs and is ours, else None."""
        return self.process.pid if self.process is not None else None

    # --- memory -------------------------------------------------------------------
    def memory(self, gdb: GdbRemote, start: int, size: int) -> GdbMemory:
        """Access to target memory for the window [start, start+size) the session laid out."""
        return GdbMemory(gdb)

    # --- faults -------------------------------------------------------------------
    def logged_fault(self) -> LoggedFault | None:
        """A fault logged since the last call instead of raised in the core (FAULT_LOG), else None."""
        return None

    def abort_report(self) -> AbortReport:
        """After the core aborted (GDB `X`): the emulator's last output."""
        out = self.process.output(1500) if self.process is not None else ""
        return AbortReport(f"; {self.name} output: {out}" if out else "")

    def title(self) -> str:
        """The emulator as messages name it, with its version where known ("Renode 1.16.1")."""
        return self.name

    def known_gap(self, instruction: Instruction) -> str:
        """What is known about this emulator lacking `instruction` ("" if nothing)."""
        return ""

    def missing_instruction(self, instruction: Instruction, cpu: str) -> str:
        """What to do when `instruction`, valid on `cpu`, faulted UNDEFINSTR in this emulator."""
        return f"run {cpu} on an emulator that implements it"

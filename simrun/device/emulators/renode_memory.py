"""Renode's board RAM moved through files Renode reads and writes itself, not GDB packets.

Renode's GDB server moves memory in small hex packets, slowly under Mono: measured on
Renode 1.16.1 here (2 cores, load 5), 1 MiB took 9.9 s to write and 37.5 s to read over
GDB. Renode's Monitor runs IronPython with the machine in reach, so one Monitor command
(sent over the same GDB connection, qRcmd) copies a whole range between the system bus
and a file in the session's private directory: 4 MiB in 20-40 ms once its Python engine
is up (about 1 s for the first command). GDB stays the controller (breakpoints,
registers, small reads); only bulk ranges of the session's window (the model upload,
the capture log, isolated inputs) take this path.

Why not Renode's own commands: `sysbus LoadBinary` writes (10x slower than this), but
1.16.1's `DumpBinary` (MemoryDumpExtensions.cs) dumps [offset, size) while it checks
offset + size against the memory's size, so it cannot reach the end of the bulk
memory, where the capture log lives.

Renode answers a failed Monitor command with its error text (and OK); any output is
therefore an error, reported with Renode's words.
"""
from __future__ import annotations

import itertools
import re
from pathlib import Path

from ...errors import EmulatorError
from ..gdbremote import GdbRemote
from ..memory import GdbMemory

# Below this GDB's few packets cost less than a Monitor command and a file.
BULK_MIN = 4096
# The two Monitor commands (IronPython in Renode: `self` is the Monitor, .NET types through
# `System`). onlyMemory=True: RAM only, no peripheral side effects (the window is RAM).
READ_COMMAND = ("python \"import System; System.IO.File.WriteAllBytes(r'{path}', "
                "self.Machine.SystemBus.ReadBytes(System.UInt64({address}), {length}, True, None))\"")
WRITE_COMMAND = ("python \"import System; self.Machine.SystemBus.WriteBytes("
                 "System.IO.File.ReadAllBytes(r'{path}'), System.UInt64({address}), True, None)\"")
_SAFE_PATH = re.compile(r"[^'\"\\\n\r;]+")


class RenodeBusMemory(GdbMemory):
    """The window [start, start + size) through files Renode's Monitor copies; the rest through GDB."""

    mapped = False

    def __init__(self, gdb: GdbRemote, folder: Path, start: int, size: int):
        super().__init__(gdb)
        folder = Path(folder).resolve()
        if not _SAFE_PATH.fullmatch(str(folder)):
            raise EmulatorError(f"the session folder {folder} holds a quote, backslash or ';', which a Renode "
                                f"Monitor command cannot carry; set TMPDIR to a plainer path")
        self.folder, self.start, self.end = folder, start, start + size
        self._names = itertools.count()

    def _bulk(self, address: int, length: int) -> bool:
        return length >= BULK_MIN and self.start <= address and address + length <= self.end

    def _file(self) -> Path:
        return self.folder / f"bus-{next(self._names)}.bin"

    def _run(self, command: str, what: str) -> None:
        out = self.gdb.monitor(command).strip()
        if out:
            raise EmulatorError(f"Renode could not {what}: {out[-600:]}")

    def read(self, address: int, length: int) -> bytes:
        if not self._bulk(address, length):
            return super().read(address, length)
        path = self._file()
        try:
            self._run(READ_COMMAND.format(path=path, address=address, length=length),
                      f"copy {length} bytes at {address:#x} to {path}")
            data = path.read_bytes()
        except OSError as err:
            raise EmulatorError(f"Renode's copy of {length} bytes at {address:#x} is unreadable: {err}") from None
        finally:
            path.unlink(missing_ok=True)
        if len(data) != length:
            raise EmulatorError(f"Renode copied {len(data)} bytes at {address:#x}, not {length}")
        return data

    def write(self, address: int, data) -> None:
        data = bytes(data)
        if not self._bulk(address, len(data)):
            return super().write(address, data)
        path = self._file()
        try:
            path.write_bytes(data)
            self._run(WRITE_COMMAND.format(path=path, address=address),
                      f"write {len(data)} bytes at {address:#x} from {path}")
        finally:
            path.unlink(missing_ok=True)

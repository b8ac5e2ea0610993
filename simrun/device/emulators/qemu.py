"""QEMU: qemu-system-arm halted at reset, its GDB stub on a Unix socket in a private dir.

What it can do that the others cannot: its board RAM can be a file this process
maps (`memory-backend-file`, share=on), so the model and the capture log move
as memory copies; and our TCG plugin counts instructions without stopping.
It raises every fault in the core (BusFault on an unmapped access), so there is
no log to read.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

from ...errors import require_tool
from ..cost import Counter, InstructionCounter
from ..disassembly import Instruction
from ..elf import FirmwareImage
from ..gdbprotocol import QEMU
from ..gdbremote import GdbRemote
from ..memory import GdbMemory, MappedMemory, RamFile
from ..targets import get_target
from .base import Capability, Emulator
from .process import EmulatorProcess

INSTALL_HINT = "install QEMU (Debian/Ubuntu: apt-get install qemu-system-arm)"


def qemu_argv(binary: str, machine: str, elf: Path, gdb_socket: Path, ram=None) -> list[str]:
    # -S: halted at reset until the controller continues. A Unix socket (not a
    # TCP port) cannot collide between parallel sessions and is never remote.
    # ram: the board's main RAM becomes that file (share=on), which the host maps.
    backend = []
    if ram is not None:
        machine = f"{machine},memory-backend=simrun-ram"
        backend = ["-object", f"memory-backend-file,id=simrun-ram,size={ram.size},mem-path={ram.path},share=on"]
    return [binary, "-M", machine, *backend, "-kernel", str(elf), "-S", "-nographic",
            "-monitor", "none", "-serial", "none", "-nodefaults",
            "-chardev", f"socket,id=gdb0,path={gdb_socket},server=on,wait=off",
            "-gdb", "chardev:gdb0"]


@lru_cache(maxsize=None)
def qemu_version(binary: str) -> str | None:
    """"7.2.19" from `qemu-system-arm --version` ("QEMU emulator version 7.2.19 (Debian ...)")."""
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30,
                             stdin=subprocess.DEVNULL).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"version (\d+\.\d+(?:\.\d+)?)", out)
    return m.group(1) if m else None


class QemuEmulator(Emulator):
    name = "qemu"
    capabilities = frozenset({Capability.MAPPED_RAM, Capability.COUNTER_PLUGIN})

    def __init__(self) -> None:
        super().__init__()
        self.ram: RamFile | None = None
        self._plugin: InstructionCounter | None = None

    def instruction_counter(self, image: FirmwareImage) -> Counter:
        from ..qemu_plugin import ensure_plugin       # builds (or finds) the plugin: before QEMU starts
        self._plugin = InstructionCounter(image, ensure_plugin())
        return self._plugin

    def _launch(self, elf: Path, cpu: str, workdir: Path, deadline: float, map_ram: bool) -> EmulatorProcess:
        board = get_target(cpu).board
        if map_ram:
            self.ram = RamFile.create(f"{workdir.name}-ram", board.main_ram_origin, board.main_ram_size)
        sock = workdir / "gdb.sock"
        argv = qemu_argv(require_tool("qemu-system-arm", INSTALL_HINT), board.qemu_machine, elf, sock, self.ram)
        if self._plugin is not None:
            argv += self._plugin.qemu_args(workdir)    # a fresh count file per start
        return EmulatorProcess("qemu", argv, workdir,
                               lambda deadline: GdbRemote.connect_unix(str(sock), deadline=deadline,
                                                                       dialect=QEMU, name="QEMU"))

    def memory(self, gdb: GdbRemote, start: int, size: int) -> GdbMemory:
        ram = self.ram
        if ram is None or not (ram.origin <= start and start + size <= ram.origin + ram.size):
            return GdbMemory(gdb)
        mem = MappedMemory(gdb, ram, start, size)
        # QEMU (it answered GDB, so its machine exists) and this process both hold the file now:
        # unlinked, it cannot outlive them, not even a SIGKILLed run.
        ram.remove()
        return mem

    def stop(self) -> None:
        super().stop()
        if self.ram is not None:
            self.ram.remove()
            self.ram = None

    def title(self) -> str:
        binary = shutil.which("qemu-system-arm")
        version = qemu_version(binary) if binary else None
        return f"QEMU {version}" if version else "QEMU"

    def missing_instruction(self, instruction: Instruction, cpu: str) -> str:
        return f"use a QEMU that implements it, or run {cpu} on Renode (--emulator renode) if that one does"

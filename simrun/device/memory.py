"""Target memory for the session: one interface, two ways to reach it.

`MappedMemory` reads and writes the board's main RAM through an mmap of the
file that backs it in the emulator (QEMU's memory-backend-file, share=on):
plain memory copies, no GDB packets, at memory speed. Only the window the
session laid out (model, arena, capture log) is mapped; addresses outside it
(the firmware's .bss in the board's SRAM: status, events, layout) go through
GDB. `GdbMemory` does everything through GDB `m`/`M` packets: the fallback
where no mapping exists (Renode, an attached emulator, or forced for tests).
Either is only touched while the target is stopped.
"""
from __future__ import annotations

import atexit
import mmap
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import EmulatorError
from .gdbremote import GdbRemote


_pending: set[Path] = set()          # created, not yet unlinked: removed at interpreter exit too
_pending_lock = threading.Lock()


@atexit.register
def _remove_pending() -> None:
    for path in list(_pending):
        path.unlink(missing_ok=True)


@dataclass(frozen=True)
class RamFile:
    """A file that is the board's main RAM: `size` bytes seen by the target at `origin`."""

    path: Path
    origin: int
    size: int

    @classmethod
    def create(cls, name: str, origin: int, size: int) -> "RamFile":
        """A new sparse file in /dev/shm (tmpfs: pages exist only once touched), mode 0600."""
        base = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(os.environ.get("TMPDIR", "/tmp"))
        path = base / name
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        with _pending_lock:
            _pending.add(path)
        try:
            os.ftruncate(fd, size)
        finally:
            os.close(fd)
        return cls(path, origin, size)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
        with _pending_lock:
            _pending.discard(self.path)


class GdbMemory:
    """Target memory through the GDB stub's packets (16-20 MB/s on QEMU)."""

    mapped = False

    def __init__(self, gdb: GdbRemote):
        self.gdb = gdb

    def read(self, address: int, length: int) -> bytes:
        return self.gdb.read_memory(address, length) if length else b""

    def write(self, address: int, data) -> None:
        if len(data):
            self.gdb.write_memory(address, bytes(data))

    def read_u32(self, address: int) -> int:
        return int.from_bytes(self.read(address, 4), "little")

    def write_u32(self, address: int, value: int) -> None:
        self.write(address, (value & 0xFFFFFFFF).to_bytes(4, "little"))

    def array(self, address: int, length: int) -> np.ndarray:
        """length bytes as a uint8 array the caller may keep."""
        return np.frombuffer(self.read(address, length), dtype=np.uint8)

    def close(self) -> None:
        pass


class MappedMemory(GdbMemory):
    """The window [start, start + size) of board RAM through an mmap; the rest through GDB."""

    mapped = True

    def __init__(self, gdb: GdbRemote, ram: RamFile, start: int, size: int):
        super().__init__(gdb)
        page = mmap.PAGESIZE
        lo = (start - ram.origin) // page * page
        hi = min(ram.size, start - ram.origin + size)
        if lo < 0 or hi <= lo:
            raise EmulatorError(f"window {start:#x}+{size:#x} is not inside the board RAM at "
                                f"{ram.origin:#x}+{ram.size:#x}")
        self.start, self.end = ram.origin + lo, ram.origin + hi
        flags = mmap.MAP_SHARED
        if hi - lo <= 64 << 20:
            # Pre-fault small windows so the first reads are copies, not page faults;
            # a large arena stays lazily mapped (tmpfs pages exist only once touched).
            flags |= getattr(mmap, "MAP_POPULATE", 0)
        fd = os.open(ram.path, os.O_RDWR)
        try:
            self._mm = mmap.mmap(fd, hi - lo, flags=flags, prot=mmap.PROT_READ | mmap.PROT_WRITE, offset=lo)
        finally:
            os.close(fd)
        self._view = memoryview(self._mm)

    def _slice(self, address: int, length: int) -> memoryview | None:
        if self.start <= address and address + length <= self.end:
            off = address - self.start
            return self._view[off:off + length]
        return None

    def read(self, address: int, length: int) -> bytes:
        view = self._slice(address, length)
        return bytes(view) if view is not None else super().read(address, length)

    def write(self, address: int, data) -> None:
        view = self._slice(address, len(data))
        if view is None:
            super().write(address, data)
        else:
            view[:] = memoryview(data).cast("B") if not isinstance(data, (bytes, bytearray)) else data

    def array(self, address: int, length: int) -> np.ndarray:
        view = self._slice(address, length)
        if view is None:
            return super().array(address, length)
        return np.frombuffer(view, dtype=np.uint8).copy()   # one copy: the mapping dies with the session

    def view(self, address: int, length: int) -> np.ndarray | None:
        """A zero-copy uint8 view (valid until close), or None outside the window."""
        view = self._slice(address, length)
        return None if view is None else np.frombuffer(view, dtype=np.uint8)

    def close(self) -> None:
        try:
            self._view.release()
            self._mm.close()
        except BufferError:      # a caller still holds a view(); the mapping goes with it
            pass

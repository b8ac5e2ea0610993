"""What the firmware reports through the ABI's variables, read while the target is stopped.

The status, the operator event, the tensor descriptors, the fault record and
the log ring (firmware/include/simrun_abi.h) sit in the firmware's .bss, which
is reached over GDB whatever the emulator (the mapped window holds only the
bulk region). The session and the failure reports (failures.py) read them
here, never through each other's fields.
"""
from __future__ import annotations

from pathlib import Path

from . import abi
from .abi import ABI_MAGIC, ABI_VERSION, FAULT, STATE_RUNNING, STATUS, TENSOR, OpEvent, Status, TargetTensor
from .elf import FirmwareImage
from .gdbremote import GdbRemote
from ..errors import AbiMismatch, SimrunError


class FirmwareState:
    """The ABI variables of one running firmware, over its GDB connection."""

    def __init__(self, gdb: GdbRemote, image: FirmwareImage, elf: Path):
        self.gdb = gdb
        self.image = image
        self.elf = Path(elf)

    def status(self) -> Status:
        """simrun_status, checked: the ABI magic and this simrun's ABI version."""
        status = Status.unpack(self.gdb.read_memory(self.image.address("simrun_status"), STATUS.size))
        if status.magic != ABI_MAGIC:
            raise AbiMismatch(f"{self.elf}: firmware did not report the simrun ABI magic "
                              f"(got {status.magic:#x}); not a simrun firmware or it did not boot")
        if status.abi_version != ABI_VERSION:
            raise AbiMismatch(f"{self.elf}: firmware ABI version {status.abi_version}, "
                              f"this simrun speaks version {ABI_VERSION}")
        return status

    def event(self, inputs: int = 0) -> OpEvent:
        """simrun_op_event: the operator beginning or just ended (its first `inputs` inputs described)."""
        return OpEvent.unpack(self.gdb.read_memory(self.image.address("simrun_op_event"), OpEvent.size_for(inputs)))

    def tensor(self, symbol: str, i: int) -> TargetTensor:
        """Descriptor i of the array `symbol` (simrun_inputs, simrun_outputs)."""
        return TargetTensor.unpack(self.gdb.read_memory(self.image.address(symbol) + i * TENSOR.size, TENSOR.size))

    def fault_record(self) -> tuple:
        """simrun_fault as FAULT's fields (valid, ipsr, cfsr, hfsr, mmfar, bfar, pc, lr, sp, xpsr, sg, op)."""
        return FAULT.unpack(self.gdb.read_memory(self.image.address("simrun_fault"), FAULT.size))

    def layout_model_size(self) -> int:
        """simrun_layout.model_size as the firmware sees it now."""
        return self.gdb.read_u32(self.image.address("simrun_layout") + 4)

    def operator(self, note_finished: bool = False) -> str | None:
        """The operator the firmware is in ("sg:op NAME"), None when it is not running one.

        note_finished: say so when the event is an END (the operator finished; the
        next had not begun), which is where a hang after it shows."""
        try:
            if self.status().state != STATE_RUNNING:
                return None
            ev = self.event()
        except SimrunError:
            return None
        finished = " (finished; stuck after it)" if note_finished and ev.phase == abi.PHASE_END else ""
        return f"{ev.key} {ev.op_name}{finished}"

    def log(self) -> str:
        """The firmware's log ring (MicroPrintf output), oldest first."""
        head = self.gdb.read_u32(self.image.address("simrun_log_head"))
        size = self.image.size("simrun_log")
        ring = self.gdb.read_memory(self.image.address("simrun_log"), size)
        if head > size:
            ring = ring[head % size:] + ring[:head % size]
        return ring.rstrip(b"\0").decode(errors="replace")

    def log_tail(self) -> str:
        """"; firmware log: ..." with its last five lines, for error messages ("" if unreadable)."""
        try:
            lines = self.log().strip().splitlines()[-5:]
        except SimrunError:
            return ""
        return ("; firmware log: " + " | ".join(lines)) if lines else ""

"""Per-operator cost on the emulated target: instructions executed, counted exactly.

Why instructions and not cycles or time: QEMU models no pipeline or memory
timing, so the only cost it can state exactly is the number of guest
instructions executed. That count depends only on firmware, model and input;
it is identical on every run whatever else the machine is doing, which wall
time in an emulator is not (and wall time says nothing about the device).

How (chosen over `-icount` with a board timer read at the hooks): our own
QEMU TCG plugin (qemu_plugin/insn_count.c, built by simrun.device.qemu_plugin)
counts every executed instruction and appends the running count to a file
whenever execution reaches a marker address. It is exact to the instruction
(a timer read under -icount is exact only to the timer's resolution and
needs wrap handling per board), needs no firmware change and no stop per
operator, and costs a few percent of a plain run (bench/cost_bench.py).

Markers (functions whose first instruction the plugin watches):
  BEGIN       simrun_hook_op_begin: the operator is about to run (after the
              firmware described it)
  END         simrun_hook_op_end: one per operator record the host captures
  KERNEL_END  where the operator's own work is over, the first reached of:
              the TFLM runner's profiler EndEvent entry (simrun::...::EndEvent:
              TFLM returned from the kernel, the outputs are not described yet),
              and simrun_capture_op_end (the capture-log append, both firmwares)
An operator's count runs from its BEGIN to its first KERNEL_END (else its END),
so it holds the kernel plus TFLM's per-operator dispatch, not simrun's own
bookkeeping, and is the same with per-layer capture on or off; an operator that
runs subgraphs (CALL_ONCE, WHILE, IF) includes them.
"""
from __future__ import annotations

import re
import struct
from pathlib import Path

from ..capture import OpRecord
from ..errors import EmulatorError
from .elf import FirmwareImage

BEGIN, END, KERNEL_END = 0, 1, 2          # marker kinds
RECORD = struct.Struct("<IIQ")          # record_t in insn_count.c
COUNTER_NAME = "qemu-plugin insn_count"
# simrun::<class>::EndEvent(uint32_t): `m` (unsigned long) on arm-none-eabi, `j` elsewhere.
_KERNEL_END_SYMBOL = re.compile(r"^_ZN6simrun\d+\w+8EndEventE[jm]$")


def kernel_end_marker(image: FirmwareImage) -> int | None:
    found = [s.address for name, s in image.symbols.items()
             if s.kind == "STT_FUNC" and _KERNEL_END_SYMBOL.match(name)]
    return found[0] if len(found) == 1 else None


def per_operator(records: list[tuple[int, int]]) -> tuple[list[int], int]:
    """(instructions per END marker in order, instructions of the top-level operators together)."""
    stack: list[list] = []              # [count at BEGIN, count at KERNEL_END or None]
    counts, total = [], 0
    for mark, count in records:
        if mark == BEGIN:
            stack.append([count, None])
        elif mark == KERNEL_END:
            if stack and stack[-1][1] is None:   # an EndEvent with no hook (profiler off) has no frame
                stack[-1][1] = count
        elif mark == END:
            if not stack:
                raise EmulatorError("instruction counter: an operator ended that never began "
                                    "(firmware hooks out of order)")
            begin, kernel_end = stack.pop()
            n = (kernel_end if kernel_end is not None else count) - begin
            counts.append(n)
            if not stack:
                total += n
    if stack:
        raise EmulatorError(f"instruction counter: {len(stack)} operator(s) began but never ended")
    return counts, total


def markers(image: FirmwareImage) -> dict[int, int]:
    """Marker address -> kind, in a fixed order (BEGIN, END, then the KERNEL_END candidates)."""
    marks = {image.address("simrun_hook_op_begin"): BEGIN, image.address("simrun_hook_op_end"): END}
    for address in (kernel_end_marker(image), image.symbols.get("simrun_capture_op_end")):
        if address is not None:
            marks.setdefault(getattr(address, "address", address), KERNEL_END)
    return marks


class Counter:
    """Turns one inference's marker records into per-operator counts (`collect`)."""

    name = ""
    at_stops = False                     # True: the session stops at every marker and calls stopped()

    def _records(self) -> list[tuple[int, int]]:
        raise NotImplementedError

    def collect(self, ops: list[OpRecord]) -> dict[str, object]:
        """Assign the counts of the inference that just finished to `ops`; the meta to add.

        Called when the target stopped at simrun_hook_done: every marker of the
        inference was recorded before the guest got there."""
        counts, total = per_operator(self._records())
        if ops and len(counts) != len(ops):
            raise EmulatorError(f"instruction counter saw {len(counts)} operators end, "
                                f"the capture has {len(ops)}")
        for rec, n in zip(ops, counts):
            rec.instructions = n
        return {"instructions_total": total, "instruction_counter": self.name}


class StopCounter(Counter):
    """Emulators with their own instruction count (Renode's `cpu ExecutedInstructions`, read
    through qRcmd): the session stops at every marker and hands the count read there to
    `stopped`. Exact too, but a stop per marker costs far more than the plugin's log."""

    name = "emulator count at breakpoints"
    at_stops = True

    def __init__(self, image: FirmwareImage):
        self.kinds = markers(image)
        self._seen: list[tuple[int, int]] = []

    def stopped(self, address: int, count: int | None) -> None:
        if count is None:
            raise EmulatorError("instruction counting: this emulator reports no instruction count "
                                "(no monitor command for it); count on QEMU")
        self._seen.append((self.kinds[address], count))

    def _records(self) -> list[tuple[int, int]]:
        seen, self._seen = self._seen, []
        return seen


class InstructionCounter(Counter):
    """One QEMU session's plugin counter: plugin arguments, then counts per inference."""

    name = COUNTER_NAME

    def __init__(self, image: FirmwareImage, plugin: Path):
        self.plugin = Path(plugin)
        marks = markers(image)
        self.marks = list(marks)                 # plugin marker index -> address
        self.kinds = list(marks.values())        # plugin marker index -> kind
        self.path: Path | None = None
        self._offset = 0

    def qemu_args(self, workdir: Path) -> list[str]:
        """`-plugin` arguments for a QEMU started in `workdir` (a fresh file per launch)."""
        self.path = Path(workdir) / "instructions.bin"
        self._offset = 0
        def opt(value) -> str:            # QEMU option syntax: a literal comma is doubled
            return str(value).replace(",", ",,")
        marks = ":".join(f"{a:#x}" for a in self.marks)
        return ["-plugin", f"{opt(self.plugin)},out={opt(self.path)},marks={marks}"]

    def _records(self) -> list[tuple[int, int]]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                data = f.read()
        except OSError as err:
            raise EmulatorError(f"instruction counter: cannot read {self.path}: {err.strerror} "
                                f"(did QEMU load the plugin?)") from None
        usable = len(data) - len(data) % RECORD.size
        self._offset += usable
        try:
            return [(self.kinds[m], c) for m, _, c in RECORD.iter_unpack(data[:usable])]
        except IndexError:
            raise EmulatorError(f"instruction counter: {self.path} names a marker simrun did not set") from None

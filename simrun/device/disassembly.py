"""One instruction of a firmware ELF, disassembled, for fault reports.

A UsageFault (UNDEFINSTR) at PC leaves the user to find out what was there.
The ELF knows: `arm-none-eabi-objdump` (binutils, installed beside the
toolchain that built the firmware) decodes the one instruction at PC for the
CPU the ELF was built for (its build attributes and $t mapping symbols), and
names the function it is in (demangled). Whether the instruction is valid for
the CPU then tells an emulator that lacks it (a compiler emits only valid
instructions) from a deliberate trap (UDF, as __builtin_trap compiles to).
"""
from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

OBJDUMP = "arm-none-eabi-objdump"
# " 20480:\tea4f 0161 \tasrl\tr0, r1, #1" (objdump -d): address, encoding, mnemonic, operands.
_LINE = re.compile(r"^\s*([0-9a-f]+):\s+((?:[0-9a-f]{4,8} ?)+)\s*\t(\S+)\s*(.*)$")
_LABEL = re.compile(r"^[0-9a-f]+ <(.+)>:$")
_NOT_DECODED = (".word", ".short", ".inst", ".inst.n", ".inst.w", "undefined")
# objdump's machine per CPU: without one, binutils 2.40 decodes Armv8.1-M's `asrl r0, r1, #2` as
# the Armv7 `orrs.w r1, r0, pc, asr #2` even in an ELF whose attributes say v8.1-M. (Cortex-M3 is
# Armv7-M; objdump knows only armv7e-m, a superset: a compiler never emits the extra DSP ones.)
MACHINES = {"cortex-m0plus": "armv6s-m", "cortex-m3": "armv7e-m", "cortex-m4": "armv7e-m",
            "cortex-m7": "armv7e-m", "cortex-m33": "armv8-m.main", "cortex-m55": "armv8.1-m.main"}


@dataclass(frozen=True)
class Instruction:
    address: int
    encoding: str               # "ea4f 0161": the halfwords as objdump prints them
    mnemonic: str
    operands: str
    function: str | None        # "tflite::CalculateOpDataDepthwiseConv(...)+0x10", from the ELF's symbols

    @property
    def text(self) -> str:
        return f"{self.mnemonic} {self.operands}".strip()

    @property
    def is_trap(self) -> bool:
        """UDF: permanently undefined by the architecture, put there to fault (e.g. __builtin_trap)."""
        return self.mnemonic.split(".")[0] == "udf"

    @property
    def decoded(self) -> bool:
        """objdump decoded it as an instruction of the ELF's CPU (not data, not undefined)."""
        return self.mnemonic.lower() not in _NOT_DECODED and "undefined" not in self.text.lower()


def instruction_at(elf: str | Path, address: int, cpu: str) -> Instruction | None:
    """The instruction at `address` in `elf`, decoded for `cpu`; None where objdump is missing
    or nothing is there."""
    objdump = shutil.which(OBJDUMP)
    if objdump is None:
        return None
    address &= ~1                                        # a Thumb PC as a return address may carry bit 0
    try:
        # The stop address must cover the whole instruction (-m refuses a partial one).
        machine = ["-m", MACHINES[cpu]] if cpu in MACHINES else []
        out = subprocess.run([objdump, "-d", "-C", "-w", *machine, f"--start-address={address:#x}",
                              f"--stop-address={address + 4:#x}", str(elf)],
                             capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    function = None
    for line in out.stdout.splitlines():
        label = _LABEL.match(line.strip())
        if label:
            function = label.group(1)
            continue
        m = _LINE.match(line)
        if m and int(m.group(1), 16) == address:
            operands = m.group(4).split("\t@")[0].split(" @ ")[0].strip()    # drop objdump's comments
            return Instruction(address, m.group(2).strip(), m.group(3), operands, function)
    return None


def objdump_available() -> bool:
    return shutil.which(OBJDUMP) is not None


def objdump_hint() -> str:
    return f"{OBJDUMP} not found (install binutils-arm-none-eabi, which comes with gcc-arm-none-eabi)"

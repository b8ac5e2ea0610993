"""The targets table: every supported CPU as one row of data.

A target names the compiler flags for its CPU, the QEMU machine and Renode
platform that run its code, the board memory map its linker script follows,
and the CMSIS-NN code path that the CPU selects. Nothing here knows how to
build or run anything; build.py and the emulator launchers read these rows.
"""
from __future__ import annotations

from dataclasses import dataclass, field

# The firmware options (kernels, rounding, fp-contract) are pure constants of the backend
# grammar in the base layer (simrun.backend_id, which cannot read this table); re-exported here.
from ..backend_id import (  # noqa: F401 (re-exported)
    DEFAULT_FP_CONTRACT, DEFAULT_ROUNDING, FP_CONTRACT_MODES, KERNEL_VARIANTS, ROUNDING_MODES)


@dataclass(frozen=True)
class Board:
    """A memory map shared by every CPU run on the same emulated board."""

    name: str                 # linker script: firmware/boards/<name>.ld
    qemu_machine: str         # qemu-system-arm -machine
    renode_platform: str      # renode/<renode_platform>.repl
    flash_origin: int         # code + read-only data
    flash_size: int
    ram_origin: int           # .data/.bss/stack (not the big buffers)
    ram_size: int
    bulk_origin: int          # simrun_bulk: model, arena and capture log, laid out at run time
    bulk_size: int
    main_ram_origin: int      # the machine's main RAM (QEMU -machine memory-backend=): holds bulk
    main_ram_size: int        # its size, as QEMU requires it exactly


@dataclass(frozen=True)
class Target:
    cpu: str                  # the name users type: --cpu cortex-m55
    mcpu: str                 # -mcpu=
    fpu: str | None           # -mfpu= (None: let -mcpu decide or no FPU)
    float_abi: str            # -mfloat-abi=
    board: Board
    cmsis_nn_path: str        # which CMSIS-NN code the CPU selects: "c", "dsp" or "mve"
    cmsis_core_define: str    # CMSIS device define (ARMCM55 ...)
    extra_flags: tuple[str, ...] = field(default=())
    notes: str = ""

    @property
    def qemu_machine(self) -> str:
        return self.board.qemu_machine

    def compile_flags(self) -> list[str]:
        flags = [f"-mcpu={self.mcpu}", "-mthumb", f"-mfloat-abi={self.float_abi}"]
        if self.fpu:
            flags.append(f"-mfpu={self.fpu}")
        return flags + list(self.extra_flags)


MiB = 1024 * 1024

# Memory maps as QEMU 7.2 models these boards ("info mtree"). The bulk region
# is the board's large PSRAM/DDR: model and arena buffers go there.
# Checked (issue 2) on QEMU 7.2 with firmware that boots from flash_origin and
# writes/reads back ram and bulk: the an505 core runs secure, so its code and
# RAM use the secure aliases (0x10000000, 0x38000000); an547's ITCM (512 KiB)
# holds the TFLM runner with every builtin op (~400 KiB .text at -O2).
# The main RAM is what `-machine <board>,memory-backend=` replaces (QEMU 7.2
# "info mtree -f" with a memory-backend-file): the 16 MiB PSRAM/SSRAM the bulk
# region sits in on MPS2, and an547's 2 GiB DDR behind its MPC at 0x60000000
# (QEMU insists on exactly that size). an547's bulk is 512 MiB of it, so an
# 8 MiB model with a 64 MiB arena (or far larger) fits.
BOARDS: dict[str, Board] = {b.name: b for b in (
    Board("mps2-an385", "mps2-an385", "mps2-an385", 0x00000000, 4 * MiB, 0x20000000, 4 * MiB, 0x21000000, 16 * MiB,
          0x21000000, 16 * MiB),
    Board("mps2-an386", "mps2-an386", "mps2-an386", 0x00000000, 4 * MiB, 0x20000000, 4 * MiB, 0x21000000, 16 * MiB,
          0x21000000, 16 * MiB),
    Board("mps2-an500", "mps2-an500", "mps2-an500", 0x00000000, 4 * MiB, 0x20000000, 4 * MiB, 0x60000000, 16 * MiB,
          0x60000000, 16 * MiB),
    Board("mps2-an505", "mps2-an505", "mps2-an505", 0x10000000, 4 * MiB, 0x38000000, 2 * MiB, 0x80000000, 16 * MiB,
          0x80000000, 16 * MiB),
    Board("mps3-an547", "mps3-an547", "mps3-an547", 0x00000000, 512 * 1024, 0x21000000, 4 * MiB, 0x60000000, 512 * MiB,
          0x60000000, 2048 * MiB),
)}

TARGETS: dict[str, Target] = {t.cpu: t for t in (
    Target("cortex-m0plus", "cortex-m0plus", None, "soft", BOARDS["mps2-an385"], "c", "ARMCM0plus",
           notes="ARMv6-M code run on the M3 board, whose instruction set is a superset"),
    Target("cortex-m3", "cortex-m3", None, "soft", BOARDS["mps2-an385"], "c", "ARMCM3"),
    Target("cortex-m4", "cortex-m4", "fpv4-sp-d16", "hard", BOARDS["mps2-an386"], "dsp", "ARMCM4_FP"),
    Target("cortex-m7", "cortex-m7", "fpv5-d16", "hard", BOARDS["mps2-an500"], "dsp", "ARMCM7_DP"),
    Target("cortex-m33", "cortex-m33", "fpv5-sp-d16", "hard", BOARDS["mps2-an505"], "dsp", "ARMCM33_DSP_FP"),
    Target("cortex-m55", "cortex-m55", None, "hard", BOARDS["mps3-an547"], "mve", "ARMCM55"),
)}

# Every board row names a machine for each (qemu_machine, renode_platform).
EMULATORS = ("qemu", "renode")


class UnknownTarget(ValueError):
    pass


def get_target(cpu: str) -> Target:
    try:
        return TARGETS[cpu]
    except KeyError:
        known = ", ".join(sorted(TARGETS)) or "(none)"
        raise UnknownTarget(f"unknown CPU {cpu!r}; known: {known}") from None


def check_variant(kernels: str) -> str:
    if kernels not in KERNEL_VARIANTS:
        raise ValueError(
            f"unknown kernel variant {kernels!r}; known: {', '.join(KERNEL_VARIANTS)}")
    return kernels


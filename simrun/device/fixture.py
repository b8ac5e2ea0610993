"""The fixture firmware: build it, write its models, compute its reference.

The fixture (firmware/fixture/fixture.c) is a small C runner of our own with
the simrun ABI and no TFLM, so CI can exercise the whole controller against
real QEMU. Its models are not TFLite: they start with b"SFX1" and are loaded
with `Session.load_model(data, raw=True)`. `reference()` is the numpy mirror
of the firmware's integer arithmetic; the tests require bit equality.
"""
from __future__ import annotations

import hashlib
import os
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import resources
from ..errors import BadInput, CacheUnwritable, SimrunError, require_tool, require_writable_dir
from .targets import Board, get_target

FIXTURE_DIR = resources.path("firmware", "fixture")
ABI_INCLUDE = resources.path("firmware", "include")
# The TFLM runner's startup, fault capture and ABI state, shared so CI's
# fixture tests run the very vector table, reset, fault handler and ABI
# symbols the TFLM firmware ships.
RUNNER_SRC = resources.path("firmware", "src")
SHARED_SOURCES = (RUNNER_SRC / "startup.c", RUNNER_SRC / "fault.c", RUNNER_SRC / "abi_state.c")
# Size of simrun_bulk (abi_state.c), the region the host lays model, arena and
# capture log out in: the fixture's models are tiny, and a small region keeps
# "model too large" testable; build_fixture(bulk_bytes=None) spans the board's whole bulk RAM.
BULK_BYTES = 64 * 1024
SHARED_HEADERS = (ABI_INCLUDE / "simrun_abi.h", RUNNER_SRC / "simrun_firmware.h")
MAGIC = b"SFX1"

KIND_DENSE, KIND_RELU, KIND_FAULT, KIND_HANG, KIND_BAD_CALL = 1, 2, 3, 4, 5
OP_NAMES = {KIND_DENSE: "FULLY_CONNECTED", KIND_RELU: "RELU",
            KIND_FAULT: "FIXTURE_FAULT", KIND_HANG: "FIXTURE_HANG", KIND_BAD_CALL: "FIXTURE_BAD_CALL"}


# --- model bytes -------------------------------------------------------------

@dataclass
class Layer:
    kind: int
    out_len: int = 0                      # 0: same as input (element-wise kinds)
    scale: float = 0.05
    zero_point: int = 0
    multiplier: int = 1
    shift: int = 0
    bias: np.ndarray | None = None        # int32[out_len]      (dense only)
    weights: np.ndarray | None = None     # int8[out_len, in]   (dense only)


def dense(weights: np.ndarray, bias: np.ndarray, multiplier: int, shift: int,
          zero_point: int = 0, scale: float = 0.05) -> Layer:
    weights = np.asarray(weights, dtype=np.int8)
    return Layer(KIND_DENSE, weights.shape[0], scale, zero_point, multiplier, shift,
                 np.asarray(bias, dtype=np.int32), weights)


def relu(zero_point: int = 0) -> Layer:
    return Layer(KIND_RELU, zero_point=zero_point)


@dataclass
class FixtureModel:
    input_len: int
    layers: list[Layer] = field(default_factory=list)

    def resolved(self) -> list[tuple[Layer, int, int]]:
        """(layer, in_len, out_len) for every layer."""
        out, n = [], self.input_len
        for layer in self.layers:
            m = layer.out_len or n
            out.append((layer, n, m))
            n = m
        return out

    def to_bytes(self) -> bytes:
        parts = [MAGIC, struct.pack("<II", self.input_len, len(self.layers))]
        for layer, n, m in self.resolved():
            scale_bits = struct.unpack("<I", struct.pack("<f", layer.scale))[0]
            parts.append(struct.pack("<IIIiii", layer.kind, m, scale_bits, layer.zero_point,
                                     layer.multiplier, layer.shift))
            if layer.kind == KIND_DENSE:
                assert layer.weights.shape == (m, n), "dense weights must be [out_len, in_len]"
                w = layer.weights.astype(np.int8).tobytes()
                parts += [layer.bias.astype("<i4").tobytes(), w, b"\0" * (-len(w) % 4)]
        return b"".join(parts)


def demo_model(input_len: int = 64, seed: int = 0, extra: list[Layer] | None = None) -> FixtureModel:
    """A deterministic three-layer network: dense -> relu -> dense (+ extra layers)."""
    rng = np.random.default_rng(seed)
    hidden, out = 48, 10
    layers = [
        dense(rng.integers(-128, 128, (hidden, input_len)), rng.integers(-5000, 5000, hidden),
              multiplier=1 << 20, shift=31, zero_point=-3, scale=0.1),
        relu(zero_point=-3),
        dense(rng.integers(-128, 128, (out, hidden)), rng.integers(-5000, 5000, out),
              multiplier=3 << 19, shift=31, zero_point=5, scale=0.2),
    ]
    return FixtureModel(input_len, layers + list(extra or []))


def reference(model: FixtureModel, x: np.ndarray) -> list[np.ndarray]:
    """Every layer's output, computed exactly as fixture.c does."""
    x = np.asarray(x, dtype=np.int8).reshape(-1)
    if x.size != model.input_len:
        raise BadInput(f"fixture input has {x.size} values, model expects {model.input_len}")
    outs = []
    for layer, _, _ in model.resolved():
        if layer.kind == KIND_DENSE:
            acc = (layer.weights.astype(np.int32) @ x.astype(np.int32) + layer.bias).astype(np.int32)
            prod = acc.astype(np.int64) * layer.multiplier
            if layer.shift > 0:
                prod = (prod + (1 << (layer.shift - 1))) >> layer.shift
            y = np.clip(prod + layer.zero_point, -128, 127).astype(np.int8)
        elif layer.kind == KIND_RELU:
            y = np.maximum(x, np.int8(layer.zero_point)).astype(np.int8)
        else:
            raise BadInput(f"fixture layer kind {layer.kind} has no reference (it faults or hangs)")
        outs.append(y.reshape(1, -1))
        x = y
    return outs


# --- firmware build ----------------------------------------------------------

def _linker_script(board: Board) -> str:
    # The board's memory map from the targets table, so fixture and TFLM
    # firmware place code, RAM and the bulk buffers alike.
    return f"""/* generated by simrun.device.fixture for board {board.name} */
ENTRY(Reset_Handler)
MEMORY {{
  FLASH (rx) : ORIGIN = {board.flash_origin:#x}, LENGTH = {board.flash_size:#x}
  RAM (rwx)  : ORIGIN = {board.ram_origin:#x}, LENGTH = {board.ram_size:#x}
  BULK (rw)  : ORIGIN = {board.bulk_origin:#x}, LENGTH = {board.bulk_size:#x}
}}
SECTIONS {{
  .text : {{ KEEP(*(.vectors)) *(.text*) *(.rodata*) . = ALIGN(4); }} > FLASH
  .ARM.exidx : {{ *(.ARM.exidx*) }} > FLASH
  .data : {{ __data_start = .; *(.data*) . = ALIGN(4); __data_end = .; }} > RAM AT > FLASH
  __data_load = LOADADDR(.data);
  .bss (NOLOAD) : {{ __bss_start = .; *(.bss*) *(COMMON) . = ALIGN(4); __bss_end = .; }} > RAM
  .bulk (NOLOAD) : {{ KEEP(*(.bulk*)) }} > BULK
  __stack_top = ORIGIN(RAM) + LENGTH(RAM);
}}
"""


def _cache_root() -> Path:
    return Path(os.environ.get("SIMRUN_CACHE_DIR") or Path.home() / ".cache" / "simrun") / "fixture"


def build_fixture(cpu: str, cache_dir: str | Path | None = None, bulk_bytes: int | None = BULK_BYTES) -> Path:
    """Compile the fixture for `cpu`; cached by a hash of sources, flags and map.

    bulk_bytes sizes simrun_bulk; None: the board's whole bulk RAM.
    """
    gcc = require_tool("arm-none-eabi-gcc", "install it (Debian: apt-get install gcc-arm-none-eabi "
                                            "libnewlib-arm-none-eabi)")
    target = get_target(cpu)
    bulk = target.board.bulk_size if bulk_bytes is None else int(bulk_bytes)
    sources = sorted(FIXTURE_DIR.glob("*.c")) + list(SHARED_SOURCES)
    script = _linker_script(target.board)
    flags = target.compile_flags() + ["-O2", "-g", "-ffreestanding", "-fno-common", "-Wall", "-Wextra",
                                      "-Werror", "-nostartfiles", "-specs=nano.specs", "-specs=nosys.specs",
                                      f"-DSIMRUN_BULK_BYTES={bulk}"]
    digest = hashlib.sha256()
    for item in [gcc, script, *flags] + [p.read_bytes() for p in sources + list(SHARED_HEADERS)]:
        digest.update(item if isinstance(item, bytes) else item.encode())
    out_dir = Path(cache_dir) if cache_dir else _cache_root()
    out_dir = out_dir / f"{cpu}-{digest.hexdigest()[:16]}"
    elf = out_dir / "fixture.elf"
    if elf.is_file():
        return elf
    require_writable_dir(out_dir, CacheUnwritable, "fixture cache",
                         "set SIMRUN_CACHE_DIR to a writable directory")
    ld = out_dir / "fixture.ld"
    ld.write_text(script)
    tmp = out_dir / f"fixture.elf.{os.getpid()}.tmp"
    cmd = [gcc, *flags, f"-I{ABI_INCLUDE}", f"-I{RUNNER_SRC}", f"-T{ld}", *map(str, sources), "-o", str(tmp)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SimrunError(f"fixture build failed for {cpu}:\n{' '.join(cmd)}\n{proc.stderr.strip()}")
    os.replace(tmp, elf)  # atomic: parallel builders never see half an ELF
    return elf

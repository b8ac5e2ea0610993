"""The host's mirror of firmware/include/simrun_abi.h: constants, struct layouts, decoding.

Everything the session reads from or writes to the firmware has its layout
here, next to the version it belongs to; elf.py checks the symbol sizes.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from ..errors import EmulatorError

ABI_VERSION = 2
ABI_MAGIC = 0x4E524D53
NO_OPERATOR = 0xFFFFFFFF

STATE_READY, STATE_RUNNING, STATE_DONE, STATE_FAULT = 1, 2, 3, 4
ERR_OK, ERR_BAD_MODEL, ERR_UNSUPPORTED_OP, ERR_ARENA_TOO_SMALL, ERR_ALLOCATE, ERR_INVOKE = range(6)
CMD_INVOKE, CMD_STOP = 1, 2
CAPTURE_LOG, CAPTURE_INPUTS = 1, 2                    # simrun_capture bits
TENSOR_CONSTANT, TENSOR_VARIABLE = 1, 2               # simrun_tensor_t.flags
PHASE_BEGIN, PHASE_END = 0, 1

MAX_IO = 16
MAX_OP_OUTPUTS = 8
MAX_OP_INPUTS = 24
OP_NAME_LEN = 32

TENSOR = struct.Struct("<IIiii6ifiI")                 # simrun_tensor_t, 56 bytes
STATUS = struct.Struct("<9I32s")                      # simrun_status_t
EVENT_HEAD = struct.Struct("<IIIi32sIII")             # simrun_op_event_t up to outputs[]
OP_EVENT_BYTES = EVENT_HEAD.size + (MAX_OP_OUTPUTS + MAX_OP_INPUTS) * TENSOR.size
FAULT = struct.Struct("<12I")                         # simrun_fault_t
LAYOUT = struct.Struct("<7I")                         # simrun_layout_t
LOG_STATE = struct.Struct("<4I")                      # simrun_log_state_t
RECORD = struct.Struct("<IIIi32sI3I")                 # simrun_record_t, 64 bytes
assert TENSOR.size == 56 and RECORD.size == 64

# TfLiteType -> numpy dtype
TFLITE_DTYPES = {1: np.float32, 2: np.int32, 3: np.uint8, 4: np.int64, 6: np.bool_, 7: np.int16,
                 9: np.int8, 10: np.float16, 11: np.float64, 13: np.uint64, 16: np.uint32, 17: np.uint16}


def cstr(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode(errors="replace")


def pad4(n: int) -> int:
    return (n + 3) & ~3


@dataclass(frozen=True)
class TargetTensor:
    """A tensor as the firmware describes it (simrun_tensor_t)."""

    tensor_index: int
    address: int
    bytes: int
    type: int                       # TfLiteType
    shape: tuple[int, ...]
    scale: float
    zero_point: int
    flags: int = 0                  # TENSOR_CONSTANT | TENSOR_VARIABLE

    @property
    def dtype(self) -> np.dtype | None:
        t = TFLITE_DTYPES.get(self.type)
        return np.dtype(t) if t is not None else None

    @property
    def constant(self) -> bool:
        return bool(self.flags & TENSOR_CONSTANT)

    @property
    def variable(self) -> bool:
        return bool(self.flags & TENSOR_VARIABLE)

    @classmethod
    def unpack(cls, raw, offset: int = 0) -> "TargetTensor":
        address, nbytes, typ, index, ndims, *rest = TENSOR.unpack_from(raw, offset)
        dims, scale, zp, flags = rest[:6], rest[6], rest[7], rest[8]
        if not 0 <= ndims <= 6:
            raise EmulatorError(f"firmware described tensor {index} with {ndims} dims")
        return cls(index, address, nbytes, typ, tuple(dims[:ndims]), scale, zp, flags)


@dataclass(frozen=True)
class Status:
    magic: int
    abi_version: int
    state: int
    error: int
    bytes_needed: int
    arena_used: int
    invocations: int
    input_count: int
    output_count: int
    detail: str

    @classmethod
    def unpack(cls, raw) -> "Status":
        f = STATUS.unpack_from(raw)
        return cls(*f[:9], cstr(f[9]))


@dataclass(frozen=True)
class OpEvent:
    """simrun_op_event_t: the operator beginning or just ended."""

    phase: int
    subgraph: int
    index: int
    builtin_code: int
    op_name: str
    outputs: tuple[TargetTensor, ...]
    inputs: tuple[TargetTensor, ...]
    input_total: int

    @property
    def key(self) -> str:
        return f"{self.subgraph}:{self.index}"

    @classmethod
    def unpack(cls, raw) -> "OpEvent":
        phase, sg, index, code, name, n_out, n_in, n_total = EVENT_HEAD.unpack_from(raw)
        n_out, n_in = min(n_out, MAX_OP_OUTPUTS), min(n_in, MAX_OP_INPUTS)  # a corrupt count reads no further
        at = EVENT_HEAD.size
        outs = tuple(TargetTensor.unpack(raw, at + k * TENSOR.size) for k in range(n_out))
        at += MAX_OP_OUTPUTS * TENSOR.size
        ins = tuple(TargetTensor.unpack(raw, at + k * TENSOR.size) for k in range(n_in))
        return cls(phase, sg, index, code, cstr(name), outs, ins, n_total)

    @staticmethod
    def size_for(inputs: int) -> int:
        """Bytes to read for an event whose first `inputs` inputs matter."""
        return EVENT_HEAD.size + MAX_OP_OUTPUTS * TENSOR.size + inputs * TENSOR.size


@dataclass(frozen=True)
class Layout:
    """simrun_layout_t: where the host put model, arena and capture log in simrun_bulk."""

    model_address: int
    model_size: int
    arena_address: int
    arena_capacity: int
    arena_size: int
    log_address: int
    log_capacity: int

    def pack(self) -> bytes:
        return LAYOUT.pack(self.model_address, self.model_size, self.arena_address, self.arena_capacity,
                           self.arena_size, self.log_address, self.log_capacity)

    @property
    def end(self) -> int:
        return self.log_address + self.log_capacity

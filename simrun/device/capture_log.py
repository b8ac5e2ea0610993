"""Bulk RAM layout and the capture log (ABI v2, firmware/include/simrun_abi.h).

The firmware's bulk region (simrun_bulk, the board's large RAM) is laid out
by the host at run time: the model first, then the arena, then the capture
log. In per-layer capture the firmware appends one record per operator to the
log (header, output descriptors, output bytes) and calls simrun_hook_drain
when the next record does not fit; the host decodes the records here.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..capture import OpRecord
from ..errors import EmulatorError, ModelTooLarge
from .abi import LOG_STATE, RECORD, TENSOR, Layout, TargetTensor, cstr, pad4
from .targets import TARGETS
from .tensors import decode_tensor

if TYPE_CHECKING:
    from .firmware_state import FirmwareState
    from .memory import GdbMemory

ALIGN = 16
MIN_ARENA = 1024                 # below this no model allocates; refuse before launching
MIN_LOG = 4096
MAX_DEFAULT_LOG = 16 << 20       # a larger log saves only drains, which are cheap


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def plan_layout(bulk_address: int, bulk_size: int, model_bytes: int, *, arena_limit: int | None = None,
                log_limit: int | None = None, where: str = "") -> Layout:
    """Model at the start of simrun_bulk, capture log at its end, the arena in between.

    The default log is an eighth of what the model leaves (4 KiB .. 16 MiB);
    log_limit sets it exactly (a small one forces drains). Raises ModelTooLarge
    (before any emulator starts) naming the CPUs whose board can hold the model.
    """
    model_end = _align(model_bytes)
    rest = bulk_size - model_end
    log = _align(log_limit) if log_limit else min(MAX_DEFAULT_LOG, max(MIN_LOG, rest // 8 // ALIGN * ALIGN))
    if rest - log < MIN_ARENA:
        need = model_end + MIN_ARENA + (log if log_limit else MIN_LOG)
        fits = [cpu for cpu, t in TARGETS.items() if t.board.bulk_size >= need]
        hint = (f"CPUs whose board can hold it: {', '.join(fits)}" if fits
                else "no supported board holds it")
        raise ModelTooLarge(f"model is {model_bytes} bytes but the firmware's bulk region (simrun_bulk{where}) "
                            f"holds {bulk_size} bytes for model, arena and capture log; {hint}")
    arena_capacity = rest - log
    arena_size = min(arena_limit, arena_capacity) if arena_limit else arena_capacity
    return Layout(bulk_address, model_bytes, bulk_address + model_end, arena_capacity, arena_size,
                  bulk_address + model_end + arena_capacity, log)


def parse_records(log: bytes | memoryview, used: int) -> list[tuple[int, int, str, list[tuple[TargetTensor, memoryview]]]]:
    """(subgraph, operator, op name, [(descriptor, data)]) for every record in log[:used].

    The data are views into `log`: decode (copy) them before the log is reused.
    """
    view = memoryview(log)[:used]
    out, at = [], 0
    while at < used:
        if used - at < RECORD.size:
            raise EmulatorError(f"capture log: truncated record header at offset {at}")
        size, sg, op, _code, name, count, *_fields = RECORD.unpack_from(view, at)
        if size < RECORD.size or size % 4 or at + size > used or count > 64:
            raise EmulatorError(f"capture log: corrupt record at offset {at} (size {size}, {count} outputs)")
        descs = [TargetTensor.unpack(view, at + RECORD.size + k * TENSOR.size) for k in range(count)]
        data_at = at + RECORD.size + count * TENSOR.size
        tensors = []
        for d in descs:
            tensors.append((d, view[data_at:data_at + d.bytes]))
            data_at += pad4(d.bytes)
        if data_at != at + size:
            raise EmulatorError(f"capture log: record at offset {at} says {size} bytes, holds {data_at - at}")
        out.append((sg, op, cstr(name), tensors))
        at += size
    return out


def drain_log(firmware: "FirmwareState", memory: "GdbMemory", layout: Layout, model,
              at_drain: bool) -> tuple[list[OpRecord], int]:
    """(every record in the capture log, bytes read); at a drain (simrun_hook_drain) the log is then
    emptied and a pending record too large for it is read from the END event instead."""
    gdb, state_at = firmware.gdb, firmware.image.address("simrun_log_state")
    used, _records, pending, _drains = LOG_STATE.unpack(gdb.read_memory(state_at, LOG_STATE.size))
    if used > layout.log_capacity:
        raise EmulatorError(f"capture log reports {used} bytes used, capacity {layout.log_capacity}")
    ops, read = [], 0
    if used:
        log = memory.read(layout.log_address, used)
        for sg, op, name, tensors in parse_records(log, used):
            ops.append(OpRecord(sg, op, name, [decode_tensor(model, sg, d, bytes(v)) for d, v in tensors]))
        read += used
    if at_drain:
        gdb.write_u32(state_at, 0)                       # used = 0: the firmware goes on
        if pending > layout.log_capacity:                # never fits: take it from the END event
            ev = firmware.event()
            ops.append(OpRecord(ev.subgraph, ev.index, ev.op_name,
                                [decode_tensor(model, ev.subgraph, d, memory.read(d.address, d.bytes))
                                 for d in ev.outputs]))
            read += sum(d.bytes for d in ev.outputs)
    return ops, read

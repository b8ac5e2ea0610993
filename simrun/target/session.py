"""Drive one firmware in one emulator: inject a model and inputs, capture outputs.

    with Session(elf, cpu="cortex-m55") as s:
        s.load_model(model)                  # Model | bytes | path (raw=True: fixture model bytes)
        s.input_details                      # [TargetTensor] read from simrun_inputs
        cap = s.invoke([x], capture_layers=True)

The emulator is started by load_model (so a bad or oversized model is refused
before any process exists) and killed on close/exit, on every error, on
timeout and on KeyboardInterrupt. Talks to the firmware only through the
symbols and hooks of firmware/include/simrun_abi.h.
"""
from __future__ import annotations

import hashlib
import shutil
import struct
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import elf as abi
from .build import firmware_versions, read_metadata
from ..capture import Capture, OpRecord, Quantization, Tensor
from .elf import FirmwareImage
from .emulators import EmulatorProcess, launch
from .emulators.attach import connect_attached, parse_gdb_address
from ..errors import (AbiMismatch, ArenaTooSmall, BadInput, EmulatorError, EmulatorTimeout,
                     FirmwareError, ModelTooLarge, SimrunError, TargetFault, UnsupportedOperator)
from .gdbremote import GdbRemote
from ..model import Model
from .targets import get_target

ABI_VERSION = 1
ABI_MAGIC = 0x4E524D53
NO_OPERATOR = 0xFFFFFFFF

STATE_READY, STATE_RUNNING, STATE_DONE, STATE_FAULT = 1, 2, 3, 4
ERR_OK, ERR_BAD_MODEL, ERR_UNSUPPORTED_OP, ERR_ARENA_TOO_SMALL, ERR_ALLOCATE, ERR_INVOKE = range(6)
CMD_INVOKE, CMD_STOP = 1, 2

_TENSOR = struct.Struct("<IIiii6ifi")                 # simrun_tensor_t, 52 bytes
_STATUS = struct.Struct("<9I32s")                     # simrun_status_t
_EVENT_HEAD = struct.Struct("<IIIi32sI")              # simrun_op_event_t up to outputs[]
_FAULT = struct.Struct("<12I")                        # simrun_fault_t
assert _TENSOR.size == abi.TENSOR_BYTES and _STATUS.size == abi.STATUS_BYTES

# TfLiteType -> numpy dtype
TFLITE_DTYPES = {1: np.float32, 2: np.int32, 3: np.uint8, 4: np.int64, 6: np.bool_, 7: np.int16,
                 9: np.int8, 10: np.float16, 11: np.float64, 13: np.uint64, 16: np.uint32, 17: np.uint16}
FAULT_NAMES = {3: "HardFault", 4: "MemManage fault", 5: "BusFault", 6: "UsageFault"}
CFSR_BITS = {0: "IACCVIOL", 1: "DACCVIOL", 3: "MUNSTKERR", 4: "MSTKERR", 7: "MMARVALID",
             8: "IBUSERR", 9: "PRECISERR", 10: "IMPRECISERR", 11: "UNSTKERR", 12: "STKERR",
             15: "BFARVALID", 16: "UNDEFINSTR", 17: "INVSTATE", 18: "INVPC", 19: "NOCP",
             24: "UNALIGNED", 25: "DIVBYZERO"}


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

    @property
    def dtype(self) -> np.dtype | None:
        t = TFLITE_DTYPES.get(self.type)
        return np.dtype(t) if t is not None else None

    @classmethod
    def unpack(cls, raw: bytes) -> "TargetTensor":
        address, nbytes, typ, index, ndims, *rest = _TENSOR.unpack(raw)
        dims, scale, zp = rest[:6], rest[6], rest[7]
        if not 0 <= ndims <= 6:
            raise EmulatorError(f"firmware described tensor {index} with {ndims} dims")
        return cls(index, address, nbytes, typ, tuple(dims[:ndims]), scale, zp)


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


def _cstr(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode(errors="replace")


class Session:
    def __init__(self, elf: str | Path, cpu: str, emulator: str = "qemu", timeout: float = 120.0,
                 arena_limit: int | None = None, label: str | None = None, gdb: str | None = None):
        # gdb="HOST:PORT": attach to an emulator the user started (loopback only), instead of launching one.
        self.gdb_address = gdb
        if gdb is not None:
            parse_gdb_address(gdb)
        self._attached = False
        self.elf = Path(elf)
        self.image = FirmwareImage(self.elf).check_abi()
        self.target = get_target(cpu)
        self.cpu = cpu
        self.emulator_name = emulator
        self.timeout = float(timeout)
        if arena_limit is not None and not 0 < arena_limit <= self.image.arena_capacity:
            raise BadInput(f"arena_limit {arena_limit} outside 1..{self.image.arena_capacity} "
                           f"(the firmware's simrun_arena)")
        self.arena_limit = arena_limit
        self.metadata = read_metadata(self.elf)
        kernels = self.metadata.get("kernels")
        self.label = label or self.metadata.get("label") or f"target:{cpu}:{kernels or 'unknown'}"
        self.model: Model | None = None
        self.model_sha256 = ""
        self._emu: EmulatorProcess | None = None
        self._gdb: GdbRemote | None = None
        self._workdir: Path | None = None
        self._ready = False
        self._inputs: list[TargetTensor] = []
        self._hooks = {name: self.image.address(name) for name in
                       ("simrun_hook_ready", "simrun_hook_op_end", "simrun_hook_done", "simrun_hook_fault")}
        self._hook_at = {addr: name for name, addr in self._hooks.items()}
        if len(self._hook_at) != len(self._hooks):
            raise AbiMismatch(f"{self.elf}: simrun_hook_* functions share an address (merged by the "
                              f"linker?); each hook needs its own body")
        self._layer_bp = False
        self._stopped_at: int | None = None
        self.last_status: Status | None = None

    # --- lifetime ----------------------------------------------------------
    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Kill the emulator and remove its private directory. Safe to call twice."""
        self._ready = False
        self._stopped_at = None
        if self._gdb is not None:
            if self.gdb_address:
                self._gdb.detach()        # the user's emulator stays theirs
            else:
                self._gdb.close()
            self._gdb = None
        if self._emu is not None:
            self._emu.stop()
            self._emu = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    @property
    def emulator_pid(self) -> int | None:
        return self._emu.pid if self._emu else None

    # --- model -------------------------------------------------------------
    def load_model(self, model: Model | bytes | str | Path, raw: bool = False) -> None:
        """Write the model, let the firmware allocate, stop when it waits for input.

        raw=True loads bytes that are not a TFLite flatbuffer (the fixture
        firmware's own model format); no TFLite checks, no Model metadata.
        """
        data = self._model_bytes(model, raw)
        capacity = self.image.model_capacity
        if len(data) > capacity:
            raise ModelTooLarge(f"model is {len(data)} bytes but the firmware's simrun_model buffer "
                                f"holds {capacity}; rebuild the firmware with a larger buffer")
        self.model_sha256 = hashlib.sha256(data).hexdigest()
        self.close()
        self._guarded(self._boot, data)

    def _model_bytes(self, model, raw: bool) -> bytes:
        if isinstance(model, Model):
            self.model = model
            return model.data
        if isinstance(model, (bytes, bytearray, memoryview)):
            data = bytes(model)
        else:
            try:
                data = Path(model).read_bytes()
            except OSError as err:
                raise BadInput(f"cannot read model {model}: {err.strerror}") from None
        if not data:
            raise BadInput("model is empty")
        if raw:
            self.model = None
        else:
            self.model = Model(data, None if isinstance(model, (bytes, bytearray, memoryview)) else Path(model))
        return data

    def _boot(self, data: bytes) -> None:
        deadline = time.monotonic() + self.timeout
        self._inputs = []
        self._workdir = Path(tempfile.mkdtemp(prefix="simrun-"))
        if self.gdb_address:
            if self._attached:
                raise SimrunError(f"attach mode (--gdb {self.gdb_address}) runs one model per emulator start: "
                                  f"restart the emulator halted at reset to load another")
            self._attached = True
            self._gdb = connect_attached(self.gdb_address, deadline)
        else:
            # Starting the emulator (Renode: seconds of .NET start-up) has its own budget.
            started = time.monotonic() + max(self.timeout, 60.0)
            self._emu = launch(self.emulator_name, self.elf, self.cpu, self._workdir, deadline=started)
            self._gdb = self._emu.connect(started)
            deadline = time.monotonic() + self.timeout
        self._gdb.handshake()
        self._gdb.halt_reason()
        for name in ("simrun_hook_ready", "simrun_hook_done", "simrun_hook_fault"):
            self._gdb.set_breakpoint(self._hooks[name])
        self._run_to_main(deadline)
        self._gdb.write_memory(self.image.address("simrun_model"), data)
        self._gdb.write_u32(self.image.address("simrun_model_size"), len(data))
        self._gdb.write_u32(self.image.address("simrun_arena_limit"), self.arena_limit or 0)
        self._gdb.write_u32(self.image.address("simrun_command"), 0)
        hook = self._run_to_hook(deadline, "model allocation")
        status = self._read_status()
        if hook == "simrun_hook_ready":
            self._inputs = [self._read_tensor("simrun_inputs", i) for i in range(status.input_count)]
            self._ready = True
            return
        self._raise_for(hook, status)

    def _run_to_main(self, deadline: float) -> None:
        """Let the C runtime start (copy .data, clear .bss) before the host writes.

        The ABI's host-written variables may sit in .bss, which startup code
        zeroes; writing them at `main` keeps them. An ELF without `main` is
        written at reset, as the ABI header describes.
        """
        main = self.image.symbols.get("main")
        if main is None or main.kind != "STT_FUNC":
            return
        self._gdb.set_breakpoint(main.address)
        try:
            self._gdb.resume(None, deadline)
            reply = self._gdb.wait_stop(deadline)
        except EmulatorTimeout:
            self.close()
            raise EmulatorTimeout(f"firmware on {self.cpu} did not reach main() within "
                                  f"{self.timeout:g} s; emulator killed") from None
        pc = self._gdb.pc
        self._gdb.remove_breakpoint(main.address)
        if reply.exited or pc != main.address:
            hook = self._hook_at.get(pc)
            if hook == "simrun_hook_fault":
                raise self._fault_error()
            raise EmulatorError(f"firmware stopped at {pc:#x} before main() ({reply.raw})")
        self._stopped_at = pc

    @property
    def input_details(self) -> list[TargetTensor]:
        if not self._inputs:
            raise SimrunError("no model loaded: call load_model() first")
        return list(self._inputs)

    def read_input(self, i: int = 0) -> np.ndarray:
        """Input i as it is in target memory now (to check what the firmware sees)."""
        if self._gdb is None or not 0 <= i < len(self._inputs):
            raise SimrunError(f"no input {i} in a running session")
        return self._tensor(0, self._inputs[i]).values

    # --- invoke ------------------------------------------------------------
    def invoke(self, inputs, capture_layers: bool = True) -> Capture:
        if not self._ready:
            raise SimrunError("session not ready: load_model() must succeed before invoke()")
        arrays = self._check_inputs(inputs)
        return self._guarded(self._invoke, arrays, capture_layers)

    def _check_inputs(self, inputs) -> list[np.ndarray]:
        if isinstance(inputs, np.ndarray):
            inputs = [inputs]
        inputs = list(inputs)
        if len(inputs) != len(self._inputs):
            raise BadInput(f"model takes {len(self._inputs)} input(s), got {len(inputs)}")
        arrays = []
        for i, (x, desc) in enumerate(zip(inputs, self._inputs)):
            x = np.asarray(x)
            if desc.dtype is None:
                raise BadInput(f"input {i}: firmware tensor type {desc.type} has no numpy dtype")
            if x.dtype != desc.dtype:
                raise BadInput(f"input {i}: dtype {x.dtype}, model expects {desc.dtype} (no implicit casts)")
            if tuple(x.shape) != desc.shape:
                raise BadInput(f"input {i}: shape {tuple(x.shape)}, model expects {desc.shape}")
            raw = np.ascontiguousarray(x).astype(x.dtype.newbyteorder("<"), copy=False).tobytes()
            if len(raw) != desc.bytes:
                raise BadInput(f"input {i}: {len(raw)} bytes, firmware tensor holds {desc.bytes}")
            arrays.append(x)
        return arrays

    def _invoke(self, arrays: list[np.ndarray], capture_layers: bool) -> Capture:
        gdb = self._gdb
        deadline = time.monotonic() + self.timeout
        for x, desc in zip(arrays, self._inputs):
            gdb.write_memory(desc.address, np.ascontiguousarray(x).tobytes())
        if capture_layers != self._layer_bp:
            if capture_layers:
                gdb.set_breakpoint(self._hooks["simrun_hook_op_end"])
            else:
                gdb.remove_breakpoint(self._hooks["simrun_hook_op_end"])
            self._layer_bp = capture_layers
        gdb.write_u32(self.image.address("simrun_command"), CMD_INVOKE)
        self._ready = False
        ops: list[OpRecord] = []
        started = time.monotonic()
        readback_s, readback_bytes = 0.0, 0
        while True:
            hook = self._run_to_hook(deadline, "inference")
            if hook != "simrun_hook_op_end":
                break
            t0 = time.monotonic()
            rec, n = self._read_op_record()
            readback_s += time.monotonic() - t0
            readback_bytes += n
            ops.append(rec)
        elapsed = time.monotonic() - started
        status = self._read_status()
        if hook != "simrun_hook_done" or status.error != ERR_OK:
            self._raise_for(hook, status)
        outputs = [self._tensor(0, self._read_tensor("simrun_outputs", i)) for i in range(status.output_count)]
        self._run_to_hook(deadline, "return to ready")   # next invoke starts from hook_ready
        self._ready = True
        meta = {"cpu": self.cpu, "emulator": self.emulator_name, "elf": str(self.elf),
                "arena_used": status.arena_used, "invoke_seconds": elapsed,
                "capture_layers": capture_layers, "readback_seconds": readback_s,
                "readback_bytes": readback_bytes}
        return Capture(self.label, self.model_sha256, ops, outputs, firmware_versions(self.metadata), meta)

    def _read_op_record(self) -> tuple[OpRecord, int]:
        raw = self._gdb.read_memory(self.image.address("simrun_op_event"), abi.OP_EVENT_BYTES)
        _, sg, index, _, name, count = _EVENT_HEAD.unpack_from(raw)
        count = min(count, abi.MAX_OP_OUTPUTS)   # a corrupt count must not read past the event
        tensors, nbytes = [], 0
        for k in range(count):
            desc = TargetTensor.unpack(raw[_EVENT_HEAD.size + k * _TENSOR.size:][:_TENSOR.size])
            tensors.append(self._tensor(sg, desc))
            nbytes += desc.bytes
        return OpRecord(sg, index, _cstr(name), tensors), nbytes

    def _tensor(self, subgraph: int, desc: TargetTensor) -> Tensor:
        data = self._gdb.read_memory(desc.address, desc.bytes) if desc.bytes else b""
        dtype = desc.dtype
        if dtype is None or dtype.itemsize * int(np.prod(desc.shape, dtype=np.int64)) != len(data):
            values = np.frombuffer(data, dtype=np.uint8).copy()   # packed/unknown types stay raw bytes
        else:
            values = np.frombuffer(data, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(desc.shape)
        name, quant = "", Quantization()
        if self.model is not None and subgraph < len(self.model.subgraphs) \
                and 0 <= desc.tensor_index < len(self.model.subgraphs[subgraph].tensors):
            info = self.model.tensor(subgraph, desc.tensor_index)
            name, quant = info.name, info.quantization     # per-channel parameters live only here
        elif desc.scale:
            quant = Quantization((float(desc.scale),), (int(desc.zero_point),), 0)
        return Tensor(desc.tensor_index, name, values, quant)

    # --- running and stopping ----------------------------------------------
    def _guarded(self, fn, *args):
        """Run fn; on any failure (also Ctrl-C) the emulator is gone before the error propagates."""
        try:
            return fn(*args)
        except BaseException:
            self.close()
            raise

    def _run_to_hook(self, deadline: float, what: str) -> str:
        gdb = self._gdb
        try:
            gdb.resume(self._stopped_at, deadline)
            reply = gdb.wait_stop(deadline)
        except EmulatorTimeout:
            operator = self._running_operator_after_interrupt()
            self.close()
            where = f" in operator {operator}" if operator else ""
            raise EmulatorTimeout(f"{what} on {self.cpu} did not finish within {self.timeout:g} s{where}; "
                                  f"emulator killed", operator) from None
        if reply.exited:
            raise self._stop_error(reply, what)
        pc = self._stopped_at = gdb.pc
        logged = self._emu.fault_from_log() if self._emu else None
        if logged:                        # Renode logs an unmapped access where a board would fault
            kind, detail, regs = logged
            operator = self._operator_now()
            raise TargetFault(f"{kind} on {self.cpu}{f' in operator {operator}' if operator else ''}: {detail}",
                              regs, operator)
        hook = self._hook_at.get(pc)
        if hook is None:
            raise EmulatorError(f"target stopped at {pc:#x} (signal {reply.signal}), not at a simrun hook")
        return hook

    def _stop_error(self, reply, what: str) -> SimrunError:
        """The core stopped for good: `X` (aborted, e.g. Renode fetching unmapped code) or `W` (exited)."""
        if reply.kind != "X":
            return EmulatorError(f"emulator exited during {what} ({reply.raw})")
        operator = self._operator_now()
        note = self._emu.abort_note() if self._emu else ""
        pc = getattr(self._emu, "abort_pc", lambda: None)()
        return TargetFault(f"CPU aborted on {self.cpu}{f' in operator {operator}' if operator else ''} during "
                           f"{what} (GDB stop {reply.raw}){note}", {"pc": pc} if pc is not None else {}, operator)

    def _operator_now(self) -> str | None:
        """The operator the firmware is in (or just finished), from simrun_op_event."""
        try:
            if self._read_status().state != STATE_RUNNING:
                return None
            raw = self._gdb.read_memory(self.image.address("simrun_op_event"), _EVENT_HEAD.size)
            _, sg, index, _, name, _ = _EVENT_HEAD.unpack(raw)
            return f"{sg}:{index} {_cstr(name)}"
        except SimrunError:
            return None

    def executed_instructions(self) -> int | None:
        """The emulated core's executed-instruction count, where the emulator reports one (Renode,
        through its Monitor), else None. For per-operator cost: read it at the hooks."""
        return self._gdb.executed_instructions() if self._gdb is not None else None

    def _running_operator_after_interrupt(self) -> str | None:
        try:
            self._gdb.interrupt(timeout=2.0)
            status = self._read_status()
            if status.state != STATE_RUNNING:
                return None
            raw = self._gdb.read_memory(self.image.address("simrun_op_event"), _EVENT_HEAD.size)
            phase, sg, index, _, name, _ = _EVENT_HEAD.unpack(raw)
            # After an END event the named operator finished; the next one had not begun.
            return f"{sg}:{index} {_cstr(name)}" + (" (finished; stuck after it)" if phase == 1 else "")
        except SimrunError:
            return None

    def _read_status(self) -> Status:
        raw = self._gdb.read_memory(self.image.address("simrun_status"), _STATUS.size)
        f = _STATUS.unpack(raw)
        status = Status(*f[:9], _cstr(f[9]))
        if status.magic != ABI_MAGIC:
            raise AbiMismatch(f"{self.elf}: firmware did not report the simrun ABI magic "
                              f"(got {status.magic:#x}); not a simrun firmware or it did not boot")
        if status.abi_version != ABI_VERSION:
            raise AbiMismatch(f"{self.elf}: firmware ABI version {status.abi_version}, "
                              f"this simrun speaks version {ABI_VERSION}")
        self.last_status = status
        return status

    def _read_tensor(self, symbol: str, i: int) -> TargetTensor:
        raw = self._gdb.read_memory(self.image.address(symbol) + i * _TENSOR.size, _TENSOR.size)
        return TargetTensor.unpack(raw)

    def firmware_log(self) -> str:
        """The firmware's log ring (MicroPrintf output), oldest first."""
        head = self._gdb.read_u32(self.image.address("simrun_log_head"))
        size = self.image.size("simrun_log")
        ring = self._gdb.read_memory(self.image.address("simrun_log"), size)
        if head > size:
            ring = ring[head % size:] + ring[:head % size]
        return ring.rstrip(b"\0").decode(errors="replace")

    def _log_tail(self) -> str:
        try:
            lines = self.firmware_log().strip().splitlines()[-5:]
        except SimrunError:
            return ""
        return ("; firmware log: " + " | ".join(lines)) if lines else ""

    def _raise_for(self, hook: str, status: Status):
        if hook == "simrun_hook_fault" or status.state == STATE_FAULT:
            raise self._fault_error()
        e = status.error
        if e == ERR_UNSUPPORTED_OP:
            raise UnsupportedOperator(status.detail or "?")
        if e == ERR_ARENA_TOO_SMALL:
            raise ArenaTooSmall(status.bytes_needed, self.arena_limit or self.image.arena_capacity)
        if e == ERR_BAD_MODEL:
            hint = ""
            if self._gdb.read_u32(self.image.address("simrun_model_size")) == 0:
                hint = (" (simrun_model_size reads 0: something cleared it after main() started; "
                        "the host writes it at main(), so the firmware must not zero it later)")
            raise FirmwareError(f"firmware rejected the model (bad model){hint}{self._log_tail()}")
        if e == ERR_ALLOCATE:
            raise FirmwareError(f"tensor allocation failed{self._log_tail()}")
        if e == ERR_INVOKE:
            raise FirmwareError(f"invoke failed in operator {status.detail or '?'}{self._log_tail()}")
        raise EmulatorError(f"firmware stopped at {hook} with state {status.state}, error {e}")

    def _fault_error(self) -> TargetFault:
        raw = self._gdb.read_memory(self.image.address("simrun_fault"), _FAULT.size)
        (valid, ipsr, cfsr, hfsr, mmfar, bfar, pc, lr, sp, xpsr, sg, op) = _FAULT.unpack(raw)
        regs = dict(ipsr=ipsr, cfsr=cfsr, hfsr=hfsr, mmfar=mmfar, bfar=bfar, pc=pc, lr=lr, sp=sp, xpsr=xpsr)
        operator = None
        if op != NO_OPERATOR:
            ev = self._gdb.read_memory(self.image.address("simrun_op_event"), _EVENT_HEAD.size)
            _, ev_sg, ev_op, _, name, _ = _EVENT_HEAD.unpack(ev)
            label = _cstr(name) if (ev_sg, ev_op) == (sg, op) else "?"
            operator = f"{sg}:{op} {label}"
        bits = [n for b, n in CFSR_BITS.items() if cfsr >> b & 1]
        kind = FAULT_NAMES.get(ipsr & 0x1FF, f"exception {ipsr & 0x1FF}")
        where = f" in operator {operator}" if operator else " outside any operator"
        msg = (f"{kind} on {self.cpu}{where}: PC={pc:#010x} LR={lr:#010x} CFSR={cfsr:#010x}"
               f"{' (' + ' '.join(bits) + ')' if bits else ''} HFSR={hfsr:#010x} "
               f"MMFAR={mmfar:#010x} BFAR={bfar:#010x}")
        return TargetFault(msg, regs, operator)

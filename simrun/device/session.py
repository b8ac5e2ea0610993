"""Drive one firmware in one emulator: inject a model and inputs, capture outputs.

    with Session(elf, cpu="cortex-m55") as s:
        s.load_model(model)                  # Model | bytes | path (raw=True: fixture model bytes)
        s.input_details                      # [TargetTensor] read from simrun_inputs
        cap = s.invoke([x], capture_layers=True)
        iso = s.invoke([x], isolate_from=reference_capture)   # every operator on the reference's inputs

The emulator (an emulators.Emulator: QEMU, Renode, or one the user started;
the session asks its capabilities, never its name) is started by load_model
(so a bad or oversized model is refused before any process exists) and
killed on close/exit, on every error, on timeout and on KeyboardInterrupt. Talks to the firmware only through the
symbols and hooks of firmware/include/simrun_abi.h (ABI v2): GDB for control
(breakpoints, resume), target memory through `memory` -- the board RAM mapped
into this process where the emulator allows (QEMU), GDB packets elsewhere.
"""
from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from . import abi
from .abi import ABI_VERSION, CAPTURE_INPUTS, CAPTURE_LOG, CMD_INVOKE, ERR_OK, TFLITE_DTYPES, Status, TargetTensor
from .build import firmware_versions, read_metadata
from .capture_log import drain_log, plan_layout
from ..capture import Capture, OpRecord, Tensor
from .elf import FirmwareImage
from .emulators import Capability, Emulator, make_emulator
from .failures import fault_error, logged_fault_error, raise_for, stop_error
from .firmware_state import FirmwareState
from .tensors import check_inputs, decode_tensor, model_bytes
from ..errors import AbiMismatch, BadInput, EmulatorError, EmulatorTimeout, SimrunError
from .gdbremote import GdbRemote
from .isolation import Isolation
from .memory import GdbMemory
from ..model import Model
from .targets import get_target

__all__ = ["Session", "TargetTensor", "Status", "TFLITE_DTYPES", "ABI_VERSION"]
HOOKS = ("simrun_hook_ready", "simrun_hook_op_begin", "simrun_hook_op_end", "simrun_hook_done",
         "simrun_hook_fault", "simrun_hook_drain")
MEMORY_MODES = ("auto", "gdb")
DEFAULT_WAIT = 120.0                          # seconds per wait on QEMU (Session(timeout=None))
KERNEL_END_MARK = "simrun_mark_kernel_end"   # where a StopCounter reads the count as a kernel returns


class Session:
    """One firmware in one emulator.

    memory="auto" maps the board RAM when the emulator allows it (QEMU), else
    GDB; "gdb" forces GDB memory access (to test that path on QEMU too).
    log_limit: capture log bytes (default: planned from the bulk region); a
    small one makes the firmware drain often.
    """

    def __init__(self, elf: str | Path, cpu: str, emulator: str | Emulator = "qemu", timeout: float | None = None,
                 arena_limit: int | None = None, label: str | None = None, memory: str = "auto",
                 log_limit: int | None = None, gdb: str | None = None, count_instructions: bool = False):
        # emulator: a name ("qemu", "renode") or an Emulator; gdb="HOST:PORT": attach to an emulator
        # the user started (loopback only), instead of launching one.
        self.gdb_address = gdb
        if isinstance(emulator, Emulator):
            self.emulator, self.emulator_name = emulator, emulator.name
        else:
            self.emulator, self.emulator_name = make_emulator(emulator, gdb), emulator
        self.elf = Path(elf)
        self.image = FirmwareImage(self.elf).check_abi()
        self.target = get_target(cpu)
        self.cpu = cpu
        # Default: DEFAULT_WAIT on QEMU, times the emulator's stated slowdown elsewhere.
        self.timeout = float(timeout) if timeout is not None else DEFAULT_WAIT * self.emulator.slowdown
        if memory not in MEMORY_MODES:
            raise BadInput(f"memory {memory!r}: choose one of {', '.join(MEMORY_MODES)}")
        self.memory_mode = memory
        self.bulk = self.image.symbol("simrun_bulk")
        if arena_limit is not None and not 0 < arena_limit <= self.bulk.size:
            raise BadInput(f"arena_limit {arena_limit} outside 1..{self.bulk.size} "
                           f"(the firmware's bulk region simrun_bulk)")
        if log_limit is not None and not abi.RECORD.size <= log_limit < self.bulk.size:
            raise BadInput(f"log_limit {log_limit} outside {abi.RECORD.size}..{self.bulk.size - 1}")
        self.arena_limit = arena_limit
        self.log_limit = log_limit
        # Built (or found cached) before any emulator exists, so a missing header fails first.
        self._counter = self.emulator.instruction_counter(self.image) if count_instructions else None
        self.metadata = read_metadata(self.elf)
        kernels = self.metadata.get("kernels")
        self.label = label or self.metadata.get("label") or f"target:{cpu}:{kernels or 'unknown'}"
        self.model: Model | None = None
        self.model_sha256 = ""
        self.layout: abi.Layout | None = None
        self.memory: GdbMemory | None = None
        self.firmware: FirmwareState | None = None     # the ABI variables, while a firmware runs
        self._gdb: GdbRemote | None = None
        self._workdir: Path | None = None
        self._ready = False
        self._inputs: list[TargetTensor] = []
        self._hooks = {name: self.image.address(name) for name in HOOKS}
        self._hook_at = {addr: name for name, addr in self._hooks.items()}
        if len(self._hook_at) != len(self._hooks):
            raise AbiMismatch(f"{self.elf}: simrun_hook_* functions share an address (merged by the "
                              f"linker?); each hook needs its own body")
        # A counter read at stops: its kernel-end markers are stops too ("simrun_mark_kernel_end").
        self._stops = self._counter if self._counter is not None and self._counter.at_stops else None
        for address in (self._stops.kinds if self._stops else ()):
            self._hook_at.setdefault(address, KERNEL_END_MARK)
        self._op_bps: set[str] = set()
        self._stopped_at: int | None = None
        self.last_status: Status | None = None
        self.boot_seconds: dict[str, float] = {}

    # --- lifetime ----------------------------------------------------------
    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Kill the emulator, unmap and remove its RAM file and private directory. Safe to call twice."""
        self._ready = False
        self._stopped_at = None
        self._op_bps = set()
        if self.memory is not None:
            self.memory.close()
            self.memory = None
        self.firmware = None
        if self._gdb is not None:
            self.emulator.disconnect(self._gdb)      # attach mode: detach, the user's emulator stays theirs
            self._gdb = None
        self.emulator.stop()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    @property
    def emulator_pid(self) -> int | None:
        """The emulator's process id while one we started runs (None in attach mode)."""
        return self.emulator.pid

    @property
    def gdb(self) -> GdbRemote | None:
        """The control connection (breakpoints, registers), for tools and benchmarks."""
        return self._gdb

    @property
    def memory_mapped(self) -> bool:
        return bool(self.memory is not None and self.memory.mapped)

    # --- model -------------------------------------------------------------
    def load_model(self, model: Model | bytes | str | Path, raw: bool = False) -> None:
        """Write the model, let the firmware allocate, stop when it waits for input.

        raw=True loads bytes that are not a TFLite flatbuffer (the fixture
        firmware's own model format); no TFLite checks, no Model metadata.
        """
        self.model, data = model_bytes(model, raw)
        layout = plan_layout(self.bulk.address, self.bulk.size, len(data), arena_limit=self.arena_limit,
                             log_limit=self.log_limit, where=f" of {self.elf.name}, board {self.target.board.name}")
        self.model_sha256 = hashlib.sha256(data).hexdigest()
        self.close()
        self.layout = layout
        self._guarded(self._boot, data)

    def _boot(self, data: bytes) -> None:
        self._inputs = []
        self._workdir = Path(tempfile.mkdtemp(prefix="simrun-"))
        emu = self.emulator
        t0 = time.monotonic()
        # Starting the emulator (Renode: seconds of .NET start-up) has its own budget.
        started = t0 + max(self.timeout, emu.min_start_seconds)
        emu.start(self.elf, self.cpu, self._workdir, started, map_ram=self.memory_mode == "auto")
        t_started = time.monotonic()
        self._gdb = emu.connect(started)
        self.firmware = FirmwareState(self._gdb, self.image, self.elf)
        deadline = time.monotonic() + self.timeout
        self._gdb.handshake()
        self._gdb.halt_reason()
        lay = self.layout
        self.memory = emu.memory(self._gdb, lay.model_address, lay.end - lay.model_address)
        for name in ("simrun_hook_ready", "simrun_hook_done", "simrun_hook_fault", "simrun_hook_drain"):
            self._gdb.set_breakpoint(self._hooks[name])
        for address, name in self._hook_at.items():
            if name == KERNEL_END_MARK:
                self._gdb.set_breakpoint(address)
        self._run_to_main(deadline)
        t_main = time.monotonic()
        self.memory.write(lay.model_address, data)
        t_written = time.monotonic()
        self._gdb.write_memory(self.image.address("simrun_layout"), lay.pack())
        self._gdb.write_u32(self.image.address("simrun_command"), 0)
        self._gdb.write_u32(self.image.address("simrun_capture"), 0)
        hook = self._run_to_hook(deadline, "model allocation")
        # Where load_model's time went (bench/renode_bench.py): emulator start, GDB connection to
        # main(), the model upload, the firmware's allocation.
        self.boot_seconds = {"start": t_started - t0, "connect": t_main - t_started,
                             "upload": t_written - t_main, "allocate": time.monotonic() - t_written}
        status = self._read_status()
        if hook == "simrun_hook_ready":
            self._inputs = [self.firmware.tensor("simrun_inputs", i) for i in range(status.input_count)]
            self._ready = True
            return
        raise_for(self, hook, status)

    def _run_to_main(self, deadline: float) -> None:
        """Let the C runtime start (copy .data, clear .bss) before the host writes.

        The ABI's host-written variables sit in .bss, which startup code
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
                raise fault_error(self)
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
    def invoke(self, inputs, capture_layers: bool = True, isolate_from: Capture | None = None) -> Capture:
        """One inference. capture_layers: every operator's outputs (through the capture log).

        isolate_from: a reference Capture of the same model; every operator then
        runs on the reference's values for its non-constant, non-variable inputs
        (TEAM.md contract 1). meta gets "isolated_from" and "not_isolated".
        """
        if not self._ready:
            raise SimrunError("session not ready: load_model() must succeed before invoke()")
        arrays = check_inputs(inputs, self._inputs)
        if isolate_from is not None and not capture_layers:
            raise BadInput("isolation needs capture_layers=True: its result is every operator's own output")
        return self._guarded(self._invoke, arrays, capture_layers, isolate_from)

    def _invoke(self, arrays: list[np.ndarray], capture_layers: bool, isolate_from: Capture | None) -> Capture:
        gdb, mem = self._gdb, self.memory
        deadline = time.monotonic() + self.timeout
        for x, desc in zip(arrays, self._inputs):
            le = np.ascontiguousarray(x).astype(x.dtype.newbyteorder("<"), copy=False)
            mem.write(desc.address, le.view(np.uint8).reshape(-1))
        iso = None
        if isolate_from is not None:
            iso = Isolation(isolate_from, {d.tensor_index: x for d, x in zip(self._inputs, arrays)})
        counting = self._stops is not None
        self._stop_at_operators(begin=iso is not None or counting,
                                end=self.emulator.has(Capability.FAULT_LOG) or counting)
        flags = (CAPTURE_LOG if capture_layers else 0) | (CAPTURE_INPUTS if iso is not None else 0)
        gdb.write_u32(self.image.address("simrun_capture"), flags)
        gdb.write_u32(self.image.address("simrun_command"), CMD_INVOKE)
        self._ready = False
        ops: list[OpRecord] = []
        started = time.monotonic()
        readback = [0.0, 0]
        drains = 0
        while True:
            hook = self._run_to_hook(deadline, "inference")
            if self._stops is not None and self._stopped_at in self._stops.kinds:
                self._stops.stopped(self._stopped_at, gdb.executed_instructions())
            if hook == "simrun_hook_op_begin":
                if iso is not None:
                    iso.apply(self.firmware.event(abi.MAX_OP_INPUTS), mem)
            elif hook in ("simrun_hook_op_end", KERNEL_END_MARK):
                pass                                         # stopped to see a logged fault, or to count
            elif hook == "simrun_hook_drain":
                drains += 1
                ops += self._drain_log(readback, at_drain=True)
            else:
                break
        elapsed = time.monotonic() - started
        drained_in_run = readback[0]      # the part of `elapsed` spent reading the log back (the rest follows)
        status = self._read_status()
        if hook != "simrun_hook_done" or status.error != ERR_OK:
            raise_for(self, hook, status)
        if capture_layers:
            ops += self._drain_log(readback, at_drain=False)
        outputs = [self._tensor(0, self.firmware.tensor("simrun_outputs", i)) for i in range(status.output_count)]
        self._run_to_hook(deadline, "return to ready")   # next invoke starts from hook_ready
        self._ready = True
        meta = {"cpu": self.cpu, "emulator": self.emulator_name, "elf": str(self.elf),
                "arena_used": status.arena_used, "model_bytes": self.layout.model_size,
                **self.image.footprint(), "invoke_seconds": elapsed, "capture_layers": capture_layers,
                "readback_seconds": readback[0], "readback_in_run_seconds": drained_in_run,
                "readback_bytes": readback[1], "log_drains": drains,
                "memory": "mapped" if mem.mapped else "gdb"}
        if iso is not None:
            meta["isolated_from"] = iso.backend
            meta["not_isolated"] = dict(iso.not_isolated)
        if self._counter is not None:
            meta.update(self._counter.collect(ops))
        return Capture(self.label, self.model_sha256, ops, outputs, firmware_versions(self.metadata), meta)

    def _stop_at_operators(self, begin: bool, end: bool) -> None:
        """Breakpoints at the operator hooks: begin for isolation, end where faults show only in a log."""
        for name, want in (("simrun_hook_op_begin", begin), ("simrun_hook_op_end", end)):
            if want != (name in self._op_bps):
                (self._gdb.set_breakpoint if want else self._gdb.remove_breakpoint)(self._hooks[name])
                self._op_bps ^= {name}

    def _drain_log(self, readback: list, at_drain: bool) -> list[OpRecord]:
        """Every record in the capture log (then emptied); at a drain also an oversized pending record."""
        t0 = time.monotonic()
        ops, read = drain_log(self.firmware, self.memory, self.layout, self.model, at_drain)
        readback[0] += time.monotonic() - t0
        readback[1] += read
        return ops

    def _tensor(self, subgraph: int, desc: TargetTensor) -> Tensor:
        return decode_tensor(self.model, subgraph, desc, self.memory.read(desc.address, desc.bytes))


    # --- running and stopping ----------------------------------------------
    def _guarded(self, fn, *args):
        """Run fn; on any failure (also Ctrl-C) the emulator is gone before the error propagates."""
        try:
            return fn(*args)
        except EmulatorTimeout as err:
            # Raised outside a wait (a backend worker's time limit, e.g. while the capture
            # log drains): the target is stopped at a hook, so name the operator it was in.
            if err.operator is None and self._gdb is not None and self._stopped_at is not None:
                err.operator = self._running_operator(interrupt=False)
                if err.operator:
                    err.args = (f"{err} (in operator {err.operator})",)
            self.close()
            raise
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
            raise stop_error(self, reply, what)
        pc = self._stopped_at = gdb.pc
        logged = self.emulator.logged_fault()
        if logged is not None:            # Renode logs an unmapped access where a board would fault
            raise logged_fault_error(self, logged)
        hook = self._hook_at.get(pc)
        if hook is None:
            raise EmulatorError(f"target stopped at {pc:#x} (signal {reply.signal}), not at a simrun hook")
        return hook

    def executed_instructions(self) -> int | None:
        """The emulated core's executed-instruction count, where the emulator reports one (Renode,
        through its Monitor), else None. For per-operator cost: read it at the hooks."""
        return self._gdb.executed_instructions() if self._gdb is not None else None

    def _running_operator_after_interrupt(self) -> str | None:
        return self._running_operator(interrupt=True)

    def _running_operator(self, interrupt: bool) -> str | None:
        if interrupt:
            try:
                self._gdb.interrupt(timeout=2.0)
            except SimrunError:
                return None
        # After an END event the named operator finished; the next one had not begun.
        return self.firmware.operator(note_finished=True)

    def _read_status(self) -> Status:
        self.last_status = self.firmware.status()
        return self.last_status

    def firmware_log(self) -> str:
        """The firmware's log ring (MicroPrintf output), oldest first."""
        if self.firmware is None:
            raise SimrunError("no firmware running: call load_model() first")
        return self.firmware.log()

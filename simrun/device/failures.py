"""Why the firmware stopped where it should not have: status errors and faults as exceptions.

Each function takes a stopped Session and reads only its public state: the
firmware's ABI variables (`session.firmware`), the emulator (`session.emulator`:
what it logged or said when it aborted), `session.cpu` and `session.layout`."""
from __future__ import annotations

from .disassembly import instruction_at, objdump_available, objdump_hint
from ..errors import ArenaTooSmall, EmulatorError, FirmwareError, SimrunError, TargetFault, UnsupportedOperator
from .abi import (ERR_ALLOCATE, ERR_ARENA_TOO_SMALL, ERR_BAD_MODEL, ERR_INVOKE, ERR_UNSUPPORTED_OP, NO_OPERATOR,
                  STATE_FAULT)

FAULT_NAMES = {3: "HardFault", 4: "MemManage fault", 5: "BusFault", 6: "UsageFault"}
UNDEFINSTR_BIT = 16
CFSR_BITS = {0: "IACCVIOL", 1: "DACCVIOL", 3: "MUNSTKERR", 4: "MSTKERR", 7: "MMARVALID",
             8: "IBUSERR", 9: "PRECISERR", 10: "IMPRECISERR", 11: "UNSTKERR", 12: "STKERR",
             15: "BFARVALID", 16: "UNDEFINSTR", 17: "INVSTATE", 18: "INVPC", 19: "NOCP",
             24: "UNALIGNED", 25: "DIVBYZERO"}


def raise_for(session, hook: str, status) -> None:
    """Raise the error a stop at `hook` with `status` means (session: a stopped Session)."""
    if hook == "simrun_hook_fault" or status.state == STATE_FAULT:
        raise fault_error(session)
    e = status.error
    if e == ERR_UNSUPPORTED_OP:
        raise UnsupportedOperator(status.detail or "?")
    if e == ERR_ARENA_TOO_SMALL:
        raise ArenaTooSmall(status.bytes_needed, session.layout.arena_size)
    firmware = session.firmware
    if e == ERR_BAD_MODEL:
        hint = ""
        if firmware.layout_model_size() == 0:
            hint = (" (simrun_layout.model_size reads 0: something cleared it after main() started; "
                    "the host writes it at main(), so the firmware must not zero it later)")
        raise FirmwareError(f"firmware rejected the model (bad model){hint}{firmware.log_tail()}")
    if e == ERR_ALLOCATE:
        raise FirmwareError(f"tensor allocation failed{firmware.log_tail()}")
    if e == ERR_INVOKE:
        raise FirmwareError(f"invoke failed in operator {status.detail or '?'}{firmware.log_tail()}")
    raise EmulatorError(f"firmware stopped at {hook} with state {status.state}, error {e}")


def fault_error(session) -> TargetFault:
    (valid, ipsr, cfsr, hfsr, mmfar, bfar, pc, lr, sp, xpsr, sg, op) = session.firmware.fault_record()
    regs = dict(ipsr=ipsr, cfsr=cfsr, hfsr=hfsr, mmfar=mmfar, bfar=bfar, pc=pc, lr=lr, sp=sp, xpsr=xpsr)
    operator = None
    if op != NO_OPERATOR:
        ev = session.firmware.event()
        label = ev.op_name if (ev.subgraph, ev.index) == (sg, op) else "?"
        operator = f"{sg}:{op} {label}"
    bits = [n for b, n in CFSR_BITS.items() if cfsr >> b & 1]
    kind = FAULT_NAMES.get(ipsr & 0x1FF, f"exception {ipsr & 0x1FF}")
    where = f" in operator {operator}" if operator else " outside any operator"
    msg = (f"{kind} on {session.cpu}{where}: PC={pc:#010x} LR={lr:#010x} CFSR={cfsr:#010x}"
           f"{' (' + ' '.join(bits) + ')' if bits else ''} HFSR={hfsr:#010x} "
           f"MMFAR={mmfar:#010x} BFAR={bfar:#010x}")
    if cfsr >> UNDEFINSTR_BIT & 1:
        msg += undefined_instruction_note(session, pc)
    return TargetFault(msg, regs, operator)


def undefined_instruction_note(session, pc: int) -> str:
    """What was at PC when the core raised UNDEFINSTR, from the ELF, and whose gap it is."""
    insn = instruction_at(session.elf, pc, session.cpu)
    if insn is None:
        return "" if objdump_available() else f"; cannot show the instruction at PC: {objdump_hint()}"
    where = f"`{insn.text}` at {pc:#010x} in {insn.function or 'no known function'}"
    if insn.is_trap:
        return (f"; the instruction is {where}: a permanently undefined instruction (UDF) that the firmware "
                f"executes on purpose (a trap, e.g. __builtin_trap()), not an emulator gap")
    if not insn.decoded:
        return (f"; the bytes at PC ({insn.encoding}, in {insn.function or 'no known function'}) are no "
                f"{session.cpu} instruction: the code is corrupt or the PC went astray")
    emu = session.emulator
    gap = emu.known_gap(insn)
    return (f"; the instruction is {where}: a valid {session.cpu} instruction (the compiler emitted it for "
            f"this CPU), but {emu.title()} does not implement it{': ' + gap if gap else ''}; "
            f"{emu.missing_instruction(insn, session.cpu)}")



def stop_error(session, reply, what: str) -> SimrunError:
    """The core stopped for good: `X` (aborted, e.g. Renode fetching unmapped code) or `W` (exited)."""
    if reply.kind != "X":
        return EmulatorError(f"emulator exited during {what} ({reply.raw})")
    operator = session.firmware.operator()
    report = session.emulator.abort_report()
    return TargetFault(f"CPU aborted on {session.cpu}{f' in operator {operator}' if operator else ''} during "
                       f"{what} (GDB stop {reply.raw}){report.note}",
                       {"pc": report.pc} if report.pc is not None else {}, operator)


def logged_fault_error(session, fault) -> TargetFault:
    """A fault the emulator logged instead of raising it (an emulators.LoggedFault)."""
    operator = session.firmware.operator()
    return TargetFault(f"{fault.kind} on {session.cpu}{f' in operator {operator}' if operator else ''}: "
                       f"{fault.detail}", dict(fault.registers), operator)


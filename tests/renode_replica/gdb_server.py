"""The replica's GDB server side: Renode's dialect (GdbStub.cs and its command handlers) translated
onto QEMU's stub, and Renode's core behaviour at QEMU's fault entry (read-as-zero for unmapped data
accesses, an abort with X06 for unmapped code fetches). See replica.py for the whole picture."""
from __future__ import annotations

import re
import socket
import threading

from console import log
from qemu_client import checksum, frame

QUERY_SUPPORTED = ("PacketSize=1024;qXfer:features:read+;swbreak+;hwbreak+;t32extensions+;error-message+"
                   ";ReverseStep+;ReverseContinue+")
IBUSERR, IACCVIOL, PRECISERR, BFARVALID = 1 << 8, 1 << 0, 1 << 9, 1 << 15
WIDTH = {1: "Byte", 2: "Word", 4: "DoubleWord"}


def find_bx_lr(elf: str) -> int | None:
    """Any `bx lr` (0x4770) in the code: running it in handler mode with LR=EXC_RETURN returns from the exception."""
    from elftools.elf.elffile import ELFFile
    with open(elf, "rb") as f:
        for seg in ELFFile(f).iter_segments():
            if seg["p_type"] != "PT_LOAD" or not seg["p_flags"] & 1:
                continue
            data = seg.data()
            for m in re.finditer(rb"\x70\x47", data):
                if m.start() % 2 == 0:
                    return seg["p_vaddr"] + m.start()
    return None



class GdbConnection:
    """One GDB client, in Renode's dialect."""

    def __init__(self, machine, conn: socket.socket):
        self.m = machine
        self.up = machine.up
        self.conn = conn
        self.wlock = threading.Lock()
        self.breakpoints: dict[int, str] = {}
        self.running = False
        self.pending_stray = False
        self.aborted = False

    def send(self, payload: str) -> None:
        with self.wlock:
            self.conn.sendall(frame(payload.encode("latin-1")))

    def run(self) -> None:
        self.send("S05")                     # the CPU enters the single-step wait on attach
        buf = b""
        try:
            while True:
                chunk = self.conn.recv(65536)
                if not chunk:
                    break
                buf += chunk
                while buf:
                    if buf[:1] == b"\x03":
                        buf = buf[1:]
                        if self.running:
                            self.up.sock.sendall(b"\x03")
                        continue
                    start = buf.find(b"$")
                    if start < 0:
                        buf = b""                   # acks and noise: ignored
                        break
                    end = buf.find(b"#", start)
                    while end > 0 and buf[end - 1:end] == b"}":      # an escaped '#'
                        end = buf.find(b"#", end + 1)
                    if end < 0 or len(buf) < end + 3:
                        buf = buf[start:]
                        break
                    raw = buf[start + 1:end]
                    ok = checksum(raw) == buf[end + 1:end + 3].lower()
                    buf = buf[end + 3:]
                    with self.wlock:
                        self.conn.sendall(b"+" if ok else b"-")
                    if ok:
                        self.handle(raw)
        except OSError:
            pass
        finally:
            self.conn.close()
            # On disconnect Renode's CPUs run free.
            if not self.running and not self.aborted:
                try:
                    self.up.send(b"c")
                except OSError:
                    pass

    def handle(self, raw: bytes) -> None:
        p = raw.decode("latin-1")
        if self.running:
            return                            # Renode queues it; our client never does this
        stray, self.pending_stray = self.pending_stray, False
        for r in self.reply(p, raw):
            self.send(r)
        if stray:                             # generated during this command: sent after its reply
            self.send("S05")

    def reply(self, p: str, raw: bytes) -> list[str]:
        up = self.up
        if p.startswith("qSupported"):
            return [QUERY_SUPPORTED]
        if p == "?":
            return ["S00"]
        if p in ("k", "D"):
            return ["OK"]
        if p.startswith("m"):
            r = up.ask(p)
            return ["E14" if r.startswith("E") else r]
        if p.startswith("M"):
            return ["OK" if up.ask(p) == "OK" else "E14"]
        if p.startswith("X"):
            head, _, body = raw[1:].partition(b":")
            addr, n = (int(v, 16) for v in head.split(b","))
            data = re.sub(rb"\}(.)", lambda mm: bytes((mm.group(1)[0] ^ 0x20,)), body, flags=re.S)
            if len(data) != n:
                return ["E22"]
            return ["OK" if not data or up.write(addr, data) == "OK" else "E14"]
        if p == "g":
            return [up.ask("g")[:8 * 17]]
        if p.startswith("p"):
            n = int(p[1:], 16)
            if n >= 16:
                return ["E01"]
            return [up.regs()[n].to_bytes(4, "little").hex()]
        if p[:1] in "Zz" and p[1:2] in ("0", "1"):
            addr = int(p.split(",")[1], 16)
            if p[0] == "Z":
                self.breakpoints[addr] = "swbreak" if p[1] == "0" else "hwbreak"
                if addr not in self.m.fault_handlers:
                    up.ask(f"Z0,{addr:x},2")
            else:
                self.breakpoints.pop(addr, None)
                if addr not in self.m.fault_handlers:
                    up.ask(f"z0,{addr:x},2")
            return ["OK"]
        if p == "c":
            self.running = True
            threading.Thread(target=self.run_until_stop, daemon=True).start()
            return []
        if p == "s":
            if self.aborted:
                return ["X06"]
            self.step_over_internal()
            return ["S05", "S05"]
        if p.startswith("qRcmd,"):
            text = self.m.monitor_command(bytes.fromhex(p[6:]).decode())
            out = "O" + text.encode().hex().upper() if text else None
            return ([out] if out else []) + ["OK"]
        return [""]

    def step_over_internal(self) -> None:
        pc = self.up.regs()[15]
        if pc in self.breakpoints or pc in self.m.fault_handlers:
            self.up.ask(f"z0,{pc:x},2")
            self.up.ask("s")
            self.up.ask(f"Z0,{pc:x},2")
        else:
            self.up.ask("s")

    def run_until_stop(self) -> None:
        """A `c`: Renode does not stop again on the breakpoint it stands on."""
        try:
            if self.aborted:
                self.finish("X06")
                return
            while True:
                pc = self.up.regs()[15]
                if pc in self.breakpoints or pc in self.m.fault_handlers:
                    self.up.ask(f"z0,{pc:x},2")
                    self.up.ask("s")
                    self.up.ask(f"Z0,{pc:x},2")
                with self.up.lock:
                    self.up.send(b"c")
                    stop = self.up.recv().decode()
                if stop.startswith("T02") or stop.startswith("S02"):
                    self.finish("S02")
                    return
                if stop[:1] in "WX":
                    self.finish(stop)
                    return
                pc = self.up.regs()[15]
                if pc in self.m.fault_handlers and pc not in self.breakpoints:
                    verdict = self.fault()
                    if verdict == "resume":
                        continue
                    if verdict == "abort":
                        self.aborted = True
                        self.finish("X06")
                        return
                    # "pass": QEMU's fault stands; run the handler like any code
                    continue
                reason = self.breakpoints.get(pc, "swbreak")
                self.finish(f"T05{reason}:;")
                return
        except (OSError, EOFError):
            return

    def finish(self, reply: str) -> None:
        self.running = False
        self.send(reply)
        if reply.startswith("T05"):
            self.pending_stray = True        # the step wait's S05, sent behind the next reply

    def fault(self) -> str:
        """At a fault handler's entry: do what Renode does instead of a fault."""
        up = self.up
        cfsr = int.from_bytes(up.read(0xE000ED28, 4) or bytes(4), "little")
        bfar = int.from_bytes(up.read(0xE000ED38, 4) or bytes(4), "little")
        regs = up.regs()
        exc_return, sp = regs[14], regs[13]
        if exc_return & 0x4 or self.m.bx_lr is None:
            return "pass"
        frame_words = up.read(sp, 32)
        stacked = [int.from_bytes(frame_words[i:i + 4], "little") for i in range(0, 32, 4)]
        pc = stacked[6]
        if cfsr & (IBUSERR | IACCVIOL):
            log("ERROR", "cpu", f"CPU abort [PC=0x{pc:X}]: Trying to execute code outside RAM or ROM at 0x{pc:08X}.")
            return "abort"
        if not (cfsr & PRECISERR and cfsr & BFARVALID):
            return "pass"
        insn = decode_access(up.read(pc, 4) or bytes(4))
        if insn is None:
            return "pass"
        length, rt, load, width = insn
        where = f"[cpu: 0x{pc:X}]"
        if load:
            log("WARNING", "sysbus", f"{where} Read{WIDTH[width]} from non existing peripheral at 0x{bfar:X}.")
        else:
            value = stacked[rt] if rt < 4 else (stacked[4] if rt == 12 else regs[rt])
            log("WARNING", "sysbus", f"{where} Write{WIDTH[width]} to non existing peripheral at 0x{bfar:X}, "
                                     f"value 0x{value & ((1 << 8 * width) - 1):X}.")
        # Undo the exception: the access reads 0 (loads), the instruction is done.
        stacked[6] = pc + length
        if load:
            if rt < 4 or rt == 12:
                stacked[rt if rt < 4 else 4] = 0
            else:
                up.set_regs({rt: 0})
        up.write(sp, b"".join(v.to_bytes(4, "little") for v in stacked))
        up.write(0xE000ED28, cfsr.to_bytes(4, "little"))                 # write-one-to-clear
        hfsr = up.read(0xE000ED2C, 4)
        if hfsr:
            up.write(0xE000ED2C, hfsr)
        up.set_regs({15: self.m.bx_lr})
        up.ask("s")                                                      # bx lr: the exception return
        return "resume"


def decode_access(code: bytes) -> tuple[int, int, bool, int] | None:
    """(length, Rt, is_load, width) of a Thumb load/store, or None."""
    hw1 = int.from_bytes(code[:2], "little")
    hw2 = int.from_bytes(code[2:4], "little")
    if hw1 >> 11 in (0b11101, 0b11110, 0b11111):
        if hw1 >> 9 != 0b1111100:                    # single loads/stores: 1111 100x ...
            return None
        size = (hw1 >> 5) & 3
        load = bool(hw1 >> 4 & 1)
        return 4, hw2 >> 12, load, {0: 1, 1: 2, 2: 4}.get(size, 4)
    top5, top4 = hw1 >> 11, hw1 >> 12
    if top5 in (0b01100, 0b01101):                    # STR/LDR imm
        return 2, hw1 & 7, top5 == 0b01101, 4
    if top5 in (0b01110, 0b01111):                    # STRB/LDRB imm
        return 2, hw1 & 7, top5 == 0b01111, 1
    if top5 in (0b10000, 0b10001):                    # STRH/LDRH imm
        return 2, hw1 & 7, top5 == 0b10001, 2
    if top4 == 0b0101:                                # register offset forms
        op = (hw1 >> 9) & 7
        width = {0: 4, 1: 2, 2: 1, 3: 1, 4: 4, 5: 2, 6: 1, 7: 2}[op]
        return 2, hw1 & 7, op >= 3, width
    return None

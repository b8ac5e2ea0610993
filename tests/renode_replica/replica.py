"""A faithful stand-in for Renode, for simrun's tests (Renode is not installable here).

It runs the firmware for real: qemu-system-arm underneath, halted, its GDB stub
on a Unix socket in a private directory, and this process translates between
that stub and what Renode's own GDB server and console do (read from
renode-infrastructure 0c7d0762; file names below are in that tree):

- console: `--version` output (Program.cs), `--pid-file` with this process's
  PID, `-e` commands joined by "; " (CommandLineInterface.cs), commands read
  from stdin, quitting at end of input; script errors print Renode's message and
  leave the process running (Monitor.cs); the readiness log line
  "GDB server with all CPUs started on port :N" (Machine.cs:409); paths are
  `@` tokens where a space must be written `\\ ` (Tokenizer.cs:53);
- GDB server: listens on every interface (SocketServerProvider.cs:38); acks
  every packet and ignores the client's acks (GdbStub.cs); `qSupported` ->
  "PacketSize=1024;..." in decimal; `?` -> `S00`; breakpoint stops as
  `T05swbreak:;`; an unsolicited `S05` on attach, after every breakpoint stop
  (queued behind the reply of the command in progress, so right after the `+`
  of a `c`) and two per `s`; continuing on a breakpoint does not stop there
  again; `X` binary writes; `E14` for unreadable memory; `qRcmd` runs a Monitor
  command and answers `O<hex>` then `OK`, also when the command failed;
  `k`/`D` answer OK and do nothing;
- the core: reads of unmapped memory return 0 and writes are dropped, with
  Renode's "non existing peripheral" warning (SystemBus.cs); fetching from
  unmapped memory aborts the CPU ("CPU abort [PC=...]", TranslationCPU.cs) and
  GDB gets `X06`. QEMU raises a fault in both cases; the replica catches the
  fault handler's entry and undoes it (data) or reports the abort (fetch). On
  ARMv6-M, where the core records no fault address, QEMU's fault stands.
- `cpu ExecutedInstructions` is QEMU's exact instruction count (record mode).

Environment: RENODE_REPLICA_VERSION (default 1.16.1) is the version it reports;
RENODE_REPLICA_IGNORE_EOF=1 makes it ignore the end of its input (a hung Renode).
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from simrun.target.targets import BOARDS  # noqa: E402  (the board rows name QEMU's machine)

VERSION = os.environ.get("RENODE_REPLICA_VERSION", "1.16.1")
SUPPORTED = {"1.16.1": ["cortex-m0", "cortex-m0+", "cortex-m3", "cortex-m4", "cortex-m4f", "cortex-m7",
                        "cortex-m23", "cortex-m33", "cortex-m55"]}
QUERY_SUPPORTED = ("PacketSize=1024;qXfer:features:read+;swbreak+;hwbreak+;t32extensions+;error-message+"
                   ";ReverseStep+;ReverseContinue+")
IBUSERR, IACCVIOL, PRECISERR, BFARVALID = 1 << 8, 1 << 0, 1 << 9, 1 << 15
WIDTH = {1: "Byte", 2: "Word", 4: "DoubleWord"}


def cpu_types() -> list[str]:
    major = tuple(int(x) for x in VERSION.split(".")[:3])
    types = list(SUPPORTED["1.16.1"])
    if major < (1, 16, 1):
        types.remove("cortex-m55")      # MVE arrived in 1.16.1
    if major < (1, 16, 0):
        types.remove("cortex-m33")      # TrustZone in 1.16.0
    return types


out_lock = threading.Lock()


def say(text: str) -> None:
    with out_lock:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


def log(level: str, source: str, message: str) -> None:
    t = time.time()
    stamp = time.strftime("%H:%M:%S", time.localtime(t)) + f".{int(t * 10000) % 10000:04d}"
    say(f"{stamp} [{level}] {source}: {message}")


def checksum(data: bytes) -> bytes:
    return b"%02x" % (sum(data) & 0xFF)


def frame(data: bytes) -> bytes:
    return b"$" + data + b"#" + checksum(data)


class Upstream:
    """A small GDB client for QEMU's stub (acks on, as QEMU 7.2 has no no-ack mode)."""

    def __init__(self, path: str):
        deadline = time.monotonic() + 10
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        self.buf = b""
        self.lock = threading.Lock()

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("QEMU closed its GDB stub")
        self.buf += chunk

    def send(self, payload: bytes) -> None:
        self.sock.sendall(frame(payload))
        while True:
            while not self.buf:
                self._fill()
            c, self.buf = self.buf[:1], self.buf[1:]
            if c == b"+":
                return
            if c == b"-":
                self.sock.sendall(frame(payload))

    def recv(self) -> bytes:
        while True:
            start = self.buf.find(b"$")
            end = self.buf.find(b"#", start) if start >= 0 else -1
            if start >= 0 and end >= 0 and len(self.buf) >= end + 3:
                payload = self.buf[start + 1:end]
                self.buf = self.buf[end + 3:]
                self.sock.sendall(b"+")
                return payload
            self._fill()

    def ask(self, payload: str | bytes) -> str:
        with self.lock:
            self.send(payload.encode() if isinstance(payload, str) else payload)
            return self.recv().decode("latin-1")

    def regs(self) -> list[int]:
        raw = bytes.fromhex(self.ask("g")[:128])
        return [int.from_bytes(raw[i:i + 4], "little") for i in range(0, 64, 4)]

    def set_regs(self, values: dict[int, int]) -> None:
        text = self.ask("g")
        for n, v in values.items():
            text = text[:8 * n] + (v & 0xFFFFFFFF).to_bytes(4, "little").hex() + text[8 * n + 8:]
        assert self.ask("G" + text) == "OK"

    def read(self, addr: int, n: int) -> bytes | None:
        reply = self.ask(f"m{addr:x},{n:x}")
        return None if reply.startswith("E") and len(reply) == 3 else bytes.fromhex(reply)

    def write(self, addr: int, data: bytes) -> str:
        for off in range(0, len(data), 1024):
            part = data[off:off + 1024]
            reply = self.ask(f"M{addr + off:x},{len(part):x}:{part.hex()}")
            if reply != "OK":
                return reply
        return "OK"

    def monitor(self, command: str) -> str:
        with self.lock:
            self.send(b"qRcmd," + command.encode().hex().encode())
            out = []
            while True:
                r = self.recv().decode()
                if r.startswith("O") and r != "OK":
                    out.append(bytes.fromhex(r[1:]).decode())
                else:
                    return "".join(out)


class ScriptError(Exception):
    pass


class Machine:
    """One `mach create`d machine: its platform, ELF, QEMU and GDB server."""

    def __init__(self, name: str, workdir: Path):
        self.name = name
        self.workdir = workdir
        self.platform: str | None = None
        self.elf: str | None = None
        self.vtor = 0
        self.qemu: subprocess.Popen | None = None
        self.up: Upstream | None = None
        self.server: socket.socket | None = None
        self.port = 0
        self.bx_lr: int | None = None

    def load_platform(self, path: str) -> None:
        text = Path(path).read_text()
        m = re.search(r'cpuType:\s*"([^"]+)"', text)
        if m and m.group(1) not in cpu_types():
            raise ScriptError(f"Error E39: Exception was thrown during construction of 'cpu':\n"
                              f"Unknown CPU type")
        self.platform = Path(path).stem

    def start_gdb_server(self, port: int) -> None:
        if self.platform is None:
            raise ScriptError("Cannot start GDB server with no CPUs. Did you forget to load the platform "
                              "description first?")
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            server.bind(("0.0.0.0", port))          # IPAddress.Any, as Renode does
        except OSError as err:
            server.close()
            raise ScriptError(f"Could not start GDB server: {err.strerror}") from None
        server.listen(1)
        self.server, self.port = server, port
        self._start_qemu()
        threading.Thread(target=self._serve, daemon=True).start()
        log("INFO", self.name, f"GDB server with all CPUs started on port :{port}")

    def _start_qemu(self) -> None:
        machine = next(b.qemu_machine for b in BOARDS.values() if b.renode_platform == self.platform)
        sock = self.workdir / "qemu-gdb.sock"
        argv = ["qemu-system-arm", "-M", machine, "-kernel", self.elf, "-S", "-nographic", "-monitor", "none",
                "-serial", "none", "-nodefaults",
                "-icount", f"shift=auto,rr=record,rrfile={self.workdir / 'replay.bin'}",
                "-chardev", f"socket,id=gdb0,path={sock},server=on,wait=off", "-gdb", "chardev:gdb0"]
        self.qemu = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=open(self.workdir / "qemu.log", "wb"),
                                     stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        self.up = Upstream(str(sock))
        self.up.ask("qSupported")
        self.fault_handlers = set()
        table = self.up.read(self.vtor, 7 * 4) or bytes(28)
        for i in (3, 4, 5, 6):
            addr = int.from_bytes(table[4 * i:4 * i + 4], "little") & ~1
            if addr:
                self.fault_handlers.add(addr)
        for addr in self.fault_handlers:
            self.up.ask(f"Z0,{addr:x},2")
        self.bx_lr = _find_bx_lr(self.elf)

    def stop(self) -> None:
        if self.qemu and self.qemu.poll() is None:
            self.qemu.kill()
            self.qemu.wait()
        if self.server:
            self.server.close()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                return
            GdbConnection(self, conn).run()


def _die_with_parent() -> None:
    import ctypes
    ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)


def _find_bx_lr(elf: str) -> int | None:
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

    def __init__(self, machine: Machine, conn: socket.socket):
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
            text, _ = monitor_command(bytes.fromhex(p[6:]).decode(), self.m)
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


# --- the Monitor ---------------------------------------------------------------

class Monitor:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.variables: dict[str, str] = {}
        self.machine: Machine | None = None
        self.quit = threading.Event()

    def execute(self, text: str, echo: bool = True) -> None:
        for line in text.splitlines():
            for command in split_commands(line):
                if echo:
                    say(f"({self.machine.name if self.machine else 'monitor'}) {command}")
                try:
                    out = self.command(command)
                    if out:
                        say(out)
                except ScriptError as err:
                    say(str(err))          # Renode prints the error and carries on

    def value(self, token: str) -> str:
        if token.startswith("$"):
            name = token[1:]
            if name not in self.variables:
                raise ScriptError(f"No such variable: ${name}")
            return self.variables[name]
        if token.startswith("@"):
            path = token[1:].replace("\\ ", " ")
            if not os.path.exists(path):
                raise ScriptError(f"Could not find file '{path}'")
            return path
        return token.strip('"')

    def command(self, command: str) -> str:
        m = re.fullmatch(r"\$(\w+)\s*(\?)?=\s*(.+)", command)
        if m:
            if not (m.group(2) and m.group(1) in self.variables):
                self.variables[m.group(1)] = self.value(m.group(3).strip())
            return ""
        words = tokens(command)
        if not words:
            return ""
        head = words[0]
        try:
            if head in ("include", "i"):
                path = self.value(words[1])
                for line in Path(path).read_text().splitlines():
                    if line.startswith(":") or not line.strip():
                        continue
                    self.execute(line, echo=False)
                return ""
            if head == "mach" and words[1:2] == ["create"]:
                self.machine = Machine(self.value(words[2]) if len(words) > 2 else "machine-0", self.workdir)
                return ""
            if head in ("quit", "q"):
                self.quit.set()
                return ""
            if head == "emulation" and words[1:2] == ["SetGlobalAdvanceImmediately"]:
                return ""
            if head == "version":
                return f"Renode v{VERSION}"
            if head == "logLevel":
                return ""
            m = self.machine
            if head == "machine" and m and words[1:2] == ["LoadPlatformDescription"]:
                m.load_platform(self.value(words[2]))
                return ""
            if head == "machine" and m and words[1:2] == ["StartGdbServer"]:
                m.start_gdb_server(int(self.value(words[2])))
                return ""
            if head == "sysbus" and m and words[1:2] == ["LoadELF"]:
                m.elf = self.value(words[2])
                return ""
            if head == "cpu" and m and words[1:2] == ["VectorTableOffset"]:
                m.vtor = int(self.value(words[2]), 0)
                return ""
            if head == "cpu" and m and words[1:2] == ["ExecutedInstructions"]:
                text = m.up.monitor("info replay")
                count = int(re.search(r"instruction count = (\d+)", text).group(1))
                return f"0x{count:016X}"
        except IndexError:
            raise ScriptError(f"Bad parameters for command {command}") from None
        except ScriptError as err:
            raise ScriptError(f"There was an error executing command '{command}'\n{err}") from None
        raise ScriptError(f"No such command or device: {head}")


def split_commands(line: str) -> list[str]:
    parts, cur, quote = [], "", ""
    for ch in line:
        if quote:
            cur += ch
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
            cur += ch
        elif ch == ";":
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    parts.append(cur.strip())
    return [p for p in parts if p and not p.startswith("//")]


def tokens(command: str) -> list[str]:
    return re.findall(r'"[^"]*"|@(?:\\ |\S)+|\S+', command)


MONITOR: Monitor | None = None


def monitor_command(text: str, machine: Machine) -> tuple[str, bool]:
    """A command from qRcmd: its output, or Renode's error text (still answered with OK)."""
    try:
        return MONITOR.command(text) + "\r\n", True
    except ScriptError as err:
        return str(err), True


def main(argv: list[str]) -> int:
    global MONITOR
    args = iter(argv)
    executes, pid_file, positional = [], None, None
    for a in args:
        if a in ("-v", "--version"):
            say(f"Renode v{VERSION}\n  build: {VERSION}+replica\n  build type: Release\n  runtime: .NET 8.0.0")
            return 0
        if a in ("-e", "--execute"):
            executes.append(next(args))
        elif a == "--pid-file":
            pid_file = next(args)
        elif a in ("--disable-xwt", "--disable-gui", "--console", "-p", "--plain", "--hide-log",
                   "--hide-analyzers"):
            pass
        elif a.startswith("-"):
            say(f"Unknown option: {a}")
            return 1
        else:
            positional = a
    if pid_file:
        Path(pid_file).write_text(str(os.getpid()))
    workdir = Path(tempfile.mkdtemp(prefix="renode-replica-"))
    MONITOR = Monitor(workdir)
    signal.signal(signal.SIGTERM, lambda *_: MONITOR.quit.set())
    try:
        say(f"{time.strftime('%H:%M:%S')}.0000 [INFO] Loaded monitor commands from: replica")
        if positional:
            MONITOR.execute(f"i @{positional}")
        if executes:
            MONITOR.execute("; ".join(executes))

        def read_stdin():
            for line in sys.stdin:
                MONITOR.execute(line)
                if MONITOR.quit.is_set():
                    break
            if not os.environ.get("RENODE_REPLICA_IGNORE_EOF"):   # tests: a Renode that hangs
                MONITOR.quit.set()          # end of input: Renode quits
        threading.Thread(target=read_stdin, daemon=True).start()
        MONITOR.quit.wait()
    finally:
        if MONITOR.machine:
            MONITOR.machine.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

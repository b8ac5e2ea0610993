"""The GDB remote client against an in-process fake stub, then against real QEMU."""
from __future__ import annotations

import re
import socket
import threading
import time

import pytest

from simrun.errors import EmulatorError, EmulatorTimeout
from simrun.device.gdbremote import GdbRemote, checksum, escape_binary, frame, parse_stop_reply


class FakeStub(threading.Thread):
    """A minimal ARM GDB stub over one end of a socketpair."""

    def __init__(self, sock: socket.socket, packet_size: int = 0x100, corrupt_first: bool = False,
                 no_ack: bool = False, rle: bool = False):
        super().__init__(daemon=True)
        self.sock = sock
        self.packet_size = packet_size
        self.corrupt_first = corrupt_first
        self.no_ack_offer = no_ack
        self.rle = rle
        self.ack = True
        self.memory = bytearray(4096)
        self.base = 0x20000000
        self.breakpoints: set[int] = set()
        self.pc = 0x100
        self.requests: list[str] = []
        self.nacks = 0

    def send(self, payload: str) -> None:
        data = payload.encode()
        if self.corrupt_first:
            self.corrupt_first = False
            self.sock.sendall(b"$" + data + b"#%02x" % ((checksum(data) + 1) & 0xFF))
            return self._wait_ack_then_resend(data)
        self.sock.sendall(frame(data))
        if self.ack:
            assert self.sock.recv(1) == b"+"

    def _wait_ack_then_resend(self, data: bytes) -> None:
        assert self.sock.recv(1) == b"-"
        self.nacks += 1
        self.sock.sendall(frame(data))
        assert self.sock.recv(1) == b"+"

    def run(self) -> None:
        buf = b""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return
                buf += chunk
                while buf:
                    if buf[:1] == b"\x03":
                        buf = buf[1:]
                        self.send("S02")
                        continue
                    if buf[:1] in (b"+", b"-"):
                        buf = buf[1:]
                        continue
                    end = buf.find(b"#")
                    if end < 0 or len(buf) < end + 3:
                        break
                    self.last_raw = buf[1:end]
                    payload = buf[1:end].decode("latin-1")
                    assert int(buf[end + 1:end + 3], 16) == checksum(buf[1:end])
                    buf = buf[end + 3:]
                    if self.ack:
                        self.sock.sendall(b"+")
                    self.requests.append(payload)
                    self.handle(payload)
        except OSError:
            return

    def handle(self, p: str) -> None:
        if p.startswith("qSupported"):
            self.send(f"PacketSize={self.packet_size:x}" + (";QStartNoAckMode+" if self.no_ack_offer else ""))
        elif p == "QStartNoAckMode":
            self.send("OK")
            self.ack = False
        elif p == "?":
            self.send("T05thread:01;")
        elif p[0] == "m":
            addr, n = (int(v, 16) for v in p[1:].split(","))
            data = self.memory[addr - self.base:addr - self.base + n].hex()
            if self.rle and data and set(data) == {"0"} and len(data) > 6:
                data = "0" + "*" + chr(len(data) - 1 + 29) if len(data) - 1 <= 97 else data
            self.send(data)
        elif p[0] == "M":
            head, data = p[1:].split(":")
            addr, n = (int(v, 16) for v in head.split(","))
            assert len(data) == 2 * n and len(p) + 4 <= self.packet_size
            self.memory[addr - self.base:addr - self.base + n] = bytes.fromhex(data)
            self.send("OK")
        elif p[0] in "Zz" and p[1] in "01":
            addr = int(p.split(",")[1], 16)
            (self.breakpoints.add if p[0] == "Z" else self.breakpoints.discard)(addr)
            self.send("OK")
        elif p == "g":
            regs = [0] * 15 + [self.pc]
            self.send("".join(r.to_bytes(4, "little").hex() for r in regs))
        elif p == "s":
            self.pc += 2
            self.send("T05")
        elif p == "c":
            if self.breakpoints:
                self.pc = min(self.breakpoints)
                self.send("T05thread:01;")
            # no breakpoint: "runs forever" until \x03
        else:
            self.send("")                     # unsupported, like a real stub


@pytest.fixture
def stub_pair():
    def make(**kw):
        a, b = socket.socketpair()
        stub = FakeStub(b, **kw)
        stub.start()
        made.append((a, b))
        return GdbRemote(a, timeout=2.0), stub
    made = []
    yield make
    for a, b in made:
        a.close()
        b.close()


def test_frame_checksum_and_escape():
    assert frame(b"OK") == b"$OK#9a"
    assert escape_binary(b"a#b$c}d*") == b"a}\x03b}\x04c}]d}\x0a"


def test_stop_reply_parsing():
    r = parse_stop_reply("T05thread:p01.01;swbreak:;")
    assert (r.kind, r.signal, r.info["thread"]) == ("T", 5, "p01.01")
    assert parse_stop_reply("W00").exited and not parse_stop_reply("S02").exited
    with pytest.raises(EmulatorError):
        parse_stop_reply("Q")


def test_memory_roundtrip_is_chunked_by_packet_size(stub_pair):
    gdb, stub = stub_pair(packet_size=0x100)
    gdb.handshake()
    assert gdb.packet_size == 0x100
    data = bytes(range(256)) * 3
    gdb.write_memory(0x20000010, data)
    assert gdb.read_memory(0x20000010, len(data)) == data
    writes = [r for r in stub.requests if r.startswith("M")]
    assert len(writes) > 1 and all(len(w) + 4 <= 0x100 for w in writes)


def test_no_ack_mode_and_rle(stub_pair):
    gdb, stub = stub_pair(no_ack=True, rle=True)
    gdb.handshake()
    assert not gdb.ack_mode
    assert gdb.read_memory(0x20000100, 16) == bytes(16)
    assert not stub.ack
    gdb.write_u32(0x20000100, 0xDEADBEEF)
    assert gdb.read_u32(0x20000100) == 0xDEADBEEF


def test_bad_checksum_is_nacked_and_resent(stub_pair):
    gdb, stub = stub_pair(corrupt_first=True)
    gdb.handshake()
    assert stub.nacks == 1 and gdb.packet_size == 0x100


def test_breakpoint_continue_register_and_step_over(stub_pair):
    gdb, stub = stub_pair()
    gdb.handshake()
    gdb.set_breakpoint(0x200)
    gdb.resume()
    assert gdb.wait_stop(time.monotonic() + 2).signal == 5
    assert gdb.pc == 0x200                   # `p` unsupported here: falls back to `g`
    gdb.resume(from_pc=0x200)                # removes, steps, re-inserts, continues
    gdb.wait_stop(time.monotonic() + 2)
    assert stub.requests[-4:] == ["z0,200,2", "s", "Z0,200,2", "c"]


def test_interrupt_stops_a_running_target(stub_pair):
    gdb, stub = stub_pair()
    gdb.handshake()
    gdb.resume()                             # no breakpoints: never stops by itself
    with pytest.raises(EmulatorTimeout):
        gdb.wait_stop(time.monotonic() + 0.2)
    assert gdb.interrupt().signal == 2


def test_silent_stub_times_out():
    a, b = socket.socketpair()
    try:
        gdb = GdbRemote(a, timeout=0.2)
        t0 = time.monotonic()
        with pytest.raises(EmulatorTimeout):
            gdb.request("?")                 # nobody acks
        assert time.monotonic() - t0 < 1.0
    finally:
        a.close()
        b.close()


def test_closed_stub_is_an_error_not_a_hang():
    a, b = socket.socketpair()
    b.close()
    try:
        with pytest.raises(EmulatorError, match="closed|failed"):
            GdbRemote(a, timeout=1.0).request("?")
    finally:
        a.close()


def test_refuses_non_loopback_address():
    with pytest.raises(EmulatorError, match="non-loopback"):
        GdbRemote.connect_tcp("192.0.2.1", 1234)


def test_against_real_qemu(qemu, arm_gcc, tmp_path):
    from simrun.device.elf import FirmwareImage
    from simrun.device.emulators import QemuEmulator
    from simrun.device.fixture import build_fixture

    elf = build_fixture("cortex-m4")
    image = FirmwareImage(elf)
    emu = QemuEmulator()
    emu.start(elf, "cortex-m4", tmp_path, time.monotonic() + 10, map_ram=False)
    process = emu.process
    try:
        gdb = emu.connect(time.monotonic() + 10)
        gdb.handshake()
        assert gdb.packet_size >= 1024
        assert gdb.halt_reason().kind in "TS"
        assert gdb.pc == image.entry           # halted at reset, at the ELF entry
        blob = bytes((i * 7) & 0xFF for i in range(20000))
        gdb.write_memory(image.address("simrun_bulk"), blob)
        assert gdb.read_memory(image.address("simrun_bulk"), len(blob)) == blob
        hook = image.address("simrun_hook_done")
        gdb.set_breakpoint(hook)
        gdb.resume()
        assert gdb.wait_stop(time.monotonic() + 10).kind == "T"
        assert gdb.pc == hook                  # no model written: the firmware reports done (bad model)
    finally:
        emu.stop()
    assert not process.alive() and emu.pid is None


# --- Renode's dialect (renode-infrastructure GdbStub.cs and its command handlers) -----------

class RenodeStub(FakeStub):
    """Replies as Renode's GDB server does: acks every packet and ignores the client's acks,
    decimal PacketSize, `?` -> S00, an unsolicited S05 on attach and right after the `+` of a
    `c`, breakpoint stops as `T05swbreak:;`, X writes, E14/E9999/E.<text>, qRcmd output."""

    def __init__(self, sock):
        super().__init__(sock, packet_size=1024)
        self.x_writes: list[tuple[int, bytes]] = []

    def send(self, payload: str) -> None:
        self.sock.sendall(frame(payload.encode("latin-1")))   # never waits for the client's ack

    def run(self) -> None:
        self.send("S05")                                      # the CPU's step wait on attach
        super().run()

    def handle(self, p: str) -> None:
        if p.startswith("qSupported"):
            self.send("PacketSize=1024;qXfer:features:read+;swbreak+;hwbreak+;t32extensions+;error-message+"
                      ";ReverseStep+;ReverseContinue+")
        elif p == "?":
            self.send("S00")
        elif p.startswith("X"):
            raw = self.raw_packet
            head, _, body = raw[1:].partition(b":")
            addr, n = (int(v, 16) for v in head.split(b","))
            data = re.sub(rb"\}(.)", lambda m: bytes((m.group(1)[0] ^ 0x20,)), body, flags=re.S)
            assert len(data) == n and len(raw) + 4 <= 1024
            self.memory[addr - self.base:addr - self.base + n] = data
            self.x_writes.append((addr, data))
            self.send("OK")
        elif p.startswith("m") and int(p[1:].split(",")[0], 16) >= 0x30000000:
            addr = int(p[1:].split(",")[0], 16)
            self.send({0x30000000: "E9999", 0x40000000: "E.Access denied to sysbus"}.get(addr, "E14"))
        elif p.startswith("p"):
            self.send((self.pc if int(p[1:], 16) == 15 else 0).to_bytes(4, "little").hex())
        elif p.startswith("qRcmd,"):
            command = bytes.fromhex(p[6:]).decode()
            if command == "cpu ExecutedInstructions":
                self.send("O" + "0x000000000001E240\r\n".encode().hex().upper())
            else:
                self.send("O" + f"No such command or device: {command.split()[0]}".encode().hex().upper())
            self.send("OK")
        elif p == "c":
            self.send("S05")                                  # queued during `c`: right after its `+`
            if self.breakpoints:
                self.pc = min(b for b in self.breakpoints if b != self.pc) if len(self.breakpoints) > 1 \
                    or self.pc not in self.breakpoints else self.pc
                self.send("T05swbreak:;")
        elif p == "s":
            self.pc += 2
            self.send("S05")
            self.send("S05")
        else:
            super().handle(p)


@pytest.fixture
def renode_stub():
    a, b = socket.socketpair()
    stub = RenodeStub(b)
    original = stub.handle

    def keep_raw(p):            # X carries binary: the handler needs the raw bytes
        stub.raw_packet = stub.last_raw
        original(p)
    stub.handle = keep_raw
    stub.start()
    yield GdbRemote(a, timeout=2.0, name="Renode"), stub
    a.close()
    b.close()


def test_renode_dialect_is_detected_and_its_decimal_packet_size_kept(renode_stub):
    gdb, stub = renode_stub
    gdb.handshake()                                # the attach S05 arrives before qSupported's reply
    assert gdb.dialect.name == "renode" and gdb.packet_size == 1024   # decimal, not 0x1024
    assert gdb.halt_reason().raw == "S00"
    blob = bytes(range(256)) * 12                  # '#', '$', '}' and '*' need escaping in X
    gdb.write_memory(0x20000010, blob)
    assert gdb.read_memory(0x20000010, len(blob)) == blob
    assert stub.x_writes and not [r for r in stub.requests if r.startswith("M")]
    assert sum(len(d) for _, d in stub.x_writes) == len(blob)


def test_stray_s05_after_continue_is_not_the_stop(renode_stub):
    gdb, stub = renode_stub
    gdb.handshake()
    gdb.set_breakpoint(0x200)
    gdb.resume()
    reply = gdb.wait_stop(time.monotonic() + 2)    # S05 first, then the breakpoint's T05
    assert reply.raw == "T05swbreak:;" and gdb.pc == 0x200
    gdb.set_breakpoint(0x300)
    gdb.resume(from_pc=0x200)                      # Renode does not re-report: no step-over dance
    assert gdb.wait_stop(time.monotonic() + 2).raw == "T05swbreak:;" and gdb.pc == 0x300
    assert "s" not in stub.requests and stub.requests.count("c") == 2


def test_renode_error_forms_carry_their_text(renode_stub):
    gdb, _ = renode_stub
    gdb.handshake()
    with pytest.raises(EmulatorError, match=r"Renode cannot read 4 bytes at 0x50000000: E14 \(bad address\)"):
        gdb.read_memory(0x50000000, 4)
    with pytest.raises(EmulatorError, match=r"E9999 \(unknown error\)"):
        gdb.read_memory(0x30000000, 4)
    with pytest.raises(EmulatorError, match="Access denied to sysbus"):
        gdb.read_memory(0x40000000, 4)
    assert gdb.read_u32(0x20000000) == 0           # the connection survives every error


def test_monitor_commands_and_instruction_count(renode_stub):
    gdb, _ = renode_stub
    gdb.handshake()
    assert gdb.executed_instructions() == 0x1E240
    assert gdb.monitor("foo bar") == "No such command or device: foo"


def test_qemu_dialect_keeps_hex_writes_and_step_over(stub_pair):
    gdb, stub = stub_pair()
    gdb.handshake()
    assert gdb.dialect.name == "gdb stub"          # unknown stub: X probed, breakpoint stepped over
    gdb.write_memory(0x20000000, b"\x01\x02")
    assert [r for r in stub.requests if r.startswith("X")] == ["X20000000,0:"]
    assert stub.requests[-1].startswith("M20000000,2:")

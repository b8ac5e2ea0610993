"""The GDB remote client against an in-process fake stub, then against real QEMU."""
from __future__ import annotations

import socket
import threading
import time

import pytest

from simrun.errors import EmulatorError, EmulatorTimeout
from simrun.target.gdbremote import GdbRemote, checksum, escape_binary, frame, parse_stop_reply


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
    from simrun.target.elf import FirmwareImage
    from simrun.target.emulators import launch
    from simrun.target.fixture import build_fixture

    elf = build_fixture("cortex-m4")
    image = FirmwareImage(elf)
    emu = launch("qemu", elf, "cortex-m4", tmp_path)
    try:
        gdb = emu.connect(time.monotonic() + 10)
        gdb.handshake()
        assert gdb.packet_size >= 1024
        assert gdb.halt_reason().kind in "TS"
        assert gdb.pc == image.entry           # halted at reset, at the ELF entry
        blob = bytes((i * 7) & 0xFF for i in range(20000))
        gdb.write_memory(image.address("simrun_arena"), blob)
        assert gdb.read_memory(image.address("simrun_arena"), len(blob)) == blob
        hook = image.address("simrun_hook_done")
        gdb.set_breakpoint(hook)
        gdb.resume()
        assert gdb.wait_stop(time.monotonic() + 10).kind == "T"
        assert gdb.pc == hook                  # no model written: the firmware reports done (bad model)
    finally:
        emu.stop()
    assert not emu.alive()

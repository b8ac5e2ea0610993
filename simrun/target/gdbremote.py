"""A GDB remote serial protocol client: just what the session needs.

Packets with checksums, acks until QStartNoAckMode, PacketSize-sized memory
transfers, Z0/Z1 breakpoints, continue, stop replies, registers and the
0x03 interrupt. Every read has a deadline; a silent or vanished stub raises
EmulatorError / EmulatorTimeout instead of hanging. Connects only to a Unix
socket path or a loopback TCP address.
"""
from __future__ import annotations

import ipaddress
import re
import socket
import time
from dataclasses import dataclass, field

from ..errors import EmulatorError, EmulatorTimeout

PC_REGNUM = 15


@dataclass
class StopReply:
    kind: str                         # "T"/"S" (stopped), "W" (exited), "X" (killed), "O" (console)
    signal: int = 0
    info: dict[str, str] = field(default_factory=dict)
    raw: str = ""

    @property
    def exited(self) -> bool:
        return self.kind in ("W", "X")


def checksum(payload: bytes) -> int:
    return sum(payload) & 0xFF


def escape_binary(data: bytes) -> bytes:
    out = bytearray()
    for b in data:
        if b in (0x23, 0x24, 0x7D, 0x2A):       # '#', '$', '}', '*'
            out += bytes((0x7D, b ^ 0x20))
        else:
            out.append(b)
    return bytes(out)


def frame(payload: bytes) -> bytes:
    return b"$" + payload + b"#%02x" % checksum(payload)


def parse_stop_reply(text: str) -> StopReply:
    if not text:
        raise EmulatorError("empty stop reply from GDB stub")
    kind = text[0]
    if kind in "TS":
        info = {}
        for part in text[3:].split(";"):
            if ":" in part:
                k, v = part.split(":", 1)
                info[k] = v
        return StopReply(kind, int(text[1:3], 16), info, text)
    if kind in "WX":
        return StopReply(kind, int(text[1:3], 16) if len(text) >= 3 else 0, {}, text)
    if kind == "O":
        return StopReply("O", 0, {}, text)
    raise EmulatorError(f"unexpected stop reply {text!r}")


def _check_loopback(host: str) -> None:
    try:
        ok = ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
    except (OSError, ValueError):
        ok = False
    if not ok:
        raise EmulatorError(f"refusing to connect a GDB stub on non-loopback address {host!r}")


class GdbRemote:
    """One connection to a GDB stub. Not thread-safe; one per session."""

    def __init__(self, sock: socket.socket, timeout: float = 10.0):
        self.sock = sock
        self.timeout = timeout
        self._buf = bytearray()
        self.ack_mode = True
        self.packet_size = 4096
        self.features: dict[str, str] = {}
        self.breakpoints: dict[int, str] = {}      # address -> "0" or "1"
        self._p_supported = True

    # --- connecting --------------------------------------------------------
    @classmethod
    def connect_unix(cls, path: str, timeout: float = 10.0, deadline: float | None = None) -> "GdbRemote":
        return cls(cls._retry(lambda: cls._open(socket.AF_UNIX, path), path, deadline), timeout)

    @classmethod
    def connect_tcp(cls, host: str, port: int, timeout: float = 10.0, deadline: float | None = None) -> "GdbRemote":
        _check_loopback(host)
        return cls(cls._retry(lambda: cls._open(socket.AF_INET, (host, port)), f"{host}:{port}", deadline), timeout)

    @staticmethod
    def _open(family, address) -> socket.socket:
        s = socket.socket(family, socket.SOCK_STREAM)
        try:
            s.connect(address)
        except OSError:
            s.close()
            raise
        return s

    @staticmethod
    def _retry(opener, where, deadline: float | None) -> socket.socket:
        # The emulator creates its socket a moment after it starts.
        deadline = deadline if deadline is not None else time.monotonic() + 10.0
        while True:
            try:
                return opener()
            except OSError as err:
                if time.monotonic() >= deadline:
                    raise EmulatorError(f"cannot connect to GDB stub at {where}: {err}") from None
                time.sleep(0.02)

    def handshake(self) -> None:
        reply = self.request("qSupported:swbreak+;hwbreak+")
        for item in reply.split(";"):
            if "=" in item:
                k, v = item.split("=", 1)
                self.features[k] = v
            elif item:
                self.features[item[:-1]] = item[-1]
        if "PacketSize" in self.features:
            self.packet_size = int(self.features["PacketSize"], 16)
        if self.features.get("QStartNoAckMode") == "+":
            if self.request("QStartNoAckMode") == "OK":
                self.ack_mode = False

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    # --- packet layer ------------------------------------------------------
    def _recv_some(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise EmulatorTimeout("GDB stub did not answer in time")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise EmulatorTimeout("GDB stub did not answer in time") from None
        except OSError as err:
            raise EmulatorError(f"GDB connection failed: {err}") from None
        if not chunk:
            raise EmulatorError("GDB stub closed the connection (emulator exited?)")
        self._buf += chunk

    def send_packet(self, payload: str | bytes, deadline: float | None = None) -> None:
        data = payload.encode() if isinstance(payload, str) else payload
        deadline = deadline if deadline is not None else time.monotonic() + self.timeout
        for _ in range(5):
            try:
                self.sock.sendall(frame(data))
            except OSError as err:
                raise EmulatorError(f"GDB connection failed: {err}") from None
            if not self.ack_mode:
                return
            while True:
                while not self._buf:
                    self._recv_some(deadline)
                c = self._buf[0]
                del self._buf[0]
                if c == ord("+"):
                    return
                if c == ord("-"):
                    break                        # resend
                # Anything else before the ack is noise; skip it.
        raise EmulatorError("GDB stub rejected a packet 5 times")

    def read_packet(self, deadline: float | None = None) -> str:
        """The next packet's payload (run-length decoded), acknowledged if needed."""
        deadline = deadline if deadline is not None else time.monotonic() + self.timeout
        while True:
            start = self._buf.find(b"$")
            if start >= 0:
                end = self._buf.find(b"#", start)
                if end >= 0 and len(self._buf) >= end + 3:
                    payload = bytes(self._buf[start + 1:end])
                    sent = self._buf[end + 1:end + 3]
                    del self._buf[:end + 3]
                    ok = int(sent, 16) == checksum(payload) if re.fullmatch(rb"[0-9a-fA-F]{2}", sent) else False
                    if self.ack_mode:
                        self.sock.sendall(b"+" if ok else b"-")
                        if not ok:
                            continue
                    elif not ok:
                        raise EmulatorError("GDB packet with bad checksum")
                    return self._decode_rle(payload).decode("latin-1")
            else:
                self._buf.clear()                # acks / noise outside a packet
            self._recv_some(deadline)

    @staticmethod
    def _decode_rle(payload: bytes) -> bytes:
        if b"*" not in payload:
            return payload
        out = bytearray()
        i = 0
        while i < len(payload):
            if payload[i] == 0x2A and out:
                out += out[-1:] * (payload[i + 1] - 29)
                i += 2
            else:
                out.append(payload[i])
                i += 1
        return bytes(out)

    def request(self, payload: str | bytes, deadline: float | None = None) -> str:
        self.send_packet(payload, deadline)
        return self.read_packet(deadline)

    def _ok(self, payload: str | bytes, what: str) -> None:
        reply = self.request(payload)
        if reply != "OK":
            raise EmulatorError(f"GDB stub refused {what}: {reply or 'unsupported'}")

    # --- memory ------------------------------------------------------------
    @property
    def _chunk(self) -> int:
        # hex doubles the bytes; leave room for the framing and command
        return max(16, (self.packet_size - 32) // 2)

    def read_memory(self, address: int, length: int) -> bytes:
        out = bytearray()
        while len(out) < length:
            n = min(self._chunk, length - len(out))
            reply = self.request(f"m{address + len(out):x},{n:x}")
            if not reply or reply.startswith("E") and len(reply) == 3:
                raise EmulatorError(f"cannot read {n} bytes at {address + len(out):#x}: {reply or 'no reply'}")
            try:
                chunk = bytes.fromhex(reply)
            except ValueError:
                raise EmulatorError(f"malformed memory reply at {address + len(out):#x}") from None
            if not chunk:
                raise EmulatorError(f"empty memory reply at {address + len(out):#x}")
            out += chunk
        return bytes(out)

    def write_memory(self, address: int, data: bytes) -> None:
        data = bytes(data)
        for off in range(0, len(data), self._chunk):
            part = data[off:off + self._chunk]
            self._ok(f"M{address + off:x},{len(part):x}:{part.hex()}", f"write at {address + off:#x}")

    def read_u32(self, address: int) -> int:
        return int.from_bytes(self.read_memory(address, 4), "little")

    def write_u32(self, address: int, value: int) -> None:
        self.write_memory(address, (value & 0xFFFFFFFF).to_bytes(4, "little"))

    # --- registers ---------------------------------------------------------
    def read_register(self, regnum: int) -> int:
        # Some stubs (QEMU's ARM one) answer `p` with "unsupported"; then `g` it is.
        if self._p_supported:
            reply = self.request(f"p{regnum:x}")
            if reply and not reply.startswith("E"):
                return int.from_bytes(bytes.fromhex(reply), "little")
            if reply:
                raise EmulatorError(f"cannot read register {regnum}: {reply}")
            self._p_supported = False
        regs = self.read_registers()
        if regnum >= len(regs):
            raise EmulatorError(f"register {regnum} not in the stub's `g` reply")
        return regs[regnum]

    def read_registers(self) -> list[int]:
        """r0..r15 from the `g` packet (32-bit little-endian each)."""
        raw = bytes.fromhex(self.request("g"))
        return [int.from_bytes(raw[i:i + 4], "little") for i in range(0, min(len(raw), 64), 4)]

    @property
    def pc(self) -> int:
        return self.read_register(PC_REGNUM)

    # --- execution ---------------------------------------------------------
    def set_breakpoint(self, address: int, hardware: bool = False) -> None:
        kind = "1" if hardware else "0"
        self._ok(f"Z{kind},{address:x},2", f"breakpoint at {address:#x}")
        self.breakpoints[address] = kind

    def remove_breakpoint(self, address: int) -> None:
        kind = self.breakpoints.pop(address, "0")
        self._ok(f"z{kind},{address:x},2", f"breakpoint removal at {address:#x}")

    def halt_reason(self) -> StopReply:
        return parse_stop_reply(self.request("?"))

    def resume(self, from_pc: int | None = None, deadline: float | None = None) -> None:
        """Continue without waiting; pair with wait_stop().

        Stubs such as QEMU's report a breakpoint again when continued on it,
        so a breakpoint at `from_pc` is stepped over first (remove, step, re-insert).
        """
        if from_pc is not None and from_pc in self.breakpoints:
            kind = self.breakpoints[from_pc]
            self.remove_breakpoint(from_pc)
            reply = self.step(deadline)
            self.set_breakpoint(from_pc, hardware=kind == "1")
            if reply.exited:
                raise EmulatorError(f"target exited while stepping over {from_pc:#x}")
        self.send_packet("c")

    def wait_stop(self, deadline: float) -> StopReply:
        while True:
            reply = parse_stop_reply(self.read_packet(deadline))
            if reply.kind != "O":
                return reply

    def interrupt(self, timeout: float = 2.0) -> StopReply:
        try:
            self.sock.sendall(b"\x03")
        except OSError as err:
            raise EmulatorError(f"GDB connection failed: {err}") from None
        return self.wait_stop(time.monotonic() + timeout)

    def step(self, deadline: float | None = None) -> StopReply:
        self.send_packet("s")
        return self.wait_stop(deadline if deadline is not None else time.monotonic() + self.timeout)

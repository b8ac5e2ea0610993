"""A GDB remote serial protocol client: just what the session needs.

Packets with checksums, acks until QStartNoAckMode, PacketSize-sized memory
transfers (binary X where the stub has it), Z0/Z1 breakpoints, continue, stop
replies, registers, monitor commands (qRcmd) and the 0x03 interrupt. Every
read has a deadline; a silent or vanished stub raises EmulatorError /
EmulatorTimeout instead of hanging. Connects only to a Unix socket path or a
loopback TCP address.

How stubs differ (QEMU, Renode) is data in gdbprotocol.StubDialect; this
client follows the dialect, detected from qSupported unless given.
"""
from __future__ import annotations

import ipaddress
import re
import socket
import time

from ..errors import EmulatorError, EmulatorTimeout
# checksum, frame and the like are re-exported: the protocol's pieces, reachable from the client.
from .gdbprotocol import (_ERROR, _STRAY_STOP, PC_REGNUM, StopReply, StubDialect, checksum,  # noqa: F401
                          describe_error, detect_dialect, escape_binary, frame, is_error, parse_stop_reply)

def _check_loopback(host: str) -> None:
    try:
        ok = ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
    except (OSError, ValueError):
        ok = False
    if not ok:
        raise EmulatorError(f"refusing to connect a GDB stub on non-loopback address {host!r}")


class GdbRemote:
    """One connection to a GDB stub. Not thread-safe; one per session."""

    def __init__(self, sock: socket.socket, timeout: float = 10.0, dialect: StubDialect | None = None,
                 name: str = "GDB stub"):
        self.sock = sock
        self.timeout = timeout
        self.dialect = dialect            # None: detected by handshake()
        self.name = name                  # how errors name the other end ("Renode", "QEMU")
        self._buf = bytearray()
        self.ack_mode = True
        self.packet_size = 4096
        self.features: dict[str, str] = {}
        self.breakpoints: dict[int, str] = {}      # address -> "0" or "1"
        self._p_supported = True
        self._binary_write: bool | None = None

    # --- connecting --------------------------------------------------------
    @classmethod
    def connect_unix(cls, path: str, timeout: float = 10.0, deadline: float | None = None,
                     **kw) -> "GdbRemote":
        return cls(cls._retry(lambda: cls._open(socket.AF_UNIX, path), path, deadline), timeout, **kw)

    @classmethod
    def connect_tcp(cls, host: str, port: int, timeout: float = 10.0, deadline: float | None = None,
                    **kw) -> "GdbRemote":
        _check_loopback(host)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        return cls(cls._retry(lambda: cls._open(family, (host, port)), f"{host}:{port}", deadline), timeout, **kw)

    @staticmethod
    def _open(family, address) -> socket.socket:
        s = socket.socket(family, socket.SOCK_STREAM)
        try:
            s.connect(address)
            if family != socket.AF_UNIX:
                # Small request/reply packets: Nagle plus delayed ACKs would stall each by ~40 ms.
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
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
        if self.dialect is None:
            self.dialect = detect_dialect(self.features)
        if "PacketSize" in self.features:
            size = self.features["PacketSize"]
            try:
                self.packet_size = int(size, 10 if self.dialect.packet_size_decimal else 16)
            except ValueError:
                raise EmulatorError(f"{self.name} announced PacketSize={size!r}, not a number") from None
        self._binary_write = self.dialect.binary_write
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
        if self.sock.family != socket.AF_UNIX and hasattr(socket, "TCP_QUICKACK"):
            # ACK at once: a stub with Nagle on would hold its next reply until our delayed ACK.
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
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
        """Send a command that is not a stop request and return its reply.

        A stub with stray stops may have queued an `S05` ahead of the reply; no
        reply to a non-stop command looks like one, so it is dropped.
        """
        self.send_packet(payload, deadline)
        while True:
            reply = self.read_packet(deadline)
            if not (self.dialect and self.dialect.stray_stops and _STRAY_STOP.fullmatch(reply)):
                return reply

    def _ok(self, payload: str | bytes, what: str) -> None:
        reply = self.request(payload)
        if reply != "OK":
            raise EmulatorError(f"{self.name} refused {what}: "
                                f"{describe_error(reply) if reply else 'unsupported command'}")

    def monitor(self, command: str, deadline: float | None = None) -> str:
        """Run a monitor command (qRcmd) and return its console output.

        The output comes as `O<hex>` packets, then `OK` (or an error). Renode
        also answers a failed Monitor command with its message and `OK`; the
        caller judges the text.
        """
        deadline = deadline if deadline is not None else time.monotonic() + self.timeout
        self.send_packet("qRcmd," + command.encode().hex(), deadline)
        out = []
        while True:
            reply = self.read_packet(deadline)
            if reply == "OK":
                return "".join(out)
            if reply.startswith("O"):
                try:
                    out.append(bytes.fromhex(reply[1:]).decode(errors="replace"))
                except ValueError:
                    raise EmulatorError(f"{self.name}: malformed monitor output {reply[:40]!r}") from None
            elif self.dialect and self.dialect.stray_stops and _STRAY_STOP.fullmatch(reply):
                continue
            elif not reply:
                raise EmulatorError(f"{self.name} has no monitor commands (qRcmd unsupported)")
            else:
                text = "".join(out).strip()
                raise EmulatorError(f"{self.name} monitor command {command!r} failed: {describe_error(reply)}"
                                    + (f": {text}" if text else ""))

    def executed_instructions(self) -> int | None:
        """The core's executed-instruction count, where the stub's monitor has one (Renode), else None."""
        command = self.dialect.instruction_counter if self.dialect else None
        if command is None:
            return None
        text = self.monitor(command).strip()
        m = re.fullmatch(r"(0x[0-9a-fA-F]+|\d+)(?: \(\d+\))?", text)
        if not m:
            raise EmulatorError(f"{self.name}: `{command}` printed {text[:200]!r}, not a count")
        return int(m.group(1), 0)

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
            if not reply or is_error(reply):
                raise EmulatorError(f"{self.name} cannot read {n} bytes at {address + len(out):#x}: "
                                    f"{describe_error(reply) if reply else 'no reply'}")
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
        if data and self._binary_write is None:
            # GDB's own probe: an empty X write. "" means no X (QEMU 7.2).
            self._binary_write = self.request(f"X{address:x},0:") == "OK"
        if self._binary_write:
            return self._write_binary(address, data)
        for off in range(0, len(data), self._chunk):
            part = data[off:off + self._chunk]
            self._ok(f"M{address + off:x},{len(part):x}:{part.hex()}", f"a write at {address + off:#x}")

    def _write_binary(self, address: int, data: bytes) -> None:
        # Escaping grows a chunk by up to 2x; the packet holds what fits after it.
        room = self.packet_size - 32
        off = 0
        while off < len(data):
            n = min(len(data) - off, room)
            while True:
                body = escape_binary(data[off:off + n])
                if len(body) <= room or n <= 16:
                    break
                n = max(16, n * room // len(body) - 8)
            self._ok(b"X%x,%x:" % (address + off, n) + body, f"a write at {address + off:#x}")
            off += n

    def read_u32(self, address: int) -> int:
        return int.from_bytes(self.read_memory(address, 4), "little")

    def write_u32(self, address: int, value: int) -> None:
        self.write_memory(address, (value & 0xFFFFFFFF).to_bytes(4, "little"))

    # --- registers ---------------------------------------------------------
    def read_register(self, regnum: int) -> int:
        # Some stubs (QEMU's ARM one) answer `p` with "unsupported"; then `g` it is.
        if self._p_supported:
            reply = self.request(f"p{regnum:x}")
            if reply and not is_error(reply):
                return int.from_bytes(bytes.fromhex(reply), "little")
            if reply:
                raise EmulatorError(f"{self.name} cannot read register {regnum}: {describe_error(reply)}")
            self._p_supported = False
        regs = self.read_registers()
        if regnum >= len(regs):
            raise EmulatorError(f"register {regnum} not in the stub's `g` reply")
        return regs[regnum]

    def read_registers(self) -> list[int]:
        """r0..r15 from the `g` packet (32-bit little-endian each)."""
        reply = self.request("g")
        if is_error(reply):
            raise EmulatorError(f"{self.name} cannot read registers: {describe_error(reply)}")
        raw = bytes.fromhex(reply)
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
        self.send_packet("?")
        text = self.read_packet()
        if self.dialect is not None and self.dialect.stray_stops and _STRAY_STOP.fullmatch(text):
            # Renode answers `?` with S00; an S05 first is the attach report queued ahead of it.
            try:
                text = self.read_packet(time.monotonic() + 0.5)
            except EmulatorTimeout:
                pass
        return parse_stop_reply(text)

    def resume(self, from_pc: int | None = None, deadline: float | None = None) -> None:
        """Continue without waiting; pair with wait_stop().

        Stubs such as QEMU's report a breakpoint again when continued on it,
        so a breakpoint at `from_pc` is stepped over first (remove, step,
        re-insert); stubs that do not (Renode) just continue.
        """
        rereports = self.dialect is None or self.dialect.rereports_breakpoint
        if rereports and from_pc is not None and from_pc in self.breakpoints:
            kind = self.breakpoints[from_pc]
            self.remove_breakpoint(from_pc)
            reply = self.step(deadline)
            self.set_breakpoint(from_pc, hardware=kind == "1")
            if reply.exited:
                raise EmulatorError(f"target exited while stepping over {from_pc:#x}")
        self.send_packet("c")

    def wait_stop(self, deadline: float, after_continue: bool = True) -> StopReply:
        """The next stop reply. After a continue, a stub with stray stops can
        only stop with a reason (T05swbreak:;), S02 (interrupt) or X/W: its
        bare S05 there is a leftover single-step report, not this stop."""
        stray = after_continue and self.dialect is not None and self.dialect.stray_stops
        while True:
            text = self.read_packet(deadline)
            if stray and _STRAY_STOP.fullmatch(text):
                continue
            if text and _ERROR.fullmatch(text) and text[0] == "E":
                raise EmulatorError(f"{self.name} refused to run: {describe_error(text)}")
            reply = parse_stop_reply(text)
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
        return self.wait_stop(deadline if deadline is not None else time.monotonic() + self.timeout,
                              after_continue=False)

    def detach(self) -> None:
        """Leave the target running and close (attach mode: the user's emulator lives on)."""
        try:
            self.request("D", time.monotonic() + 2.0)
        except EmulatorError:
            pass
        self.close()

"""The replica's own small GDB client for QEMU's stub underneath (kept apart from simrun's client,
which is what the replica tests)."""
from __future__ import annotations

import socket
import threading
import time

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

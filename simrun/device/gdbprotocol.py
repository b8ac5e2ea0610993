"""The GDB remote serial protocol's data: framing, stop replies, error replies, and
what stubs leave open (StubDialect), without a connection (gdbremote.py has that).

Stubs differ in ways that matter; a StubDialect names them, so the session
never asks which emulator it talks to. Renode's (renode-infrastructure
GdbStub.cs and its command handlers) sends an unsolicited `S05` whenever its
CPU enters the single-step wait (on attach, after every breakpoint stop, two
per `s`), queued behind the reply in progress; reports breakpoints as
`T05swbreak:;` without registers; does not stop again when continued on a
breakpoint; announces PacketSize in decimal; and answers errors as `E14`,
`E9999` or `E.<text>`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..errors import EmulatorError

PC_REGNUM = 15
# Error replies: `Enn` (GDB), `E9999` (Renode's Error.Unknown), `E.<text>` (error-message+).
_ERROR = re.compile(r"E(?:[0-9a-fA-F]{2,4}|\..*)", re.S)
_STRAY_STOP = re.compile(r"S05")
ERRNO_NAMES = {1: "operation not permitted", 14: "bad address", 22: "invalid argument", 9999: "unknown error"}


@dataclass(frozen=True)
class StubDialect:
    """What a GDB stub does that the protocol leaves open."""

    name: str
    rereports_breakpoint: bool = True     # continuing on a breakpoint stops there at once (QEMU): step over it
    stray_stops: bool = False             # unsolicited S05 after stops (Renode): not an answer to `c`
    packet_size_decimal: bool = False     # qSupported PacketSize in decimal (Renode) instead of hex
    binary_write: bool | None = None      # X packets: True/False known, None: probe once
    instruction_counter: str | None = None  # monitor command printing the executed instruction count


# QEMU 7.2: no X, no p, hex PacketSize=1000, re-reports a breakpoint when continued on it.
QEMU = StubDialect("qemu", binary_write=False)
# Renode (GdbStub.cs, SupportedQueryCommand.cs, WriteDataToMemoryCommand.cs, TranslationCPU.cs).
RENODE = StubDialect("renode", rereports_breakpoint=False, stray_stops=True, packet_size_decimal=True,
                     binary_write=True, instruction_counter="cpu ExecutedInstructions")
# Anything else (attach mode to an unknown stub): the safe choices, X probed.
GENERIC = StubDialect("gdb stub")


def detect_dialect(features: dict[str, str]) -> StubDialect:
    """Renode alone announces Trace32 extensions; QEMU alone `multiprocess` with vContSupported."""
    if "t32extensions" in features:
        return RENODE
    if "multiprocess" in features and "vContSupported" in features:
        return QEMU
    return GENERIC


def is_error(reply: str) -> bool:
    """An error reply, not data: hex data has an even length, `Enn`/`E9999` an odd one."""
    if reply.startswith("E."):
        return True
    return bool(_ERROR.fullmatch(reply)) and len(reply) % 2 == 1


def describe_error(reply: str) -> str:
    """`E14` -> "E14 (bad address)"; `E.text` -> "text"."""
    if reply.startswith("E."):
        return reply[2:] or "error"
    try:
        code = int(reply[1:], 10)
    except ValueError:
        return reply
    name = ERRNO_NAMES.get(code)
    return f"{reply} ({name})" if name else reply


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


_ESCAPED = re.compile(rb"[#$}*]")


def escape_binary(data: bytes) -> bytes:
    """'#', '$', '}' and '*' as '}' + (byte ^ 0x20), as X packets carry them."""
    return _ESCAPED.sub(lambda m: bytes((0x7D, m.group()[0] ^ 0x20)), data)


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

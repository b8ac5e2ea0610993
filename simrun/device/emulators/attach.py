"""Attach mode: drive an emulator the user started (`--gdb HOST:PORT`), loopback only.

For test benches that already start Renode (a Robot suite) or QEMU: the user
starts the emulator halted at reset with the same firmware ELF and a GDB
server; simrun connects, runs the firmware and detaches at the end, leaving
the emulator to its owner. A GDB server runs whatever its client says
(Renode's even Monitor and Python commands through qRcmd), so simrun talks
only to one on this machine. The stub's dialect (Renode or QEMU) is read from
its qSupported reply.
"""
from __future__ import annotations

import ipaddress
import socket

from pathlib import Path

from ...errors import BadInput, SimrunError
from ..gdbremote import GdbRemote
from .base import Capability, Emulator


def parse_gdb_address(text: str) -> tuple[str, int]:
    """"HOST:PORT" or "[V6]:PORT" with a loopback HOST -> (host, port); else BadInput."""
    host, sep, port_text = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise BadInput(f"--gdb {text!r}: expected HOST:PORT of an emulator's GDB server, e.g. 127.0.0.1:3333")
    try:
        infos = socket.getaddrinfo(host, int(port_text), type=socket.SOCK_STREAM)
        addresses = {info[4][0] for info in infos}
    except OSError as err:
        raise BadInput(f"--gdb {text!r}: cannot resolve {host!r}: {err.strerror or err}") from None
    if not all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses):
        raise BadInput(f"--gdb {text!r}: {host} is not a loopback address. simrun attaches only to an emulator "
                       f"on this machine (a GDB server runs whatever its client sends); start its GDB server "
                       f"on this machine and give 127.0.0.1:PORT")
    return sorted(addresses)[0], int(port_text)


class AttachedEmulator(Emulator):
    """The user's emulator at a loopback GDB address: reached, never started or stopped by us.

    It lacks what needs the emulator's process or files: no mapped RAM, no
    plugin, no log to read. Its instruction count is the stub's own where its
    dialect has one (Renode's), read at stops. One model per emulator start:
    the firmware it runs was reset once, by its owner."""

    name = "attached"
    capabilities = frozenset({Capability.COUNTER_AT_STOPS})
    min_start_seconds = 0.0           # nothing to start: connecting has the session's timeout

    def __init__(self, address: str):
        super().__init__()
        parse_gdb_address(address)    # a bad address fails when the session is made, not later
        self.address = address
        self._used = False

    def start(self, elf: Path, cpu: str, workdir: Path, deadline: float, map_ram: bool = True) -> None:
        if self._used:
            raise SimrunError(f"attach mode (--gdb {self.address}) runs one model per emulator start: "
                              f"restart the emulator halted at reset to load another")
        self._used = True

    def connect(self, deadline: float) -> GdbRemote:
        host, port = parse_gdb_address(self.address)
        return GdbRemote.connect_tcp(host, port, deadline=deadline, name=f"the emulator at {self.address}")

    def disconnect(self, gdb: GdbRemote) -> None:
        gdb.detach()                  # the user's emulator stays theirs

    def title(self) -> str:
        return f"the emulator at {self.address}"

"""Start Renode halted with the board's platform, its GDB server on loopback TCP.

Renode takes a TCP port, not a Unix socket: a free loopback port is picked
just before the launch (a race with other programs is possible and shows as a
connect error naming Renode's output). The controller after the connection is
the shared one. Not verified against a real Renode here (not installable).
"""
from __future__ import annotations

import socket
from pathlib import Path

from ...errors import EmulatorError, require_tool
from ..gdbremote import GdbRemote
from ..targets import get_target
from .process import EmulatorProcess

RENODE_DIR = Path(__file__).resolve().parents[3] / "renode"
INSTALL_HINT = "install Renode (https://renode.io, e.g. the renode .deb or portable package) and put `renode` on PATH"


def platform_files(cpu: str) -> tuple[Path, Path]:
    board = get_target(cpu).board
    repl = RENODE_DIR / f"{board.renode_platform}.repl"
    resc = RENODE_DIR / f"{board.renode_platform}.resc"
    for f in (repl, resc):
        if not f.is_file():
            raise EmulatorError(f"no Renode platform file {f} for {cpu} (board {board.name})")
    return repl, resc


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def renode_argv(binary: str, repl: Path, resc: Path, elf: Path, port: int) -> list[str]:
    script = f"$repl=@{repl}; $elf=@{elf}; $gdb_port={port}; include @{resc}"
    return [binary, "--disable-xwt", "--console", "--plain", "-e", script]


def launch_renode(elf: Path, cpu: str, workdir: Path) -> EmulatorProcess:
    binary = require_tool("renode", INSTALL_HINT)
    repl, resc = platform_files(cpu)
    port = free_loopback_port()
    # stdin stays an open pipe: Renode's console quits at end of input.
    return EmulatorProcess("renode", renode_argv(binary, repl, resc, Path(elf).resolve(), port), workdir,
                           lambda deadline: GdbRemote.connect_tcp("127.0.0.1", port, deadline=deadline),
                           stdin_pipe=True)

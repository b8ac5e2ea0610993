"""Start qemu-system-arm halted, its GDB stub on a Unix socket in a private dir."""
from __future__ import annotations

from pathlib import Path

from ...errors import require_tool
from ..gdbremote import QEMU, GdbRemote
from ..targets import get_target
from .process import EmulatorProcess

INSTALL_HINT = "install QEMU (Debian/Ubuntu: apt-get install qemu-system-arm)"


def qemu_argv(binary: str, machine: str, elf: Path, gdb_socket: Path) -> list[str]:
    # -S: halted at reset until the controller continues. A Unix socket (not a
    # TCP port) cannot collide between parallel sessions and is never remote.
    return [binary, "-M", machine, "-kernel", str(elf), "-S", "-nographic",
            "-monitor", "none", "-serial", "none", "-nodefaults",
            "-chardev", f"socket,id=gdb0,path={gdb_socket},server=on,wait=off",
            "-gdb", "chardev:gdb0"]


def launch_qemu(elf: Path, cpu: str, workdir: Path) -> EmulatorProcess:
    target = get_target(cpu)
    sock = workdir / "gdb.sock"
    argv = qemu_argv(require_tool("qemu-system-arm", INSTALL_HINT), target.qemu_machine, Path(elf), sock)
    return EmulatorProcess("qemu", argv, workdir,
                           lambda deadline: GdbRemote.connect_unix(str(sock), deadline=deadline,
                                                                   dialect=QEMU, name="QEMU"))

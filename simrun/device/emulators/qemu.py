"""Start qemu-system-arm halted, its GDB stub on a Unix socket in a private dir."""
from __future__ import annotations

from pathlib import Path

from ...errors import require_tool
from ..gdbprotocol import QEMU
from ..gdbremote import GdbRemote
from ..targets import get_target
from .process import EmulatorProcess

INSTALL_HINT = "install QEMU (Debian/Ubuntu: apt-get install qemu-system-arm)"


def qemu_argv(binary: str, machine: str, elf: Path, gdb_socket: Path, ram=None) -> list[str]:
    # -S: halted at reset until the controller continues. A Unix socket (not a
    # TCP port) cannot collide between parallel sessions and is never remote.
    # ram: the board's main RAM becomes that file (share=on), which the host maps.
    backend = []
    if ram is not None:
        machine = f"{machine},memory-backend=simrun-ram"
        backend = ["-object", f"memory-backend-file,id=simrun-ram,size={ram.size},mem-path={ram.path},share=on"]
    return [binary, "-M", machine, *backend, "-kernel", str(elf), "-S", "-nographic",
            "-monitor", "none", "-serial", "none", "-nodefaults",
            "-chardev", f"socket,id=gdb0,path={gdb_socket},server=on,wait=off",
            "-gdb", "chardev:gdb0"]


def launch_qemu(elf: Path, cpu: str, workdir: Path, ram=None, extra: list[str] = ()) -> EmulatorProcess:
    target = get_target(cpu)
    sock = workdir / "gdb.sock"
    argv = qemu_argv(require_tool("qemu-system-arm", INSTALL_HINT), target.qemu_machine, Path(elf), sock, ram)
    argv += list(extra)
    emu = EmulatorProcess("qemu", argv, workdir,
                          lambda deadline: GdbRemote.connect_unix(str(sock), deadline=deadline,
                                                                  dialect=QEMU, name="QEMU"))
    emu.ram = ram
    return emu

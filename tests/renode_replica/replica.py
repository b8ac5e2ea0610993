"""A faithful stand-in for Renode, for simrun's tests (Renode is not installable here).

It runs the firmware for real: qemu-system-arm underneath, halted, its GDB stub
on a Unix socket in a private directory, and this process translates between
that stub and what Renode's own GDB server and console do (read from
renode-infrastructure 0c7d0762; file names below are in that tree):

- console: `--version` output (Program.cs), `--pid-file` with this process's
  PID, `-e` commands joined by "; " (CommandLineInterface.cs), commands read
  from stdin, quitting at end of input; script errors print Renode's message and
  leave the process running (Monitor.cs); the readiness log line
  "GDB server with all CPUs started on port :N" (Machine.cs:409); paths are
  `@` tokens where a space must be written `\\ ` (Tokenizer.cs:53);
- GDB server: listens on every interface (SocketServerProvider.cs:38); acks
  every packet and ignores the client's acks (GdbStub.cs); `qSupported` ->
  "PacketSize=1024;..." in decimal; `?` -> `S00`; breakpoint stops as
  `T05swbreak:;`; an unsolicited `S05` on attach, after every breakpoint stop
  (queued behind the reply of the command in progress, so right after the `+`
  of a `c`) and two per `s`; continuing on a breakpoint does not stop there
  again; `X` binary writes; `E14` for unreadable memory; `qRcmd` runs a Monitor
  command and answers `O<hex>` then `OK`, also when the command failed;
  `k`/`D` answer OK and do nothing;
- the core: reads of unmapped memory return 0 and writes are dropped, with
  Renode's "non existing peripheral" warning (SystemBus.cs); fetching from
  unmapped memory aborts the CPU ("CPU abort [PC=...]", TranslationCPU.cs) and
  GDB gets `X06`. QEMU raises a fault in both cases; the replica catches the
  fault handler's entry and undoes it (data) or reports the abort (fetch). On
  ARMv6-M, where the core records no fault address, QEMU's fault stands.
- `python "..."`: only simrun's two bus-copy statements (monitor_python.py), run against QEMU;
- `cpu ExecutedInstructions` is QEMU's exact instruction count (record mode).
- instructions 1.16.1 does not translate (the Armv8.1-M scalar shifts, NOT_TRANSLATED) fault
  UNDEFINSTR: the replica puts a UDF over each in QEMU's copy of the code.
- temp files: Renode's cleanup of other `renode-*` folders in its temp dir (TemporaryFiles).

Environment: RENODE_REPLICA_VERSION (default 1.16.1) is the version it reports;
RENODE_REPLICA_IGNORE_EOF=1 makes it ignore the end of its input (a hung Renode).
"""
from __future__ import annotations

import errno
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from simrun.device.targets import BOARDS  # noqa: E402  (the board rows name QEMU's machine)
from console import log, say  # noqa: E402
from gdb_server import GdbConnection, find_bx_lr  # noqa: E402
import monitor_python  # noqa: E402
from qemu_client import Upstream  # noqa: E402

VERSION = os.environ.get("RENODE_REPLICA_VERSION", "1.16.1")
SUPPORTED = {"1.16.1": ["cortex-m0", "cortex-m0+", "cortex-m3", "cortex-m4", "cortex-m4f", "cortex-m7",
                        "cortex-m23", "cortex-m33", "cortex-m55"]}
def cpu_types() -> list[str]:
    major = tuple(int(x) for x in VERSION.split(".")[:3])
    types = list(SUPPORTED["1.16.1"])
    if major < (1, 16, 1):
        types.remove("cortex-m55")      # MVE arrived in 1.16.1
    if major < (1, 16, 0):
        types.remove("cortex-m33")      # TrustZone in 1.16.0
    return types


def cpu_version() -> tuple[int, ...]:
    return tuple(int(x) for x in VERSION.split(".")[:3])


# Renode 1.16.1's Arm core (tlib d50c868f, arch/arm/translate.c: "TODO: The following ARMv8.1-M MVE
# extension instructions should be handled here: ASRL, LSLL, LSRL, SQSHLL, SRSHRL, UQSHLL, URSHRL,
# SQSHL, SRSHR, UQSHL, URSHR, SQRSHR, SQRSHRL, UQRSHL, UQRSHLL", then `goto illegal_op`): UNDEFINSTR.
NOT_TRANSLATED = {"asrl", "lsll", "lsrl", "sqshll", "srshrl", "uqshll", "urshrl", "sqshl", "srshr", "uqshl",
                  "urshr", "sqrshr", "sqrshrl", "uqrshl", "uqrshll"}
UDF_W = bytes.fromhex("f0f700a0")        # udf.w #0: QEMU raises the same UsageFault (UNDEFINSTR) there


def unimplemented_instructions(elf: str) -> list[int]:
    """Addresses of the instructions in `elf` that Renode 1.16.1 does not translate."""
    objdump = shutil.which("arm-none-eabi-objdump")
    if objdump is None:
        return []
    out = subprocess.run([objdump, "-d", "-w", "-m", "armv8.1-m.main", elf], capture_output=True, text=True).stdout
    found = []
    for m in re.finditer(r"^\s*([0-9a-f]+):\s+[0-9a-f]{4} [0-9a-f]{4}\s*\t(\w+)", out, re.M):
        if m.group(2) in NOT_TRANSLATED:
            found.append(int(m.group(1), 16))
    return found


class ScriptError(Exception):
    pass


def _die_with_parent() -> None:
    import ctypes
    ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)


class Machine:
    """One `mach create`d machine: its platform, ELF, QEMU and GDB server."""

    def __init__(self, name: str, workdir: Path):
        self.name = name
        self.workdir = workdir
        self.platform: str | None = None
        self.cpu_type: str | None = None
        self.elf: str | None = None
        self.vtor = 0
        self.qemu: subprocess.Popen | None = None
        self.up: Upstream | None = None
        self.server: socket.socket | None = None
        self.port = 0
        self.bx_lr: int | None = None

    def load_platform(self, path: str) -> None:
        text = Path(path).read_text()
        m = re.search(r'cpuType:\s*"([^"]+)"', text)
        if m and m.group(1) not in cpu_types():
            raise ScriptError("Error E39: Exception was thrown during construction of 'cpu':\n"
                              "Unknown CPU type")
        self.cpu_type = m.group(1) if m else None
        self.platform = Path(path).stem

    def start_gdb_server(self, port: int) -> None:
        if self.platform is None:
            raise ScriptError("Cannot start GDB server with no CPUs. Did you forget to load the platform "
                              "description first?")
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            server.bind(("0.0.0.0", port))          # IPAddress.Any, as Renode does
        except OSError as err:
            server.close()
            # Renode 1.16.1's words (seen on the real one), under "There was an error executing command".
            kind = "[AddressAlreadyInUse] " if err.errno == errno.EADDRINUSE else " "
            raise ScriptError(f"Unable to create '0.0.0.0:{port}' socket:{kind}{err.strerror}") from None
        server.listen(1)
        self.server, self.port = server, port
        self._start_qemu()
        threading.Thread(target=self._serve, daemon=True).start()
        log("INFO", self.name, f"GDB server with all CPUs started on port :{port}")

    def _start_qemu(self) -> None:
        machine = next(b.qemu_machine for b in BOARDS.values() if b.renode_platform == self.platform)
        # An abstract socket (no file): the temp dir Renode is given may be too deep for a socket path.
        sock = f"simrun-renode-replica-{os.getpid()}-{id(self):x}"
        argv = ["qemu-system-arm", "-M", machine, "-kernel", self.elf, "-S", "-nographic", "-monitor", "none",
                "-serial", "none", "-nodefaults",
                "-icount", f"shift=auto,rr=record,rrfile={self.workdir / 'replay.bin'}",
                "-chardev", f"socket,id=gdb0,path={sock},abstract=on,server=on,wait=off", "-gdb", "chardev:gdb0"]
        self.qemu = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=open(self.workdir / "qemu.log", "wb"),
                                     stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        self.up = Upstream("\0" + sock)
        self.up.ask("qSupported")
        self.fault_handlers = set()
        table = self.up.read(self.vtor, 7 * 4) or bytes(28)
        for i in (3, 4, 5, 6):
            addr = int.from_bytes(table[4 * i:4 * i + 4], "little") & ~1
            if addr:
                self.fault_handlers.add(addr)
        for addr in self.fault_handlers:
            self.up.ask(f"Z0,{addr:x},2")
        self.bx_lr = find_bx_lr(self.elf)
        if cpu_version() <= (1, 16, 1) and self.cpu_type == "cortex-m55":
            for addr in unimplemented_instructions(self.elf):
                self.up.write(addr, UDF_W)      # QEMU has them; Renode 1.16.1 faults UNDEFINSTR there

    def monitor_command(self, text: str) -> str:
        """A command from qRcmd: its output, or Renode's error text (answered with OK all the same)."""
        try:
            return MONITOR.command(text) + "\r\n"
        except ScriptError as err:
            return str(err)

    def stop(self) -> None:
        if self.qemu and self.qemu.poll() is None:
            self.qemu.kill()
            self.qemu.wait()
        if self.server:
            self.server.close()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                return
            GdbConnection(self, conn).run()


# --- the Monitor ---------------------------------------------------------------

class Monitor:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.variables: dict[str, str] = {}
        self.machine: Machine | None = None
        self.quit = threading.Event()

    def execute(self, text: str, echo: bool = True) -> None:
        for line in text.splitlines():
            for command in split_commands(line):
                if echo:
                    say(f"({self.machine.name if self.machine else 'monitor'}) {command}")
                try:
                    out = self.command(command)
                    if out:
                        say(out)
                except ScriptError as err:
                    say(str(err))          # Renode prints the error and carries on

    def value(self, token: str) -> str:
        if token.startswith("$"):
            name = token[1:]
            if name not in self.variables:
                raise ScriptError(f"No such variable: ${name}")
            return self.variables[name]
        if token.startswith("@"):
            path = token[1:].replace("\\ ", " ")
            if not os.path.exists(path):
                raise ScriptError(f"Could not find file '{path}'")
            return path
        return token.strip('"')

    def command(self, command: str) -> str:
        m = re.fullmatch(r"\$(\w+)\s*(\?)?=\s*(.+)", command)
        if m:
            if not (m.group(2) and m.group(1) in self.variables):
                self.variables[m.group(1)] = self.value(m.group(3).strip())
            return ""
        words = tokens(command)
        if not words:
            return ""
        head = words[0]
        try:
            if head in ("include", "i"):
                path = self.value(words[1])
                for line in Path(path).read_text().splitlines():
                    if line.startswith(":") or not line.strip():
                        continue
                    self.execute(line, echo=False)
                return ""
            if head == "mach" and words[1:2] == ["create"]:
                self.machine = Machine(self.value(words[2]) if len(words) > 2 else "machine-0", self.workdir)
                return ""
            if head in ("quit", "q"):
                self.quit.set()
                return ""
            if head == "emulation" and words[1:2] == ["SetGlobalAdvanceImmediately"]:
                return ""
            if head == "version":
                return f"Renode v{VERSION}"
            if head == "logLevel":
                return ""
            m = self.machine
            if head == "machine" and m and words[1:2] == ["LoadPlatformDescription"]:
                m.load_platform(self.value(words[2]))
                return ""
            if head == "machine" and m and words[1:2] == ["StartGdbServer"]:
                m.start_gdb_server(int(self.value(words[2])))
                return ""
            if head == "sysbus" and m and words[1:2] == ["LoadELF"]:
                m.elf = self.value(words[2])
                return ""
            if head == "cpu" and m and words[1:2] == ["VectorTableOffset"]:
                m.vtor = int(self.value(words[2]), 0)
                return ""
            if head in ("python", "py") and m and len(words) == 2 and words[1].startswith('"'):
                try:
                    return monitor_python.run(words[1][1:-1], m.up)
                except monitor_python.PythonError as err:
                    raise ScriptError(str(err)) from None
            if head == "cpu" and m and words[1:2] == ["ExecutedInstructions"]:
                text = m.up.monitor("info replay")
                count = int(re.search(r"instruction count = (\d+)", text).group(1))
                return f"0x{count:016X}"
        except IndexError:
            raise ScriptError(f"Bad parameters for command {command}") from None
        except ScriptError as err:
            raise ScriptError(f"There was an error executing command '{command}'\n{err}") from None
        raise ScriptError(f"No such command or device: {head}")


def split_commands(line: str) -> list[str]:
    parts, cur, quote = [], "", ""
    for ch in line:
        if quote:
            cur += ch
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
            cur += ch
        elif ch == ";":
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    parts.append(cur.strip())
    return [p for p in parts if p and not p.startswith("//")]


def tokens(command: str) -> list[str]:
    return re.findall(r'"[^"]*"|@(?:\\ |\S)+|\S+', command)


MONITOR: Monitor | None = None
CRASH_SUFFIX = "-crash"


class TemporaryFiles:
    """Renode's TemporaryFilesManager (Utilities/TemporaryFilesManager.cs at v1.16.1): its own
    folder `renode-<pid>` in the temp dir ($TMPDIR, else /tmp: .NET's Path.GetTempPath), a
    leftover one of that name deleted first; then, unless --keep-temporary-files, every other
    `renode-*` folder there whose suffix is not a live PID and that does not end in "-crash"
    is deleted, at start and again at exit (with its own folder)."""

    def __init__(self, keep: bool):
        self.keep = keep
        self.base = Path(os.environ.get("TMPDIR") or "/tmp")
        self.own = self.base / f"renode-{os.getpid()}"
        if self.own.exists():
            shutil.rmtree(self.own, ignore_errors=True)
        self.own.mkdir(parents=True)
        self.cleanup()

    def cleanup(self) -> None:
        if self.keep:
            return
        for entry in self.base.glob("renode-*"):
            if entry == self.own or not entry.is_dir() or entry.name.endswith(CRASH_SUFFIX):
                continue
            suffix = entry.name[len("renode-"):]
            if suffix.isdigit() and _alive(int(suffix)):
                continue
            shutil.rmtree(entry, ignore_errors=True)

    def at_exit(self) -> None:
        self.cleanup()
        if not self.keep:
            shutil.rmtree(self.own, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main(argv: list[str]) -> int:
    global MONITOR
    args = iter(argv)
    executes, pid_file, positional, keep = [], None, None, False
    for a in args:
        if a in ("-v", "--version"):
            say(f"Renode v{VERSION}\n  build: {VERSION}+replica\n  build type: Release\n  runtime: .NET 8.0.0")
            return 0
        if a in ("-e", "--execute"):
            executes.append(next(args))
        elif a == "--pid-file":
            pid_file = next(args)
        elif a == "--keep-temporary-files":
            keep = True
        elif a in ("--disable-xwt", "--disable-gui", "--console", "-p", "--plain", "--hide-log",
                   "--hide-analyzers"):
            pass
        elif a.startswith("-"):
            say(f"Unknown option: {a}")
            return 1
        else:
            positional = a
    if pid_file:
        Path(pid_file).write_text(str(os.getpid()))
    temp = TemporaryFiles(keep)
    workdir = temp.own
    MONITOR = Monitor(workdir)
    signal.signal(signal.SIGTERM, lambda *_: MONITOR.quit.set())
    try:
        say(f"{time.strftime('%H:%M:%S')}.0000 [INFO] Loaded monitor commands from: replica")
        if positional:
            MONITOR.execute(f"i @{positional}")
        if executes:
            MONITOR.execute("; ".join(executes))

        def read_stdin():
            for line in sys.stdin:
                MONITOR.execute(line)
                if MONITOR.quit.is_set():
                    break
            if not os.environ.get("RENODE_REPLICA_IGNORE_EOF"):   # tests: a Renode that hangs
                MONITOR.quit.set()          # end of input: Renode quits
        threading.Thread(target=read_stdin, daemon=True).start()
        MONITOR.quit.wait()
    finally:
        if MONITOR.machine:
            MONITOR.machine.stop()
        temp.at_exit()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

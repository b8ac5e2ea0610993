"""Start Renode halted with the board's platform and a GDB server only this session can reach.

What Renode does that shapes this (renode-infrastructure 0c7d0762, renode 06854d4d):
- its GDB server listens on every interface (SocketServerProvider.cs:38) and runs
  any Monitor command, Python included, for whoever connects (qRcmd). So Renode
  runs in a private network namespace (`unshare --net`: only loopback exists
  there) and the session reaches the port through a Unix socket relay in its
  private directory (netns_relay.py). Where no namespace can be made, Renode is
  refused unless SIMRUN_RENODE_NETWORK=host says to accept the exposed port;
- it never exits on a script error ("Unknown CPU type", "Could not start GDB
  server", "No such command", "Could not find file" leave it running), and logs
  "GDB server with all CPUs started on port :N" when ready (Machine.cs:409): we
  connect only after that line and fail at once, with Renode's own words, on an
  error line;
- it throttles the guest to real time at 100 MIPS unless
  `emulation SetGlobalAdvanceImmediately true`;
- `renode` is a shell script that runs `dotnet Renode.dll` without exec:
  killing its PID leaves Renode running; --pid-file gives the real one, which
  EmulatorProcess.stop kills with the process group (closing stdin would quit Renode
  too, in 1-5+ s under load: not worth waiting for);
- at start (and again at exit) it deletes every folder named `renode-*` directly under its
  temp dir ($TMPDIR, else /tmp) whose suffix is not a live PID, not ending in "-crash", and
  its own `renode-<pid>` if one exists (TemporaryFilesManager.cs): a user's unrelated
  /tmp/renode-* folders too. So Renode runs with TMPDIR set to a folder of its own in the
  session's private directory (removed with it), and with --keep-temporary-files, which
  turns that cleanup off; XDG_CONFIG_HOME points there too, so its config file, Monitor
  history and download cache (~/.config/renode, Emulator.cs) are not the user's;
- an `@path` token ends at whitespace unless it is written `\\ ` (Tokenizer.cs:53);
- Cortex-M55 (MVE, "initial") exists from 1.16.1, TrustZone from 1.16.0;
- reads of unmapped memory return 0 and writes are dropped with a logged
  warning (SystemBus.cs), never a BusFault; fetching from unmapped memory aborts
  the CPU and GDB gets `X06`. RenodeProcess turns both into target faults.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ... import resources
from ...errors import BadInput, EmulatorError, ToolMissing, require_tool
from ..gdbprotocol import RENODE
from ..gdbremote import GdbRemote
from ..targets import get_target
from ..disassembly import Instruction
from ..memory import GdbMemory
from .base import AbortReport, Capability, Emulator, LoggedFault
from .process import EmulatorProcess
from .renode_memory import RenodeBusMemory

RENODE_DIR = resources.path("renode")
INSTALL_HINT = "install Renode (https://renode.io, e.g. the renode .deb or portable package) and put `renode` on PATH"
RELAY = Path(__file__).with_name("netns_relay.py")
NETWORK_ENV = "SIMRUN_RENODE_NETWORK"
# The lowest Renode that runs each CPU as simrun's firmware needs it, and why.
MIN_VERSION: dict[str, tuple[tuple[int, int, int], str]] = {
    "cortex-m55": ((1, 16, 1), "Cortex-M55 with MVE exists in Renode only from 1.16.1"),
    "cortex-m33": ((1, 16, 0), "the Cortex-M33 board runs its core secure, and Renode has TrustZone "
                               "only from 1.16.0"),
}
READY = re.compile(r"GDB server with all CPUs started on port :(\d+)")
SCRIPT_ERROR = re.compile(r"There was an error executing command|No such command or device|Could not find file"
                          r"|Could not tokenize here|Errors during compilation|No such variable"
                          r"|Bad parameters for command|Unknown CPU type|Could not start GDB server|\[ERROR\]")
UNMAPPED = re.compile(r"(?:\[[^\]]*: 0x(?P<pc>[0-9A-Fa-f]+)\] )?(?P<what>(?:Read|Write)\w* (?:from|to) "
                      r"non existing peripheral at 0x(?P<addr>[0-9A-Fa-f]+))")
ABORT = re.compile(r"CPU abort \[PC=0x(?P<pc>[0-9A-Fa-f]+)\][^\n]*")
NO_BUSFAULT = ("Renode does not raise BusFaults: it returns 0 for reads of unmapped memory and drops writes, "
               "so the firmware runs on where a board would fault")
# Instructions a Renode version's Arm core does not translate (UNDEFINSTR): 1.16.1's tlib
# (arm/translate.c, "TODO: The following ARMv8.1-M MVE extension instructions should be handled
# here") leaves the Armv8.1-M scalar shifts out, which GCC emits for 64-bit shifts with MVE on.
SCALAR_SHIFTS = frozenset({"asrl", "lsll", "lsrl", "sqshll", "srshrl", "uqshll", "urshrl", "sqshl", "srshr",
                           "uqshl", "urshr", "sqrshr", "sqrshrl", "uqrshl", "uqrshll"})
UNIMPLEMENTED: dict[tuple[int, int, int], tuple[frozenset[str], str]] = {
    (1, 16, 1): (SCALAR_SHIFTS, "the Armv8.1-M scalar shifts (asrl, lsll, lsrl, sqrshrl, uqrshll, ...), "
                                "which GCC emits for 64-bit shifts on MVE cores such as cortex-m55"),
}
# Which CPUs such a gap hits, and what it means there (measured on 1.16.1: README, "Renode").
LACKS_BY_CPU = {"cortex-m55": "firmware faults (UNDEFINSTR) where it runs one: TFLM's in operator prepare "
                              "(asrl in tflite::CalculateOpDataDepthwiseConv), simrun's fixture in its "
                              "dense layers"}
_versions: dict[tuple[str, float], tuple[int, int, int] | None] = {}


def platform_files(cpu: str) -> tuple[Path, Path]:
    board = get_target(cpu).board
    repl = RENODE_DIR / f"{board.renode_platform}.repl"
    resc = RENODE_DIR / f"{board.renode_platform}.resc"
    for f in (repl, resc):
        if not f.is_file():
            raise EmulatorError(f"no Renode platform file {f} for {cpu} (board {board.name})")
    return repl, resc


# --- version --------------------------------------------------------------------

def parse_version(text: str) -> tuple[int, int, int] | None:
    m = re.search(r"\bv?(\d+)\.(\d+)\.(\d+)", text)
    return tuple(int(x) for x in m.groups()) if m else None


def renode_version(binary: str) -> tuple[int, int, int] | None:
    """`renode --version` ("Renode v1.16.1 ..."), once per binary."""
    key = (binary, os.stat(binary).st_mtime)
    if key not in _versions:
        # Even `--version` starts Renode's runtime: in folders of its own, like a session's Renode.
        with tempfile.TemporaryDirectory(prefix="simrun-") as private:
            try:
                out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=60,
                                     stdin=subprocess.DEVNULL, env=private_environment(Path(private)))
                _versions[key] = parse_version(out.stdout + out.stderr)
            except (OSError, subprocess.TimeoutExpired):
                _versions[key] = None
    return _versions[key]


def check_version(version: tuple[int, int, int] | None, cpu: str) -> None:
    need = MIN_VERSION.get(cpu)
    if need is None:
        return
    if version is None:
        raise ToolMissing(f"cannot tell which Renode `renode --version` is; {cpu} needs Renode "
                          f"{'.'.join(map(str, need[0]))} or later ({need[1]})")
    if version < need[0]:
        raise ToolMissing(f"Renode {'.'.join(map(str, version))} cannot run {cpu}: {need[1]}; install Renode "
                          f"{'.'.join(map(str, need[0]))} or later")


def renode_support(version: tuple[int, int, int] | None) -> dict[str, tuple[str, str]]:
    """Per CPU of the targets table: ("runs" | "partly" | "no", why) for this Renode version."""
    from ..targets import TARGETS
    out = {}
    for cpu in TARGETS:
        need = MIN_VERSION.get(cpu)
        if version is None:
            out[cpu] = ("no", "unknown Renode version (`renode --version` said none)")
        elif need and version < need[0]:
            out[cpu] = ("no", f"needs Renode {'.'.join(map(str, need[0]))} or later: {need[1]}")
        elif cpu in LACKS_BY_CPU and version in UNIMPLEMENTED:
            out[cpu] = ("partly", f"lacks {UNIMPLEMENTED[version][1]}: {LACKS_BY_CPU[cpu]}")
        else:
            out[cpu] = ("runs", "")
    return out


# --- the start script -----------------------------------------------------------

def renode_path(path: Path) -> str:
    """An `@path` token: Renode's tokenizer ends it at whitespace or ';' unless a space is `\\ `."""
    text = str(Path(path).resolve())
    if ";" in text or re.search(r"[^\S ]", text):
        raise BadInput(f"path {text!r} holds a ';' or a tab/newline, which Renode's Monitor cannot take; "
                       f"move the file to a plainer path")
    return "@" + text.replace(" ", "\\ ")


def renode_script(repl: Path, resc: Path, elf: Path, port: int) -> str:
    return (f"$repl={renode_path(repl)}; $elf={renode_path(elf)}; $gdb_port={port}; "
            f"emulation SetGlobalAdvanceImmediately true; include {renode_path(resc)}")


def renode_argv(binary: str, script: str, pid_file: Path) -> list[str]:
    return [binary, "--disable-xwt", "--console", "--plain", "--keep-temporary-files", "--pid-file", str(pid_file),
            "-e", script]


def private_environment(workdir: Path) -> dict[str, str]:
    """Renode's environment: this process's, with its temp and user folders inside `workdir`.

    Renode deletes `renode-*` folders in its temp dir and writes ~/.config/renode; given
    folders of its own (made here, removed with the session's private directory), nothing
    of the user's is touched, whatever Renode does at start, at exit or after a crash."""
    tmp, config = Path(workdir) / "tmp", Path(workdir) / "config"
    for folder in (tmp, config):
        folder.mkdir(mode=0o700, exist_ok=True)
    return {**os.environ, "TMPDIR": str(tmp), "XDG_CONFIG_HOME": str(config)}


# --- the network ----------------------------------------------------------------

def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unshare_prefix() -> list[str]:
    """`unshare` arguments for a private network namespace (a user namespace too when not root)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        raise ToolMissing(_exposed("`unshare` (util-linux) is not installed"))
    argv = [unshare, "--net"] + ([] if os.geteuid() == 0 else ["--user", "--map-root-user"])
    probe = subprocess.run(argv + ["true"], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if probe.returncode != 0:
        raise ToolMissing(_exposed(f"`{' '.join(argv[1:])}` failed: {probe.stderr.strip() or probe.returncode}"))
    return argv


def _exposed(reason: str) -> str:
    return (f"cannot start Renode in a private network namespace ({reason}). Renode's GDB server listens on "
            f"every interface and runs any Monitor command, Python included, for whoever connects, so simrun "
            f"starts it only where loopback is the sole interface. Run as root or allow unprivileged user "
            f"namespaces (sysctl kernel.unprivileged_userns_clone=1), or set {NETWORK_ENV}=host to accept "
            f"that the port is reachable from the network while the session runs")


def network_mode() -> str:
    mode = os.environ.get(NETWORK_ENV, "private") or "private"
    if mode not in ("private", "host"):
        raise BadInput(f"{NETWORK_ENV}={mode!r}: use 'private' (default) or 'host'")
    return mode


# --- the process ----------------------------------------------------------------

class RenodeProcess(EmulatorProcess):
    """Renode, with its log read for what it reports instead of faulting."""

    _scanned = 0

    def log_text(self) -> str:
        try:
            return self.log_path.read_bytes().decode(errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 12) -> str:
        return " | ".join(line.strip() for line in self.log_text().strip().splitlines()[-lines:])

    def fault_from_log(self) -> LoggedFault | None:
        text = self.log_text()
        new, self._scanned = text[self._scanned:], len(text)
        m = UNMAPPED.search(new)
        if m is None:
            return None
        regs = {"address": int(m.group("addr"), 16)}
        if m.group("pc"):
            regs["pc"] = int(m.group("pc"), 16)
        where = f" by the instruction at 0x{regs['pc']:08x}" if "pc" in regs else ""
        detail = f"Renode logged \"{m.group('what')}\" ({NO_BUSFAULT}); Renode's log: {self.tail()}"
        return LoggedFault(f"unmapped memory access{where}", detail, regs)

    def abort_note(self) -> str:
        m = ABORT.search(self.log_text())
        what = f": \"{m.group(0).strip()}\"" if m else ""
        return (f" (Renode aborted the CPU{what}; it does so when code runs from unmapped memory, and "
                f"{NO_BUSFAULT[0].lower()}{NO_BUSFAULT[1:]}); Renode's log: {self.tail()}")

    def abort_pc(self) -> int | None:
        m = ABORT.search(self.log_text())
        return int(m.group("pc"), 16) if m else None

    def wait_ready(self, deadline: float) -> tuple[int | None, str | None]:
        """(port, None) once Renode's GDB server is up; (None, Renode's error) on a script error."""
        while True:
            text = self.log_text()
            ready = READY.search(text)
            error = SCRIPT_ERROR.search(text)
            if error and (not ready or error.start() < ready.start()):
                time.sleep(0.3)                       # the detail lines follow the first one
                lines = self.log_text()[error.start():].strip().splitlines()
                return None, " | ".join(line.strip() for line in lines[:15] if line.strip())
            if ready:
                return int(ready.group(1)), None
            if not self.alive():
                raise EmulatorError(f"Renode exited with status {self.proc.returncode} before its GDB server "
                                    f"started: {self.tail() or '(no output)'}")
            if time.monotonic() >= deadline:
                raise EmulatorError(f"Renode's GDB server did not start in time; Renode's log: "
                                    f"{self.tail() or '(no output)'}")
            time.sleep(0.05)


def launch_renode(elf: Path, cpu: str, workdir: Path, deadline: float | None = None) -> RenodeProcess:
    deadline = deadline if deadline is not None else time.monotonic() + 120
    binary = require_tool("renode", INSTALL_HINT)
    check_version(renode_version(binary), cpu)
    repl, resc = platform_files(cpu)
    private = network_mode() == "private"
    prefix = unshare_prefix() if private else []
    sock = workdir / "gdb.sock"
    env = private_environment(workdir)
    for attempt in range(3):
        # In a fresh namespace no one else holds a port; on the host one may, so retry another.
        port = 3333 if private else free_loopback_port()
        pid_file = workdir / f"renode-{attempt}.pid"
        argv = renode_argv(binary, renode_script(repl, resc, Path(elf), port), pid_file)
        if private:
            argv = prefix + [sys.executable, str(RELAY), str(sock), str(port), "--"] + argv
        if private:
            connector = (lambda d: GdbRemote.connect_unix(str(sock), deadline=d, dialect=RENODE, name="Renode"))
        else:
            connector = (lambda d, port=port: GdbRemote.connect_tcp("127.0.0.1", port, deadline=d,
                                                                    dialect=RENODE, name="Renode"))
        # stdin stays an open pipe: Renode's console quits at its end. stop() does not wait for
        # that: a clean quit took over 5 s under load (bench/renode_bench.py, "stop") and saves
        # nothing, as every file this Renode has is in the session's private directory; it kills
        # Renode's PID and process group at once.
        emu = RenodeProcess("renode", argv, workdir, connector, stdin_pipe=True, pid_file=pid_file,
                            quit_grace=0.0, env=env)
        try:
            ready, error = emu.wait_ready(deadline)
        except BaseException:
            emu.stop()
            raise
        if ready is not None:
            return emu
        emu.stop()
        # Renode 1.16.1 says "Unable to create '0.0.0.0:N' socket:[AddressAlreadyInUse] Address already in use".
        if re.search(r"AddressAlreadyInUse|address already in use", error, re.I) and not private:
            continue
        raise EmulatorError(f"Renode reported an error in its start script: {error}")
    raise EmulatorError(f"Renode could not bind a GDB port in 3 tries: {error}")


class RenodeEmulator(Emulator):
    """Renode: no mapped RAM, but bulk memory through files its Monitor copies (renode_memory.py),
    its own instruction count (`cpu ExecutedInstructions` via qRcmd, read at stops), and
    unmapped accesses only in its log (read at every stop)."""

    name = "renode"
    capabilities = frozenset({Capability.BUS_FILES, Capability.COUNTER_AT_STOPS, Capability.FAULT_LOG})
    # Mono's start-up of Renode 1.16.1: ~3 s on an idle 2-core machine, 45-50 s seen at load 15.
    min_start_seconds = 180.0
    # Renode 1.16.1 under Mono against QEMU 7.2, same firmware and model (bench/renode_bench.py):
    # an inference with per-layer capture 4-6x QEMU's, up to 15-54x for a whole run under load
    # (start-up, which has min_start_seconds of its own, included). 6: the default run limit is
    # 30 min, where a Renode backend's run was seen to take 53-215 s at load 15.
    slowdown = 6.0

    def __init__(self) -> None:
        super().__init__()
        self.version: tuple[int, int, int] | None = None
        self.bus_files = True

    def _launch(self, elf: Path, cpu: str, workdir: Path, deadline: float, map_ram: bool) -> RenodeProcess:
        process = launch_renode(elf, cpu, workdir, deadline)
        self.bus_files = map_ram          # map_ram=False (memory="gdb"): every byte over GDB, for tests
        self.version = renode_version(require_tool("renode", INSTALL_HINT))    # cached by launch_renode
        return process

    def memory(self, gdb: GdbRemote, start: int, size: int) -> GdbMemory:
        if self.process is None or not self.bus_files:
            return GdbMemory(gdb)
        return RenodeBusMemory(gdb, self.process.workdir, start, size)

    def title(self) -> str:
        return "Renode " + ".".join(map(str, self.version)) if self.version else "Renode"

    def known_gap(self, instruction: Instruction) -> str:
        known = UNIMPLEMENTED.get(self.version) if self.version else None
        if known and instruction.mnemonic.split(".")[0].lower() in known[0]:
            return f"it lacks {known[1]}"
        return ""

    def missing_instruction(self, instruction: Instruction, cpu: str) -> str:
        return f"run {cpu} on QEMU (--emulator qemu), or use a Renode that implements it"

    def logged_fault(self) -> LoggedFault | None:
        return self.process.fault_from_log() if self.process is not None else None

    def abort_report(self) -> AbortReport:
        if self.process is None:
            return AbortReport()
        return AbortReport(self.process.abort_note(), self.process.abort_pc())

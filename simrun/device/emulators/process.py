"""A started emulator process: its own process group, killed with its parent
(PR_SET_PDEATHSIG), at interpreter exit (atexit) and by EmulatorProcess.stop(),
which is idempotent.

An emulator that quits at the end of its input (Renode) is first asked that
way (stdin closed) and given `quit_grace` seconds; a launcher script that
does not exec its emulator (Renode's) is covered by `pid_file`, the PID the
emulator itself wrote; whatever is left in the process group is then killed."""
from __future__ import annotations

import atexit
import ctypes
import os
import signal
import subprocess
import threading
from pathlib import Path
from typing import Callable

from ...errors import EmulatorError
from ..gdbremote import GdbRemote

PR_SET_PDEATHSIG = 1

_live: set["EmulatorProcess"] = set()
_live_lock = threading.Lock()


try:
    # Resolved now, not in the forked child, where loading libraries could deadlock.
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):
    _prctl = None  # not Linux: atexit and stop() still apply


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class EmulatorProcess:
    """A running emulator and how to reach its GDB stub."""

    def __init__(self, name: str, argv: list[str], workdir: Path,
                 connector: Callable[[float], GdbRemote], stdin_pipe: bool = False,
                 pid_file: Path | None = None, quit_grace: float = 0.0, env: dict[str, str] | None = None):
        self.name = name
        self.pid_file = pid_file
        self.quit_grace = quit_grace
        self.argv = argv
        self.workdir = workdir
        self._connector = connector
        self.log_path = workdir / f"{name}.log"
        self._log = open(self.log_path, "wb")
        try:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL,
                stdout=self._log, stderr=subprocess.STDOUT, cwd=workdir,
                start_new_session=True, preexec_fn=_die_with_parent, env=env)
        except OSError as err:
            self._log.close()
            raise EmulatorError(f"cannot start {argv[0]}: {err.strerror}") from None
        with _live_lock:
            _live.add(self)

    @property
    def pid(self) -> int:
        """The emulator's own PID where it wrote one (--pid-file), else the started process's."""
        return self.own_pid() or self.proc.pid

    def own_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip()) if self.pid_file else None
        except (OSError, ValueError):
            return None

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self, limit: int = 2000) -> str:
        try:
            return self.log_path.read_bytes()[-limit:].decode(errors="replace").strip()
        except OSError:
            return ""

    def connect(self, deadline: float) -> GdbRemote:
        try:
            return self._connector(deadline)
        except EmulatorError as err:
            if not self.alive():
                raise EmulatorError(f"{self.name} exited with status {self.proc.returncode}: "
                                    f"{self.output() or '(no output)'}") from None
            raise err

    def stop(self) -> None:
        if self.proc.poll() is None and self.proc.stdin and self.quit_grace > 0:
            try:
                self.proc.stdin.close()                  # end of input: the emulator quits cleanly
                self.proc.wait(timeout=self.quit_grace)
            except (OSError, subprocess.TimeoutExpired):
                pass
        own = self.own_pid()
        if own is not None and own != self.proc.pid:
            try:
                if os.getpgid(own) == self.proc.pid:     # still ours, not a reused PID
                    os.kill(own, signal.SIGKILL)         # the real emulator behind a launcher script
            except (ProcessLookupError, PermissionError):
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)     # and anything else left in its group
        except (ProcessLookupError, PermissionError):
            pass
        if self.proc.poll() is None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL does not take this long
                self.proc.kill()
                self.proc.wait()
        else:
            self.proc.wait()
        if self.proc.stdin:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        self._log.close()
        with _live_lock:
            _live.discard(self)


@atexit.register
def _stop_all() -> None:
    for emu in list(_live):
        emu.stop()

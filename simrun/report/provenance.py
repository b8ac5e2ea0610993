"""What produced a report: simrun's version, the command line, when, how long each backend
took, how it ended, on which host, and the exact files it read (by sha256).

A command starts a RunRecord before it checks anything and hands it to the reports, which
take the exit code and backend times from the DiffResult; a run that stops early is
recorded with its exit code and message all the same (simrun.report.outcome).
"""
from __future__ import annotations

import hashlib
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

from ..version import __version__
from ..errors import EXIT_CODES

SCHEMA_VERSION = 2          # of summary.json; README "summary.json" lists what each version has


@dataclass
class RunRecord:
    command: str                                    # "diff", "ab", "robot"
    argv: list[str]                                 # the command line, as typed
    started: float = field(default_factory=time.time)
    finished: float | None = None
    exit_code: int | None = None
    message: str | None = None                      # why a run stopped early; None when it completed
    model_path: str | None = None
    input_specs: list[str] = field(default_factory=list)
    policy_path: str | None = None                  # None: the built-in default policy
    baseline_path: str | None = None                # `diff --baseline`: the earlier summary.json
    labels: list[str] = field(default_factory=list)  # backends asked for
    emulator: str | None = None

    @classmethod
    def begin(cls, command: str, argv: list[str] | None, args=None) -> "RunRecord":
        """From the parsed arguments of a command (model, inputs, policy, backends are read
        from the usual option names where they exist)."""
        record = cls(command, list(argv if argv is not None else sys.argv))
        if args is not None:
            model = getattr(args, "model", None)
            record.model_path = str(model) if model is not None else None
            specs = getattr(args, "inputs", None)
            record.input_specs = [specs] if isinstance(specs, str) else list(specs or [])
            policy = getattr(args, "policy", None)
            record.policy_path = str(policy) if policy is not None else None
            record.emulator = getattr(args, "emulator", None)
            baseline = getattr(args, "baseline", None)
            record.baseline_path = str(baseline) if baseline is not None else None
        return record

    def end(self, exit_code: int, message: str | None = None) -> None:
        self.exit_code, self.message = exit_code, message
        self.finished = time.time()

    @property
    def seconds(self) -> float:
        return (self.finished or time.time()) - self.started

    def to_json(self, exit_code: int | None = None, backend_seconds: dict[str, float] | None = None) -> dict:
        """summary.json's "run" (simrun/report/json_report.py). A complete run's exit code and
        backend times come from its DiffResult; a stopped run's exit code from `end`."""
        exit_code = self.exit_code if exit_code is None else exit_code
        return {
            "simrun": __version__,
            "command": self.argv,
            "started": _iso(self.started),
            "finished": _iso(self.finished) if self.finished else None,
            "seconds": round(self.seconds, 3),
            "exit_code": exit_code,
            "exit_meaning": EXIT_CODES.get(exit_code) if exit_code is not None else None,
            "message": self.message,
            "backend_seconds": {k: round(v, 3) for k, v in (backend_seconds or {}).items()},
            "host": host(self.labels, self.emulator),
            "model_file": file_entry(self.model_path),
            "input_files": [input_entry(spec) for spec in (self.input_specs or ["random:0"])],
            "policy": policy_entry(self.policy_path),
            "baseline_file": file_entry(self.baseline_path),
        }


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def sha256_of(path: Path) -> str | None:
    h = hashlib.sha256()
    try:
        if path.is_dir():
            # A folder of images or arrays: every file's relative path and bytes, in name order.
            for f in sorted(p for p in path.rglob("*") if p.is_file()):
                h.update(str(f.relative_to(path)).encode() + b"\0")
                h.update(f.read_bytes())
        else:
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
    except OSError:
        return None
    return h.hexdigest()


def file_entry(path: str | None) -> dict | None:
    if path is None:
        return None
    p = Path(path).expanduser()
    return {"path": str(p.absolute()), "sha256": sha256_of(p) if p.exists() else None}


def input_entry(spec: str) -> dict:
    """A file input by absolute path and sha256; random:SEED (and the like) as given."""
    p = Path(spec).expanduser()
    if not p.exists():
        return {"spec": spec, "path": None, "sha256": None}
    return {"spec": spec, **file_entry(spec)}


def policy_entry(path: str | None) -> dict:
    if path is None:
        text = resources.files("simrun").joinpath("data/policy-default.toml").read_text()
        return {"source": "built-in", "path": None, "sha256": hashlib.sha256(text.encode()).hexdigest(),
                "text": text}
    p = Path(path).expanduser()
    try:
        data = p.read_bytes()
    except OSError:
        return {"source": str(path), "path": str(p.absolute()), "sha256": None, "text": None}
    return {"source": str(path), "path": str(p.absolute()), "sha256": hashlib.sha256(data).hexdigest(),
            "text": data.decode(errors="replace")}


_emulator_versions: dict[str, str | None] = {}


def host(labels: list[str], emulator: str | None) -> dict:
    """OS, Python and, when a target backend was asked for, the emulator's version line."""
    out = {"os": platform.platform(), "python": platform.python_version(), "machine": platform.machine(),
           "emulators": {}}
    if any(label.startswith("target:") for label in labels):
        tool = "renode" if emulator == "renode" else "qemu-system-arm"
        out["emulators"][tool] = emulator_version(tool)
    return out


def emulator_version(tool: str) -> str | None:
    """The first line of `tool --version` (once per process), None when it is not installed."""
    if tool not in _emulator_versions:
        path = shutil.which(tool)
        line = None
        if path:
            try:
                out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60,
                                     stdin=subprocess.DEVNULL)
                lines = [ln for ln in (out.stdout + out.stderr).splitlines() if ln.strip()]
                line = lines[0].strip() if lines else None
            except (OSError, subprocess.TimeoutExpired):
                line = None
        _emulator_versions[tool] = line
    return _emulator_versions[tool]

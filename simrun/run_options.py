"""How backends run: one frozen value, built once by the caller (the CLI, the Robot library, a
Python script) and carried whole from the pipeline to the backend's worker process.

    options = RunOptions(timeout=600, emulator="renode", count_instructions=True)
    pipeline.diff_run(model, names, samples, labels, options)

The worker's JSON job holds `options.to_json()` and the worker reads it back with
`RunOptions.from_json`, so every step sees the same set of fields. A step that needs a
different value says so with `dataclasses.replace` (the diagnosis's isolated runs:
`replace(options, count_instructions=False)`; the parent, once it built the firmware:
`replace(options, firmware_elf=elf)`). Host backends use `timeout` only; everything else
concerns target backends.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .errors import BadInput

DEFAULT_TIMEOUT = 300.0
_PATHS = ("sources_dir", "cache_dir", "firmware_elf")


@dataclass(frozen=True)
class RunOptions:
    # The wall-clock limit of one backend's worker process (all its inputs); the parent stops
    # the worker, and the emulator with it, when it runs out. None: DEFAULT_TIMEOUT times the
    # emulator's slowdown (Emulator.slowdown: data each emulator states, QEMU 1), so a slower
    # emulator gets a longer default without a special case anywhere.
    timeout: float | None = None
    # Each wait inside the emulator (Session(timeout=)); None: the same as the run's limit.
    session_timeout: float | None = None
    emulator: str = "qemu"                  # simrun.device.targets.EMULATORS
    gdb: str | None = None                  # "HOST:PORT": attach to an emulator the user started
    memory: str = "auto"                    # board RAM access: auto | mapped | gdb (Session)
    arena_limit: int | None = None          # let the firmware use only this much of its arena
    count_instructions: bool = False        # per-operator instructions executed
    sources_dir: Path | None = None         # TFLM/CMSIS trees for a firmware build
    cache_dir: Path | None = None           # firmware cache (default SIMRUN_CACHE_DIR)
    firmware_elf: Path | None = None        # run this ELF instead of building the label's firmware
    raw_model: bool = False                 # the model file holds the fixture firmware's own format
    # Target label -> ELF found (or built) already, e.g. once by a suite's parent for all its
    # diffs: such a backend skips the cache lookup, whose source-tree check costs about half
    # a second of every target backend. Labels not in it are looked up as usual.
    firmware_by_label: dict[str, Path] = field(default_factory=dict)

    def __post_init__(self):
        for name in _PATHS:
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                object.__setattr__(self, name, Path(value))
        object.__setattr__(self, "firmware_by_label",
                           {str(k): Path(v) for k, v in dict(self.firmware_by_label).items()})
        if self.timeout is not None and not self.timeout > 0:
            raise BadInput(f"timeout must be positive, not {self.timeout!r}")
        if self.session_timeout is not None and not self.session_timeout > 0:
            raise BadInput(f"session timeout must be positive, not {self.session_timeout!r}")

    def run_timeout(self, slowdown: float = 1.0) -> float:
        """The run's limit on an emulator `slowdown` times slower than QEMU (host backends: 1)."""
        return self.timeout if self.timeout is not None else DEFAULT_TIMEOUT * slowdown

    def emulator_timeout(self, slowdown: float = 1.0) -> float:
        """What each wait inside the emulator may take."""
        return self.run_timeout(slowdown) if self.session_timeout is None else self.session_timeout

    def to_json(self) -> dict:
        data = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}
        data["firmware_by_label"] = {k: str(v) for k, v in self.firmware_by_label.items()}
        return data

    @classmethod
    def from_json(cls, data: dict) -> RunOptions:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"run options: unknown fields {', '.join(unknown)}")
        return cls(**data)

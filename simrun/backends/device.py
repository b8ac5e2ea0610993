"""The emulated target (`target:<cpu>:<kernels>[:single-rounding][:no-fp-contract]`): one emulator session for all
inputs of a run; every operator's outputs come back through the firmware's capture log.

The firmware is built (or found in the cache) by the parent before the worker
starts, so a first build's minutes do not count against the backend timeout;
the worker gets the ELF path in its RunOptions.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..backend_id import BackendId
from ..capture import Capture
from ..model import Model
from ..run_options import RunOptions
from .collect import drop_no_data, package_versions, stage


def open_session(elf, cpu: str, options: RunOptions, label: str | None = None):
    """The Session these options describe, not yet entered (`with open_session(...) as s`):
    `simrun run`, the Robot library and the target backend all start one this way."""
    from ..device.emulators import slowdown
    from ..device.session import Session     # the host backends must not need the controller
    # gdb="HOST:PORT": attach to an emulator the user started with this firmware (loopback only).
    return Session(elf, cpu=cpu, emulator=options.emulator, timeout=options.emulator_timeout(slowdown(options.emulator)),
                   arena_limit=options.arena_limit, label=label, memory=options.memory, gdb=options.gdb,
                   count_instructions=options.count_instructions)


def run(model_path: str, inputs: list[list[np.ndarray]], *, backend: BackendId, options: RunOptions,
        isolate_from: list[Capture] | None = None) -> list[Capture]:
    # The parent built the firmware for `backend.variant` (its rounding and fp-contract only chose
    # the build; its metadata records them) and put the ELF in options.firmware_elf. With
    # `isolate_from` (one reference Capture per input) every operator is fed the reference's
    # values for its inputs (Session.invoke, contract 1). `options.raw_model`: the file holds
    # bytes the firmware takes as they are (the fixture firmware's model), not a .tflite.
    raw_model, emulator = options.raw_model, options.emulator
    model = Path(model_path).read_bytes() if raw_model else Model.from_file(model_path)
    captures = []
    with open_session(options.firmware_elf, backend.variant.cpu, options, backend.label) as session:
        stage(f"loading the model into {emulator}")
        session.load_model(model, raw=raw_model)
        for i, sample in enumerate(inputs):
            stage(f"invoking input {i} on {emulator}")
            if isolate_from is None:
                cap = session.invoke(list(sample), capture_layers=True)
            else:
                cap = session.invoke(list(sample), capture_layers=True, isolate_from=isolate_from[i])
            # The Session reports the firmware's build facts; which emulator ran it is ours to add.
            cap.versions = {"emulator": emulator, **cap.versions, **package_versions("numpy")}
            # A raw (fixture) model has no tensor table to consult.
            captures.append(cap if raw_model else drop_no_data(model, cap))
        stage(f"stopping {emulator}")
    return captures

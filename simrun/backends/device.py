"""The emulated target (`target:<cpu>:<kernels>[:single-rounding]`): one emulator session for all
inputs of a run; every operator's outputs come back through the firmware's capture log.

The firmware is built (or found in the cache) by the parent before the worker
starts, so a first build's minutes do not count against the backend timeout;
the worker gets the ELF path.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..capture import Capture
from ..model import Model
from .collect import drop_no_data, package_versions, stage


def run(model_path: str, inputs: list[list[np.ndarray]], *, label: str, cpu: str,
        kernels: str, firmware_elf: str, emulator: str = "qemu",
        session_timeout: float = 600.0, rounding: str = "double", fp_contract: str = "fast",
        isolate_from: list[Capture] | None = None, gdb: str | None = None,
        raw_model: bool = False, count_instructions: bool = False) -> list[Capture]:
    # `rounding` and `fp_contract` only chose the firmware (the parent built it); its metadata
    # records them. With `isolate_from` (one reference Capture per input) every operator is fed
    # the reference's values for its inputs (Session.invoke, contract 1). `raw_model`: the file
    # holds bytes the firmware takes as they are (the fixture firmware's model), not a .tflite.
    from ..device.session import Session     # the host backends must not need the controller

    model = Path(model_path).read_bytes() if raw_model else Model.from_file(model_path)
    captures = []
    # gdb="HOST:PORT": attach to an emulator the user started with this firmware (loopback only).
    with Session(firmware_elf, cpu=cpu, emulator=emulator, timeout=session_timeout,
                 label=label, gdb=gdb, count_instructions=count_instructions) as session:
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

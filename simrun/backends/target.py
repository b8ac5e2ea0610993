"""The emulated target (`target:<cpu>:<kernels>[:single-rounding]`): one emulator session for all
inputs of a run, stopping after every operator to read its outputs.

The firmware is built (or found in the cache) by the parent before the worker
starts, so a first build's minutes do not count against the backend timeout;
the worker gets the ELF path.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..capture import Capture
from ..model import Model
from .collect import package_versions, stage


def firmware_versions(elf: Path, emulator: str) -> dict[str, str]:
    """The build facts that decide what runs: compiler, flags, source pins."""
    meta_path = Path(elf).parent / "metadata.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    versions = {"emulator": emulator}       # the ELF path is in Capture.meta["elf"]
    for key in ("kernels", "rounding", "compiler", "opt_flags", "cmsis_nn_path", "cache_key"):
        if meta.get(key) is not None:
            versions[f"firmware.{key}"] = str(meta[key])
    for tree, pin in (meta.get("sources") or {}).items():
        versions[f"source.{tree}"] = str(pin)
    return {**versions, **package_versions("numpy")}


def run(model_path: str, inputs: list[list[np.ndarray]], *, label: str, cpu: str,
        kernels: str, firmware_elf: str, emulator: str = "qemu",
        session_timeout: float = 600.0, rounding: str = "double") -> list[Capture]:
    # `rounding` only chose the firmware (the parent built it); its metadata records it.
    from ..session import Session     # the host backends must not need the controller

    model = Model.from_file(model_path)
    versions = firmware_versions(Path(firmware_elf), emulator)
    captures = []
    with Session(firmware_elf, cpu=cpu, emulator=emulator, timeout=session_timeout,
                 label=label) as session:
        stage(f"loading the model into {emulator}")
        session.load_model(model)
        for i, sample in enumerate(inputs):
            stage(f"invoking input {i} on {emulator}")
            cap = session.invoke(list(sample), capture_layers=True)
            cap.backend = label
            cap.versions = {**versions, **cap.versions}
            captures.append(cap)
        stage(f"stopping {emulator}")
    return captures

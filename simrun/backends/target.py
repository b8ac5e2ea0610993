"""The emulated target (`target:<cpu>:<kernels>`): cached firmware in one emulator
session for all inputs of a run, stopping after every operator to read its outputs."""
from __future__ import annotations

import numpy as np

from ..capture import Capture
from ..model import Model
from .collect import package_versions


def run(model_path: str, inputs: list[list[np.ndarray]], *, label: str, cpu: str,
        kernels: str, emulator: str = "qemu", sources_dir: str | None = None,
        session_timeout: float = 600.0) -> list[Capture]:
    # Imported here: the host backends must not need the build or controller modules.
    from ..build import ensure_firmware
    from ..session import Session

    model = Model.from_file(model_path)
    firmware = ensure_firmware(cpu, kernels, sources_dir=sources_dir)
    versions = {"firmware": str(firmware.elf.name), "emulator": emulator,
                **{f"firmware.{k}": str(v) for k, v in firmware.metadata.items()
                   if isinstance(v, (str, int, float))},
                **package_versions("numpy")}
    captures = []
    with Session(firmware.elf, cpu=cpu, emulator=emulator, timeout=session_timeout,
                 label=label) as session:
        session.load_model(model)
        for sample in inputs:
            cap = session.invoke(list(sample), capture_layers=True)
            cap.backend = label
            cap.versions = {**versions, **cap.versions}
            captures.append(cap)
    return captures

"""Keywords for the firmware and the emulator session: build or pick a firmware,
start and stop the emulator, run inferences in it."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from robot.api import SkipExecution, logger
from robot.api.deco import keyword

from ..capture import Capture
from ..errors import SimrunError
from .context import Component, CurrentFirmware


class FirmwareKeywords(Component):
    """The firmware and the emulator session."""

    @keyword
    def build_firmware(self, cpu: str, kernels: str = "reference") -> str:
        """Builds (or takes from the build cache) the TFLM firmware for ``cpu`` and ``kernels``.

        ``kernels`` is ``reference`` or ``cmsis-nn``. Needs the TFLM source
        trees (``SIMRUN_SOURCES_DIR``) or network access; see
        `Skip Unless TFLM Sources`. The firmware becomes the one that
        `Start Emulator Session` runs. Returns the ELF path.

        Example:
        | ${elf} =    Build Firmware    cortex-m55    cmsis-nn
        """
        from ..device.build import ensure_firmware
        fw = ensure_firmware(cpu, kernels, progress=logger.info)
        self.ctx.firmware = CurrentFirmware(Path(fw.elf), cpu, kernels)
        logger.info(f"firmware {cpu}/{kernels}: {fw.elf}")
        return str(fw.elf)

    @keyword
    def use_firmware(self, elf: str, cpu: str, kernels: str | None = None) -> None:
        """Makes an existing firmware ELF the current firmware.

        ``cpu`` selects the emulated board. ``kernels`` names the variant in
        capture labels; by default it comes from the build metadata beside
        the ELF.

        Example:
        | Use Firmware    ${CURDIR}/firmware.elf    cortex-m4    cmsis-nn
        """
        path = Path(elf)
        if not path.is_file():
            raise SimrunError(f"firmware ELF not found: {path}")
        self.ctx.firmware = CurrentFirmware(path, cpu, kernels)

    @keyword
    def start_emulator_session(self, emulator: str = "qemu", timeout: float = 120.0,
                               arena_limit: int | None = None, gdb: str | None = None) -> None:
        """Starts the emulator with the current firmware; stops any session already running.

        A ``.tflite`` model read before with `Load Model` is loaded into the
        new session; a fixture model is not (call `Load Fixture Model` after
        this keyword).

        ``timeout`` is the wall-clock budget in seconds for each step inside
        the emulator; when it runs out the emulator is killed and the keyword
        fails with ``EmulatorTimeout``. ``arena_limit`` (bytes) makes the
        firmware use only part of its tensor arena.

        ``gdb=HOST:PORT`` attaches to an emulator the suite started itself (a
        Renode robot suite, a QEMU), halted at reset with the same firmware and
        its GDB server on this machine (loopback addresses only), instead of
        starting one; stopping the session detaches and leaves it running.

        Example:
        | Start Emulator Session    timeout=20
        | [Teardown]    Stop Emulator Session
        """
        if self.ctx.firmware is None:
            raise SimrunError("no firmware: call Build Firmware, Build Fixture Firmware or Use Firmware first")
        from ..backend_id import FirmwareVariant
        from ..backends.device import open_session
        from ..run_options import RunOptions
        options = RunOptions(session_timeout=timeout, emulator=emulator, arena_limit=arena_limit, gdb=gdb,
                             count_instructions=self.ctx.count_instructions)
        self.ctx.stop_session()
        elf, cpu, kernels = self.ctx.firmware
        session = open_session(elf, cpu, options, FirmwareVariant(cpu, kernels).label if kernels else None)
        self.ctx.session = session.__enter__()
        if self.ctx.model is not None:
            self.ctx.session.load_model(self.ctx.model)

    @keyword
    def stop_emulator_session(self) -> None:
        """Stops the emulator session, if one is running. Safe to call twice.

        Example:
        | [Teardown]    Stop Emulator Session
        """
        self.ctx.stop_session()

    @keyword
    def run_inference(self, capture_layers: bool = True) -> Capture:
        """Runs one inference of the current input in the emulator session.

        With ``capture_layers`` (default) the emulator stops after every
        operator and the outputs of every layer are read back; otherwise only
        the model's final outputs. The capture is stored under its label
        (``target:<cpu>:<kernels>``) and returned. A fault in the firmware
        fails with ``TargetFault``, a run longer than the session timeout
        with ``EmulatorTimeout``.

        Example:
        | Run Inference
        | Run Inference    capture_layers=False
        """
        self.ctx.require_session()
        cap = self.ctx.session.invoke(self.ctx.require_inputs(), capture_layers=capture_layers)
        self.ctx.store(cap)
        return cap

    @keyword
    def get_target_input(self, index: int = 0) -> np.ndarray:
        """Returns model input ``index`` as it is in the emulated target's memory now.

        After `Run Inference` this shows what the firmware actually read.

        Example:
        | Run Inference
        | ${seen} =    Get Target Input
        | Arrays Should Be Equal    ${seen}    ${sent}
        """
        self.ctx.require_session()
        return self.ctx.session.read_input(index)

    @keyword
    def run_should_fail_with(self, error: str, message: str = "", capture_layers: bool = True) -> str:
        """Runs `Run Inference` and expects it to fail with ``error`` whose message contains ``message``.

        ``error`` is the simrun error class name, e.g. ``TargetFault`` or
        ``EmulatorTimeout``. Returns the error message. The same check can be
        written with BuiltIn's ``Run Keyword And Expect Error``, because Robot
        shows these errors as ``<ErrorClass>: <message>``.

        Example:
        | Run Should Fail With    TargetFault    in operator 0:3 FIXTURE_FAULT
        | Run Keyword And Expect Error    EmulatorTimeout: *    Run Inference
        """
        try:
            self.run_inference(capture_layers=capture_layers)
        except SimrunError as err:
            kind = type(err).__name__
            if kind != error or message not in str(err):
                raise AssertionError(f"expected {error} with '{message}', got {kind}: {err}") from None
            logger.info(f"failed as expected: {kind}: {err}")
            return str(err)
        raise AssertionError(f"expected {error} with '{message}', but the inference succeeded")

    @keyword("Skip Unless TFLM Sources")
    def skip_unless_tflm_sources(self) -> None:
        """Skips the current test unless local TFLM / CMSIS-NN source trees are available.

        Sources are given with the ``SIMRUN_SOURCES_DIR`` environment variable.

        Example:
        | [Setup]    Skip Unless TFLM Sources
        """
        from ..device import sources
        if sources.local_sources() is None:
            given = os.environ.get(sources.ENV_VAR)
            missing = f" ({given} lacks {', '.join(sources.missing_trees(Path(given)))})" if given else ""
            raise SkipExecution(f"needs local TFLM/CMSIS-NN source trees{missing}: {sources.HOW_TO_PROVIDE}")

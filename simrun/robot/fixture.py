"""Keywords for simrun's own fixture firmware and its numpy reference (no TFLM needed)."""
from __future__ import annotations

from pathlib import Path

from robot.api.deco import keyword

from ..errors import SimrunError
from .context import Component, CurrentFirmware, assert_arrays_equal


class FixtureKeywords(Component):
    """simrun's fixture firmware and its numpy reference."""

    @keyword
    def build_fixture_firmware(self, cpu: str = "cortex-m3") -> str:
        """Builds simrun's own fixture firmware for ``cpu`` and makes it the current firmware.

        The fixture implements the same ABI as the TFLM firmware but runs a
        small deterministic int8 computation of its own, so it needs only
        arm-none-eabi-gcc, not the TFLM sources. Returns the ELF path.

        Example:
        | Build Fixture Firmware    cortex-m3
        """
        from ..device import fixture
        elf = fixture.build_fixture(cpu)
        self.ctx.firmware = CurrentFirmware(Path(elf), cpu, "fixture")
        return str(elf)

    @keyword
    def load_fixture_model(self, extra_layer: str = "none", seed: int = 0, input_len: int = 64) -> None:
        """Loads the fixture firmware's demo network into the running session.

        The demo network is dense -> relu -> dense on ``input_len`` int8
        values, with weights drawn from ``seed``. ``extra_layer`` appends one
        more layer: ``fault`` (the firmware faults on purpose, expect
        ``TargetFault``), ``hang`` (it loops forever, expect
        ``EmulatorTimeout``) or ``none``. Needs `Build Fixture Firmware` and
        `Start Emulator Session` first.

        Example:
        | Load Fixture Model    extra_layer=fault
        """
        from ..device import fixture
        extra = {"none": [], "fault": [fixture.Layer(fixture.KIND_FAULT)],
                 "hang": [fixture.Layer(fixture.KIND_HANG)]}
        if extra_layer not in extra:
            raise SimrunError(f"extra_layer must be one of {', '.join(extra)}, not {extra_layer!r}")
        self.ctx.require_session()
        model = fixture.demo_model(input_len, seed=seed, extra=extra[extra_layer])
        self.ctx.model, self.ctx.fixture_model = None, model
        self.ctx.forget_results()
        self.ctx.session.load_model(model.to_bytes(), raw=True)

    @keyword
    def fixture_reference_outputs(self) -> list:
        """Returns every layer's output for the current input as computed by the fixture's numpy model.

        Example:
        | @{expected} =    Fixture Reference Outputs
        """
        from ..device import fixture
        if self.ctx.fixture_model is None:
            raise SimrunError("no fixture model: call Load Fixture Model first")
        return fixture.reference(self.ctx.fixture_model, self.ctx.require_inputs()[0])

    @keyword
    def captured_layers_should_equal_fixture_reference(self, label: str | None = None) -> None:
        """Checks that every captured layer equals the fixture's numpy model, bit for bit.

        Example:
        | Run Inference
        | Captured Layers Should Equal Fixture Reference
        """
        expected = self.fixture_reference_outputs()
        cap = self.ctx.capture(label)
        self.ctx.check_layer_count(len(expected), label)
        for rec, want in zip(cap.ops, expected):
            assert_arrays_equal(rec.outputs[0].values, want,
                                        f"{cap.backend}: layer {rec.subgraph}:{rec.index} {rec.op_name} "
                                        f"differs from the fixture reference")

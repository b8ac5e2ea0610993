"""Keywords on what a target run cost: instructions executed per operator and in total.

Counts are exact and identical on every run of the same firmware, model and
input (simrun.device.cost); they are instructions executed, not cycles.
"""
from __future__ import annotations

from robot.api import logger
from robot.api.deco import keyword

from ..capture import Capture, OpRecord
from ..errors import SimrunError
from .context import Component


class CostKeywords(Component):
    """Instruction counting on the emulated target and assertions on the counts."""

    @keyword
    def count_instructions(self, enabled: bool = True) -> None:
        """Makes later target runs count the instructions every operator executes.

        Applies to `Start Emulator Session` and to `Run Backend` / `Compare Variants`
        with ``target:...`` backends from now on (QEMU: simrun's plugin; Renode: its
        own counter, read at a stop per operator), until
        ``Count Instructions    enabled=False``. The counts are exact: the same on
        every run of the same firmware, model and input. They are instructions
        executed, not cycles. Fails with ``SourcesMissing`` when QEMU's plugin
        header can be neither found (``SIMRUN_QEMU_SOURCE_DIR``) nor downloaded.

        Example:
        | Count Instructions
        | Start Emulator Session
        | Run Inference
        | Instructions Of Layer Should Be Below    0:0    2000000
        """
        if enabled:
            # Built now (QEMU's plugin header may need a download), so a problem shows here.
            # Renode sessions do not need it; QEMU is the default emulator.
            from ..device.qemu_plugin import ensure_plugin
            ensure_plugin()
        self.ctx.count_instructions = bool(enabled)

    @keyword
    def get_instructions_of_layer(self, layer: str, label: str | None = None) -> int:
        """Returns the instructions one operator executed in a capture.

        ``layer`` is ``<subgraph>:<operator>``, an operator index in subgraph 0,
        or an output tensor name; ``label`` selects the capture (default: the
        last one stored).

        Example:
        | ${n} =    Get Instructions Of Layer    0:0    label=target:cortex-m55:cmsis-nn
        """
        cap = self.ctx.capture(label)
        return _counted(cap, _op(cap, layer))

    @keyword
    def instructions_of_layer_should_be_below(self, layer: str, limit: int, label: str | None = None) -> None:
        """Fails unless the operator ``layer`` executed fewer than ``limit`` instructions.

        Example:
        | Instructions Of Layer Should Be Below    0:0    1500000    label=target:cortex-m55:cmsis-nn
        """
        cap = self.ctx.capture(label)
        rec = _op(cap, layer)
        n = _counted(cap, rec)
        logger.info(f"{cap.backend}: layer {rec.subgraph}:{rec.index} {rec.op_name} executed {n:,} instructions")
        if n >= int(limit):
            raise AssertionError(f"{cap.backend}: layer {rec.subgraph}:{rec.index} {rec.op_name} executed "
                                 f"{n:,} instructions, limit {int(limit):,}")

    @keyword
    def total_instructions_should_be_below(self, limit: int, label: str | None = None) -> None:
        """Fails unless the whole inference's operators executed fewer than ``limit`` instructions.

        Example:
        | Total Instructions Should Be Below    50000000
        """
        cap = self.ctx.capture(label)
        total = cap.meta.get("instructions_total")
        if total is None:
            raise SimrunError(f"{cap.backend}: instructions were not counted; call Count Instructions "
                              f"before the run")
        logger.info(f"{cap.backend}: {total:,} instructions executed by the operators")
        if total >= int(limit):
            raise AssertionError(f"{cap.backend}: {total:,} instructions executed, limit {int(limit):,}")

    @keyword
    def layer_should_execute_fewer_instructions(self, layer: str, label: str, than: str) -> None:
        """Fails unless operator ``layer`` executed fewer instructions in capture ``label``
        than in capture ``than``: what an optimized kernel variant should buy.

        Example:
        | Layer Should Execute Fewer Instructions    0:0    target:cortex-m4:cmsis-nn    than=target:cortex-m4:reference
        """
        a, b = self.ctx.capture(label), self.ctx.capture(than)
        rec_a, rec_b = _op(a, layer), _op(b, layer)
        n_a, n_b = _counted(a, rec_a), _counted(b, rec_b)
        logger.info(f"layer {layer} {rec_a.op_name}: {label} {n_a:,}, {than} {n_b:,} instructions")
        if n_a >= n_b:
            raise AssertionError(f"layer {layer} {rec_a.op_name}: {label} executed {n_a:,} instructions, "
                                 f"not fewer than {than} ({n_b:,})")


def _op(cap: Capture, layer: str) -> OpRecord:
    for rec in cap.ops:
        if any(t.name == layer for t in rec.outputs):
            return rec
    sg, _, idx = str(layer).rpartition(":")
    try:
        return cap.op(int(sg or 0), int(idx))
    except ValueError:
        raise SimrunError(f"{cap.backend}: no layer or output tensor named {layer!r}") from None
    except KeyError as err:
        raise SimrunError(str(err.args[0])) from None


def _counted(cap: Capture, rec: OpRecord) -> int:
    if rec.instructions is None:
        raise SimrunError(f"{cap.backend}: instructions were not counted for layer {rec.subgraph}:{rec.index}; "
                          f"call Count Instructions before the run")
    return rec.instructions

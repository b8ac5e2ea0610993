"""Keywords for task-level checks: decode the outputs (classify, detect, wakeword or the
user's python: decoder) and assert on the decisions instead of the tensors."""
from __future__ import annotations

from robot.api import logger
from robot.api.deco import keyword

from ..errors import SimrunError
from .context import Component


class TaskKeywords(Component):
    """Task decoders on the comparison."""

    @keyword
    def set_task(self, task: str, *options: str) -> None:
        """Decodes the outputs of every later comparison with ``task`` and compares the decisions.

        ``task`` is ``classify``, ``detect``, ``wakeword`` or ``python:FILE.py:FUNCTION``;
        ``options`` are the decoder's settings as ``KEY=VALUE`` (README: Tasks). The policy
        then judges the decisions (`Outputs Should Match Within Policy`) and reports the
        tensor drift.

        Example:
        | Set Task    detect    score_threshold=0.3    iou_threshold=0.5
        | Compare Captures    tflm-host    target:cortex-m55:cmsis-nn
        | Task Decisions Should Agree
        """
        from ..analysis.tasks import parse_task
        settings = {}
        for option in options:
            key, sep, value = option.partition("=")
            if not sep:
                raise SimrunError(f"task option {option!r}: write KEY=VALUE")
            settings[key.strip()] = value.strip()
        self.ctx.task = parse_task(task, settings, self.ctx.require_model())

    @keyword
    def task_decisions_should_agree(self, a: str | None = None, b: str | None = None) -> None:
        """Fails when the task's decision differs between two backends of the last comparison
        (every pair, or the pair of ``a`` and ``b``), naming what changed.

        Example:
        | Task Decisions Should Agree    tflm-host    target:cortex-m55:cmsis-nn
        """
        outcomes = self._outcomes(a, b)
        changed = [f"{o.name}: {o.summary}" for o in outcomes if o.changed]
        for o in outcomes:
            logger.info(f"{o.name}: {o.summary}")
        if changed:
            raise AssertionError("task decisions differ: " + "; ".join(changed))

    @keyword
    def get_task_metric(self, name: str, a: str | None = None, b: str | None = None):
        """Returns one task metric of a pair (``top1_agreement``, ``max_box_shift_px``,
        ``matched``, ``max_trigger_shift_steps``, ...; README: Tasks).

        Example:
        | ${shift}=    Get Task Metric    max_box_shift_px    tflm-host    tflite-optimized
        | Should Be True    ${shift} <= 2
        """
        outcomes = self._outcomes(a, b)
        if len(outcomes) != 1:
            raise SimrunError(f"name one pair with a= and b=; the task compared: "
                              f"{', '.join(o.name for o in outcomes)}")
        metrics = outcomes[0].metrics
        if name not in metrics:
            raise SimrunError(f"task metric {name!r} not found; have: {', '.join(metrics)}")
        return metrics[name]

    def _outcomes(self, a, b):
        run = self.ctx.require_result().run
        if run.task is None:
            raise SimrunError("no task result: call Set Task, then Compare Captures or Compare Variants")
        outcomes = [o for o in run.task.pairs if {o.a, o.b} >= {x for x in (a, b) if x}]
        if not outcomes:
            raise SimrunError(f"no task result for {a} vs {b}; have: "
                              f"{', '.join(o.name for o in run.task.pairs)}")
        return outcomes

"""Keywords that explain a difference: each layer's own error (the layer run on the reference's
inputs) against the error it inherited, and the cause (simrun.analysis.diagnose)."""
from __future__ import annotations

from robot.api import logger
from robot.api.deco import keyword

from ..errors import BackendError, SimrunError
from .context import Component


class DiagnosisKeywords(Component):
    """Diagnosing the last comparison."""

    @keyword
    def diagnose_against(self, reference: str, *labels: str) -> None:
        """Compares the backends and explains every differing layer against ``reference``.

        Runs ``reference`` and every label (default: the backends of the last comparison) on
        the current model and input where no capture exists yet, compares them, then runs each
        backend again *isolated* (every operator fed ``reference``'s values for its inputs) and
        the numerics variants the causes need (the other rounding mode of a target, firmware
        built without FMA contraction, LiteRT without XNNPACK). Extra firmware is built when
        missing. The diagnosis is logged and checked by `Layer Should Not Introduce Error` and
        `Cause Of Layer Should Be`; `Write Reports` includes it.

        Example:
        | Diagnose Against    tflite-reference    tflite-optimized    tflm-host
        | Diagnose Against    tflm-host    target:cortex-m55:cmsis-nn
        """
        ctx = self.ctx
        if not labels:
            run = ctx.require_result().run
            labels = tuple(run.comparisons[0].backends) if run.comparisons else ()
        wanted = list(dict.fromkeys((reference, *labels)))
        for label in wanted:
            if label not in ctx.captures and label not in ctx.backend_errors:
                try:
                    ctx.run_backend(label)
                except BackendError as err:
                    logger.info(f"backend failed: {err}")
        ran = [label for label in wanted if label in ctx.captures]
        if reference not in ran:
            raise SimrunError(f"the reference {reference} has no capture"
                              + (f": {ctx.backend_errors[reference]}" if reference in ctx.backend_errors else ""))
        if len(ran) < 2:
            raise SimrunError(f"need a second backend beside {reference} to diagnose")
        diagnosis = ctx.compare(ran, diagnose_against=reference, progress=_log_progress).diagnosis
        for summary in diagnosis.summaries(0):
            logger.info(summary)

    @keyword
    def layer_should_not_introduce_error(self, layer: str, a: str | None = None, b: str | None = None) -> None:
        """Checks that ``layer`` adds no error of its own: run on the reference's inputs, its
        output equals the other backend's. Inherited error is allowed.

        ``layer`` is ``<subgraph>:<operator>``, an operator index, a tensor name or an operator
        type such as ``CONV_2D`` (every layer of that type). ``a`` and ``b`` pick the pair.
        A layer that could not be isolated fails, with the reason.

        Example:
        | Layer Should Not Introduce Error    0:3
        | Layer Should Not Introduce Error    LOGISTIC    tflite-reference    target:cortex-m55:cmsis-nn
        """
        pd, layers = self._layers(layer, a, b)
        bad = []
        for d in layers:
            if d.own is None:
                bad.append(f"{d.label}: not isolated ({d.not_isolated})")
            elif d.own.diverges:
                bad.append(f"{d.label}: cause {d.cause}: {d.evidence}")
        if bad:
            raise AssertionError(f"{pd.name}: {len(bad)} layer(s) introduce error: " + "; ".join(bad))

    @keyword
    def cause_of_layer_should_be(self, layer: str, cause: str, a: str | None = None,
                                 b: str | None = None) -> None:
        """Checks the diagnosed cause of ``layer`` (every matching layer): one of ``inherited``,
        ``rounding``, ``kernel``, ``amplified``, ``float-contraction``, ``unexplained``, ``none``.

        Example:
        | Cause Of Layer Should Be    0:1    rounding    tflm-host    tflite-optimized
        | Cause Of Layer Should Be    LOGISTIC    amplified
        """
        from ..analysis.diagnose import CAUSES
        if cause not in CAUSES:
            raise SimrunError(f"unknown cause {cause!r}; known: {', '.join(CAUSES)}")
        pd, layers = self._layers(layer, a, b)
        bad = [f"{d.label} is {d.cause} ({d.evidence})" for d in layers if d.cause != cause]
        if bad:
            raise AssertionError(f"{pd.name}: expected cause {cause}, but " + "; ".join(bad))

    @keyword
    def get_diagnosis_summary(self, a: str | None = None, b: str | None = None) -> str:
        """Returns the one-sentence diagnosis of a pair (``a``, ``b`` pick it).

        Example:
        | ${text} =    Get Diagnosis Summary    tflite-reference    tflite-optimized
        | Should Contain    ${text}    introduce error
        """
        return self._pair_diagnosis(a, b).summary

    # --- helpers ----------------------------------------------------------------------
    def _pair_diagnosis(self, a, b):
        run = self.ctx.require_result().run
        if run.diagnosis is None:
            raise SimrunError("no diagnosis: call Diagnose Against first")
        pair = self.ctx.pair(a, b)
        n = next(i for i, c in enumerate(run.comparisons) if pair in c.pairs)
        return run.diagnosis.pair(n, pair.a, pair.b)

    def _layers(self, layer: str, a, b):
        pd = self._pair_diagnosis(a, b)
        found = [d for d in pd.layers if layer in (d.id, d.op_name, d.tensor_name, f"{d.subgraph}:{d.op_index}")
                 or (d.subgraph == 0 and layer == str(d.op_index))]
        if not found:
            raise SimrunError(f"{pd.name}: no layer matches {layer!r}")
        return pd, found


def _log_progress(label: str, event: str, seconds: float, message: str) -> None:
    if event in ("started", "note", "failed"):
        logger.info(f"{label}: {event} {message}".rstrip())

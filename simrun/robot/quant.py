"""Keywords for the quantization A/B (simrun.quant.ab): convert a float model per scheme,
then read quantization error against the float model and implementation error between
backends, per scheme, and assert on them."""
from __future__ import annotations

from robot.api import logger
from robot.api.deco import keyword

from ..errors import SimrunError
from .context import Component


class QuantKeywords(Component):
    """The quantization A/B: per-channel vs per-tensor (vs int16x8)."""

    def __init__(self, ctx):
        super().__init__(ctx)
        self._ab = None               # simrun.quant.ab.ABRun of the last `Run Quantization AB`

    @keyword
    def write_example_models(self, directory: str) -> str:
        """Writes the `simrun example` models into ``directory`` and returns the path of
        the example detector's float Keras model (``detector.keras``; its calibration data
        is ``detector_calibration.npy`` beside it). Needs TensorFlow.

        Example:
        | ${keras} =    Write Example Models    ${TEMPDIR}/example
        """
        from pathlib import Path
        from ..quant.convert import tensorflow
        from ..quant.examples import write_examples
        for c in write_examples(tensorflow(), directory, logger.info):
            logger.info(f"wrote {c.path} ({c.scheme})")
        return str(Path(directory) / "detector.keras")

    @keyword
    def run_quantization_ab(self, model: str, schemes: str = "per-channel,per-tensor",
                            dataset: str = "random:0", count: int = 1,
                            backends: str = "tflite-optimized,tflite-reference,tflm-host",
                            cpu: str | None = None, kernels: str = "reference,cmsis-nn",
                            diagnose: bool = True, policy: str | None = None,
                            directory: str | None = None) -> None:
        """Quantizes ``model`` (.keras, .h5, SavedModel) under every scheme and runs the A/B:
        each quantized model on ``backends`` (plus ``target:<cpu>:<kernels>`` per kernel
        variant when ``cpu`` is given) with ``count`` inputs from ``dataset``, compared with
        the float model on the same inputs. Models (and with `Write AB Report`, reports) go
        into ``directory`` (default: a new temporary directory).

        Example:
        | Run Quantization AB    ${keras}    dataset=${data}    backends=tflite-reference,tflm-host
        | Run Quantization AB    ${keras}    cpu=cortex-m55    kernels=cmsis-nn
        """
        import tempfile
        from pathlib import Path
        from ..analysis.policy import Policy
        from ..commands.diff import backend_labels
        from ..quant.ab import run_ab
        from ..quant.convert import parse_schemes

        labels = backend_labels(backends + (",target" if cpu else ""), [cpu] if cpu else [], kernels)
        out = Path(directory or tempfile.mkdtemp(prefix="simrun-ab-"))
        self._ab = run_ab(Path(model), parse_schemes(schemes), labels, out, dataset=dataset,
                          count=int(count), policy=Policy.load(policy), diagnose=diagnose,
                          progress=lambda stage, msg: logger.info(f"[ab] {stage}: {msg}"))
        self._out = out
        from ..report.ab import render
        logger.info(render(self._ab))

    @keyword
    def get_quantization_error(self, scheme: str, output: str | None = None,
                               metric: str = "rel_error") -> float:
        """Returns ``metric`` (``mae``, ``max_error``, ``rel_error``, ``cosine``) of the
        quantized model of ``scheme`` against the float model at one output (by tensor
        name), or the worst over all outputs (lowest for ``cosine``) when no output is named.

        Example:
        | ${err} =    Get Quantization Error    per-tensor    metric=max_error
        """
        res = self._scheme(scheme)
        if metric not in ("mae", "max_error", "rel_error", "cosine"):
            raise SimrunError(f"unknown metric {metric!r}; use mae, max_error, rel_error or cosine")
        if res.error:
            raise AssertionError(f"{scheme}: no quantization error figures: {res.error}")
        stats = [e for e in res.outputs if output is None or e.name == output]
        if not stats:
            raise SimrunError(f"{scheme}: no output {output!r}; outputs: "
                              + ", ".join(e.name for e in res.outputs))
        values = [getattr(e, metric) for e in stats]
        return min(values) if metric == "cosine" else max(values)

    @keyword
    def quantization_error_should_be_below(self, max_rel_error: float, scheme: str | None = None,
                                           output: str | None = None) -> None:
        """Fails if the relative error (||q - f|| / ||f||) of any output of ``scheme`` (default:
        every scheme) against the float model reaches ``max_rel_error``.

        Example:
        | Quantization Error Should Be Below    0.05    scheme=per-tensor
        """
        for res in self._schemes(scheme):
            err = self.get_quantization_error(res.scheme, output)
            if err >= float(max_rel_error):
                raise AssertionError(f"{res.scheme}: relative error vs float {err:.4g} "
                                     f"is not below {float(max_rel_error):g}")

    @keyword
    def get_implementation_mismatch_ratio(self, scheme: str, a: str, b: str) -> float:
        """Returns the share of values (every layer, every input) in which backends ``a``
        and ``b`` differ on the quantized model of ``scheme``.

        Example:
        | ${ratio} =    Get Implementation Mismatch Ratio    per-channel    tflm-host    target:cortex-m55:cmsis-nn
        """
        return self._figures(scheme, a, b).mismatch_ratio

    @keyword
    def implementation_mismatch_ratio_should_be_at_most(self, max_ratio: float, a: str, b: str,
                                                        scheme: str | None = None) -> None:
        """Fails if backends ``a`` and ``b`` differ in more than ``max_ratio`` of the values on
        the model of ``scheme`` (default: every scheme). ``0`` demands bit-exact agreement.

        Example:
        | Implementation Mismatch Ratio Should Be At Most    0    tflite-reference    tflm-host
        """
        for res in self._schemes(scheme):
            f = self._figures(res.scheme, a, b)
            if f.mismatch_ratio > float(max_ratio):
                first = f.first_divergent
                raise AssertionError(
                    f"{res.scheme}: {f.name} differ in {100 * f.mismatch_ratio:.3g}% of values "
                    f"(max |Δ| {f.max_abs_delta:g}), more than {100 * float(max_ratio):g}%"
                    + (f"; first at {first.label}" if first is not None else ""))

    @keyword
    def scheme_should_agree_at_least_as_well(self, scheme: str, other: str, a: str, b: str) -> None:
        """Fails if backends ``a`` and ``b`` disagree more often on ``scheme``'s model than on
        ``other``'s: the question "does per-tensor buy device agreement?" as an assertion.

        Example:
        | Scheme Should Agree At Least As Well    per-tensor    per-channel    tflm-host    target:cortex-m55:cmsis-nn
        """
        mine, theirs = self._figures(scheme, a, b), self._figures(other, a, b)
        if mine.mismatch_ratio > theirs.mismatch_ratio:
            raise AssertionError(f"{a} vs {b}: {scheme} mismatches {100 * mine.mismatch_ratio:.3g}% "
                                 f"of values, {other} only {100 * theirs.mismatch_ratio:.3g}%")

    @keyword
    def write_ab_report(self, directory: str | None = None) -> str:
        """Writes summary.json, report.html and each scheme's differential report into
        ``directory`` (default: the A/B's own directory); returns the report.html path.

        Example:
        | ${html} =    Write AB Report    ${OUTPUT DIR}/ab
        """
        from ..report.ab import write_reports
        ab = self._require()
        written = write_reports(ab, directory or self._out)
        logger.info(f"A/B report: {written['html']}")
        return str(written["html"])

    # --- helpers -------------------------------------------------------------------------
    def _require(self):
        if self._ab is None:
            raise SimrunError("no A/B yet: call Run Quantization AB first")
        return self._ab

    def _scheme(self, scheme: str):
        for res in self._require().schemes:
            if res.scheme == scheme:
                return res
        raise SimrunError(f"the A/B has no scheme {scheme!r}; it ran: "
                          + ", ".join(r.scheme for r in self._ab.schemes))

    def _schemes(self, scheme: str | None):
        return [self._scheme(scheme)] if scheme else list(self._require().schemes)

    def _figures(self, scheme: str, a: str, b: str):
        from ..quant.ab import implementation_figures
        res = self._scheme(scheme)
        if res.run is None:
            raise AssertionError(f"{scheme}: no differential run")
        for f in implementation_figures(res.run):
            if {f.a, f.b} == {a, b}:
                return f
        if a in res.run.backend_errors or b in res.run.backend_errors:
            failed = a if a in res.run.backend_errors else b
            raise AssertionError(f"{scheme}: {failed} failed: {res.run.backend_errors[failed]}")
        raise SimrunError(f"{scheme}: no pair {a} vs {b}; pairs: "
                          + ", ".join(f.name for f in implementation_figures(res.run)))

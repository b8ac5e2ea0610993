"""Keywords that compare captures and judge them: divergence, mismatch ratios, the
tolerance policy, backend failures, reports."""
from __future__ import annotations

from robot.api import logger
from robot.api.deco import keyword

from ..errors import BackendError, SimrunError
from .context import Component


class ComparisonKeywords(Component):
    """Comparing captures and judging them."""

    @keyword
    def compare_variants(self, *labels: str) -> None:
        """Runs every named backend on the current model and input, then compares them.

        A backend that fails is recorded (see `Backend Should Have Failed With`)
        and left out of the comparison; the others are still compared.

        Example:
        | Compare Variants    target:cortex-m55:reference    target:cortex-m55:cmsis-nn
        """
        ok = []
        for name in labels:
            try:
                self.ctx.run_backend(name)
                ok.append(name)
            except BackendError as err:
                logger.info(f"backend failed: {err}")
        self._compare(ok)

    @keyword
    def compare_captures(self, *labels: str) -> None:
        """Compares captures already stored (by `Run Inference` or `Run Backend`) layer by layer.

        With no labels, compares every capture stored so far. The result is
        what the assertions below and `Write Reports` use.

        Example:
        | Compare Captures    tflm-host    target:cortex-m55:reference
        """
        self._compare(labels or tuple(self.ctx.captures))

    @keyword
    def layer_mismatch_ratio_should_be_below(self, max_ratio: float, a: str | None = None,
                                             b: str | None = None, layer: str | None = None) -> None:
        """Checks that the share of mismatched values is below ``max_ratio`` in every layer.

        ``a`` and ``b`` pick the compared pair (needed only when the last
        comparison has several pairs); ``layer`` restricts the check to one
        layer (``<subgraph>:<operator>`` or operator name such as ``CONV_2D``
        — all layers of that type).

        Example:
        | Layer Mismatch Ratio Should Be Below    0.05
        | Layer Mismatch Ratio Should Be Below    0.001    layer=0:2
        """
        pair = self.ctx.pair(a, b)
        layers = [s for s in pair.layers if _layer_matches(s, layer)]
        if not layers:
            raise SimrunError(f"{pair.name}: no layer matches {layer!r}")
        # A layer whose shape or dtype differs has no ratio; it cannot pass.
        bad = [f"{s.label} ({s.status})" if s.layout_differs else f"{s.label} mismatch {s.mismatch_ratio:.4f}"
               for s in layers if s.layout_differs or not s.mismatch_ratio < max_ratio]
        if bad:
            raise AssertionError(f"{pair.name}: mismatch ratio not below {max_ratio} in "
                                 f"{len(bad)} layer(s): " + "; ".join(bad))

    @keyword
    def first_divergent_layer_should_be(self, expected: str, a: str | None = None, b: str | None = None) -> None:
        """Checks the first layer where a pair differs: ``<subgraph>:<operator>`` or ``NONE``.

        Example:
        | First Divergent Layer Should Be    NONE
        | First Divergent Layer Should Be    0:1    tflm-host    target:cortex-m55:cmsis-nn
        """
        pair = self.ctx.pair(a, b)
        first = pair.first_divergent
        actual = "NONE" if first is None else f"{first.subgraph}:{first.op_index}"
        if actual != expected.upper():
            name = "" if first is None else f" ({first.label})"
            raise AssertionError(f"{pair.name}: first divergent layer is {actual}{name}, expected {expected}")

    @keyword
    def outputs_should_match_within_policy(self, policy: str | None = None) -> None:
        """Evaluates the last comparison against a tolerance policy file (default: simrun's).

        Fails with every violation the policy reports.

        Example:
        | Outputs Should Match Within Policy
        | Outputs Should Match Within Policy    ${CURDIR}/strict.toml
        """
        from ..report import terminal
        result = self.ctx.judged(policy)
        verdict = result.verdict
        logger.info(terminal.render(result.run, verdict))
        if not verdict.passed:
            raise AssertionError("policy failed: " + "; ".join(str(f) for f in verdict.failures))

    @keyword
    def backend_should_have_failed_with(self, backend: str, message: str) -> None:
        """Checks that ``backend`` failed and its error message contains ``message``.

        Example:
        | Backend Should Have Failed With    tflite-reference    quantized_dimension
        """
        if backend not in self.ctx.backend_errors:
            raise AssertionError(f"backend {backend} did not fail; failures: "
                                 f"{', '.join(self.ctx.backend_errors) or '(none)'}")
        got = self.ctx.backend_errors[backend]
        if message not in got:
            raise AssertionError(f"backend {backend} failed with {got!r}, which does not contain {message!r}")

    @keyword
    def write_reports(self, out_dir: str, policy: str | None = None) -> str:
        """Writes the reports of the last comparison (JSON, JUnit XML, Markdown, HTML with plots) to
        ``out_dir``, replacing an earlier report there as a whole.

        Returns the directory.

        Example:
        | Write Reports    ${OUTPUT DIR}/simrun
        """
        import sys
        from .. import report
        from ..report.provenance import RunRecord
        result = self.ctx.judged(policy)
        run = result.run
        # Provenance of the Robot run (its command line); junit.xml agrees with the
        # result's exit code, the one `simrun diff` would exit with.
        record = RunRecord("robot", list(sys.argv), model_path=getattr(run.model, "path", None),
                           policy_path=policy, labels=list(run.backends))
        record.finished = record.started
        files = report.write_reports(result, out_dir, record=record)
        logger.info(report.terminal.render(run, result.verdict))
        logger.info(f'<a href="{files["html"].resolve().as_uri()}">{files["html"]}</a>', html=True)
        return str(out_dir)

    def _compare(self, labels) -> None:
        caps = [self.ctx.capture(label) for label in labels]     # a missing label fails here
        if len(caps) < 2 and not self.ctx.backend_errors:
            raise SimrunError(f"need at least two captures to compare, have: {', '.join(labels) or '(none)'}")
        self.ctx.compare(labels)


def _layer_matches(stats, layer: str | None) -> bool:
    if layer is None:
        return True
    return layer in (stats.op_name, stats.tensor_name, f"{stats.subgraph}:{stats.op_index}",
                     str(stats.op_index) if stats.subgraph == 0 else None)

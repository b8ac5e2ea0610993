"""The check behind the rounding remedy: the whole model in the other-rounding firmware.

The diagnosis shows per layer (isolated runs) that another rounding mode removes a pair's own
error; whether the *whole model* then equals the other side is a different question (errors
of other causes, layers that were not isolated). So after the diagnosis, for every pair with
a rounding cause, the firmware variant that removed it runs once, normally, on the same
inputs and is compared with that side on every layer (simrun.analysis.remedy). One run per
variant, however many pairs and layers want it; none when the variant was in the backend
matrix already (its Captures are reused). A variant that fails to run leaves its remedy
checked per layer only, with the reason; it never fails the diff.
"""
from __future__ import annotations

from ..analysis.remedy import check_whole_model, not_run, remedies, rounding_checks_wanted
from ..backends import run_backend
from ..backends.parallel import run_each
from ..errors import BackendError
from ..run_options import RunOptions


def check_remedies(run, samples, options: RunOptions | None = None, *, progress=None,
                   sequences: list[int] | None = None, jobs: int = 1, runner=None):
    """Make the whole-model runs the remedies need and attach run.remedies; returns them.
    `runner(label, samples, options, sequences) -> [Capture]` (default: run_backend)."""
    if getattr(run, "diagnosis", None) is None:
        run.remedies = []
        return run.remedies
    options = options or RunOptions()
    wanted = rounding_checks_wanted(run)
    failed = dict(run.backend_errors)          # a variant of the matrix that failed: not again
    missing = list(dict.fromkeys(v for v, _ in wanted if v not in run.captures and v not in failed))
    runner = runner or _run_whole

    def task(label):
        def go():
            if progress:
                progress("diagnosis", "note", 0.0,
                         f"running {label} on the whole model to check the rounding remedy")
            try:
                return runner(label, run.model.path, samples, options, sequences)
            except BackendError as err:
                return err.message
        return go

    ran = dict(zip(missing, run_each([task(label) for label in missing], jobs)))
    checks = {}
    for variant, other in wanted:
        if other not in run.captures:
            checks[variant, other] = not_run(variant, other, f"{other} has no result to compare with")
            continue
        caps = run.captures.get(variant) if variant in run.captures else ran.get(variant, failed.get(variant))
        if isinstance(caps, str):
            checks[variant, other] = not_run(variant, other, caps)
        else:
            checks[variant, other] = check_whole_model(run.model, variant, caps, other, run.captures[other],
                                                       from_matrix=variant in run.captures)
    run.remedies = remedies(run, checks)
    return run.remedies


def _run_whole(label, model_path, samples, options, sequences):
    return run_backend(label, model_path, samples, options, sequences=sequences)

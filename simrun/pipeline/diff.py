"""The one way through: run the backend matrix, compare, diagnose, judge.

    result = diff_run(model, input_names, samples, labels, reference=None, diagnose=True,
                      policy=None, progress=...)        # -> simrun.analysis.result.DiffResult

`simrun diff`, the Robot library, the quantization A/B and the Python API (simrun.diff) all
call this (the Robot library, whose keywords run backends one at a time, its second half
`diff_matrix`); the reports read the DiffResult it returns.

Diagnosing (on by default) adds, after the normal runs:
1. one isolated run per backend against the reference (`reference`, default tflite-reference
   when it ran, else tflm-host, else the most reference-like backend that ran): every operator
   fed the reference's values for its inputs, so each layer's own error shows;
2. the extra numerics variants the causes need, isolated too, only where some layer has an own
   error: the other rounding mode of a target, a target built -ffp-contract=off for float
   layers, LiteRT without XNNPACK for tflite-optimized. Firmware variants are built when
   missing; every extra run is announced through `progress`;
3. simrun.analysis.diagnose over all of it (run.diagnosis).
An isolated run that fails is reported in the diagnosis (its layers "not isolated"), never
fatal: the normal comparison stands.
"""
from __future__ import annotations

from ..analysis.compare import backend_rank, compare
from ..analysis.diffrun import DiffRun
from ..analysis.policy import Policy
from ..analysis.result import DiffResult, judge
from ..analysis.cost import summarize
from ..analysis.diagnose import diagnose_run, target_parts, wanted_variants
from ..backends import DEFAULT_TIMEOUT, MatrixResult, parse_backend, run_backend, run_matrix
from ..errors import BackendError, BadInput
from ..device.targets import TARGETS

# Which backend feeds the isolated runs when none is named: the first of these that ran.
REFERENCE_ORDER = ("tflite-reference", "tflm-host")


def diff_run(model, input_names, samples, labels, *, reference: str | None = None,
             diagnose: bool = True, policy: Policy | None = None, timeout: float = DEFAULT_TIMEOUT,
             progress=None, sequences: dict[str, int] | None = None, baseline=None,
             **target_options) -> DiffResult:
    """Run the matrix, compare every pair per input, (unless diagnose=False) diagnose, and judge
    with `policy` (default: the built-in one; against `baseline`, a simrun.analysis.baseline
    Snapshot, when given). Returns the DiffResult: the run (Captures,
    comparisons, diagnosis, cost, per-backend seconds), the verdict and the exit code.
    `progress(label, event, seconds, message)` as run_matrix's, event also "note".
    `sequences` (name -> number of steps, in input order): the inputs are sequences of a
    stateful model, each run on a fresh interpreter (run.sequences indexes their steps)."""
    if reference is not None and reference not in labels:
        raise BadInput(f"--reference {reference}: not among the backends run ({', '.join(labels)})")
    lengths = list(sequences.values()) if sequences else None
    matrix = run_matrix(labels, model.path, samples, timeout=timeout, progress=progress,
                        sequences=lengths, **target_options)
    return diff_matrix(model, input_names, matrix, samples=samples, reference=reference,
                       diagnose=diagnose, policy=policy, timeout=timeout, progress=progress,
                       sequences=sequences, baseline=baseline, **target_options)


def diff_matrix(model, input_names, matrix: MatrixResult, *, samples=None,
                reference: str | None = None, diagnose: bool = True, policy: Policy | None = None,
                timeout: float = DEFAULT_TIMEOUT, progress=None,
                sequences: dict[str, int] | None = None, baseline=None, **target_options) -> DiffResult:
    """diff_run's way on from Captures that exist already (`matrix`: one Capture per input
    name and backend; the Robot library runs its backends one keyword at a time).
    Diagnosing re-runs the backends isolated, so it needs the `samples`."""
    lengths = list(sequences.values()) if sequences else None
    comparisons = [compare(model, {label: caps[i] for label, caps in matrix.captures.items()})
                   for i in range(len(input_names))]
    steps, start = {}, 0
    for name, length in (sequences or {}).items():
        steps[name] = list(range(start, start + length))
        start += length
    run = DiffRun(model, comparisons, backend_errors=dict(matrix.errors), versions=dict(matrix.versions),
                  input_names=list(input_names), cost=summarize(matrix.captures),
                  sequences=steps, captures=dict(matrix.captures), seconds=dict(matrix.seconds),
                  error_codes=dict(matrix.error_codes))
    if diagnose:
        if samples is None:
            raise ValueError("diff_matrix(diagnose=True) needs the samples to run isolated")
        # Instructions are reported for the normal runs only: isolated runs need not count.
        options = {k: v for k, v in target_options.items() if k != "count_instructions"}
        diagnose_matrix(run, samples, reference=reference, timeout=timeout,
                        progress=progress, sequences=lengths, **options)
    return judge(run, policy, baseline)


def choose_reference(ran, requested: str | None = None) -> str | None:
    if requested is not None:
        return requested if requested in ran else None
    for label in REFERENCE_ORDER:
        if label in ran:
            return label
    return min(ran, key=backend_rank) if ran else None


def diagnose_matrix(run: DiffRun, samples, *, reference: str | None = None,
                    timeout: float = DEFAULT_TIMEOUT, progress=None,
                    sequences: list[int] | None = None, **target_options):
    """Isolated runs against the reference, the variants the causes need, then the diagnosis.
    Returns run.diagnosis (None when fewer than two backends ran or the reference failed)."""
    say = _say(progress)
    captures = run.captures
    if len(captures) < 2:
        return None
    ref = choose_reference(captures, reference)
    if ref is None:
        say(f"no diagnosis: the reference {reference} did not run")
        return None
    model = run.model
    isolated = [{ref: caps} for caps in captures[ref]]
    failed: dict[str, str] = {}
    for label in sorted(captures, key=backend_rank):
        if label != ref:
            _isolated_run(label, ref, model, samples, captures[ref], isolated, failed,
                          f"isolated run against {ref}", timeout, progress, target_options, sequences)
    wanted: dict[str, str] = {}
    for cmp, iso in zip(run.comparisons, isolated):
        for label, why in wanted_variants(model, cmp, iso).items():
            wanted.setdefault(label, why)
    variants = {}
    for label, why in wanted.items():
        skip = _cannot_run(label)
        if skip:
            failed[label] = skip
            continue
        variants[label] = why
        say(f"running {label} isolated against {ref} {why}")
        _isolated_run(label, ref, model, samples, captures[ref], isolated, failed,
                      "extra numerics variant for the diagnosis", timeout, progress, target_options,
                      sequences)
    return diagnose_run(run, isolated, ref, variants=variants, failed=failed)


def _isolated_run(label, ref, model, samples, references, isolated, failed, what, timeout,
                  progress, target_options, sequences=None) -> None:
    shown = f"{label} (isolated)"
    spec = parse_backend(label)
    options = dict(target_options) if spec.module == "device" else {}
    if progress:
        progress(shown, "started", 0.0, what)
        options["progress"] = lambda msg: progress(shown, "progress", 0.0, msg)
    import time
    start = time.perf_counter()
    try:
        caps = run_backend(label, model.path, samples, timeout=timeout, isolate_from=references,
                           sequences=sequences, **options)
    except BackendError as err:
        failed[label] = err.message
        if progress:
            progress(shown, "failed", time.perf_counter() - start, err.message)
        return
    for i, cap in enumerate(caps):
        isolated[i][label] = cap
    if progress:
        progress(shown, "finished", time.perf_counter() - start, "")


def _cannot_run(label: str) -> str | None:
    """Why a wanted variant is not run (None: run it)."""
    parts = target_parts(label)
    if parts and parts[3]:
        target = TARGETS.get(parts[0])
        if target is not None and target.float_abi == "soft":
            return (f"{parts[0]} has no FPU (soft-float ABI): no fused multiply-add to switch off, "
                    "so no -ffp-contract=off variant was run")
    try:
        parse_backend(label)
    except BadInput as err:
        return f"cannot run {label}: {err}"
    return None


def _say(progress):
    def say(message: str) -> None:
        if progress:
            progress("diagnosis", "note", 0.0, message)
    return say

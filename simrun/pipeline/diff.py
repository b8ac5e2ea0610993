"""The one way through: run the backend matrix, compare, diagnose.

    run = diff_run(model, input_names, samples, labels, reference=None, diagnose=True, progress=...)

`simrun diff`, the Robot library and the quantization A/B all call this; the policy and the
reports read the DiffRun it returns and stay with their owners.

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

from ..analysis.compare import DiffRun, backend_rank, compare
from ..analysis.cost import summarize
from ..analysis.diagnose import diagnose_run, target_parts, wanted_variants
from ..backends import DEFAULT_TIMEOUT, MatrixResult, parse_backend, run_backend, run_matrix
from ..errors import BackendError, BadInput
from ..device.targets import TARGETS

# Which backend feeds the isolated runs when none is named: the first of these that ran.
REFERENCE_ORDER = ("tflite-reference", "tflm-host")


def diff_run(model, input_names, samples, labels, *, reference: str | None = None,
             diagnose: bool = True, timeout: float = DEFAULT_TIMEOUT, progress=None,
             sequences: dict[str, int] | None = None, **target_options) -> DiffRun:
    """Run the matrix, compare every pair per input and (unless diagnose=False) diagnose.
    `progress(label, event, seconds, message)` as run_matrix's, event also "note".
    `sequences` (name -> number of steps, in input order): the inputs are sequences of a
    stateful model, each run on a fresh interpreter (run.sequences indexes their steps)."""
    return matrix_run(model, input_names, samples, labels, reference=reference, diagnose=diagnose,
                      timeout=timeout, progress=progress, sequences=sequences, **target_options)[0]


def matrix_run(model, input_names, samples, labels, *, reference: str | None = None,
               diagnose: bool = True, timeout: float = DEFAULT_TIMEOUT, progress=None,
               sequences: dict[str, int] | None = None,
               **target_options) -> tuple[DiffRun, MatrixResult]:
    """diff_run, also returning the MatrixResult with every backend's Captures (the
    quantization A/B compares them with its float model)."""
    if reference is not None and reference not in labels:
        raise BadInput(f"--reference {reference}: not among the backends run ({', '.join(labels)})")
    lengths = list(sequences.values()) if sequences else None
    matrix = run_matrix(labels, model.path, samples, timeout=timeout, progress=progress,
                        sequences=lengths, **target_options)
    comparisons = [compare(model, {label: caps[i] for label, caps in matrix.captures.items()})
                   for i in range(len(samples))]
    steps, start = {}, 0
    for name, length in (sequences or {}).items():
        steps[name] = list(range(start, start + length))
        start += length
    run = DiffRun(model, comparisons, backend_errors=matrix.errors, versions=matrix.versions,
                  input_names=list(input_names), cost=summarize(matrix.captures),
                  sequences=steps)
    if diagnose:
        # Instructions are reported for the normal runs only: isolated runs need not count.
        options = {k: v for k, v in target_options.items() if k != "count_instructions"}
        diagnose_matrix(run, samples, matrix, reference=reference, timeout=timeout,
                        progress=progress, sequences=lengths, **options)
    return run, matrix


def choose_reference(ran, requested: str | None = None) -> str | None:
    if requested is not None:
        return requested if requested in ran else None
    for label in REFERENCE_ORDER:
        if label in ran:
            return label
    return min(ran, key=backend_rank) if ran else None


def diagnose_matrix(run: DiffRun, samples, matrix: MatrixResult, *, reference: str | None = None,
                    timeout: float = DEFAULT_TIMEOUT, progress=None,
                    sequences: list[int] | None = None, **target_options):
    """Isolated runs against the reference, the variants the causes need, then the diagnosis.
    Returns run.diagnosis (None when fewer than two backends ran or the reference failed)."""
    say = _say(progress)
    if len(matrix.captures) < 2:
        return None
    ref = choose_reference(matrix.captures, reference)
    if ref is None:
        say(f"no diagnosis: the reference {reference} did not run")
        return None
    model = run.model
    isolated = [{ref: caps} for caps in matrix.captures[ref]]
    failed: dict[str, str] = {}
    for label in sorted(matrix.captures, key=backend_rank):
        if label != ref:
            _isolated_run(label, ref, model, samples, matrix.captures[ref], isolated, failed,
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
        _isolated_run(label, ref, model, samples, matrix.captures[ref], isolated, failed,
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

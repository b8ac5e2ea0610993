"""The one way through: run the backend matrix, compare, diagnose, judge.

    result = diff_run(model, input_names, samples, labels, RunOptions(...), reference=None,
                      diagnose=True, policy=None, progress=..., jobs=1)   # -> analysis.result.DiffResult

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
3. simrun.analysis.diagnose over all of it (run.diagnosis);
4. what to do about each cause (run.remedies, simrun.analysis.remedy), the rounding one checked
   by one whole-model run of the other-rounding firmware (simrun.pipeline.remedies).
An isolated run that fails is reported in the diagnosis (its layers "not isolated"), never
fatal: the normal comparison stands.
"""
from __future__ import annotations

import time
from dataclasses import replace

from ..analysis.compare import backend_rank, compare
from ..analysis.diffrun import DiffRun
from ..analysis.policy import Policy
from ..analysis.result import DiffResult, judge
from ..analysis.cost import summarize
from ..analysis.diagnose import diagnose_run, wanted_variants
from ..backend_id import BackendId
from ..backends import MatrixResult, parse_backend, run_backend, run_matrix
from ..backends.parallel import run_each
from ..analysis.tasks import evaluate_task
from .remedies import check_remedies
from ..errors import BackendError, BadInput
from ..device.targets import TARGETS
from ..run_options import RunOptions
from .prefetch import FirmwarePrefetch, prefetch_variants

# Which backend feeds the isolated runs when none is named: the first of these that ran.
REFERENCE_ORDER = ("tflite-reference", "tflm-host")


def diff_run(model, input_names, samples, labels, options: RunOptions | None = None, *,
             reference: str | None = None, diagnose: bool = True, policy: Policy | None = None,
             progress=None, sequences: dict[str, int] | None = None, baseline=None,
             jobs: int = 1, task=None) -> DiffResult:
    """Run the matrix, compare every pair per input, (unless diagnose=False) diagnose, and judge
    with `policy` (default: the built-in one; against `baseline`, a simrun.analysis.baseline
    Snapshot, when given). Returns the DiffResult: the run (Captures,
    comparisons, diagnosis, cost, per-backend seconds), the verdict and the exit code.
    `options`: how every backend runs (RunOptions: time limits, emulator, firmware...).
    `jobs`: how many backends (and isolated runs) run at once; the result is the same for any.
    `progress(label, event, seconds, message)` as run_matrix's, event also "note".
    `sequences` (name -> number of steps, in input order): the inputs are sequences of a
    stateful model, each run on a fresh interpreter (run.sequences indexes their steps).
    `task` (simrun.analysis.tasks.TaskSpec): decode every backend's outputs and compare the
    decisions (run.task), which the policy then judges."""
    if reference is not None and reference not in labels:
        raise BadInput(f"--reference {reference}: not among the backends run ({', '.join(labels)})")
    _check_task(task, sequences)
    lengths = list(sequences.values()) if sequences else None
    options = options or RunOptions()
    matrix = run_matrix(labels, model.path, samples, options, progress=progress, sequences=lengths,
                        jobs=jobs)
    return diff_matrix(model, input_names, matrix, options, samples=samples, reference=reference,
                       diagnose=diagnose, policy=policy, progress=progress, sequences=sequences,
                       baseline=baseline, jobs=jobs, task=task)


def diff_matrix(model, input_names, matrix: MatrixResult, options: RunOptions | None = None, *,
                samples=None, reference: str | None = None, diagnose: bool = True,
                policy: Policy | None = None, progress=None, sequences: dict[str, int] | None = None,
                baseline=None, jobs: int = 1, task=None) -> DiffResult:
    """diff_run's way on from Captures that exist already (`matrix`: one Capture per input
    name and backend; the Robot library runs its backends one keyword at a time).
    Diagnosing re-runs the backends isolated, so it needs the `samples`."""
    _check_task(task, sequences)
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
    if task is not None:
        run.task = evaluate_task(task, model, run.input_names, matrix.captures, steps)
    if diagnose:
        if samples is None:
            raise ValueError("diff_matrix(diagnose=True) needs the samples to run isolated")
        # Instructions are reported for the normal runs only: isolated runs need not count.
        options = replace(options or RunOptions(), count_instructions=False)
        # jobs >= 2: the firmware the causes will need builds while the isolated runs emulate.
        ahead = (prefetch_variants(comparisons, matrix.captures, lambda label: _cannot_run(label) is None)
                 if jobs >= 2 else [])
        with FirmwarePrefetch(ahead, options, _say(progress)):
            diagnose_matrix(run, samples, options, reference=reference, progress=progress, sequences=lengths,
                            jobs=jobs)
        check_remedies(run, samples, options, progress=progress, sequences=lengths, jobs=jobs)
    return judge(run, policy, baseline)


def _check_task(task, sequences) -> None:
    if task is not None and task.needs_sequences and not sequences:
        raise BadInput(f"task {task.name} follows a streaming model over time: give the inputs as "
                       f"sequences (--sequence, or --steps N for random input)")


def choose_reference(ran, requested: str | None = None) -> str | None:
    if requested is not None:
        return requested if requested in ran else None
    for label in REFERENCE_ORDER:
        if label in ran:
            return label
    return min(ran, key=backend_rank) if ran else None


def diagnose_matrix(run: DiffRun, samples, options: RunOptions | None = None, *,
                    reference: str | None = None, progress=None, sequences: list[int] | None = None,
                    jobs: int = 1):
    """Isolated runs against the reference, the variants the causes need, then the diagnosis.
    Returns run.diagnosis (None when fewer than two backends ran or the reference failed).
    Up to `jobs` isolated runs at once; their results are taken in the sequential order."""
    options = options or RunOptions()
    say = _say(progress)
    captures = run.captures
    if len(captures) < 2:
        return None
    ref = choose_reference(captures, reference)
    if ref is None:
        say(f"no diagnosis: the reference {reference} did not run")
        return None
    model = run.model
    references = captures[ref]
    isolated = [{ref: caps} for caps in references]
    failed: dict[str, str] = {}

    def isolate(label: str, what: str, note: str | None = None):
        def task():
            if note:
                say(note)
            return _isolated_run(label, model, samples, references, what, options, progress, sequences)
        return task

    others = [label for label in sorted(captures, key=backend_rank) if label != ref]
    _take(others, run_each([isolate(label, f"isolated run against {ref}") for label in others], jobs),
          isolated, failed)
    wanted: dict[str, str] = {}
    for cmp, iso in zip(run.comparisons, isolated):
        for label, why in wanted_variants(model, cmp, iso).items():
            wanted.setdefault(label, why)
    skips = {label: _cannot_run(label) for label in wanted}
    variants = {label: why for label, why in wanted.items() if not skips[label]}
    tasks = [isolate(label, "extra numerics variant for the diagnosis",
                     f"running {label} isolated against {ref} {why}") for label, why in variants.items()]
    outcomes = dict(zip(variants, run_each(tasks, jobs)))
    # In the order the variants were wanted, as one after the other would have filled them in.
    _take(list(wanted), [skips[label] or outcomes[label] for label in wanted], isolated, failed)
    return diagnose_run(run, isolated, ref, variants=variants, failed=failed)


def _take(labels, outcomes, isolated, failed) -> None:
    """Each isolated run's Captures (one per input), or why it did not run, in `labels` order."""
    for label, outcome in zip(labels, outcomes):
        if isinstance(outcome, str):
            failed[label] = outcome
        elif isinstance(outcome, BackendError):
            failed[label] = outcome.message
        else:
            for i, cap in enumerate(outcome):
                isolated[i][label] = cap


def _isolated_run(label, model, samples, references, what, options: RunOptions, progress,
                  sequences=None):
    """One isolated run: its Captures, or the BackendError it failed with."""
    shown = f"{label} (isolated)"
    say = None
    if progress:
        progress(shown, "started", 0.0, what)
        say = lambda msg: progress(shown, "progress", 0.0, msg)  # noqa: E731
    start = time.perf_counter()
    try:
        caps = run_backend(label, model.path, samples, options, progress=say, isolate_from=references,
                           sequences=sequences)
    except BackendError as err:
        if progress:
            progress(shown, "failed", time.perf_counter() - start, err.message)
        return err
    if progress:
        progress(shown, "finished", time.perf_counter() - start, "")
    return caps


def _cannot_run(label: str) -> str | None:
    """Why a wanted variant is not run (None: run it)."""
    found = BackendId.lookup(label)
    variant = found.variant if found else None
    if variant is not None and variant.no_fp_contract and variant.cpu in TARGETS \
            and TARGETS[variant.cpu].float_abi == "soft":
        return (f"{variant.cpu} has no FPU (soft-float ABI): no fused multiply-add to switch off, "
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

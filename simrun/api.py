"""The Python API: `simrun.diff(...)` runs what `simrun diff` runs and returns its typed result.

    import simrun
    result = simrun.diff("kws_ref_model.tflite", inputs=["random:0", "random:1"],
                         backends="tflite-reference,tflm-host")
    result.passed, result.exit_code                     # the CLI's verdict and exit code
    result.verdict.failures                             # one readable reason per failing pair
    result.diagnosis.summaries(0)                       # one sentence per pair of input 0
    result.layers("tflite-reference", "tflm-host")      # per-layer statistics (LayerStats)

No CLI in between: arguments are checked the way the CLI checks them (a bad one raises
simrun.errors.BadInput with the CLI's message), the pipeline (simrun.pipeline.diff_run)
runs, and nothing is printed unless `progress` is given. Reports are written only when
`report` names a folder.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping, Sequence, Union

import numpy as np

from .analysis.policy import Policy
from .analysis.result import DiffResult
from .device.targets import DEFAULT_FP_CONTRACT, DEFAULT_ROUNDING, KERNEL_VARIANTS
from .errors import BadInput
from .model import Model
from .run_options import RunOptions

Input = Union[str, Path, np.ndarray]


def diff(model: str | Path | Model, inputs: Input | Sequence[Input] | None = None, *,
         backends: str | Sequence[str] | None = None, cpu: str | Sequence[str] | None = None,
         kernels: str | Sequence[str] = KERNEL_VARIANTS,
         rounding: str | Sequence[str] = DEFAULT_ROUNDING,
         fp_contract: str | Sequence[str] = DEFAULT_FP_CONTRACT,
         policy: str | Path | Policy | None = None, count: int | None = None,
         reference: str | None = None, diagnose: bool = True, timeout: float | None = None,
         emulator: str = "qemu", sources: str | Path | None = None, instructions: bool = False,
         report: str | Path | None = None, baseline: str | Path | None = None,
         task: str | None = None, task_options: dict | None = None, jobs: int | None = None,
         firmware: Mapping[str, str | Path] | None = None,
         progress: Callable[[str, str, float, str], None] | None = None) -> DiffResult:
    """Run `model` on every backend for every input, compare layer by layer, diagnose and judge.

    - `inputs`: what `simrun diff --input` takes (a .npy/.npz/image path or ``random[:SEED]``),
      one or a list, or numpy arrays (each read as a .npy of it would be: one sample of a
      single-input model, or a leading batch), or a folder of files; default ``random:0``.
      `count`: samples per random spec (default 1), the first N of a folder (default all).
    - `backends`: labels (a list or a comma-separated string; ``target`` expands to the `cpu`
      variants); default the host backends plus ``target:<cpu>:<kernels>`` per `cpu`.
      `cpu`, `kernels`, `rounding`, `fp_contract`: as the CLI's --cpu, --kernels, --rounding,
      --fp-contract (a list or comma-separated).
    - `policy`: a Policy, a TOML file, or None for the built-in policy.
    - `reference`, `diagnose`, `timeout`, `emulator`, `sources`, `instructions`: as the CLI's
      --reference, --diagnose/--no-diagnose, --timeout, --emulator, --sources, --instructions.
    - `report`: a folder to write summary.json, junit.xml and report.html into.
    - `baseline`: an earlier run's summary.json: judge what changed since, as the CLI's --baseline
      (`result.verdict.baseline` holds the comparison).
    - `task`: ``classify``, ``detect``, ``wakeword`` or ``python:FILE.py:FUNCTION`` (default: the
      policy's ``[task] kind``), its decoder settings in `task_options` (over the policy's);
      ``result.run.task`` holds the decisions compared, and the policy judges them.
    - `jobs`: how many backends (and isolated runs of the diagnosis) run at once, as the CLI's
      --jobs (default: the machine's cores); the result is the same for any value.
    - `firmware`: target label -> ELF to run for it instead of looking its variant up in the
      cache (what a suite's parent found once for all its diffs); other labels as usual.
    - `progress(label, event, seconds, message)`: hears every backend start and finish.

    Returns the DiffResult (verdict, diagnosis, per-layer statistics, Captures, per-backend
    seconds, exit code). A failing backend is part of the result, not an exception; bad
    arguments raise BadInput, a missing tool ToolMissing (simrun.errors).
    """
    from .backends.parallel import default_jobs
    from .commands.diff import backend_labels, require_instruction_counter
    from .pipeline import diff_run

    labels = backend_labels(_joined(backends), [_joined(cpu)] if cpu else [], _joined(kernels),
                            _joined(rounding), _joined(fp_contract))
    if timeout is not None and timeout <= 0:
        raise BadInput("timeout must be positive")
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise BadInput(f"jobs {jobs!r}: give a whole number of at least 1 (backends run at once)")
    if sources is not None and not Path(sources).is_dir():
        raise BadInput(f"sources {sources}: not a directory")
    if not isinstance(policy, Policy):
        policy = Policy.load(policy)
    if baseline is not None:
        from .analysis.baseline import load as load_baseline
        baseline = load_baseline(baseline)
    if not isinstance(model, Model):
        model = Model.from_file(Path(model))
    names, samples = _inputs(model, inputs, count)
    kind = task or policy.task.kind
    spec = None
    if kind is not None:
        from .analysis.tasks import parse_task
        settings = dict(policy.task.settings) if policy.task.kind in (None, kind) else {}
        spec = parse_task(kind, {**settings, **(task_options or {})}, model)
    elif task_options:
        raise BadInput("task_options need a task: give task= (or kind in the policy's [task])")
    if reference is not None and reference not in labels:
        raise BadInput(f"reference {reference}: not among the backends ({', '.join(labels)})")
    if instructions:
        require_instruction_counter(labels, emulator)
    for label, elf in (firmware or {}).items():
        if label not in labels or not label.startswith("target:"):
            raise BadInput(f"firmware for {label}: not among the target backends ({', '.join(labels)})")
        if not Path(elf).is_file():
            raise BadInput(f"firmware for {label}: {elf}: no such file")
    options = RunOptions(timeout=timeout, emulator=emulator, sources_dir=sources,
                         count_instructions=instructions, firmware_by_label=dict(firmware or {}))
    result = diff_run(model, names, samples, labels, options, reference=reference, diagnose=diagnose,
                      policy=policy, task=spec, progress=progress, baseline=baseline,
                      jobs=default_jobs() if jobs is None else jobs)
    if report is not None:
        from .report import write_reports
        write_reports(result, Path(report))
    return result


def _joined(value: str | Sequence[str] | None) -> str | None:
    """The CLI's comma-separated form of a list argument."""
    if value is None or isinstance(value, str):
        return value
    return ",".join(value)


def _inputs(model: Model, inputs, count: int | None) -> tuple[list[str], list[list[np.ndarray]]]:
    """(names, samples) from specs and arrays; specs are named as the CLI names them,
    arrays by position ("array0", a batch "array0#1")."""
    from .inputs import array_samples, load_named_inputs
    items = [] if inputs is None else [inputs] if isinstance(inputs, (str, Path, np.ndarray)) else list(inputs)
    if all(isinstance(item, (str, Path)) for item in items):
        named = load_named_inputs(model, [str(item) for item in items] or None, count=count)
    else:
        named = []
        for k, item in enumerate(items):
            if isinstance(item, np.ndarray):
                samples = array_samples(model, item, f"inputs[{k}]")
                named += [(f"array{k}" + (f"#{i}" if len(samples) > 1 else ""), sample)
                          for i, sample in enumerate(samples)]
            elif isinstance(item, (str, Path)):
                named += load_named_inputs(model, [str(item)], count=count)
            else:
                raise BadInput(f"inputs[{k}]: a {type(item).__name__}; give a file path, "
                               f"random[:SEED] or a numpy array")
        if len({name for name, _ in named}) != len(named):
            raise BadInput("inputs: the same input spec given twice among arrays; give it once")
    return [name for name, _ in named], [sample for _, sample in named]

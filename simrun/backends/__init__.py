"""Backends: run one model on one implementation and return a Capture per input.

Every backend runs in a fresh worker process (`python -m simrun.backends.worker`)
because the native interpreters can refuse a model, abort or corrupt their heap;
such a failure becomes a `BackendError` for that backend and the rest of a diff
matrix goes on. Inputs and Captures cross the process boundary as .npz files. A matrix runs
up to `jobs` backends at once (simrun.backends.parallel), its result in the labels' order.

Labels are parsed once into a `simrun.backend_id.BackendId` (`parse_backend` checks a target's
CPU against the targets table too); how they run is one `simrun.run_options.RunOptions`, which
the worker's job file carries whole.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..backend_id import HOST_KINDS, NODELEGATE, BackendId
from ..capture import Capture
from ..device.build import ensure_firmware
from ..device.targets import TARGETS
from ..errors import EXIT_DEVICE, BackendError, BadInput, SimrunError
from ..run_options import DEFAULT_TIMEOUT, RunOptions  # noqa: F401 (DEFAULT_TIMEOUT re-exported)
from .collect import STAGE_MARK, package_versions
from .parallel import TERM_GRACE, live_worker, run_each

# The module under simrun.backends that runs each host kind; every target runs in `device`.
HOST_RUNNERS = {"tflite-optimized": "host_tflite", "tflite-reference": "host_tflite",
                "tflm-host": "host_tflm", NODELEGATE: "host_tflite"}
HOST_BACKENDS = HOST_KINDS[:3]          # the default matrix: tflite-optimized, tflite-reference, tflm-host


def parse_backend(label: str) -> BackendId:
    """A label users typed, as a value that can run: BadInput for a typo, an unknown CPU
    (the targets table) or kernel variant."""
    return BackendId.parse(label, cpus=TARGETS)


def runner_module(backend: BackendId) -> str:
    """simrun.backends.<module>.run(model_path, inputs, backend=, options=, isolate_from=)."""
    return "device" if backend.is_target else HOST_RUNNERS[backend.host]


# --- the parent side ----------------------------------------------------------
def save_inputs(inputs: list[list[np.ndarray]], path: Path) -> None:
    arrays = {f"s{i}_t{j}": np.asarray(a) for i, sample in enumerate(inputs)
              for j, a in enumerate(sample)}
    arrays["__shape__"] = np.array([len(inputs), len(inputs[0]) if inputs else 0])
    np.savez(path, **arrays)


def load_saved_inputs(path: Path) -> list[list[np.ndarray]]:
    with np.load(path, allow_pickle=False) as z:
        n, k = (int(x) for x in z["__shape__"])
        return [[z[f"s{i}_t{j}"] for j in range(k)] for i in range(n)]


def run_backend(name: str | BackendId, model_path: str | Path, inputs: list[list[np.ndarray]],
                options: RunOptions | None = None, *, progress=None,
                isolate_from: list[Capture] | None = None, sequences: list[int] | None = None) -> list[Capture]:
    """Run backend `name` on every input (one list of arrays per sample) in a worker
    process. Returns one Capture per input; any failure raises BackendError(name, ...).

    `options` (RunOptions, default RunOptions()): time limits, and for a target the emulator,
    attach address, firmware build or ELF, instruction counting.

    `isolate_from` (one reference Capture per input): the isolated run, every operator fed the
    reference's values for its inputs (host: single-operator cut models, simrun.backends.isolate;
    target: Session.invoke(isolate_from=...)). Its Captures' meta say "isolated_from" and
    "not_isolated" ({"<sg>:<op>": reason}).

    All inputs run in order on one interpreter (one emulator session), so a stateful
    model carries its state from input to input. `sequences` (lengths summing to
    len(inputs)) cuts them into sequences that each start on a fresh interpreter
    (a rebooted target): state carries over within a sequence only.

    `progress(message)` hears the firmware build."""
    backend = name if isinstance(name, BackendId) else parse_backend(name)
    options = options or RunOptions()
    model_path = Path(model_path).resolve()
    if not inputs:
        raise BadInput("no inputs to run")
    if isolate_from is not None and len(isolate_from) != len(inputs):
        raise BadInput(f"isolate_from: {len(isolate_from)} reference captures for {len(inputs)} inputs")
    sequences = list(sequences or [len(inputs)])
    if sum(sequences) != len(inputs) or min(sequences) < 1:
        raise BadInput(f"sequence lengths {sequences} do not cut {len(inputs)} inputs")
    if backend.is_target and options.firmware_elf is None:
        given = options.firmware_by_label.get(backend.label)
        options = replace(options, firmware_elf=given or _firmware(backend, options, progress).elf)
    with tempfile.TemporaryDirectory(prefix="simrun-backend-") as tmp:
        work = Path(tmp)
        save_inputs(inputs, work / "inputs.npz")
        job = {"backend": backend.label, "model": str(model_path), "inputs": str(work / "inputs.npz"),
               "out": str(work), "options": options.to_json(), "sequences": sequences}
        if isolate_from is not None:
            job["isolate_from"] = [str(ref.save(work / f"reference{i}.npz"))
                                   for i, ref in enumerate(isolate_from)]
        (work / "job.json").write_text(json.dumps(job))
        returncode, stderr = _run_worker(work / "job.json", options.run_timeout(_slowdown(backend, options)),
                                         backend.label)
        error_file = work / "error.json"
        if error_file.exists():
            error = json.loads(error_file.read_text())
            raise BackendError(backend.label, error["message"], error.get("exit_code", EXIT_DEVICE))
        if returncode != 0:
            raise BackendError(backend.label, _describe_exit(returncode, stderr))
        count = json.loads((work / "done.json").read_text())["captures"]
        return [Capture.load(work / f"capture{i}.npz") for i in range(count)]


def _firmware(backend: BackendId, options: RunOptions, progress):
    """Build or fetch from the cache in this process: a build is not crash-prone and
    its minutes must not count against the backend timeout."""
    v = backend.variant
    try:
        return ensure_firmware(v.cpu, v.kernels, rounding=v.rounding, fp_contract=v.fp_contract,
                               sources_dir=options.sources_dir, cache_dir=options.cache_dir,
                               progress=progress)
    except SimrunError as err:
        raise BackendError(backend.label, f"firmware: {err}", err.exit_code) from None


def _slowdown(backend: BackendId, options: RunOptions) -> float:
    """How much slower than QEMU the backend's emulator runs (its own data; host backends 1)."""
    if not backend.is_target:
        return 1.0
    from ..device.emulators import slowdown
    return slowdown(options.emulator)


def _worker_env() -> dict:
    env = dict(os.environ)
    # The worker must import this very simrun, installed or not.
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def _run_worker(job: Path, timeout: float, label: str) -> tuple[int, str]:
    # Own process group: a timeout or Ctrl-C stops the worker and anything it started.
    proc = subprocess.Popen([sys.executable, "-m", "simrun.backends.worker", str(job)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=_worker_env(), start_new_session=True)
    try:
        with live_worker(proc):
            _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stages = _stages(_stop(proc))
        when = f" while {stages[-1]}" if stages else ""
        raise BackendError(label, f"timed out after {timeout:g} s{when}{_operator_of(job.parent)}") from None
    except BaseException:
        _stop(proc)
        raise
    return proc.returncode, err.decode(errors="replace")


def _operator_of(work: Path) -> str:
    """", in operator 0:3 CONV_2D" when the stopped worker's Session saw one running."""
    try:
        operator = json.loads((work / "error.json").read_text()).get("operator")
    except (OSError, ValueError):
        return ""
    return f", in operator {operator}" if operator else ""


def _stop(proc: subprocess.Popen) -> str:
    """SIGTERM lets the worker leave its `with Session` block (stopping the emulator);
    SIGKILL to the group after a grace period catches what is left. Returns stderr."""
    err = b""
    for sig, wait in ((signal.SIGTERM, TERM_GRACE), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            err = proc.communicate(timeout=wait)[1] or b""
            break
        except subprocess.TimeoutExpired:
            continue
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # stray children of a worker that exited
    except ProcessLookupError:
        pass
    return err.decode(errors="replace")


def _stages(stderr: str) -> list[str]:
    return [ln[len(STAGE_MARK):] for ln in stderr.splitlines() if ln.startswith(STAGE_MARK)]


def _describe_exit(returncode: int, stderr: str) -> str:
    """"aborted by SIGABRT while releasing the interpreter: double free or corruption (out)"."""
    stages = _stages(stderr)
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()
             and not ln.startswith(STAGE_MARK) and "warn" not in ln.lower()
             and not ln.startswith("INFO:")]
    when = f" while {stages[-1]}" if stages else ""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
            what = signal.strsignal(-returncode) or ""
        except ValueError:
            name, what = f"signal {-returncode}", ""
        detail = lines[-1] if lines else what.lower()
        return f"aborted by {name}{when}: {detail}" if detail else f"aborted by {name}{when}"
    last = lines[-1] if lines else "no message on stderr"
    return f"worker exited with status {returncode}{when}: {last}"


# --- a matrix of backends -------------------------------------------------------
@dataclass
class MatrixResult:
    captures: dict[str, list[Capture]]      # label -> one Capture per input, backends that ran
    errors: dict[str, str]                  # label -> message, backends that failed
    seconds: dict[str, float]               # label -> wall time of its worker
    versions: dict[str, dict[str, str]]     # label -> versions (from the Capture, or installed packages)
    error_codes: dict[str, int] = field(default_factory=dict)  # label -> simrun.errors exit code


def run_matrix(labels: list[str], model_path: str | Path, inputs: list[list[np.ndarray]],
               options: RunOptions | None = None, *, progress=None,
               sequences: list[int] | None = None, jobs: int = 1) -> MatrixResult:
    """Run every backend, up to `jobs` at a time (each in its own worker process); one failing
    never stops the others, and the result lists them in `labels` order however many ran at
    once. `sequences`: see run_backend.
    `progress(label, event, seconds, message)` with event started | progress | finished | failed."""
    backends = [parse_backend(label) for label in labels]      # a typo fails before anything runs
    outcomes = run_each([lambda b=b: _timed_run(b, model_path, inputs, options, progress, sequences)
                         for b in backends], jobs)
    result = MatrixResult({}, {}, {}, {})
    for label, (seconds, outcome) in zip(labels, outcomes):
        result.seconds[label] = seconds
        if isinstance(outcome, BackendError):
            result.errors[label] = outcome.message
            result.error_codes[label] = outcome.exit_code
            result.versions[label] = installed_versions(label)
        else:
            result.captures[label] = outcome
            result.versions[label] = dict(outcome[0].versions) if outcome else installed_versions(label)
    return result


def _timed_run(backend: BackendId, model_path, inputs, options, progress, sequences):
    """(seconds, Captures or the BackendError) of one backend, its progress events told."""
    label = backend.label
    say = None
    if progress:
        progress(label, "started", 0.0, "")
        say = lambda msg: progress(label, "progress", 0.0, msg)  # noqa: E731
    start = time.perf_counter()
    try:
        caps = run_backend(backend, model_path, inputs, options, progress=say, sequences=sequences)
    except BackendError as err:
        seconds = time.perf_counter() - start
        if progress:
            progress(label, "failed", seconds, err.message)
        return seconds, err
    seconds = time.perf_counter() - start
    if progress:
        progress(label, "finished", seconds, "")
    return seconds, caps


def installed_versions(label: str) -> dict[str, str]:
    """What a backend would have run with, for reporting a backend that failed
    (a version mismatch is a classic cause). Reads package metadata only."""
    module = runner_module(parse_backend(label))
    if module == "host_tflite":
        found = package_versions("ai-edge-litert", "numpy")
        return found if "ai-edge-litert" in found else package_versions("tensorflow", "numpy")
    if module == "host_tflm":
        return package_versions("tflite-micro", "numpy")
    return package_versions("numpy")

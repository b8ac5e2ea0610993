"""Backends: run one model on one implementation and return a Capture per input.

Every backend runs in a fresh worker process (`python -m simrun.backends.worker`)
because the native interpreters can refuse a model, abort or corrupt their heap;
such a failure becomes a `BackendError` for that backend and the rest of a diff
matrix goes on. Inputs and Captures cross the process boundary as .npz files.

Labels: `tflite-optimized`, `tflite-reference`, `tflm-host`, `tflite-optimized-nodelegate`,
`target:<cpu>:<kernels>`, with `:single-rounding` for firmware built with `rounding="single"`
and `:no-fp-contract` for firmware built with `fp_contract="off"` (both suffixes in that order).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..capture import Capture
from ..device.build import ensure_firmware
from ..errors import EXIT_DEVICE, BackendError, BadInput, SimrunError
from ..device.targets import (DEFAULT_FP_CONTRACT, DEFAULT_ROUNDING, KERNEL_VARIANTS, ROUNDING_MODES,
                              TARGETS)
from .collect import STAGE_MARK, package_versions

# label -> (module, options). `tflite-optimized-nodelegate` is LiteRT's own optimized
# kernels without the default XNNPACK delegate: not run by default, it tells an
# XNNPACK difference from one of TFLite's kernels.
HOST_SPECS = {
    "tflite-optimized": ("host_tflite", {"kernels": "optimized"}),
    "tflite-reference": ("host_tflite", {"kernels": "reference"}),
    "tflm-host": ("host_tflm", {}),
    "tflite-optimized-nodelegate": ("host_tflite", {"kernels": "optimized-nodelegate"}),
}
HOST_BACKENDS = ("tflite-optimized", "tflite-reference", "tflm-host")   # the default matrix
DEFAULT_TIMEOUT = 300.0
# A worker asked to stop gets this long to close its emulator before it is killed.
_TERM_GRACE = 10.0


@dataclass(frozen=True)
class BackendSpec:
    """A parsed backend label: which module runs it and with what options."""

    label: str
    module: str                     # simrun.backends.<module>.run(model_path, inputs, **options)
    options: dict


def parse_backend(label: str) -> BackendSpec:
    """`tflite-optimized` / `tflite-reference` / `tflm-host` / `tflite-optimized-nodelegate` /
    `target:<cpu>:<kernels>[:single-rounding][:no-fp-contract]`."""
    if label in HOST_SPECS:
        module, options = HOST_SPECS[label]
        return BackendSpec(label, module, dict(options))
    if label.startswith("target:"):
        parts = label.split(":")
        if len(parts) < 3:
            raise BadInput(f"backend {label!r}: expected {_TARGET_GRAMMAR}")
        _, cpu, kernels = parts[:3]
        options = _target_suffixes(label, parts[3:])
        if cpu not in TARGETS:
            raise BadInput(f"backend {label!r}: unknown CPU {cpu!r}; known: {', '.join(TARGETS)}")
        if kernels not in KERNEL_VARIANTS:
            raise BadInput(f"backend {label!r}: unknown kernels {kernels!r}; "
                           f"known: {', '.join(KERNEL_VARIANTS)}")
        return BackendSpec(label, "device", {"cpu": cpu, "kernels": kernels, **options})
    raise BadInput(f"unknown backend {label!r}; known: {', '.join(HOST_SPECS)}, {_TARGET_GRAMMAR}")


_TARGET_GRAMMAR = "target:<cpu>:<kernels>[:single-rounding][:no-fp-contract]"


def _target_suffixes(label: str, suffixes: list[str]) -> dict:
    """Firmware options from the label's suffixes, each at most once, in the grammar's order."""
    known = [f"{m}-rounding" for m in ROUNDING_MODES if m != DEFAULT_ROUNDING] + ["no-fp-contract"]
    positions = [known.index(s) if s in known else -1 for s in suffixes]
    if -1 in positions or positions != sorted(set(positions)):
        bad = next((s for s in suffixes if s not in known), ":".join(suffixes))
        raise BadInput(f"backend {label!r}: unknown or misplaced suffix {bad!r}; expected "
                       f"{_TARGET_GRAMMAR} (known suffixes: {', '.join(known)})")
    options = {}
    for s in suffixes:
        if s.endswith("-rounding"):
            options["rounding"] = s.removesuffix("-rounding")
        else:
            options["fp_contract"] = "off"
    return options



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


def run_backend(name: str, model_path: str | Path, inputs: list[list[np.ndarray]], *,
                timeout: float = DEFAULT_TIMEOUT, progress=None,
                isolate_from: list[Capture] | None = None, sequences: list[int] | None = None,
                **options) -> list[Capture]:
    """Run backend `name` on every input (one list of arrays per sample) in a worker
    process. Returns one Capture per input; any failure raises BackendError(name, ...).

    `isolate_from` (one reference Capture per input): the isolated run, every operator fed the
    reference's values for its inputs (host: single-operator cut models, simrun.backends.isolate;
    target: Session.invoke(isolate_from=...)). Its Captures' meta say "isolated_from" and
    "not_isolated" ({"<sg>:<op>": reason}).

    All inputs run in order on one interpreter (one emulator session), so a stateful
    model carries its state from input to input. `sequences` (lengths summing to
    len(inputs)) cuts them into sequences that each start on a fresh interpreter
    (a rebooted target): state carries over within a sequence only.

    Target options: `sources_dir`, `cache_dir` (firmware build), `emulator`,
    `session_timeout`, `count_instructions` (per-operator instructions executed),
    or `firmware_elf` to skip the build. `progress(message)`
    hears the firmware build."""
    spec = parse_backend(name)
    model_path = Path(model_path).resolve()
    if not inputs:
        raise BadInput("no inputs to run")
    if isolate_from is not None and len(isolate_from) != len(inputs):
        raise BadInput(f"isolate_from: {len(isolate_from)} reference captures for {len(inputs)} inputs")
    sequences = list(sequences or [len(inputs)])
    if sum(sequences) != len(inputs) or min(sequences) < 1:
        raise BadInput(f"sequence lengths {sequences} do not cut {len(inputs)} inputs")
    opts = {**spec.options, **{k: (str(v) if isinstance(v, Path) else v)
                               for k, v in options.items() if v is not None}}
    if spec.module == "device":
        build_opts = {k: opts.pop(k) for k in ("sources_dir", "cache_dir") if k in opts}
        opts.setdefault("session_timeout", timeout)
        if "firmware_elf" not in opts:
            opts["firmware_elf"] = str(_firmware(spec, build_opts, progress).elf)
    with tempfile.TemporaryDirectory(prefix="simrun-backend-") as tmp:
        work = Path(tmp)
        save_inputs(inputs, work / "inputs.npz")
        job = {"label": spec.label, "module": spec.module, "model": str(model_path),
               "inputs": str(work / "inputs.npz"), "out": str(work), "options": opts,
               "sequences": sequences}
        if isolate_from is not None:
            job["isolate_from"] = [str(ref.save(work / f"reference{i}.npz"))
                                   for i, ref in enumerate(isolate_from)]
        (work / "job.json").write_text(json.dumps(job))
        returncode, stderr = _run_worker(work / "job.json", timeout, spec.label)
        error_file = work / "error.json"
        if error_file.exists():
            error = json.loads(error_file.read_text())
            raise BackendError(spec.label, error["message"], error.get("exit_code", EXIT_DEVICE))
        if returncode != 0:
            raise BackendError(spec.label, _describe_exit(returncode, stderr))
        count = json.loads((work / "done.json").read_text())["captures"]
        return [Capture.load(work / f"capture{i}.npz") for i in range(count)]


def _firmware(spec: BackendSpec, build_opts: dict, progress):
    """Build or fetch from the cache in this process: a build is not crash-prone and
    its minutes must not count against the backend timeout."""
    try:
        return ensure_firmware(spec.options["cpu"], spec.options["kernels"],
                               rounding=spec.options.get("rounding", DEFAULT_ROUNDING),
                               fp_contract=spec.options.get("fp_contract", DEFAULT_FP_CONTRACT),
                               progress=progress, **build_opts)
    except SimrunError as err:
        raise BackendError(spec.label, f"firmware: {err}", err.exit_code) from None


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
    for sig, wait in ((signal.SIGTERM, _TERM_GRACE), (signal.SIGKILL, 5.0)):
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


def run_matrix(labels: list[str], model_path: str | Path, inputs: list[list[np.ndarray]], *,
               timeout: float = DEFAULT_TIMEOUT, progress=None, sequences: list[int] | None = None,
               **target_options) -> MatrixResult:
    """Run every backend in turn; one failing never stops the others. `sequences`: see run_backend.
    `progress(label, event, seconds, message)` with event started | progress | finished | failed."""
    result = MatrixResult({}, {}, {}, {})
    for label in labels:
        spec = parse_backend(label)
        options = target_options if spec.module == "device" else {}
        if progress:
            progress(label, "started", 0.0, "")
            options = {**options, "progress": lambda msg, _l=label: progress(_l, "progress", 0.0, msg)}
        start = time.perf_counter()
        try:
            caps = run_backend(label, model_path, inputs, timeout=timeout, sequences=sequences,
                               **options)
        except BackendError as err:
            result.seconds[label] = time.perf_counter() - start
            result.errors[label] = err.message
            result.error_codes[label] = err.exit_code
            result.versions[label] = installed_versions(label)
            if progress:
                progress(label, "failed", result.seconds[label], err.message)
            continue
        result.seconds[label] = time.perf_counter() - start
        result.captures[label] = caps
        result.versions[label] = dict(caps[0].versions) if caps else installed_versions(label)
        if progress:
            progress(label, "finished", result.seconds[label], "")
    return result


def installed_versions(label: str) -> dict[str, str]:
    """What a backend would have run with, for reporting a backend that failed
    (a version mismatch is a classic cause). Reads package metadata only."""
    module = parse_backend(label).module
    if module == "host_tflite":
        found = package_versions("ai-edge-litert", "numpy")
        return found if "ai-edge-litert" in found else package_versions("tensorflow", "numpy")
    if module == "host_tflm":
        return package_versions("tflite-micro", "numpy")
    return package_versions("numpy")

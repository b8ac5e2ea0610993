"""The process one backend runs in: `python -m simrun.backends.worker JOB.json`.

Reads the backend label, the model path, the inputs (.npz) and the run options
(`RunOptions.to_json()`) from the job file, writes `capture<i>.npz` per input and `done.json`, or `error.json` with a
message when the backend refuses. A crash leaves neither, and the parent reads
the exit signal and stderr instead.
"""
from __future__ import annotations

import importlib
import json
import signal
import sys
import traceback
from pathlib import Path


def _terminate(signum, frame):
    # The parent's time limit ran out. Raised as the Session's own timeout: while
    # it waits for the target, the Session then reads which operator was running
    # before it stops the emulator, and error.json names it; elsewhere it unwinds
    # through `with Session(...)` all the same.
    from ..errors import EmulatorTimeout
    raise EmulatorTimeout(f"stopped by the parent (signal {signum}): the backend's time limit ran out")


def main(job_path: str) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    job = json.loads(Path(job_path).read_text())
    out = Path(job["out"])
    from ..backend_id import BackendId
    from ..errors import SimrunError
    from ..run_options import RunOptions
    from . import load_saved_inputs, runner_module
    from .collect import first_sentence, stage
    stage(f"starting {job['backend']}")
    try:
        backend = BackendId.parse(job["backend"])
        options = RunOptions.from_json(job["options"])
        module = importlib.import_module(f"simrun.backends.{runner_module(backend)}")
        inputs = load_saved_inputs(Path(job["inputs"]))
        references = None
        if "isolate_from" in job:
            from ..capture import Capture
            references = [Capture.load(p) for p in job["isolate_from"]]
        captures = run_sequences(module, backend, options, job, inputs, references, stage)
    except SimrunError as err:
        message = getattr(err, "message", None) or str(err)
        # exit_code: what the error means (simrun.errors.EXIT_CODES); operator: where a
        # timeout or fault happened on the target.
        (out / "error.json").write_text(json.dumps({"message": message, "exit_code": err.exit_code,
                                                    "operator": getattr(err, "operator", None)}))
        return 1
    except Exception as err:  # noqa: BLE001 - a backend's native layer raises anything
        traceback.print_exc()
        message = f"{type(err).__name__}: {first_sentence(str(err))}"
        (out / "error.json").write_text(json.dumps({"message": message}))
        return 1
    stage("saving captures")
    for i, cap in enumerate(captures):
        cap.save(out / f"capture{i}.npz")
    (out / "done.json").write_text(json.dumps({"captures": len(captures)}))
    sys.stdout.flush()
    return 0


def run_sequences(module, backend, options, job: dict, inputs: list, references, stage) -> list:
    """One backend run per sequence: each builds its own interpreter (boots its own
    emulator), so every sequence starts from the model's initial state and runs its
    CALL_ONCE initialisation once. Captures say which sequence and step they are.
    The reference Captures of an isolated run are cut like the inputs."""
    lengths = job.get("sequences") or [len(inputs)]
    captures, start = [], 0
    for number, length in enumerate(lengths):
        if len(lengths) > 1:
            stage(f"starting sequence {number} (inputs {start}..{start + length - 1})")
        part = None if references is None else references[start:start + length]
        chunk = module.run(job["model"], inputs[start:start + length], backend=backend, options=options,
                           isolate_from=part)
        for step, cap in enumerate(chunk):
            cap.meta.update(sequence=number, step=step)
        captures += chunk
        start += length
    return captures


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

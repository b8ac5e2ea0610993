"""One diff of a suite, in its own process: `python -m simrun.suite.job JOB.json REPORT_DIR EVENT_FD`.

The scheduler starts one per model so a job holds one model's Captures and a crash or a
leak ends with its process. It runs what `simrun diff` runs (simrun.diff), writes the
model's report folder, and tells the parent what happens as JSON lines on EVENT_FD (a pipe
of its own: the backends' workers inherit stdout, so stdout carries only log text, which
the scheduler keeps in models/<id>.log.txt, beside the folder: simrun replaces a report folder
whole, so nothing else may live in it):

    {"event": "backend", "label": "tflm-host", "what": "started"|"finished"|"failed"}
    {"event": "done", "record": RECORD}          # see record() below

JOB.json is SuiteEntry.job() plus "jobs" (the backends it may run at once), "baseline" (the
summary.json to judge against, or null) and "baseline_section" (why there is none). SIGUSR1
from the scheduler grants one core more (simrun.backends.parallel.grant).

Exit status: the diff's exit code (simrun.errors), 130 when stopped (SIGTERM or Ctrl-C).
"""
from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path

from ..errors import EXIT_INTERRUPTED, SimrunError
from . import baseline as suite_baseline


def main(argv: list[str]) -> int:
    job = json.loads(Path(argv[0]).read_text())
    report_dir = Path(argv[1])
    events = os.fdopen(int(argv[2]), "w", buffering=1)
    options = json.loads(os.environ.get("SIMRUN_SUITE_OPTIONS", "{}"))

    def emit(event: dict) -> None:
        events.write(json.dumps(event) + "\n")

    def progress(label: str, event: str, seconds: float, message: str) -> None:
        if event in ("started", "finished", "failed"):
            emit({"event": "backend", "label": label, "what": event})
        print(f"[diff] {label}: {event}" + (f" {message}" if message else ""), flush=True)

    def stop(_signum, _frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, stop)

    from ..backends import parallel

    def more(_signum, _frame):
        # The scheduler freed a core for this diff: one backend more at once. From a thread of
        # its own, so the handler takes no lock the interrupted code might hold.
        os.write(1, b"[suite] one core more for this diff's backends\n")
        threading.Thread(target=parallel.grant, args=(1,), daemon=True).start()
    signal.signal(signal.SIGUSR1, more)
    parallel.accept_grants()
    from ..api import diff
    # The scheduler's share of the suite's --jobs for this diff (simrun.suite.scheduler.core_share).
    jobs = job.get("jobs", 1)
    print(f"[suite] {job['id']}: up to {jobs} backend(s) at once", flush=True)
    try:
        result = diff(job["model"], job["inputs"] or None, backends=job["backends"],
                      policy=job["policy"], count=job["count"], reference=job["reference"],
                      diagnose=job["diagnose"], timeout=job["timeout"],
                      emulator=options.get("emulator", "qemu"), sources=options.get("sources"),
                      report=report_dir, progress=progress, jobs=jobs, baseline=job.get("baseline"),
                      firmware={label: elf for label, elf in options.get("firmware", {}).items()
                                if label in job["backends"]})
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except SimrunError as err:
        # Before or around the backends (a model the parser refuses, a missing tool): the
        # model's row says so; the other models go on.
        print(f"simrun diff: error: {err}", flush=True)
        emit({"event": "done", "record": failed_record(job, err.exit_code, str(err))})
        return err.exit_code
    from ..report import terminal
    print(terminal.render(result.run, result.verdict), flush=True)
    emit({"event": "done", "record": record(job, result)})
    return result.exit_code


def failed_record(job: dict, code: int, message: str) -> dict:
    against = None
    if job.get("baseline") or job.get("baseline_section"):
        against = suite_baseline.section("not compared", notes=[message])
    return {"id": job["id"], "model": job["model"], "backends": job["backends"], "exit_code": code,
            "passed": False, "error": message, "reference": None, "cells": {}, "failures": [message],
            "inputs": [], "report": f"models/{job['id']}", "baseline": against}


def record(job: dict, result) -> dict:
    """What the index shows of one diff: per backend its status against the reference
    (bit-exact, pass, fail, unjudged, error, reference) and the first layer it differs at.

    RECORD = {"id", "model", "backends": [label], "exit_code", "passed", "error": null,
              "reference": label|null, "inputs": [name], "failures": [str],
              "report": "models/<id>", "baseline": simrun.suite.baseline's section | null,
              "cells": {label: {"status", "first_divergent": {"input", "id", "op"}|null,
                                "max_abs_delta": number|null, "message": str|null}}}
    """
    from ..pipeline import choose_reference
    run, verdict = result.run, result.verdict
    ref = run.diagnosis.reference if run.diagnosis else choose_reference(run.captures, job["reference"])
    cells = {}
    for label in job["backends"]:
        if label in run.backend_errors:
            action = verdict.backend_errors.get(label, "fail")
            cells[label] = _cell("error" if action == "fail" else "error (warn)",
                                 message=run.backend_errors[label])
        elif label == ref:
            cells[label] = _cell("reference")
        elif ref is None or label not in run.captures:
            cells[label] = _cell("alone")
        else:
            cells[label] = _against(run, verdict, ref, label)
    return {"id": job["id"], "model": job["model"], "backends": job["backends"],
            "exit_code": result.exit_code, "passed": result.passed, "error": None, "reference": ref,
            "inputs": list(run.input_names), "failures": list(verdict.failures), "cells": cells,
            "report": f"models/{job['id']}",
            "baseline": (suite_baseline.from_verdict(verdict) if verdict.baseline is not None
                         else job.get("baseline_section"))}


def _against(run, verdict, ref: str, label: str) -> dict:
    statuses, first, delta = [], None, 0.0
    verdicts = iter(verdict.pairs)
    for name, cmp in zip(run.input_names, run.comparisons):
        for pair in cmp.pairs:
            pv = next(verdicts)
            if {pair.a, pair.b} != {ref, label}:
                continue
            statuses.append(pv.status)
            delta = max(delta, pair.max_abs_delta)
            diverging = pair.first_divergent or next((s for s in pair.outputs if s.diverges), None)
            if first is None and diverging is not None:
                first = {"input": name, "id": diverging.id, "op": diverging.op_name}
    if not statuses:
        return _cell("alone")
    status = ("fail" if "fail" in statuses else
              "bit-exact" if first is None else "pass" if "pass" in statuses else "unjudged")
    return _cell(status, first, delta)


def _cell(status: str, first=None, delta=None, message=None) -> dict:
    return {"status": status, "first_divergent": first,
            "max_abs_delta": None if delta is None else float(delta), "message": message}


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

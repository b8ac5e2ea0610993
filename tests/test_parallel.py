"""Backends of one diff run side by side (`--jobs N`) and give what one after the other gives."""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest

from simrun.backends import parallel
from simrun.backends.parallel import live_worker, run_each
from simrun.commands import diff
from simrun.errors import BadInput

from test_diff import simrun_diff
from testmodels import conv_logistic_int8


def test_tasks_run_at_once_and_results_keep_their_order():
    both = threading.Barrier(2, timeout=20)      # passes only when two tasks run at the same time

    def task(n, delay):
        def run():
            both.wait()
            time.sleep(delay)
            return n
        return run

    # The first task finishes last; its result still comes first.
    assert run_each([task(0, 0.3), task(1, 0.0)], jobs=2) == [0, 1]
    assert run_each([lambda: 1, lambda: 2, lambda: 3], jobs=1) == [1, 2, 3]
    with pytest.raises(ValueError, match="at least 1"):
        run_each([lambda: 1], jobs=0)


def test_a_granted_core_starts_the_next_task_early_in_order(monkeypatch):
    """A suite job (accept_grants) at jobs=1 runs its tasks one at a time, in order, until the
    scheduler grants it a core: then the next one starts while the first still runs."""
    monkeypatch.setattr(parallel, "_granted", 0)
    monkeypatch.setattr(parallel, "_accepting", False)
    parallel.accept_grants()
    order, running, peak = [], [0], [0]
    lock = threading.Lock()
    first_started, second_started = threading.Event(), threading.Event()

    def task(n):
        def run():
            with lock:
                order.append(n)
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            if n == 0:
                first_started.set()
                assert second_started.wait(20), "the granted core never started task 1"
            elif n == 1:
                second_started.set()
            with lock:
                running[0] -= 1
            return n
        return run
    granter = threading.Thread(target=lambda: first_started.wait(20) and parallel.grant(1))
    granter.start()
    assert run_each([task(0), task(1), task(2)], jobs=1) == [0, 1, 2]
    granter.join()
    assert order == [0, 1, 2] and peak[0] == 2
    # The grant stays for the process's later calls (the diagnosis's isolated runs).
    both = threading.Barrier(2, timeout=20)
    assert run_each([lambda: (both.wait(), "a")[1], lambda: (both.wait(), "b")[1]], jobs=1) == ["a", "b"]


def test_a_failing_task_stops_the_workers_still_running(monkeypatch):
    monkeypatch.setattr(parallel, "TERM_GRACE", 5.0)
    started = threading.Event()
    procs = []

    def waits_on_a_worker():
        proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
        procs.append(proc)
        with live_worker(proc):
            started.set()
            proc.wait()
        return proc.returncode

    def fails():
        assert started.wait(20)
        raise RuntimeError("this backend's caller broke")

    begin = time.monotonic()
    with pytest.raises(RuntimeError, match="caller broke"):
        run_each([waits_on_a_worker, fails], jobs=2)
    assert procs and procs[0].returncode == -15          # SIGTERM, long before its 60 s
    assert time.monotonic() - begin < 20


def _without_timings(value):
    """summary.json minus what a clock decides, and the provenance's command line (the two runs
    are asked with different --jobs and --report); everything else of the provenance must agree."""
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items()
                if "seconds" not in k and k not in ("time", "timestamp", "created", "date",
                                                    "started", "finished", "command")}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


@pytest.mark.backends
def test_jobs_2_gives_the_same_summary_as_jobs_1(tf_model, tmp_path):
    """Host backends with the diagnosis (isolated runs and the no-XNNPACK variant run in parallel too)."""
    own_model = tf_model(conv_logistic_int8)
    reports, codes = {}, {}
    for jobs in (1, 2):
        out = tmp_path / f"jobs{jobs}"
        codes[jobs] = simrun_diff(own_model, "--input", "random:1", "--count", "2", "--report", out,
                                  "--jobs", jobs)
        reports[jobs] = json.loads((out / "summary.json").read_text())
    assert codes[1] == codes[2]
    first = reports[1]
    assert set(first["backends"]) == {"tflite-reference", "tflm-host", "tflite-optimized"}
    assert len(first["comparisons"]) == 2 and first["isolation"]["reference"] == "tflite-reference"
    assert _without_timings(reports[2]) == _without_timings(first)
    junit = [Path(tmp_path / f"jobs{j}" / "junit.xml").read_text() for j in (1, 2)]
    strip = [re.sub(r'(time|timestamp)="[^"]*"', "", x) for x in junit]
    assert strip[0] == strip[1]


def test_jobs_must_be_positive(tmp_path):
    # Checked before the model is read: no model needed.
    assert simrun_diff(tmp_path / "any.tflite", "--report", tmp_path, "--jobs", "0") == 2
    parser = argparse.ArgumentParser(prog="simrun")
    diff.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["diff", str(tmp_path / "any.tflite"), "--jobs", "0"])
    with pytest.raises(BadInput, match="--jobs 0: give at least 1"):
        args.func(args)

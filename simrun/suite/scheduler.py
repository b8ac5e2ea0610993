"""Run a suite's diffs over `jobs` processes, firmware built before them.

Each entry is one `python -m simrun.suite.job` process in a session of its own, given a share
of the --jobs cores for its backends (core_share); once no model is left to start, a core a
finished job frees goes to a running one (SIGUSR1: simrun.backends.parallel.grant), so the
backend processes of all jobs never exceed --jobs and no core idles at the tail. The
parent decides when it stops (Ctrl-C or SIGTERM: every job is asked to stop, given time to
close its emulators, then killed with its process group). A job's log (the diff's
terminal report and progress) goes to models/<id>.log.txt (beside the report folder, which the diff replaces whole), its events come back over a
pipe and feed the display. Its peak memory is the largest resident set of its process
tree (os.wait4's ru_maxrss covers the waited-for descendants: the backend workers).
"""
from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from ..errors import EXIT_DEVICE, EXIT_INTERRUPTED
from . import baseline as suite_baseline
from .baseline import SuiteBaseline
from .job import failed_record
from .spec import SuiteEntry

# A job asked to stop gets this long to close its emulators before it is killed.
_STOP_GRACE = 15.0


def prebuild(entries: list[SuiteEntry], sources: Path | None, say) -> dict[str, Path]:
    """Build (or find cached) every firmware variant the entries' target backends need, once,
    before any diff starts; returns label -> ELF, which every job is given (RunOptions.
    firmware_by_label), so no job looks a variant up again (the source-tree check is about
    half a second per lookup, and it was once per target backend per model). The sources are
    checked once for all variants. Variants the diagnosis adds (the other rounding,
    -ffp-contract=off) are built by the job that wants them; the cache's lock makes two jobs
    that want the same one build it once."""
    from ..backends import parse_backend
    from ..device import sources as device_sources
    from ..device.build import ensure_firmware

    labels = list(dict.fromkeys(label for e in entries for label in e.targets))
    if not labels:
        return {}
    state = device_sources.state(sources)
    found = {}
    for label in labels:
        variant = parse_backend(label).variant
        say(f"firmware for {label}")
        found[label] = ensure_firmware(variant.cpu, variant.kernels, rounding=variant.rounding,
                                       fp_contract=variant.fp_contract, sources_dir=sources,
                                       source_state=state,
                                       progress=lambda msg, label=label: say(f"  {label}: {msg}")).elf
    return found


def core_share(entry: SuiteEntry, free: int, pending: int) -> int:
    """The backends a job may run at once: one while more models wait than cores are free
    (a core per diff is the better use); once fewer are left, the free cores spread over
    them, never more than the diff has backends to run side by side. The shares of running
    jobs add up to at most the suite's --jobs, so neither do their backend processes."""
    if pending >= free:
        return 1
    return max(1, min(-(-free // pending), len(entry.backends)))


def start_order(entries: list[SuiteEntry], durations: dict[str, float] | None) -> list[SuiteEntry]:
    """Longest first: by a previous run's `durations` when given, else by model file size (a
    bigger model runs longer on every backend). Ties keep the suite's order."""
    if durations:
        return sorted(entries, key=lambda e: (-durations.get(e.id, 0.0), e.order))

    def size(entry: SuiteEntry) -> int:
        try:
            return entry.model.stat().st_size
        except OSError:
            return 0
    return sorted(entries, key=lambda e: (-size(e), e.order))


class _Job:
    def __init__(self, entry: SuiteEntry, out_dir: Path, spec_dir: Path, options: dict, events,
                 cores: int = 1, baseline: SuiteBaseline | None = None):
        self.entry = entry
        self.cores = cores
        self.folder = out_dir / "models" / entry.id
        if self.folder.exists():                # a previous run's folder of this model
            shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True)
        spec = spec_dir / f"{entry.id}.json"
        against = suite_baseline.for_model(baseline, entry.id)
        self.spec = {**entry.job(), "jobs": cores, "baseline": against,
                     "baseline_section": suite_baseline.unmatched(baseline, entry.id)
                     if baseline is not None and against is None else None}
        spec.write_text(json.dumps(self.spec))
        read_end, write_end = os.pipe()
        env = dict(os.environ, SIMRUN_SUITE_OPTIONS=json.dumps(options))
        self.start = time.monotonic()
        with open(log_path(self.folder), "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "simrun.suite.job", str(spec), str(self.folder), str(write_end)],
                pass_fds=(write_end,), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=env, start_new_session=True)
        os.close(write_end)
        self.record = None
        self.started: set[str] = set()      # backends it reported started (it listens for grants then)
        self.thread = threading.Thread(target=self._read, args=(read_end, events), daemon=True)
        self.thread.start()

    def _read(self, fd: int, events: queue.Queue) -> None:
        with os.fdopen(fd) as stream:
            for line in stream:
                try:
                    events.put((self, json.loads(line)))
                except ValueError:
                    continue
        _, status, usage = os.wait4(self.proc.pid, 0)
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        events.put((self, {"event": "exit", "code": self.proc.returncode,
                           "peak_rss_mib": usage.ru_maxrss / 1024.0}))

    @property
    def waiting_backends(self) -> int:
        return len(self.entry.backends) - len(self.started)

    def can_take(self) -> bool:
        """Could a core more speed this job up? Once it reported a backend (its SIGUSR1 handler
        is in place by then) and while it has backends not yet started."""
        return (self.proc.returncode is None and self.record is None and bool(self.started)
                and self.waiting_backends > 0 and self.cores < len(self.entry.backends))

    def grant(self) -> None:
        """One core more for this job's backends (simrun.backends.parallel.grant in the job)."""
        try:
            os.kill(self.proc.pid, signal.SIGUSR1)
        except ProcessLookupError:
            return
        self.cores += 1

    def stop(self) -> None:
        if self.proc.returncode is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def run_suite(entries: list[SuiteEntry], out_dir: Path, *, jobs: int, options: dict,
              display, durations: dict[str, float] | None = None,
              baseline: SuiteBaseline | None = None) -> list[dict]:
    """Run every entry; returns their records (simrun.suite.job.record, plus "seconds" and
    "peak_rss_mib"), in suite order. The longest models start first (start_order), so the
    last one to finish, alone on the machine, is a short one. Ctrl-C (or SIGTERM, as a cancelled CI job gets) stops
    every job and raises KeyboardInterrupt: the jobs run in sessions of their own, so no
    signal reaches them but through here. With `baseline`, each model is judged against its
    own diff in it (simrun.suite.baseline)."""
    def stop(_signum, _frame):
        raise KeyboardInterrupt
    previous = signal.signal(signal.SIGTERM, stop) if threading.current_thread() is threading.main_thread() else None
    events: queue.Queue = queue.Queue()
    pending = start_order(entries, durations)
    running: list[_Job] = []
    records: list[dict] = []
    spec_dir = Path(tempfile.mkdtemp(prefix="simrun-suite-"))
    try:
        while pending or running:
            while pending and sum(j.cores for j in running) < jobs:
                free = jobs - sum(j.cores for j in running)
                entry = pending.pop(0)
                job = _Job(entry, out_dir, spec_dir, options, events,
                           cores=core_share(entry, free, len(pending) + 1), baseline=baseline)
                running.append(job)
                display.model_started(job.entry)
            if not pending:
                _hand_out_spare_cores(running, jobs)
            try:
                job, event = events.get(timeout=0.5)
            except queue.Empty:
                display.tick()
                continue
            if event["event"] == "backend":
                if event["what"] == "started":
                    job.started.add(event["label"])
                display.backend(job.entry, event["label"], event["what"])
            elif event["event"] == "done":
                job.record = event["record"]
            elif event["event"] == "exit":
                running.remove(job)
                rec = job.record or _crashed(job, event["code"])
                rec["seconds"] = round(time.monotonic() - job.start, 3)
                rec["peak_rss_mib"] = round(event["peak_rss_mib"], 1)
                rec["order"] = job.entry.order
                records.append(rec)
                display.model_done(job.entry, rec)
                if event["code"] == EXIT_INTERRUPTED and job.record is None:
                    raise KeyboardInterrupt
    except BaseException:
        _stop_all(running)
        raise
    finally:
        shutil.rmtree(spec_dir, ignore_errors=True)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return sorted(records, key=lambda r: r["order"])


def _hand_out_spare_cores(running: list[_Job], jobs: int) -> None:
    """No model left to start: a core a finished job freed goes to the running job with the most
    backends still waiting, so the suite's tail does not leave a core idle."""
    free = jobs - sum(j.cores for j in running)
    while free > 0:
        takers = [j for j in running if j.can_take()]
        if not takers:
            return
        max(takers, key=lambda j: j.waiting_backends).grant()
        free -= 1


def log_path(folder: Path) -> Path:
    """A model's log, beside its report folder (models/<id>.log.txt)."""
    return folder.with_name(folder.name + ".log.txt")


def _crashed(job: _Job, code: int) -> dict:
    how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
    message = (f"the diff process of {job.entry.id} {how} without a result; see "
               f"models/{job.entry.id}.log.txt")
    return failed_record(job.spec, EXIT_DEVICE if code <= 0 else code, message)


def _stop_all(running: list[_Job]) -> None:
    for job in running:
        job.stop()
    deadline = time.monotonic() + _STOP_GRACE
    for job in running:
        job.thread.join(max(0.0, deadline - time.monotonic()))
        if job.thread.is_alive():
            job.kill()
            job.thread.join(5.0)
    # The job is reaped, but a child it was forking (a backend worker before its exec) can outlive
    # it in the job's process group: sweep the group so nothing of a stopped suite keeps running.
    for job in running:
        job.kill()

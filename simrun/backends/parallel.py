"""Independent backend runs side by side, results in the order they were asked for.

Every backend already runs in its own worker process with its own temporary directory, and
each emulator session its own work dir, GDB Unix socket and RAM file (simrun.device.session),
so runs need nothing shared; a thread per running backend only waits for its worker. The
results come back in the tasks' order whatever order they finish in, so a matrix run with
`jobs=2` gives the same captures, comparisons and reports as one with `jobs=1` (only the
progress lines interleave).

The worker processes live in their own process groups (they must not get the terminal's
Ctrl-C before the parent decides), so when the caller is interrupted or a task raises, every
worker still running is stopped here: SIGTERM (the worker leaves its `with Session` block,
stopping its emulator), then SIGKILL to what is left after a grace period.
"""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")
# A worker asked to stop gets this long to close its emulator before it is killed.
TERM_GRACE = 10.0

_live: set[subprocess.Popen] = set()
_live_lock = threading.Lock()


def default_jobs() -> int:
    """The machine's cores (those this process may use)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:          # not Linux
        return max(1, os.cpu_count() or 1)


@contextmanager
def live_worker(proc: subprocess.Popen) -> Iterator[subprocess.Popen]:
    """Register a running worker so an interrupted matrix can stop it."""
    with _live_lock:
        _live.add(proc)
    try:
        yield proc
    finally:
        with _live_lock:
            _live.discard(proc)


class _Gate:
    """Lets tasks start in their order, at most `limit` at once; `grow` raises the limit while
    they run (a suite's scheduler handing this diff a freed core), `stop` turns away the ones
    still waiting."""

    def __init__(self, limit: int):
        self.limit, self.running, self.next, self.stopped = limit, 0, 0, False
        self.cond = threading.Condition()

    def enter(self, k: int) -> bool:
        with self.cond:
            self.cond.wait_for(lambda: self.stopped or (self.next == k and self.running < self.limit))
            if self.stopped:
                return False
            self.next += 1
            self.running += 1
            self.cond.notify_all()
            return True

    def leave(self) -> None:
        with self.cond:
            self.running -= 1
            self.cond.notify_all()

    def grow(self, n: int) -> None:
        with self.cond:
            self.limit += n
            self.cond.notify_all()

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify_all()


class _Cancelled(Exception):
    pass


# Cores granted to this process beyond the `jobs` its caller asked for (grant()), and the gates
# of the run_each calls running now, which a grant widens at once.
_granted = 0
_accepting = False
_gates: set[_Gate] = set()
_grant_lock = threading.Lock()


def accept_grants() -> None:
    """This process may be granted cores while it runs (a suite job): run_each then runs its
    tasks through a gate even at jobs=1, so that a grant can start the next one early."""
    global _accepting
    _accepting = True


def grant(n: int = 1) -> None:
    """n more tasks may run at once, in the run_each calls running now and in later ones."""
    global _granted
    with _grant_lock:
        _granted += n
        gates = list(_gates)
    for gate in gates:
        gate.grow(n)


def run_each(tasks: list[Callable[[], T]], jobs: int = 1) -> list[T]:
    """Call every task, up to `jobs` at a time (plus any granted cores), starting them in
    their order; their results in the tasks' order. A task that raises stops the others'
    workers and its exception propagates."""
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, not {jobs}")
    with _grant_lock:
        limit = jobs + _granted
        if len(tasks) <= 1 or (limit == 1 and not _accepting):
            gate = None
        else:
            gate = _Gate(limit)
            _gates.add(gate)
    if gate is None:
        return [task() for task in tasks]

    def gated(k: int, task: Callable[[], T]) -> T:
        if not gate.enter(k):
            raise _Cancelled
        try:
            return task()
        finally:
            gate.leave()
    try:
        with ThreadPoolExecutor(max_workers=len(tasks), thread_name_prefix="simrun-backend") as pool:
            futures = [pool.submit(gated, k, task) for k, task in enumerate(tasks)]
            try:
                # The first failure counts at once, not after the tasks before it finished.
                done, _ = wait(futures, return_when=FIRST_EXCEPTION)
                failed = next((f for f in futures if f in done and f.exception() is not None), None)
                if failed is not None:
                    raise failed.exception()
                return [future.result() for future in futures]
            except BaseException:
                gate.stop()
                stop_live_workers()
                raise
    finally:
        with _grant_lock:
            _gates.discard(gate)


def stop_live_workers() -> None:
    """SIGTERM every registered worker's process group, SIGKILL what outlives the grace period.
    Their own threads are waiting on them and see them exit."""
    with _live_lock:
        procs = list(_live)
    _signal_all(procs, signal.SIGTERM)
    deadline = time.monotonic() + TERM_GRACE
    while time.monotonic() < deadline and any(p.returncode is None for p in procs):
        time.sleep(0.05)
    _signal_all([p for p in procs if p.returncode is None], signal.SIGKILL)


def _signal_all(procs: list[subprocess.Popen], sig: int) -> None:
    for proc in procs:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass

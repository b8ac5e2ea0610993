"""The suite's progress: done / running / left, the current model and backend of every job,
elapsed and remaining time.

On a terminal one status line is redrawn in place (finished models scroll above it); on
anything else (a CI log, a pipe) the same facts come as one plain line per event, never
a control character. Remaining time: the previous durations of what is left when known
(--durations), else the mean of the models finished so far, spread over the jobs.
"""
from __future__ import annotations

import sys
import time

from .spec import SuiteEntry


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"


class SuiteProgress:
    def __init__(self, entries: list[SuiteEntry], jobs: int, stream=None, tty: bool | None = None,
                 durations: dict[str, float] | None = None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.total, self.jobs = len(entries), max(1, min(jobs, len(entries) or 1))
        self.durations = durations or {}
        self.waiting = {e.id: e for e in entries}
        self.running: dict[str, tuple[float, str]] = {}       # id -> (start, current backend)
        self.finished: list[float] = []
        self.start = time.monotonic()
        self._drawn = False

    # --- events -------------------------------------------------------------------------
    def model_started(self, entry: SuiteEntry) -> None:
        self.waiting.pop(entry.id, None)
        self.running[entry.id] = (time.monotonic(), "")
        self._line(f"{entry.id}: started ({', '.join(entry.backends)})")

    def backend(self, entry: SuiteEntry, label: str, what: str) -> None:
        start, _ = self.running.get(entry.id, (time.monotonic(), ""))
        self.running[entry.id] = (start, label if what == "started" else "")
        if what == "failed":
            self._line(f"{entry.id}: {label} failed")
        elif self.tty:
            self._draw()
        elif what == "started":
            self._line(f"{entry.id}: {label} started")

    def model_done(self, entry: SuiteEntry, record: dict) -> None:
        self.running.pop(entry.id, None)
        self.finished.append(record["seconds"])
        verdict = "PASS" if record["passed"] else f"FAIL (exit {record['exit_code']})"
        why = f": {record['error']}" if record.get("error") else ""
        self._line(f"{entry.id}: {verdict} in {record['seconds']:.1f} s{why}")

    def tick(self) -> None:
        if self.tty:
            self._draw()

    def note(self, message: str) -> None:
        self._line(message, status=False)

    def close(self) -> None:
        if self.tty and self._drawn:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self._drawn = False

    # --- text ---------------------------------------------------------------------------
    def status(self) -> str:
        now = time.monotonic()
        done = len(self.finished)
        parts = [f"{done}/{self.total} done, {len(self.running)} running, {len(self.waiting)} left"]
        current = [f"{ident}" + (f" [{label}]" if label else "") for ident, (_, label) in self.running.items()]
        if current:
            parts.append("; ".join(current))
        left = self.remaining(now)
        parts.append(f"elapsed {_clock(now - self.start)}, "
                     f"{'remaining ?' if left is None else 'about ' + _clock(left) + ' left'}")
        return " | ".join(parts)

    def remaining(self, now: float) -> float | None:
        known = self.finished or list(self.durations.values())
        if not known and (self.waiting or self.running):
            return None
        mean = sum(known) / len(known) if known else 0.0
        work = sum(self.durations.get(i, mean) for i in self.waiting)
        work += sum(max(0.0, self.durations.get(i, mean) - (now - start))
                    for i, (start, _) in self.running.items())
        return work / self.jobs

    def _line(self, text: str, status: bool = True) -> None:
        if self.tty:
            self.stream.write("\r\x1b[2K" + f"[suite] {text}\n")
            self._draw()
        else:
            tail = f" ({self.status()})" if status else ""
            self.stream.write(f"[suite] {text}{tail}\n")
            self.stream.flush()

    def _draw(self) -> None:
        width = 200
        try:
            import shutil
            width = shutil.get_terminal_size((200, 24)).columns
        except OSError:
            pass
        self.stream.write("\r\x1b[2K" + f"[suite] {self.status()}"[:max(20, width - 1)])
        self.stream.flush()
        self._drawn = True

"""How far a firmware build is and how long it has left, from CMake's own output.

    files = objects_to_compile(build_dir, "simrun_reference")   # after configure
    progress = BuildProgress(files)
    for line in cmake_output:
        progress.feed(line)        # counts "[ NN%] Building CXX object ..." lines
        progress.status()          # "[ 40/162 files, about 8 min left]" (None until it can tell)

The total is the number of the target's object files (its own and those of the
object libraries it links, as CMake's generated build.make lists them) that do
not exist yet or are older than their target's flags.make: exact for a cold
build and for a configure that changed flags, a floor for other incremental
builds (a changed source rebuilds an existing object; `done` then grows past the
total, and the total follows it). The estimate is elapsed time per compiled file times the
files left: on 2 cores with 2 jobs the files finish at a steady rate.

After a build of at least MIN_FILES_FOR_FIGURE files, record_figure stores the
seconds per file in the cache dir (build-speed.json), so `simrun doctor` can say
how long a first build takes on this machine; without it, DEFAULT_SECONDS_PER_FILE.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

# Measured on the 2-core development machine (issue 22, bench/build_time.py, idle): a cold
# cortex-m55 reference build with precompiled headers, 163 files (the PCH one of them), 227 s.
DEFAULT_SECONDS_PER_FILE = 1.4
# Files of a cold reference build (cortex-m4 and cortex-m55 at the pinned TFLM, with the PCH).
FIRST_BUILD_FILES = 163
MIN_FILES_FOR_FIGURE = 100        # fewer: an incremental build or a second rounding mode (~25 files, one the PCH)
FIGURE_FILE = "build-speed.json"

_BUILDING = re.compile(r"^\[\s*(\d+)%\] Building \w+ object ")
_OBJECT_LIST = re.compile(r"^\w+_(?:EXTERNAL_)?OBJECTS = \\$")


def object_files(build_make: str, build_dir: Path) -> list[Path]:
    """The object files a target links, from its CMakeFiles/<target>.dir/build.make:
    `<t>_OBJECTS` (relative to the tree) and `<t>_EXTERNAL_OBJECTS` (absolute; the
    object libraries' files)."""
    files, listing = [], False
    for line in build_make.splitlines():
        if _OBJECT_LIST.match(line):
            listing = True
            continue
        if listing:
            name = line.strip().rstrip("\\").strip().strip('"')
            if not name:
                listing = False
                continue
            files.append(Path(name) if name.startswith("/") else build_dir / name)
    return files


def _stale(obj: Path) -> bool:
    """The object is missing, or older than its target's flags.make: a configure that
    changed the target's flags or defines (e.g. precompiled headers switched on) rewrites
    flags.make, and every object of the target then compiles again."""
    try:
        built = obj.stat().st_mtime
    except OSError:
        return True
    target_dir = next((p for p in obj.parents if p.name.endswith(".dir") and p.parent.name == "CMakeFiles"), None)
    try:
        return target_dir is not None and (target_dir / "flags.make").stat().st_mtime > built
    except OSError:
        return False


def objects_to_compile(build_dir: Path, target: str) -> int | None:
    """How many of the target's object files will compile: those missing or older than
    their target's flags; None when the tree has no build.make for it (another generator,
    or not configured). A changed source or header is not seen here (the count is a floor)."""
    try:
        text = (build_dir / "CMakeFiles" / f"{target}.dir" / "build.make").read_text(errors="replace")
    except OSError:
        return None
    return sum(1 for f in object_files(text, build_dir) if _stale(f))


def format_seconds(seconds: float) -> str:
    if seconds < 90:
        return f"{max(0, round(seconds))} s"
    return f"{round(seconds / 60)} min"


@dataclass
class BuildProgress:
    total: int | None                   # files to compile, or None when unknown
    started: float = field(default_factory=time.monotonic)
    done: int = 0
    percent: int | None = None          # CMake's last [ NN%]

    def feed(self, line: str) -> bool:
        """Take one output line; True when it was a compile step."""
        m = _BUILDING.match(line)
        if not m:
            return False
        self.done += 1
        self.percent = int(m.group(1))
        if self.total is not None and self.done > self.total:
            self.total = self.done      # an existing object rebuilt: the floor moved
        return True

    def seconds_per_file(self, now: float | None = None) -> float | None:
        if self.done == 0:
            return None
        return ((now if now is not None else time.monotonic()) - self.started) / self.done

    def status(self, now: float | None = None) -> str | None:
        """"[12/162 files, about 13 min left]"; without a known total, CMake's percentage."""
        if self.done == 0:
            return None
        if self.total is None:
            return f"[{self.done} files, CMake at {self.percent}%]"
        per_file = self.seconds_per_file(now)
        left = (self.total - self.done) * per_file
        return f"[{self.done}/{self.total} files, about {format_seconds(left)} left]"


def load_figure(cache: Path) -> dict | None:
    """The last stored figure: {"seconds_per_file", "files", "cpu", "when"}, or None."""
    try:
        figure = json.loads((cache / FIGURE_FILE).read_text())
        return figure if float(figure["seconds_per_file"]) > 0 else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def record_figure(cache: Path, progress: BuildProgress, cpu: str, now: float | None = None) -> None:
    """Store this build's seconds per file, if it compiled enough files to say."""
    per_file = progress.seconds_per_file(now)
    if progress.done < MIN_FILES_FOR_FIGURE or per_file is None:
        return
    figure = {"seconds_per_file": round(per_file, 2), "files": progress.done, "cpu": cpu,
              "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    tmp = cache / f"{FIGURE_FILE}.tmp"
    try:
        tmp.write_text(json.dumps(figure, indent=2) + "\n")
        tmp.replace(cache / FIGURE_FILE)
    except OSError:
        pass        # a figure for doctor is not worth failing a finished build over


def first_build_estimate(cache: Path) -> tuple[float, str]:
    """Seconds a cold reference build takes here, and where the per-file figure came from."""
    figure = load_figure(cache)
    if figure:
        per_file = float(figure["seconds_per_file"])
        where = (f"{per_file:.1f} s a file, measured by the last build here "
                 f"({figure.get('cpu', '?')}, {figure.get('files', '?')} files, {figure.get('when', '?')})")
    else:
        per_file = DEFAULT_SECONDS_PER_FILE
        where = f"{per_file:.1f} s a file, simrun's default (no build measured on this machine yet)"
    return per_file * FIRST_BUILD_FILES, where

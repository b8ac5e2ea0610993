"""What the firmware cache holds, and removing what has not been used for a while.

    listing = list_cache(cache)          # firmware entries and CMake trees, with sizes and ages
    result = prune(cache, older_than_days=30, keep_trees=False)

The layout is build.py's (its docstring). An entry's age is when it was built
(its metadata.json's mtime); "last used" is the entry directory's mtime, which
ensure_firmware touches at every cache hit (the files inside stay untouched). A
CMake tree's last use is its newest linked ELF or CMakeCache.txt.

Pruning never removes what a builder holds: a tree is removed only while we hold
its build lock (locks/<tree>.lock, the flock build.py takes), and an entry only
while we hold the lock of every tree it could be built in (same CPU and
variant), since a builder publishes the entry under that lock. Lock files
themselves stay: deleting one a builder is about to open would let two builders
lock different files for the same tree.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..backend_id import FirmwareVariant
from .targets import DEFAULT_FP_CONTRACT, DEFAULT_ROUNDING

DAY = 86400.0
# Leftovers of an interrupted publish (build.publish) or prune: <entry>.tmp<pid> / .pruning<pid>.
_LEFTOVER = re.compile(r"^(?P<entry>.+)\.(?:tmp|pruning)(?P<pid>\d+)$")


def tree_size(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


@dataclass(frozen=True)
class Entry:
    """One firmware/<name>/ directory."""
    path: Path
    cpu: str | None             # None: metadata unreadable (a damaged entry)
    kernels: str | None
    rounding: str
    fp_contract: str
    sources: str                # "download" or "local", with the TFLM pin
    size: int
    built: float | None
    last_used: float | None

    @property
    def suffix(self) -> str:
        return FirmwareVariant(self.cpu, self.kernels, self.rounding, self.fp_contract).cache_suffix


@dataclass(frozen=True)
class Tree:
    """One build/<name>/ CMake tree."""
    path: Path
    size: int
    last_used: float | None


@dataclass
class Listing:
    root: Path
    entries: list[Entry] = field(default_factory=list)
    trees: list[Tree] = field(default_factory=list)
    other: dict[str, int] = field(default_factory=dict)     # downloads/, fixture/, ccache/...: bytes


def _sources_summary(metadata: dict) -> str:
    identity = metadata.get("source_identity") or {}
    tflm = identity.get("tflite-micro", "")
    origin = tflm.split(":", 1)[0] or "?"
    pin = (metadata.get("sources") or {}).get("tflite-micro", "")
    return f"{origin} tflite-micro@{pin[:10]}" if pin else origin


def read_entry(path: Path) -> Entry:
    try:
        metadata = json.loads((path / "metadata.json").read_text())
    except (OSError, ValueError):
        metadata = {}
    return Entry(path, metadata.get("cpu"), metadata.get("kernels"),
                 metadata.get("rounding", DEFAULT_ROUNDING), metadata.get("fp_contract", DEFAULT_FP_CONTRACT),
                 _sources_summary(metadata) if metadata else "damaged (no readable metadata.json)",
                 tree_size(path), _mtime(path / "metadata.json"), _mtime(path))


def read_tree(path: Path) -> Tree:
    stamps = [_mtime(p) for p in [path / "CMakeCache.txt", *path.glob("simrun_*.elf")]]
    known = [s for s in stamps if s is not None]
    return Tree(path, tree_size(path), max(known) if known else _mtime(path))


def list_cache(cache: Path) -> Listing:
    listing = Listing(cache)
    firmware, build = cache / "firmware", cache / "build"
    if firmware.is_dir():
        listing.entries = [read_entry(p) for p in sorted(firmware.iterdir())
                           if p.is_dir() and not _LEFTOVER.match(p.name)]
    if build.is_dir():
        listing.trees = [read_tree(p) for p in sorted(build.iterdir()) if p.is_dir()]
    if cache.is_dir():
        for p in sorted(cache.iterdir()):
            if p.is_dir() and p.name not in ("firmware", "build", "locks"):
                listing.other[p.name] = tree_size(p)
    return listing


# --- pruning ------------------------------------------------------------------

@dataclass
class PruneResult:
    removed: list[tuple[Path, int]] = field(default_factory=list)     # path, bytes freed
    skipped: list[tuple[Path, str]] = field(default_factory=list)     # path, why it stayed

    @property
    def freed(self) -> int:
        return sum(size for _path, size in self.removed)


@contextlib.contextmanager
def _holding(lock_files: list[Path]):
    """Hold every lock without waiting; yields the name of one another process holds, or None."""
    with contextlib.ExitStack() as stack:
        for lock in lock_files:
            try:
                f = stack.enter_context(open(lock, "a"))
            except OSError:
                continue                # vanished or unreadable: nothing holds it
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield lock.name
                return
            stack.callback(fcntl.flock, f, fcntl.LOCK_UN)
        yield None


def entry_locks(cache: Path, entry: Entry) -> list[Path]:
    """The locks of every tree this entry could have been built in: same CPU and variant
    (tree names: <cpu>-<12 hex tree key><variant suffix>[-<8 hex source dir id>])."""
    locks = cache / "locks"
    if not locks.is_dir():
        return []
    if entry.cpu is None:
        return sorted(locks.glob("*.lock"))     # a damaged entry: any builder may republish it
    pattern = re.compile(re.escape(entry.cpu) + r"-[0-9a-f]{12}" + re.escape(entry.suffix)
                         + r"(-[0-9a-f]{8})?\.lock")
    return sorted(p for p in locks.iterdir() if pattern.fullmatch(p.name))


def _remove(path: Path, size: int, result: PruneResult) -> None:
    # Renamed first, so a reader sees the whole entry or none (a half-deleted one would
    # look damaged and be rebuilt); an rmtree cut short leaves a .pruning leftover, removed next time.
    doomed = path.with_name(f"{path.name}.pruning{os.getpid()}")
    os.replace(path, doomed)
    shutil.rmtree(doomed, ignore_errors=True)
    result.removed.append((path, size))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def prune(cache: Path, older_than_days: float, keep_trees: bool = False, now: float | None = None) -> PruneResult:
    """Remove entries (and, unless keep_trees, CMake trees) last used more than
    older_than_days ago, and leftovers of interrupted publishes whose process is gone."""
    now = time.time() if now is None else now
    cutoff = now - older_than_days * DAY
    result = PruneResult()
    listing = list_cache(cache)
    for entry in listing.entries:
        if entry.last_used is not None and entry.last_used > cutoff:
            continue
        with _holding(entry_locks(cache, entry)) as busy:
            if busy:
                result.skipped.append((entry.path, f"a build holds {busy}"))
            else:
                _remove(entry.path, entry.size, result)
    if not keep_trees:
        for tree in listing.trees:
            if tree.last_used is not None and tree.last_used > cutoff:
                continue
            with _holding([cache / "locks" / f"{tree.path.name}.lock"]) as busy:
                if busy:
                    result.skipped.append((tree.path, f"a build holds {busy}"))
                else:
                    _remove(tree.path, tree.size, result)
    for parent in (cache / "firmware", cache / "build"):
        for p in sorted(parent.iterdir()) if parent.is_dir() else ():
            m = _LEFTOVER.match(p.name)
            if m and not _pid_alive(int(m.group("pid"))):
                size = tree_size(p)
                shutil.rmtree(p, ignore_errors=True)
                result.removed.append((p, size))
    return result

"""Firmware the diagnosis will need, built in the background while it emulates (issue 22).

As soon as the plain runs are compared, the diagnosis knows which numerics
variants it will ask for: a device backend in a pair that diverges gets its
other-rounding firmware tested on an integer layer and its no-fp-contract
firmware on a float one (BackendId.neighbours, the same rule wanted_variants
applies after the isolated runs). Those builds start here, one at a time, in
a `simrun build` child, while the isolated runs against the reference
emulate; when the diagnosis then asks for a variant, the build's lock makes it
wait for the child or find the entry cached. The child runs at normal priority:
the variant runs need its result as much as the isolated runs' (a niced build
would crawl on exactly when the diagnosis waits for it, and an unprivileged
process cannot raise its priority back).

Only with jobs >= 2 (the user allowed more than one thing at a time). Nothing
is left behind: stop() ends the child's process group, whether the diagnosis
still needed the build or was interrupted.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable

from ..backend_id import BackendId
from ..device.build_progress import first_build_estimate, format_seconds
from ..run_options import RunOptions

def prefetch_variants(comparisons: Iterable, ran: Iterable[str],
                      runnable: Callable[[str], bool] = lambda _label: True) -> list[BackendId]:
    """The firmware variants the diagnosis will want, from the plain runs' comparisons:
    none that ran already (`ran`, the backends' labels) or that `runnable` rules out."""
    ran = set(ran)
    wanted: dict[str, BackendId] = {}
    for cmp in comparisons:
        for pair in cmp.pairs:
            for s in pair.layers:
                if not (s.compared and s.diverges):
                    continue
                for side in (pair.a, pair.b):
                    found = BackendId.lookup(side)
                    if found is None or not found.is_target:
                        continue
                    for n in found.neighbours(not s.integer):
                        if n.label not in wanted and n.label not in ran and runnable(n.label):
                            wanted[n.label] = n
    return list(wanted.values())


def build_command(variant: BackendId, options: RunOptions) -> list[str]:
    v = variant.variant
    cmd = [sys.executable, "-m", "simrun", "build", "--cpu", v.cpu,
           "--kernels", v.kernels, "--rounding", v.rounding, "--fp-contract", v.fp_contract]
    if options.sources_dir:
        cmd += ["--sources", str(options.sources_dir)]
    if options.cache_dir:
        cmd += ["--cache-dir", str(options.cache_dir)]
    return cmd


class FirmwarePrefetch:
    """Builds `variants` one after another in a background thread; stop() ends it."""

    def __init__(self, variants: list[BackendId], options: RunOptions, say: Callable[[str], None],
                 command: Callable[[BackendId, RunOptions], list[str]] = build_command):
        self.variants, self.options, self.say, self.command = variants, options, say, command
        self.built: list[str] = []
        self._proc: subprocess.Popen | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="simrun-prefetch", daemon=True)

    def start(self) -> "FirmwarePrefetch":
        todo = [v for v in self.variants if not self._cached(v)]
        self.variants = todo
        if todo:
            cold, _ = first_build_estimate(self._cache_dir())
            self.say(f"building {', '.join(v.label for v in todo)} in the background for the diagnosis "
                     f"(about {format_seconds(cold)} each from nothing here, less where a tree exists), "
                     f"while the isolated runs emulate")
            self._thread.start()
        return self

    def _cache_dir(self):
        from ..device.build import default_cache_dir
        return self.options.cache_dir or default_cache_dir()

    def _cached(self, variant: BackendId) -> bool:
        from ..device.build import cached_firmware, plan_firmware
        from ..errors import SimrunError
        v = variant.variant
        try:
            return cached_firmware(plan_firmware(v.cpu, v.kernels, rounding=v.rounding, fp_contract=v.fp_contract,
                                                 sources_dir=self.options.sources_dir,
                                                 cache_dir=self.options.cache_dir)) is not None
        except SimrunError:
            return True     # cannot be built here: the diagnosis reports why when it asks

    def _run(self) -> None:
        for variant in self.variants:
            with self._lock:
                if self._stopping.is_set():
                    return
                self._proc = subprocess.Popen(self.command(variant, self.options), stdin=subprocess.DEVNULL,
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                              start_new_session=True)
            if self._proc.wait() == 0:
                self.built.append(variant.label)
            # A failed build is not reported here: the diagnosis builds the variant
            # itself when it asks for it, and reports that failure in its own words.

    def stop(self) -> None:
        """End the background build (if one runs) and its compilers; wait for the thread."""
        with self._lock:
            self._stopping.set()
            proc = self._proc
            if proc is not None and proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()

    def __enter__(self) -> "FirmwarePrefetch":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

#!/usr/bin/env python3
"""Where a Renode run's time goes, against QEMU for the same run, on this machine (named in the output).

For one model on one CPU, the same Session steps on QEMU and on Renode (the `renode` on PATH, or
--renode PATH), each phase timed:
  start-up   starting the emulator until its first output (Renode: the Mono/.NET runtime)
  platform   first output until the GDB server is up (Renode: platform, ELF, GDB server)
  connect    GDB connection, handshake, breakpoints, running the C runtime to main() (QEMU's
             own start-up shows here: its GDB socket answers once its machine exists)
  upload     writing the model into target memory (QEMU: the mapped RAM; Renode: a file its
             Monitor copies onto the bus, or, in the "GDB" column, GDB X packets as before)
  allocate   the firmware's model allocation, to its ready hook
  invoke     one inference with per-layer capture, less the capture readback
  readback   reading every operator's outputs back (the capture log)
  stop       ending the session (Renode: quit, then kill what is left)
and the whole run's Renode/QEMU ratio, for Renode's bulk memory through files (the default,
emulators/renode_memory.py) and through GDB packets (memory="gdb", what simrun did before). person_detect with TFLM firmware (SIMRUN_SOURCES_DIR or
a warm build cache); without it, or with --quick, the fixture firmware and its model.

    python bench/renode_bench.py [--cpu cortex-m4] [--kernels reference] [--model PATH] [--renode PATH] [--quick]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from common import machine  # noqa: E402  (bench/common.py)
from simrun.errors import SimrunError  # noqa: E402

DEFAULT_MODEL = REPO.parent / "shared" / "models" / "person_detect.tflite"
PHASES = ("start-up", "platform", "connect", "upload", "allocate", "invoke", "readback", "stop")
STAMP = re.compile(r"^(\d\d):(\d\d):(\d\d)\.(\d{4}) \[", re.M)      # Renode's --plain log lines


def _epoch(stamp: re.Match, day: datetime) -> float:
    h, m, s, frac = (int(g) for g in stamp.groups())
    return day.replace(hour=h, minute=m, second=s, microsecond=frac * 100).timestamp()


def one_run(elf: Path, cpu: str, emulator: str, model, inputs, raw: bool, memory: str = "auto") -> dict[str, float]:
    from simrun.device.session import Session

    with Session(elf, cpu=cpu, emulator=emulator, timeout=900, memory=memory) as s:
        launched = time.time()
        s.load_model(model, raw=raw)
        boot = dict(s.boot_seconds)
        process = s.emulator.process
        log = process.log_path.read_text(errors="replace") if process else ""
        cap = s.invoke(inputs, capture_layers=True)
        t_stop = time.perf_counter()
    stop = time.perf_counter() - t_stop
    # Renode's own log timestamps split its start: runtime start-up until its first line, then
    # platform, ELF and GDB server until "GDB server with all CPUs started". QEMU logs nothing.
    stamps = list(STAMP.finditer(log))
    ready = next((m for m in stamps if "GDB server" in log[m.end():log.find("\n", m.end())]), None)
    startup, platform = boot["start"], 0.0
    if stamps and ready is not None:
        day = datetime.fromtimestamp(launched)
        startup = max(0.0, _epoch(stamps[0], day) - launched)
        platform = max(0.0, boot["start"] - startup)
    readback = cap.meta["readback_seconds"]
    return {"start-up": startup, "platform": platform, "connect": boot["connect"], "upload": boot["upload"],
            # invoke_seconds holds only the log drains made during the run; the final drain follows it.
            "allocate": boot["allocate"], "invoke": cap.meta["invoke_seconds"] - cap.meta["readback_in_run_seconds"],
            "readback": readback, "stop": stop}


def workload(args):
    """(elf, model, inputs, raw, what) for the run: TFLM person_detect, else the fixture."""
    import numpy as np
    from simrun.device import fixture
    if not args.quick:
        try:
            from simrun.device.build import ensure_firmware
            from simrun.device.sources import local_sources
            from simrun.inputs import random_samples
            from simrun.model import Model
            if local_sources() is None and not os.environ.get("SIMRUN_CACHE_DIR"):
                raise SimrunError("no SIMRUN_SOURCES_DIR and no SIMRUN_CACHE_DIR")
            fw = ensure_firmware(args.cpu, args.kernels)
            model = Model.from_file(args.model)
            return fw.elf, model, random_samples(model.inputs, 0, 1)[0], False, \
                f"{args.model.name}, TFLM {args.kernels} firmware"
        except SimrunError as err:
            print(f"TFLM firmware unavailable ({str(err).splitlines()[0]}): the fixture instead")
    model = fixture.demo_model(seed=1)
    x = np.arange(-32, 32, dtype=np.int8).reshape(1, 64)
    return fixture.build_fixture(args.cpu), model.to_bytes(), [x], True, "the fixture firmware and model"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu", default="cortex-m4")
    ap.add_argument("--kernels", default="reference")
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--renode", type=Path, default=None, help="the renode to time (default: the one on PATH)")
    ap.add_argument("--quick", action="store_true", help="the fixture firmware only (tests/test_bench.py)")
    args = ap.parse_args()
    print(f"machine: {machine()}")
    if args.renode is not None:
        os.environ["PATH"] = f"{args.renode.resolve().parent}{os.pathsep}{os.environ['PATH']}"
    elf, model, inputs, raw, what = workload(args)
    print(f"run: {args.cpu}, {what}, one inference with per-layer capture")
    qemu = one_run(elf, args.cpu, "qemu", model, inputs, raw)
    renode_path = shutil.which("renode")
    try:
        if renode_path is None:
            raise SimrunError("renode not on PATH")
        from simrun.device.emulators.renode import renode_version
        version = renode_version(renode_path)
        renode_gdb = one_run(elf, args.cpu, "renode", model, inputs, raw, memory="gdb")
        renode = one_run(elf, args.cpu, "renode", model, inputs, raw)
    except SimrunError as err:
        print(f"QEMU total {sum(qemu.values()):.2f} s; skipped Renode: {str(err).splitlines()[0]}")
        return 0
    print(f"renode: {'.'.join(map(str, version)) if version else '?'} ({renode_path})")
    print(f"{'phase':<10} {'QEMU s':>8} {'Renode s':>9} {'ratio':>7} {'GDB s':>9} {'ratio':>7}"
          f"   (Renode: bulk memory through files; GDB: through GDB packets)")

    def ratio(r: float, q: float) -> str:
        return f"{r / q:7.1f}" if q > 1e-3 else f"{'-':>7}"
    for phase in PHASES:
        q, r, g = qemu[phase], renode[phase], renode_gdb[phase]
        print(f"{phase:<10} {q:8.3f} {r:9.3f} {ratio(r, q)} {g:9.3f} {ratio(g, q)}")
    q, r, g = sum(qemu.values()), sum(renode.values()), sum(renode_gdb.values())
    print(f"{'total':<10} {q:8.3f} {r:9.3f} {ratio(r, q)} {g:9.3f} {ratio(g, q)}")
    print(f"Renode/QEMU for the same run: {r / q:.1f}x (through GDB packets, as before: {g / q:.1f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Emulator controller figures, all from one run on this machine.

Prints:
  - GDB readback throughput (MB/s) from QEMU with the fixture firmware (always);
  - per TFLM kernel variant, for person_detect: plain emulated inference time,
    the same with per-layer capture (overhead %), the capture's readback MB/s,
    and the ratio to host TFLM (tflite-micro wheel) time for the same model.
The TFLM part needs the firmware (SIMRUN_SOURCES_DIR or a warm build cache);
without it that part is skipped with the reason.

    python bench/emulator_bench.py [--cpu cortex-m55] [--model PATH] [--repeat 3] [--download]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from simrun.errors import SimrunError  # noqa: E402
from simrun.target.targets import KERNEL_VARIANTS  # noqa: E402

DEFAULT_MODEL = REPO.parent / "shared" / "models" / "person_detect.tflite"


def readback_throughput(cpu: str, megabytes: int = 4) -> float:
    from simrun.target.elf import FirmwareImage
    from simrun.target.emulators import launch
    from simrun.target.fixture import build_fixture

    elf = build_fixture(cpu)
    image = FirmwareImage(elf)
    with tempfile.TemporaryDirectory(prefix="simrun-bench-") as tmp:
        emu = launch("qemu", elf, cpu, Path(tmp))
        try:
            gdb = emu.connect(time.monotonic() + 10)
            gdb.handshake()
            size = image.arena_capacity
            rounds = max(1, megabytes * 1024 * 1024 // size)
            t0 = time.perf_counter()
            for _ in range(rounds):
                gdb.read_memory(image.address("simrun_arena"), size)
            return rounds * size / (time.perf_counter() - t0) / 1e6
        finally:
            emu.stop()


def host_tflm_seconds(model_data: bytes, inputs: list[np.ndarray], repeat: int) -> float:
    from tflite_micro.python.tflite_micro import runtime
    interp = runtime.Interpreter.from_bytes(model_data)
    for i, x in enumerate(inputs):
        interp.set_input(x, i)
    interp.invoke()                                   # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        interp.invoke()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def target_figures(cpu: str, kernels: str, model, inputs, repeat: int) -> dict:
    from simrun.target.build import ensure_firmware
    from simrun.target.session import Session

    fw = ensure_firmware(cpu, kernels, progress=lambda m: print(f"  [{kernels}] {m}", file=sys.stderr))
    with Session(fw.elf, cpu=cpu, timeout=900) as s:
        t0 = time.perf_counter()
        s.load_model(model)
        load = time.perf_counter() - t0
        plain = statistics.median(s.invoke(inputs, capture_layers=False).meta["invoke_seconds"]
                                  for _ in range(repeat))
        caps = [s.invoke(inputs, capture_layers=True) for _ in range(repeat)]
    layered = statistics.median(c.meta["invoke_seconds"] for c in caps)
    rb_bytes = caps[0].meta["readback_bytes"]
    rb_secs = statistics.median(c.meta["readback_seconds"] for c in caps)
    return {"load": load, "plain": plain, "layered": layered, "ops": len(caps[0].ops),
            "readback_mb_s": rb_bytes / rb_secs / 1e6 if rb_secs else float("nan"), "readback_bytes": rb_bytes}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu", default="cortex-m55")
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--download", action="store_true",
                    help="without SIMRUN_SOURCES_DIR, let the firmware build download its sources")
    args = ap.parse_args()

    print(f"GDB readback from QEMU ({args.cpu}, fixture firmware): "
          f"{readback_throughput(args.cpu):.2f} MB/s")

    from simrun.model import Model
    from simrun.target.sources import local_sources
    if not args.model.is_file():
        print(f"skipped TFLM figures: model {args.model} not found")
        return 0
    model = Model.from_file(args.model)
    rng = np.random.default_rng(0)
    inputs = [rng.integers(np.iinfo(i.dtype).min, np.iinfo(i.dtype).max, i.shape, endpoint=True).astype(i.dtype)
              for i in model.inputs]
    host = host_tflm_seconds(model.data, inputs, args.repeat)
    print(f"host TFLM ({args.model.name}): {host * 1e3:.1f} ms per inference")
    if local_sources() is None and not args.download:
        print("skipped TFLM figures: no TFLM sources (set SIMRUN_SOURCES_DIR, or pass --download "
              "to let the build fetch the pinned sources)")
        return 0
    print(f"{'variant':<10} {'plain s':>9} {'layers s':>9} {'overhead':>9} {'readback':>11} {'emu/host':>9} ops")
    for kernels in KERNEL_VARIANTS:
        try:
            f = target_figures(args.cpu, kernels, model, inputs, args.repeat)
        except SimrunError as err:
            print(f"{kernels:<10} skipped: {err}")
            continue
        overhead = (f["layered"] / f["plain"] - 1) * 100
        print(f"{kernels:<10} {f['plain']:>9.3f} {f['layered']:>9.3f} {overhead:>8.0f}% "
              f"{f['readback_mb_s']:>7.2f} MB/s {f['plain'] / host:>8.0f}x {f['ops']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Emulator controller figures, all from one run on this machine (named in the output).

Prints:
  - target memory throughput, read and write, through the board RAM mapped into
    this process (QEMU memory-backend-file) and through GDB packets, with the
    fixture firmware (always; no TFLM needed);
  - per TFLM kernel variant, for person_detect: a plain emulated inference, the
    same with per-layer capture (capture log in board RAM) as a ratio to plain,
    the same forced through GDB memory, and host TFLM's time for the model.
The TFLM part needs the firmware (SIMRUN_SOURCES_DIR or a warm build cache);
without it, or with --quick, that part is skipped with the reason.

    python bench/emulator_bench.py [--cpu cortex-m55] [--model PATH] [--repeat 3] [--download] [--quick]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from common import machine  # noqa: E402  (bench/common.py)
from simrun.errors import SimrunError  # noqa: E402
from simrun.device.targets import KERNEL_VARIANTS  # noqa: E402

DEFAULT_MODEL = REPO.parent / "shared" / "models" / "person_detect.tflite"
MB = 1e6


def _rate(fn, nbytes: int, min_seconds: float = 0.2) -> float:
    """Bytes per second of fn() moving nbytes, repeated for at least min_seconds."""
    rounds, t0 = 0, time.perf_counter()
    while True:
        fn()
        rounds += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= min_seconds:
            return rounds * nbytes / elapsed


def memory_throughput(cpu: str, mapped_bytes: int, gdb_bytes: int) -> dict[str, float]:
    from simrun.device.fixture import build_fixture, demo_model
    from simrun.device.memory import GdbMemory
    from simrun.device.session import Session

    elf = build_fixture(cpu, bulk_bytes=None)           # the board's whole bulk region
    with Session(elf, cpu=cpu, timeout=60) as s:
        s.load_model(demo_model().to_bytes(), raw=True)
        if not s.memory_mapped:
            raise SimrunError("the board RAM is not mapped (not QEMU?)")
        arena = s.layout.arena_address
        mapped_bytes = min(mapped_bytes, s.layout.arena_capacity)
        blob = np.random.default_rng(0).integers(0, 256, mapped_bytes, dtype=np.uint8).tobytes()
        gdb = GdbMemory(s.gdb)
        out = {
            "mapped read": _rate(lambda: s.memory.read(arena, mapped_bytes), mapped_bytes),
            "mapped write": _rate(lambda: s.memory.write(arena, blob), mapped_bytes),
            "gdb read": _rate(lambda: gdb.read(arena, gdb_bytes), gdb_bytes),
            "gdb write": _rate(lambda: gdb.write(arena, blob[:gdb_bytes]), gdb_bytes),
        }
        if s.memory.read(arena, 4096) != gdb.read(arena, 4096):
            raise SimrunError("mapped and GDB reads of the same RAM differ")
    return out


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


def _timed_invokes(s, inputs, capture: bool, repeat: int) -> tuple[float, object]:
    """Median wall time of whole invoke() calls (log readback and outputs included)."""
    times, cap = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        cap = s.invoke(inputs, capture_layers=capture)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), cap


def target_figures(cpu: str, kernels: str, model, inputs, repeat: int) -> dict:
    from simrun.device.build import ensure_firmware
    from simrun.device.session import Session

    fw = ensure_firmware(cpu, kernels, progress=lambda m: print(f"  [{kernels}] {m}", file=sys.stderr))
    with Session(fw.elf, cpu=cpu, timeout=900) as s:
        s.load_model(model)
        s.invoke(inputs, capture_layers=False)                    # warm-up (TCG translation)
        # Interleaved, so load on this shared machine hits both alike.
        plain, layered, caps = [], [], []
        for _ in range(repeat):
            plain.append(_timed_invokes(s, inputs, False, 1)[0])
            t, cap = _timed_invokes(s, inputs, True, 1)
            layered.append(t)
            caps.append(cap)
    with Session(fw.elf, cpu=cpu, timeout=900, memory="gdb") as s:
        s.load_model(model)
        s.invoke(inputs, capture_layers=False)
        gdb_layered, _ = _timed_invokes(s, inputs, True, repeat)
    return {"plain": statistics.median(plain), "layered": statistics.median(layered), "gdb_layered": gdb_layered,
            "ops": len(caps[0].ops), "bytes": caps[0].meta["readback_bytes"], "drains": caps[0].meta["log_drains"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu", default="cortex-m55")
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--download", action="store_true",
                    help="without SIMRUN_SOURCES_DIR, let the firmware build download its sources")
    ap.add_argument("--quick", action="store_true", help="small transfers, no TFLM part (tests/test_bench.py)")
    args = ap.parse_args()
    print(f"machine: {machine()}")

    big, small = (1 << 20, 64 << 10) if args.quick else (8 << 20, 1 << 20)
    figures = memory_throughput(args.cpu, big, small)
    print(f"target memory, {args.cpu} board RAM (fixture firmware), {big >> 10} KiB mapped / {small >> 10} KiB GDB:")
    for way in ("read", "write"):
        m, g = figures[f"mapped {way}"], figures[f"gdb {way}"]
        print(f"  {way:<6} mapped {m / MB:9.0f} MB/s   GDB {g / MB:6.1f} MB/s   mapped/GDB {m / g:7.0f}x")
    if args.quick:
        print("skipped TFLM figures: --quick")
        return 0

    from simrun.model import Model
    from simrun.device.sources import local_sources
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
    print(f"{args.model.name} on {args.cpu}, median of {args.repeat} whole invoke() calls each:")
    print(f"{'variant':<10} {'plain s':>8} {'layers s':>9} {'layers/plain':>13} {'GDB layers s':>13} "
          f"{'GDB/plain':>10} {'emu/host':>9} ops  bytes   drains")
    for kernels in KERNEL_VARIANTS:
        try:
            f = target_figures(args.cpu, kernels, model, inputs, args.repeat)
        except SimrunError as err:
            print(f"{kernels:<10} skipped: {err}")
            continue
        print(f"{kernels:<10} {f['plain']:>8.3f} {f['layered']:>9.3f} {f['layered'] / f['plain']:>12.3f}x "
              f"{f['gdb_layered']:>13.3f} {f['gdb_layered'] / f['plain']:>9.2f}x {f['plain'] / host:>8.0f}x "
              f"{f['ops']:>3} {f['bytes']:>7} {f['drains']:>3}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

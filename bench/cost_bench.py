#!/usr/bin/env python3
"""What counting instructions costs: an emulated inference with the counting
plugin loaded against the same inference without it, all from one run here.

Prints the machine, then per firmware (the fixture; person_detect in both
kernel variants when the TFLM firmware can be built): median inference time
plain and counted (no per-layer stops either way), their ratio, and the
instructions executed. Without TFLM sources (SIMRUN_SOURCES_DIR) or the
plugin's QEMU header, that part is skipped with the reason.

    python bench/cost_bench.py [--cpu cortex-m55] [--model PATH] [--repeat 5] [--quick]
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from common import machine  # noqa: E402  (bench/common.py)
from simrun.errors import SimrunError  # noqa: E402
from simrun.device.targets import KERNEL_VARIANTS  # noqa: E402

DEFAULT_MODEL = REPO.parent / "shared" / "models" / "person_detect.tflite"


def timed(elf, cpu, load, inputs, repeat: int, count: bool) -> tuple[float, int | None]:
    """Median invoke seconds (plain run: no per-layer stops) and the instructions counted."""
    from simrun.device.session import Session
    with Session(elf, cpu=cpu, timeout=900, count_instructions=count) as s:
        load(s)
        s.invoke(inputs, capture_layers=False)          # warm: translation blocks exist
        caps = [s.invoke(inputs, capture_layers=False) for _ in range(repeat)]
    return statistics.median(c.meta["invoke_seconds"] for c in caps), caps[0].meta.get("instructions_total")


def row(name: str, elf, cpu, load, inputs, repeat: int) -> None:
    plain, _ = timed(elf, cpu, load, inputs, repeat, count=False)
    counted, total = timed(elf, cpu, load, inputs, repeat, count=True)
    print(f"{name:<28} {plain * 1e3:>10.2f} {counted * 1e3:>10.2f} {counted / plain:>7.2f}x {total:>15,}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu", default="cortex-m55")
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="fixture firmware only, one repetition")
    args = ap.parse_args()
    repeat = 1 if args.quick else args.repeat

    from simrun.device.fixture import build_fixture, demo_model
    from simrun.device.qemu_plugin import ensure_plugin

    print(f"machine: {machine()}")
    try:
        print(f"plugin: {ensure_plugin()}")
    except SimrunError as err:
        print(f"skipped: the counting plugin cannot be built here: {err}")
        return 0
    print(f"{'firmware':<28} {'plain ms':>10} {'counted ms':>10} {'ratio':>8} {'instructions':>15}")
    fixture_model = demo_model(input_len=64)
    x = np.random.default_rng(0).integers(-128, 128, (1, 64)).astype(np.int8)
    row(f"fixture {args.cpu}", build_fixture(args.cpu), args.cpu,
        lambda s: s.load_model(fixture_model.to_bytes(), raw=True), [x], repeat)
    if args.quick:
        return 0

    from simrun.model import Model
    from simrun.device.build import ensure_firmware
    from simrun.device.sources import local_sources
    if not args.model.is_file():
        print(f"skipped TFLM rows: model {args.model} not found")
        return 0
    if local_sources() is None:
        print("skipped TFLM rows: no TFLM sources (set SIMRUN_SOURCES_DIR)")
        return 0
    model = Model.from_file(args.model)
    rng = np.random.default_rng(0)
    inputs = [rng.integers(np.iinfo(i.dtype).min, np.iinfo(i.dtype).max, i.shape, endpoint=True).astype(i.dtype)
              for i in model.inputs]
    for kernels in KERNEL_VARIANTS:
        try:
            fw = ensure_firmware(args.cpu, kernels)
            row(f"{args.model.stem} {args.cpu} {kernels}", fw.elf, args.cpu,
                lambda s: s.load_model(model), inputs, repeat)
        except SimrunError as err:
            print(f"{kernels:<10} skipped: {err}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Firmware build time: cold (empty cache) per kernel variant, then warm (cached).

    python bench/build_time.py [--cpu cortex-m55] [--sources DIR] [--quick]

The cold builds use a temporary cache directory, so nothing already cached is
reused; both variants share one CMake tree there, so the second variant's time
shows what sharing the common TFLM objects saves. Needs the TFLM sources
(--sources or SIMRUN_SOURCES_DIR) and takes minutes (-j2). --quick times the
fixture firmware instead (no TFLM sources; tests/test_bench.py runs it).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from simrun.device.build import ensure_firmware  # noqa: E402
from simrun.errors import SimrunError  # noqa: E402
from simrun.device.targets import KERNEL_VARIANTS  # noqa: E402


def timed(cpu: str, kernels: str, sources: str | None, cache: Path) -> tuple[float, int]:
    compiled = 0

    def count(line: str) -> None:
        nonlocal compiled
        compiled += "Building" in line

    started = time.monotonic()
    ensure_firmware(cpu, kernels, sources_dir=sources, cache_dir=cache, progress=count)
    return time.monotonic() - started, compiled


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cpu", default="cortex-m55")
    p.add_argument("--sources", default=None)
    p.add_argument("--quick", action="store_true", help="the fixture firmware, cold then warm")
    args = p.parse_args()
    if args.quick:
        from simrun.device.fixture import build_fixture
        with tempfile.TemporaryDirectory(prefix="simrun-bench-") as tmp:
            for state in ("cold", "warm"):
                started = time.monotonic()
                build_fixture(args.cpu, cache_dir=tmp)
                print(f"{state}  {args.cpu} fixture   {time.monotonic() - started:7.2f} s", flush=True)
        return 0
    try:
        with tempfile.TemporaryDirectory(prefix="simrun-bench-") as tmp:
            cache = Path(tmp)
            for kernels in KERNEL_VARIANTS:
                seconds, files = timed(args.cpu, kernels, args.sources, cache)
                print(f"cold  {args.cpu} {kernels:9s} {seconds:7.1f} s  ({files} files compiled)", flush=True)
            for kernels in KERNEL_VARIANTS:
                seconds, files = timed(args.cpu, kernels, args.sources, cache)
                print(f"warm  {args.cpu} {kernels:9s} {seconds:7.2f} s  ({files} files compiled)", flush=True)
    except SimrunError as err:
        print(f"build_time: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

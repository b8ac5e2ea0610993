"""Cost of a diagnosis: `simrun diff` with --diagnose against the same diff with --no-diagnose.

    python bench/diagnose_bench.py [--model PATH] [--count N] [--cpu cortex-m55] [--kernels reference,cmsis-nn]

Host backends always; with TFLM sources (SIMRUN_SOURCES_DIR, or --sources) also the target
variants of --cpu. Every firmware the diagnosis may ask for (both rounding modes of each
variant) is built or found before the clock starts, as a second run would find it. Prints
the wall time of both runs (backends, compare, isolated runs, variants, diagnosis, the default
policy; no reports) and their ratio, from one run of each, with the machine's name.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from simrun.backends import HOST_BACKENDS  # noqa: E402
from simrun.inputs import load_named_inputs  # noqa: E402
from simrun.model import Model  # noqa: E402
from simrun.pipeline import diff_run  # noqa: E402
from simrun.backend_id import FirmwareVariant  # noqa: E402
from simrun.run_options import RunOptions  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=REPO.parent / "shared" / "models" / "vww_96_int8.tflite")
    p.add_argument("--count", type=int, default=1, help="random inputs per run")
    p.add_argument("--cpu", default="cortex-m55", help="comma-separated CPUs for target backends")
    p.add_argument("--kernels", default="reference,cmsis-nn")
    p.add_argument("--sources", type=Path, help="TFLM source trees (default: SIMRUN_SOURCES_DIR)")
    args = p.parse_args()

    from simrun.device.sources import local_sources
    sources = args.sources or local_sources()
    labels = list(HOST_BACKENDS)
    if sources:
        from simrun.device.build import ensure_firmware
        for cpu in args.cpu.split(","):
            for kernels in args.kernels.split(","):
                for rounding in ("double", "single"):
                    ensure_firmware(cpu, kernels, rounding=rounding, sources_dir=sources)
                labels.append(FirmwareVariant(cpu, kernels).label)
    else:
        print("no TFLM sources (set SIMRUN_SOURCES_DIR): host backends only")

    model = Model.from_file(args.model)
    named = load_named_inputs(model, ["random:0"], count=args.count)
    names, samples = [n for n, _ in named], [s for _, s in named]
    extra: list[str] = []

    def progress(label, event, seconds, message):
        if event == "started" and label.endswith("(isolated)"):
            extra.append(label)

    timings = {}
    for diagnose in (False, True):
        start = time.perf_counter()
        result = diff_run(model, names, samples, labels, RunOptions(sources_dir=sources), diagnose=diagnose,
                          progress=progress)
        timings[diagnose] = time.perf_counter() - start
    d = result.diagnosis
    print(f"simrun diff {args.model.name}, {args.count} input(s), backends: {', '.join(labels)}")
    print(f"  plain diff (--no-diagnose)  {timings[False]:7.2f} s")
    print(f"  with diagnosis              {timings[True]:7.2f} s  "
          f"({len(extra)} isolated runs: {', '.join(extra)})")
    if d is not None:
        for summary in d.summaries(0):
            print(f"    {summary}")
    print(f"diagnosis cost: {timings[True] / timings[False]:.2f}x a plain diff "
          f"({platform.node()}, {platform.machine()}, {os.cpu_count()} cores, one run each)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

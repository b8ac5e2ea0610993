"""Wall time of a whole `simrun diff` on person_detect, split by backend, and the share of
it that report generation takes (issue 9 asks for under 10 %).

    python bench/diff_bench.py [--model PATH] [--count N] [--cpu cortex-m55[,cortex-m4]] [--quick]

Host backends always; with TFLM sources (SIMRUN_SOURCES_DIR, or --sources) also
target:<cpu>:reference and target:<cpu>:cmsis-nn per CPU, timed on cached firmware: the
firmware is built (or found) before the clock starts, as a second run would find it.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from simrun.backends import HOST_BACKENDS  # noqa: E402
from simrun.backend_id import FirmwareVariant  # noqa: E402
from simrun.run_options import RunOptions  # noqa: E402
from simrun.pipeline import diff_run  # noqa: E402
from simrun.inputs import load_named_inputs  # noqa: E402
from simrun.model import Model  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=REPO.parent / "shared" / "models" / "person_detect.tflite")
    p.add_argument("--count", type=int, default=1, help="random inputs per run")
    p.add_argument("--cpu", default="cortex-m55", help="comma-separated CPUs for target backends")
    p.add_argument("--sources", type=Path, help="TFLM source trees (default: SIMRUN_SOURCES_DIR)")
    p.add_argument("--report", type=Path, help="keep the reports in this directory (default: a temporary one)")
    p.add_argument("--no-diagnose", action="store_true",
                   help="skip the diagnosis (isolated runs and numerics variants); a first run with it "
                        "may build variant firmware inside the timed diff, so time a second run")
    p.add_argument("--quick", action="store_true", help="host backends only (tests/test_bench.py runs this)")
    args = p.parse_args()

    from simrun.device.sources import local_sources
    sources = None if args.quick else (args.sources or local_sources())
    labels = list(HOST_BACKENDS)
    if sources:
        from simrun.device.build import ensure_firmware
        for cpu in args.cpu.split(","):
            for kernels in ("reference", "cmsis-nn"):
                t0 = time.perf_counter()
                fw = ensure_firmware(cpu, kernels, sources_dir=sources)
                print(f"firmware {cpu}/{kernels}: {fw.elf} ({time.perf_counter() - t0:.1f} s to build or find)")
                labels.append(FirmwareVariant(cpu, kernels).label)
    else:
        print("host backends only: " + ("--quick" if args.quick else "no TFLM sources (set SIMRUN_SOURCES_DIR)"))

    seconds: dict[str, float] = {}
    outcome: dict[str, str] = {}

    def progress(label, event, secs, message):
        if event in ("finished", "failed"):         # normal and (when diagnosing) isolated runs
            seconds[label] = seconds.get(label, 0.0) + secs
            outcome[label] = "ok" if event == "finished" else f"failed: {message[:70]}"

    start = time.perf_counter()
    model = Model.from_file(args.model)
    named = load_named_inputs(model, ["random:0"], count=args.count)
    t_inputs = time.perf_counter()
    run = diff_run(model, [n for n, _ in named], [s for _, s in named], labels, RunOptions(sources_dir=sources),
                   progress=progress, diagnose=not args.no_diagnose).run
    t_backends = time.perf_counter()
    from simrun import report
    from simrun.analysis.result import judge
    result = judge(run)                 # diff_run judged too: timed again here on its own
    verdict = result.verdict
    t_policy = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        report.terminal.render(run, verdict)
        written = report.write_reports(result, args.report or Path(tmp))
        n_plots = len(list(written["plots"].glob("*.svg"))) if written["plots"].is_dir() else 0
    t_reports = time.perf_counter() - t_policy
    total = time.perf_counter() - start
    print(f"simrun diff {args.model.name}, {args.count} input(s)")
    print(f"  {'model + inputs':34s} {t_inputs - start:7.2f} s")
    for label in labels:
        print(f"  {label:34s} {seconds.get(label, float('nan')):7.2f} s  {outcome.get(label, '?')}")
    print(f"  {'backends, diagnosis, compare (wall)':34s} {t_backends - t_inputs:7.2f} s")
    print(f"  {'policy':34s} {t_policy - t_backends:7.2f} s")
    print(f"  {'reports (terminal, json, junit, html, overlays)':34s} {t_reports:7.2f} s  {n_plots} plot(s)")
    print(f"  {'total':34s} {total:7.2f} s")
    print(f"report generation: {100 * t_reports / total:.1f} % of the diff "
          f"({len(labels)} backends, {len(run.comparisons)} input(s), "
          f"{'no diagnosis' if run.diagnosis is None else 'diagnosed'}; {platform.node()}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

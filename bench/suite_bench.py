"""Suite throughput with --jobs 1 against --jobs 2 (or --jobs A,B,...) on the same models,
in one run, and the peak memory of a job.

    python bench/suite_bench.py [MODEL|DIR ...] [--backends LIST] [--cpu CPU] [--kernels LIST]
                                [--sources DIR] [--jobs 1,2] [--repeat N] [--no-diagnose] [--quick]

Default: the shared models (../shared/models) on the host backends tflm-host and
tflite-reference, diagnosis on (what `simrun suite` does by default). `--cpu` adds emulated
targets: their firmware must be in the cache already (SIMRUN_CACHE_DIR; with local sources,
--sources or SIMRUN_SOURCES_DIR, as they were built), and with the diagnosis on also the
variants its isolated runs may ask for (the other rounding, -ffp-contract=off): the bench
checks that first and never starts a build (it times what a second CI run does). Each
--jobs value runs the whole suite once as `simrun suite` in a fresh process; the figure is
models per minute of wall time, the ratio is against the first --jobs value. Also printed:
the machine, its load average before and after each run (other work on the machine shows
there, and lowers the ratio), the CPU time the run's processes used (more CPU at --jobs 2
than at --jobs 1 means the jobs slowed each other down), and the peak memory of a job (the
largest resident set of any one process of it: the diff or one of its backend workers, as
summary.json records it).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine  # noqa: E402

MODELS = REPO.parent / "shared" / "models"


def uncached_firmware(cpus: str, kernels: str, sources: str | None, diagnose: bool) -> list[str]:
    """The target variants this bench would need that the firmware cache lacks."""
    from simrun.backend_id import FirmwareVariant
    from simrun.device.build import cached_firmware, plan_firmware
    from simrun.device.sources import state

    checked = state(sources)
    missing = []
    for cpu in cpus.split(","):
        for kernel in kernels.split(","):
            base = FirmwareVariant(cpu, kernel)
            variants = [base] + ([base.other_rounding(), base.without_fp_contract()] if diagnose else [])
            for v in variants:
                request = plan_firmware(v.cpu, v.kernels, rounding=v.rounding, fp_contract=v.fp_contract,
                                        sources_dir=sources, source_state=checked)
                if cached_firmware(request) is None:
                    missing.append(v.label)
    return missing


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="*", type=Path, help="models or folders (default: the shared models)")
    p.add_argument("--backends", default="tflm-host,tflite-reference")
    p.add_argument("--cpu", help="add target:<cpu>:<kernels> backends (firmware must be cached)")
    p.add_argument("--kernels", default="reference,cmsis-nn")
    p.add_argument("--sources", help="the local TFLM/CMSIS trees the cached firmware was built from "
                                     "(default SIMRUN_SOURCES_DIR; none: pinned downloads)")
    p.add_argument("--jobs", default="1,2", help="comma-separated --jobs values to compare")
    p.add_argument("--no-diagnose", action="store_true")
    p.add_argument("--count", type=int, default=1, help="random inputs per model")
    p.add_argument("--repeat", type=int, default=1, help="runs per --jobs value, alternating the order "
                                                         "(the ratio is of the median walls)")
    p.add_argument("--quick", action="store_true", help="two small models, no diagnosis (a smoke run)")
    args = p.parse_args()
    models = [str(m) for m in args.models] or [str(MODELS)]
    if args.quick:
        models = [str(MODELS / "hello_world_int8.tflite"), str(MODELS / "micro_speech_quantized.tflite")]
        args.no_diagnose = True
    backends = args.backends + (",target" if args.cpu else "")
    extra = (["--cpu", args.cpu, "--kernels", args.kernels] if args.cpu else []) + \
        (["--sources", args.sources] if args.sources else []) + \
        (["--no-diagnose"] if args.no_diagnose else []) + ["--count", str(args.count)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, (str(REPO), os.environ.get("PYTHONPATH")))))
    print(f"machine: {machine()} (nproc {os.cpu_count()})")
    print(f"backends: {backends}{' --cpu ' + args.cpu + ' --kernels ' + args.kernels if args.cpu else ''}; "
          f"diagnosis {'off' if args.no_diagnose else 'on'}; {args.count} input(s) per model")
    if args.cpu:
        missing = uncached_firmware(args.cpu, args.kernels, args.sources, not args.no_diagnose)
        if missing:
            print(f"firmware not in the cache: {', '.join(missing)}; this bench times warm runs and "
                  f"never builds: build them first (simrun build --cpu CPU --kernels K [--rounding "
                  f"single] [--fp-contract off]), or give --no-diagnose or the --sources they were built from")
            return 1
    jobs_list = [int(j) for j in args.jobs.split(",")]
    runs: dict[int, list[tuple[float, dict]]] = {j: [] for j in jobs_list}
    with tempfile.TemporaryDirectory(prefix="simrun-suite-bench-") as tmp:
        for rep in range(args.repeat):
            # Every other repetition the other way round: a load that drifts during the bench
            # then weighs on both sides alike.
            for jobs in (jobs_list if rep % 2 == 0 else jobs_list[::-1]):
                out = Path(tmp) / f"jobs{jobs}-{rep}"
                load_before, cpu_before = _load(), _children_cpu()
                start = time.perf_counter()
                proc = subprocess.run([sys.executable, "-m", "simrun", "suite", *models, "--backends", backends,
                                       *extra, "--jobs", str(jobs), "--out", str(out)],
                                      env=env, capture_output=True, text=True)
                wall = time.perf_counter() - start
                cpu = _children_cpu() - cpu_before
                summary_path = out / "summary.json"
                if not summary_path.is_file():
                    print(f"--jobs {jobs}: simrun suite wrote no summary (exit {proc.returncode}):\n{proc.stderr}")
                    return 1
                data = json.loads(summary_path.read_text())
                n = data["counts"]["models"]
                peak = max((m["peak_rss_mib"] for m in data["models"]), default=0.0)
                # What the jobs could not share: start-up, firmware prebuild, index, and the tail
                # where fewer models run than --jobs.
                overhead = wall - sum(m["seconds"] for m in data["models"]) / jobs
                runs[jobs].append((wall, data))
                print(f"--jobs {jobs}: {n} models in {wall:.1f} s wall = {60 * n / wall:.1f} models/min "
                      f"(exit {data['exit_code']}; {data['counts']['passed']} passed); CPU {cpu:.1f} s; "
                      f"beyond the jobs' own time {overhead:.1f} s; peak memory of one job {peak:.0f} MiB; "
                      f"load average {load_before} before, {_load()} after", flush=True)
    walls = {j: statistics.median(w for w, _ in runs[j]) for j in jobs_list}
    base = jobs_list[0]
    for jobs in jobs_list[1:]:
        print(f"throughput ratio --jobs {jobs} / --jobs {base}: {walls[base] / walls[jobs]:.2f}x"
              + (f" (median wall of {args.repeat} runs each)" if args.repeat > 1 else ""))
    peak = max(m["peak_rss_mib"] for j in jobs_list for _, d in runs[j] for m in d["models"])
    print(f"peak memory of one job: {peak:.0f} MiB (its largest process)")
    print("per model (seconds at --jobs " + ", ".join(str(j) for j in jobs_list) + "; peak MiB):")
    for k, m in enumerate(runs[base][0][1]["models"]):
        times = ", ".join(f"{runs[j][0][1]['models'][k]['seconds']:.1f}" for j in jobs_list)
        print(f"  {m['id']:<28} {times}  {max(runs[j][0][1]['models'][k]['peak_rss_mib'] for j in jobs_list):.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

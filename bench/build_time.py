"""Firmware build time from an empty cache, before and after precompiled headers, in one run.

    python bench/build_time.py [--cpu cortex-m55] [--sources DIR] [--modes before,after]
                               [--variants ...] [--time-report 3] [--check-identical]
    python bench/build_time.py --quick       # the fixture firmware (tests/test_bench.py)

Each mode builds the variants one after another into its own empty temporary
cache (so nothing already cached is reused, and no ccache store: SIMRUN_CCACHE=0),
as a new user's first `simrun diff --diagnose` on an int8 model does:
    before  SIMRUN_PCH=0 SIMRUN_SHARE_ROUNDING=0, the build as it was: every TFLM
            file parses its ~100,000 header lines itself, and each rounding mode
            compiles every file
    after   simrun's default: the headers precompiled once per CMake tree and mode,
            and a second rounding mode compiles only the files it can change
For each variant it prints files compiled, wall and CPU seconds and the ten
slowest files (timed by a compiler launcher, SIMRUN_COMPILER_LAUNCHER); then each
mode's total and the after/before ratio. --time-report N compiles N sample files
again with -ftime-report, with and without the precompiled header, and prints
the share of parsing against code generation. --check-identical compares each
variant's TFLM objects (by source file) and its firmware's loadable image between
the modes byte for byte, naming the objects that differ: with precompiled headers
or a shared object a few files order their template instances and merged strings
differently (the same code, another layout), so it reports, and --check-layers
MODEL is the behavioural check: MODEL runs on each variant's before and after
firmware in QEMU and every operator's outputs are compared.

Needs the TFLM sources (--sources or SIMRUN_SOURCES_DIR). On 2 cores the default
run takes about 40 minutes; run it on an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine  # noqa: E402

from simrun.device import build  # noqa: E402
from simrun.errors import SimrunError  # noqa: E402

# The four cortex-m55 variants an int8 diagnosis needs (issue 22): both kernels, both roundings.
DEFAULT_VARIANTS = ("reference:double", "cmsis-nn:double", "reference:single", "cmsis-nn:single")
MODES = {"before": {"SIMRUN_PCH": "0", "SIMRUN_SHARE_ROUNDING": "0"}, "after": {}}
SAMPLE_FILES = ("micro/kernels/conv.cc", "micro/kernels/fully_connected.cc", "micro/micro_allocator.cc",
                "micro/kernels/softmax.cc", "micro/micro_interpreter.cc")

# Run by the compiler launcher for every compile: times it and appends one JSON line.
TIMER = """#!{python}
import json, os, resource, subprocess, sys, time
args = sys.argv[1:]
start = time.monotonic()
code = subprocess.call(args)
wall = time.monotonic() - start
use = resource.getrusage(resource.RUSAGE_CHILDREN)
src = args[args.index("-c") + 1] if "-c" in args else args[-1]
with open(os.environ["SIMRUN_BENCH_TIMES"], "a") as log:
    log.write(json.dumps({{"file": src, "wall": wall, "cpu": use.ru_utime + use.ru_stime}}) + "\\n")
sys.exit(code)
"""


def children_cpu() -> float:
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


@dataclass
class VariantTime:
    label: str
    wall: float
    cpu: float
    files: list[dict] = field(default_factory=list)
    elf: Path | None = None
    tree: Path | None = None


def build_variant(cpu: str, spec: str, sources: str | None, cache: Path, times: Path) -> VariantTime:
    kernels, rounding = spec.split(":")
    times.write_text("")
    request = build.plan_firmware(cpu, kernels, rounding=rounding, sources_dir=sources, cache_dir=cache)
    started, cpu0 = time.monotonic(), children_cpu()
    fw = build.build_firmware(request)
    wall, used = time.monotonic() - started, children_cpu() - cpu0
    files = [json.loads(l) for l in times.read_text().splitlines() if l.strip()]
    return VariantTime(request.label, wall, used, files, fw.elf, cache / "build" / build.request_tree(request))


def short(path: str) -> str:
    return re.sub(r"^.*?/(tensorflow/lite/|Source/|firmware/src/|CMakeFiles/)", r"\1", path)


def run_mode(mode: str, cpu: str, variants: list[str], sources: str | None, tmp: Path) -> list[VariantTime]:
    cache = tmp / mode
    cache.mkdir()
    times = tmp / f"{mode}.times"
    timer = tmp / "timer.py"
    timer.write_text(TIMER.format(python=sys.executable))
    timer.chmod(0o755)
    saved = dict(os.environ)
    for switch in (build.PCH_SWITCH, build.SHARE_SWITCH):
        os.environ.pop(switch, None)            # "after" is the default, whatever the caller's shell says
    os.environ.update({"SIMRUN_CCACHE": "0", build.LAUNCHER_SWITCH: str(timer), "SIMRUN_BENCH_TIMES": str(times),
                       **MODES[mode]})
    out = []
    try:
        for spec in variants:
            vt = build_variant(cpu, spec, sources, cache, times)
            out.append(vt)
            print(f"{mode:6s} {vt.label:38s} {len(vt.files):4d} files  {vt.wall:7.1f} s wall  {vt.cpu:7.1f} s CPU",
                  flush=True)
            for f in sorted(vt.files, key=lambda f: -f["wall"])[:10]:
                print(f"         {f['wall']:6.1f} s  {f['cpu']:6.1f} s CPU  {short(f['file'])}")
    finally:
        os.environ.clear()
        os.environ.update(saved)
    wall, used = sum(v.wall for v in out), sum(v.cpu for v in out)
    print(f"{mode:6s} total {len(out)} variants: {wall:.1f} s wall, {used:.1f} s CPU, "
          f"{sum(len(v.files) for v in out)} files", flush=True)
    return out


PHASES = ("phase parsing", "phase lang. deferred", "phase opt and generate")


def time_report(tree: Path, n: int) -> None:
    """-ftime-report on sample files, with and without the tree's precompiled header."""
    try:
        commands = json.loads((tree / "compile_commands.json").read_text())
    except OSError:
        print(f"time-report: no compile_commands.json in {tree}")
        return
    picked = [c for s in SAMPLE_FILES for c in commands if c["file"].endswith("/tensorflow/lite/" + s)][:n]
    for c in picked:
        argv = shlex.split(c["command"])
        argv = [a for a in argv if not a.endswith(("ccache", "timer.py"))]
        o = argv.index("-o")
        argv[o + 1] = os.devnull
        with_pch = argv
        without = []
        skip = False
        for a in argv:           # drop "-include .../cmake_pch.hxx"
            if skip:
                skip = False
                continue
            if a == "-include":
                skip = True
                continue
            without.append(a)
        for label, cmd in (("without PCH", without), ("with PCH", with_pch)):
            started = time.monotonic()
            res = subprocess.run([*cmd, "-ftime-report"], cwd=c["directory"], capture_output=True, text=True)
            wall = time.monotonic() - started
            shares = {}
            for line in res.stderr.splitlines():
                ph = next((ph for ph in PHASES if line.strip().startswith(ph)), None)
                percents = re.findall(r"\(\s*(\d+)%\)", line)
                if ph and len(percents) >= 3:
                    shares[ph] = int(percents[2])       # usr, sys, wall, memory: the wall share
            parts = ", ".join(f"{ph.split(' ', 1)[1]} {shares.get(ph, 0)} %" for ph in PHASES)
            print(f"time-report {short(c['file']):38s} {label:11s} {wall:5.1f} s: {parts}")


def loadable_image(elf: Path, out: Path) -> bytes:
    subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", str(elf), str(out)], check=True)
    return out.read_bytes()


def objects_by_source(tree: Path, rounding: str) -> dict[str, Path]:
    """The TFLM/CMSIS-NN objects a firmware of this rounding mode links, by source file:
    CMakeFiles/<part>[_double|_single].dir/<source path>.obj (CMakeLists.txt)."""
    out = {}
    for obj in (tree / "CMakeFiles").glob("*.dir/**/*.obj"):
        lib = obj.relative_to(tree / "CMakeFiles").parts[0][:-len(".dir")]
        if lib.startswith("simrun_"):
            continue                    # the runner: -g debug info names its tree
        mode = lib.rsplit("_", 1)[1] if lib.endswith(("_double", "_single")) else None
        if mode in (None, rounding):
            out[str(obj.relative_to(tree / "CMakeFiles" / f"{lib}.dir"))] = obj
    return out


def check_identical(before: list[VariantTime], after: list[VariantTime], tmp: Path) -> int:
    """Byte-compare each variant's TFLM objects (by source file) and its firmware's loadable image."""
    differing = 0
    for b, a in zip(before, after):
        rounding = "single" if "single-rounding" in b.label else "double"
        ob, oa = objects_by_source(b.tree, rounding), objects_by_source(a.tree, rounding)
        diff = [s for s in ob if s not in oa or oa[s].read_bytes() != ob[s].read_bytes()]
        same_image = loadable_image(b.elf, tmp / "b.bin") == loadable_image(a.elf, tmp / "a.bin")
        print(f"identical {b.label:38s} {len(ob) - len(diff)}/{len(ob)} TFLM objects byte-identical "
              f"loadable image {'identical' if same_image else 'differs'}")
        for s in diff[:10]:
            print(f"          differs: {short(s)}")
        differing += len(diff)
    return differing


def layer_outputs(model: str, cpu: str, elf: Path, out: Path) -> dict:
    """Every operator's outputs of one run of MODEL on this firmware (simrun run --elf)."""
    import numpy as np
    subprocess.run([sys.executable, "-m", "simrun", "run", model, "--cpu", cpu, "--elf", str(elf),
                    "--input", "random:0", "--out", str(out)], check=True, capture_output=True)
    with np.load(out) as data:
        return {k: data[k].tobytes() for k in data.files if k != "__header__"}   # the header names the ELF


def check_layers(model: str, cpu: str, before: list[VariantTime], after: list[VariantTime], tmp: Path) -> int:
    """The same model and input on each variant's before and after firmware: every layer equal?"""
    differing = 0
    for b, a in zip(before, after):
        lb = layer_outputs(model, cpu, b.elf, tmp / "b.npz")
        la = layer_outputs(model, cpu, a.elf, tmp / "a.npz")
        same = [k for k in lb if la.get(k) == lb[k]]
        print(f"layers    {b.label:38s} {len(same)}/{len(lb)} captured tensors equal on {Path(model).name}")
        differing += len(lb) - len(same) + len(set(la) - set(lb))
    return differing


def quick(cpu: str) -> int:
    from simrun.device.fixture import build_fixture
    with tempfile.TemporaryDirectory(prefix="simrun-bench-") as tmp:
        for state in ("cold", "warm"):
            started = time.monotonic()
            build_fixture(cpu, cache_dir=tmp)
            print(f"{state}  {cpu} fixture   {time.monotonic() - started:7.2f} s", flush=True)
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cpu", default="cortex-m55")
    p.add_argument("--sources", default=None)
    p.add_argument("--modes", default="before,after", help="before, after, or both (default)")
    p.add_argument("--variants", default=",".join(DEFAULT_VARIANTS),
                   help="KERNELS:ROUNDING list (default: the four an int8 diagnosis needs)")
    p.add_argument("--time-report", type=int, default=0, metavar="N", help="-ftime-report on N sample files")
    p.add_argument("--check-identical", action="store_true", help="byte-compare objects and images between modes")
    p.add_argument("--check-layers", metavar="MODEL", help="run MODEL on both modes' firmware and compare every layer")
    p.add_argument("--quick", action="store_true", help="the fixture firmware, cold then warm")
    args = p.parse_args()
    if args.quick:
        return quick(args.cpu)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not set(modes) <= set(MODES):
        p.error(f"--modes takes {', '.join(MODES)}")
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    print(f"machine: {machine()}, load average {os.getloadavg()[0]:.1f} at start; {build.JOBS} compile jobs; {args.cpu}; {len(variants)} variants per mode", flush=True)
    results: dict[str, list[VariantTime]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="simrun-bench-") as name:
            tmp = Path(name)
            for mode in modes:
                results[mode] = run_mode(mode, args.cpu, variants, args.sources, tmp)
            if len(results) == 2:
                b, a = (sum(v.wall for v in results[m]) for m in ("before", "after"))
                bc, ac = (sum(v.cpu for v in results[m]) for m in ("before", "after"))
                print(f"ratio after/before: {a / b:.2f} wall ({a:.0f} s against {b:.0f} s), "
                      f"{ac / bc:.2f} CPU", flush=True)
            if args.time_report and "after" in results:
                time_report(results["after"][0].tree, args.time_report)
            failed = 0
            if args.check_identical and len(results) == 2:
                check_identical(results["before"], results["after"], tmp)     # informs; layers decide
            if args.check_layers and len(results) == 2:
                failed += check_layers(args.check_layers, args.cpu, results["before"], results["after"], tmp)
            return 1 if failed else 0
    except SimrunError as err:
        print(f"build_time: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

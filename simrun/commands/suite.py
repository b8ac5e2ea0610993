"""`simrun suite`: many models x backends, one diff each, over --jobs processes, one index."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from ..backends import DEFAULT_TIMEOUT, HOST_BACKENDS
from ..device.targets import EMULATORS, KERNEL_VARIANTS, TARGETS
from ..errors import BadInput, require_writable_dir


def register(sub) -> None:
    p = sub.add_parser(
        "suite", help="diff many models (files, folders, a TOML suite file) over parallel jobs",
        description="Run one `simrun diff` per model, --jobs at a time, each in its own process; "
                    "firmware is built once per variant first. Writes OUT/index.html (models x "
                    "backends), junit.xml (every model's), summary.json, summary.md and "
                    "OUT/models/<id>/ (each model's report folder and log). Options below are "
                    "the defaults of every model; a suite file's [defaults] and its models' own "
                    "keys override them (the format: simrun/suite/spec.py, README).")
    p.add_argument("models", nargs="+", type=Path, metavar="MODEL|DIR|SUITE.toml",
                   help=".tflite files, folders of them, TOML suite files")
    p.add_argument("--out", type=Path, default=Path("simrun-suite"), metavar="DIR",
                   help="output folder (default ./simrun-suite)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, metavar="N",
                   help="diffs run at the same time, one process each (default: the cores, "
                        f"{os.cpu_count() or 1} here)")
    p.add_argument("--shard", metavar="I/N",
                   help="run only shard I of N (stable: every machine of a CI matrix given the "
                        "same suite gets a disjoint part; `simrun merge` joins their outputs)")
    p.add_argument("--durations", type=Path, metavar="FILE",
                   help="a previous suite's summary.json: balance --shard by its model durations "
                        "and estimate the remaining time from them")
    p.add_argument("--baseline", type=Path, metavar="DIR",
                   help="an earlier suite's --out folder (or a merge's): judge each model against "
                        "its own diff there, as diff --baseline does (regressions fail, failures it "
                        "had too are known); the index says what got better or worse")
    p.add_argument("--input", action="append", metavar="SPEC", dest="inputs",
                   help="as diff --input (repeatable; default random:0)")
    p.add_argument("--count", type=int, help="samples per random input spec (default 1)")
    p.add_argument("--backends", metavar="LIST",
                   help=f"comma-separated backends (default: {','.join(HOST_BACKENDS)} plus "
                        f"target:<cpu>:<kernels> per --cpu)")
    p.add_argument("--cpu", action="append", metavar="CPU", dest="cpus",
                   help=f"add target backends for this CPU (repeatable or comma-separated; known: "
                        f"{', '.join(TARGETS)})")
    p.add_argument("--kernels", help=f"kernel variants of the targets (default {','.join(KERNEL_VARIANTS)})")
    p.add_argument("--policy", type=Path, help="tolerance policy TOML (default: built-in)")
    p.add_argument("--diagnose", action=argparse.BooleanOptionalAction, default=None,
                   help="diagnose differing layers, as diff does (default: on)")
    p.add_argument("--timeout", type=float, metavar="S",
                   help=f"per-backend time limit (default {DEFAULT_TIMEOUT:g} times the emulator's slowdown: "
                        f"QEMU 1, Renode 6)")
    p.add_argument("--sources", type=Path, metavar="DIR",
                   help="local TFLM/CMSIS source trees for target builds (as diff --sources; else "
                        "SIMRUN_SOURCES_DIR or pinned downloads)")
    p.add_argument("--emulator", default="qemu", choices=EMULATORS, help="emulator (default qemu)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..suite import baseline as suite_baseline
    from ..suite import load_suite, select_shard
    from ..suite.index import write_index
    from ..suite.progress import SuiteProgress
    from ..suite.scheduler import prebuild, run_suite
    from ..suite.shard import Shard, load_durations

    if args.jobs < 1:
        raise BadInput(f"--jobs {args.jobs}: give at least 1")
    shard = Shard.parse(args.shard) if args.shard is not None else None
    durations = load_durations(args.durations) if args.durations is not None else None
    base = suite_baseline.load(args.baseline) if args.baseline is not None else None
    if args.sources is not None and not args.sources.is_dir():
        raise BadInput(f"--sources {args.sources}: not a directory")
    if args.policy is not None:
        args.policy = args.policy.resolve()
    defaults = {"backends": args.backends, "cpu": args.cpus, "kernels": args.kernels,
                "inputs": [i if i.startswith("random") else str(Path(i).resolve()) for i in args.inputs]
                if args.inputs else None, "count": args.count,
                "policy": None if args.policy is None else str(args.policy),
                "diagnose": args.diagnose, "timeout": args.timeout}
    entries = load_suite(args.models, defaults)
    mine = select_shard(entries, shard, durations)
    out = args.out
    require_writable_dir(out, BadInput, "--out directory", "give --out a directory you can write")
    display = SuiteProgress(mine, args.jobs, durations=durations)
    where = f"shard {shard}: " if shard else ""
    display.note(f"{where}{len(mine)} of {len(entries)} model(s), {args.jobs} job(s), output {out}")
    started = time.monotonic()
    built = prebuild(mine, args.sources, display.note) if mine else {}
    if built:
        display.note(f"firmware ready: {len(built)} variant(s)")
    options = {"emulator": args.emulator,
               "sources": None if args.sources is None else str(args.sources.resolve()),
               "firmware": {label: str(elf) for label, elf in built.items()}}
    try:
        records = run_suite(mine, out, jobs=args.jobs, options=options, display=display,
                            durations=durations, baseline=base)
    finally:
        display.close()
    meta = {"shard": None if shard is None else {"index": shard.index, "count": shard.count,
                                                  "total_models": len(entries)},
            "jobs": args.jobs, "seconds": time.monotonic() - started,
            "baseline": None if base is None else suite_baseline.meta(base, [e.id for e in entries])}
    return _report(out, records, meta)


def _report(out: Path, records: list[dict], meta: dict) -> int:
    from ..suite.index import suite_exit_code, write_index
    paths = write_index(out, records, meta)
    passed = sum(r["passed"] for r in records)
    print(f"{passed} of {len(records)} model(s) passed; exit {suite_exit_code(records)}")
    for r in records:
        if not r["passed"]:
            print(f"  {r['id']}: exit {r['exit_code']}: " + ("; ".join(r["failures"])[:300] or "failed"))
    data = json.loads(paths["json"].read_text())
    if data["baseline"] is not None:
        from ..suite.index import baseline_line, baseline_changes
        print(baseline_line(data["baseline"]))
        for ident, what, text in baseline_changes(data):
            print(f"  {ident}: {what}: {text}")
    print(f"[suite] index: {paths['html']}", file=sys.stderr)
    return suite_exit_code(records)

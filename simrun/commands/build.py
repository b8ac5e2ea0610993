"""`simrun build`: build (or reuse from the cache) firmware variants, one after another.

    simrun build --cpu cortex-m55                               # one variant: prints its ELF path
    simrun build --cpu cortex-m55,cortex-m4 --kernels reference,cmsis-nn --rounding double,single
    simrun build --all                                          # every CPU x kernels x rounding x fp-contract
    simrun build --cpu cortex-m55 --print-key                   # the CI cache key (see `simrun cache key`)

Each axis takes a comma list or `all`; a variant already in the cache is named
and not built. The first failure stops the run (exit code of the error), after
saying which variants were built and which were not reached.
"""
from __future__ import annotations

import re
import sys

from .variants import add_variant_args, key_for, variants

# Lines worth showing from CMake/make: progress counters and diagnostics.
_SHOWN = re.compile(r"^\[\s*\d+%\]|^ccache:|error|warning:|^configuring|^cached|^waiting|^cache entry|"
                    r"^CMake Error", re.I)


def register(sub) -> None:
    p = sub.add_parser("build", help="build the TFLM firmware ELFs for CPUs and kernel variants")
    add_variant_args(p, "build for")
    p.add_argument("--print-key", action="store_true",
                   help="print the cache key of these variants (as `simrun cache key`) and build nothing")
    p.add_argument("--verbose", action="store_true", help="show every line of the CMake/compiler output")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..device.build import build_firmware, cached_firmware, plan_firmware  # keeps `simrun --help` fast

    wanted = variants(args)
    requests = [plan_firmware(v.cpu, v.kernels, rounding=v.rounding, fp_contract=v.fp_contract,
                              sources_dir=args.sources, cache_dir=args.cache_dir) for v in wanted]
    if args.print_key:
        print(key_for(requests))
        return 0

    def progress(line: str) -> None:
        if args.verbose or _SHOWN.search(line):
            print(_shorten(line), file=sys.stderr, flush=True)

    many = len(requests) > 1
    if many:
        todo = [r for r in requests if cached_firmware(r) is None]
        print(f"{len(requests)} variants: {len(requests) - len(todo)} cached, {len(todo)} to build", file=sys.stderr)
    for i, request in enumerate(requests, 1):
        if many:
            print(f"[{i}/{len(requests)}] {request.label}", file=sys.stderr, flush=True)
        try:
            fw = build_firmware(request, progress)
        except BaseException:
            if many:
                rest = ", ".join(r.label for r in requests[i:]) or "none"
                print(f"stopped at {request.label}; not reached: {rest}", file=sys.stderr)
            raise
        text = fw.metadata.get("sections", {}).get(".text", 0)
        print(f"{fw.metadata['label']}: .text {text} bytes, cmsis-nn path: {fw.metadata['cmsis_nn_path']}",
              file=sys.stderr)
        print(fw.elf)
    return 0


def _shorten(line: str) -> str:
    # "[ 40%] Building CXX object CMakeFiles/x.dir/<long path>/conv.cc.obj [64/162 files, about 8 min left]"
    # -> "[ 40%] conv.cc [64/162 files, about 8 min left]"
    m = re.match(r"^(\[\s*\d+%\]) Building \w+ object .*/([^/]+?)\.obj( .*)?$", line)
    return f"{m.group(1)} {m.group(2)}{m.group(3) or ''}" if m else line

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
from dataclasses import dataclass

from ..device.targets import (DEFAULT_FP_CONTRACT, DEFAULT_ROUNDING, FP_CONTRACT_MODES, KERNEL_VARIANTS,
                              ROUNDING_MODES, TARGETS)
from ..errors import BadInput

# Lines worth showing from CMake/make: progress counters and diagnostics.
_SHOWN = re.compile(r"^\[\s*\d+%\]|^progress:|^ccache:|error|warning:|^configuring|^cached|^waiting|^cache entry|"
                    r"^CMake Error", re.I)
AXES = (("cpu", tuple(sorted(TARGETS))), ("kernels", KERNEL_VARIANTS), ("rounding", ROUNDING_MODES),
        ("fp_contract", FP_CONTRACT_MODES))


@dataclass(frozen=True)
class Variant:
    cpu: str
    kernels: str
    rounding: str
    fp_contract: str


def add_variant_args(p, what: str) -> None:
    p.add_argument("--cpu", default=None, help=f"target CPUs to {what}: a comma list or `all` "
                                               f"({', '.join(sorted(TARGETS))})")
    p.add_argument("--kernels", default="reference",
                   help="TFLM kernel variants: reference (default), cmsis-nn, a comma list or `all`")
    p.add_argument("--rounding", default=DEFAULT_ROUNDING,
                   help="requantization rounding: double (TFLM's reference kernels, default), single "
                        "(as TFLite's optimized kernels; label target:<cpu>:<kernels>:single-rounding), "
                        "a comma list or `all`")
    p.add_argument("--fp-contract", default=DEFAULT_FP_CONTRACT,
                   help="floating-point contraction: fast (GCC's default, fused multiply-add on FPU cores), "
                        "off (-ffp-contract=off; label ...:no-fp-contract), a comma list or `all`")
    p.add_argument("--all", action="store_true", help="every CPU, kernel variant, rounding and fp-contract mode")
    p.add_argument("--sources", metavar="DIR", default=None,
                   help="directory holding tflite-micro/, CMSIS-NN/, CMSIS_6/, flatbuffers/, gemmlowp/ "
                        "(default: $SIMRUN_SOURCES_DIR, else CMake downloads the pinned sources)")
    p.add_argument("--cache-dir", metavar="DIR", default=None,
                   help="firmware cache (default: $SIMRUN_CACHE_DIR or ~/.cache/simrun)")


def _axis(name: str, value: str | None, known: tuple[str, ...], everything: bool) -> list[str]:
    if everything or value == "all":
        return list(known)
    flag = "--" + name.replace("_", "-")
    if not value:
        raise BadInput(f"{flag} is required (a CPU, a comma list, or `all`; or --all); "
                       f"known: {', '.join(known)}")
    picked = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [v for v in picked if v not in known]
    if unknown or not picked:
        raise BadInput(f"{flag}: unknown {', '.join(map(repr, unknown)) or 'empty list'}; "
                       f"known: {', '.join(known)} (or `all`)")
    return list(dict.fromkeys(picked))


def variants(args) -> list[Variant]:
    """The variants the arguments name, CPU-major, in the order given."""
    axes = [_axis(name, getattr(args, name), known, args.all) for name, known in AXES]
    out = [Variant(c, k, r, f) for c in axes[0] for k in axes[1] for r in axes[2] for f in axes[3]]
    return out


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
        from .cache import key_for
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
    # "[ 40%] Building CXX object CMakeFiles/x.dir/<long path>/conv.cc.obj" -> "[ 40%] conv.cc"
    m = re.match(r"^(\[\s*\d+%\]) Building \w+ object .*/([^/]+?)\.obj$", line)
    return f"{m.group(1)} {m.group(2)}" if m else line

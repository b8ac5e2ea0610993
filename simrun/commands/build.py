"""`simrun build`: build (or reuse from the cache) the firmware for one CPU and kernel variant."""
from __future__ import annotations

import re
import sys

from ..device.targets import (DEFAULT_FP_CONTRACT, DEFAULT_ROUNDING, FP_CONTRACT_MODES, KERNEL_VARIANTS,
                              ROUNDING_MODES, TARGETS)

# Lines worth showing from CMake/make: progress counters and diagnostics.
_SHOWN = re.compile(r"^\[\s*\d+%\]|error|warning:|^configuring|^cached|^waiting|^cache entry|^CMake Error", re.I)


def register(sub) -> None:
    p = sub.add_parser("build", help="build the TFLM firmware ELF for a CPU and kernel variant")
    p.add_argument("--cpu", required=True, choices=sorted(TARGETS), help="target CPU")
    p.add_argument("--kernels", default="reference", choices=KERNEL_VARIANTS,
                   help="TFLM kernel variant (default: reference)")
    p.add_argument("--rounding", default=DEFAULT_ROUNDING, choices=ROUNDING_MODES,
                   help="requantization rounding: double (TFLM's reference kernels, default) or "
                        "single (as TFLite's optimized kernels; backend label "
                        "target:<cpu>:<kernels>:single-rounding)")
    p.add_argument("--fp-contract", default=DEFAULT_FP_CONTRACT, choices=FP_CONTRACT_MODES,
                   help="floating-point contraction: fast (GCC's default: a*b+c fused into one "
                        "multiply-add on FPU cores) or off (-ffp-contract=off; backend label "
                        "target:<cpu>:<kernels>[:single-rounding]:no-fp-contract)")
    p.add_argument("--sources", metavar="DIR", default=None,
                   help="directory holding tflite-micro/, CMSIS-NN/, CMSIS_6/, flatbuffers/, gemmlowp/ "
                        "(default: $SIMRUN_SOURCES_DIR, else CMake downloads the pinned sources)")
    p.add_argument("--cache-dir", metavar="DIR", default=None,
                   help="firmware cache (default: $SIMRUN_CACHE_DIR or ~/.cache/simrun)")
    p.add_argument("--verbose", action="store_true", help="show every line of the CMake/compiler output")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..device.build import ensure_firmware  # keeps `simrun --help` fast

    def progress(line: str) -> None:
        if args.verbose or _SHOWN.search(line):
            print(_shorten(line), file=sys.stderr, flush=True)

    fw = ensure_firmware(args.cpu, args.kernels, rounding=args.rounding, fp_contract=args.fp_contract,
                         sources_dir=args.sources,
                         cache_dir=args.cache_dir, progress=progress)
    sections = fw.metadata.get("sections", {})
    text = sections.get(".text", 0)
    print(f"{fw.metadata['label']}: .text {text} bytes, cmsis-nn path: {fw.metadata['cmsis_nn_path']}",
          file=sys.stderr)
    print(fw.elf)
    return 0


def _shorten(line: str) -> str:
    # "[ 40%] Building CXX object CMakeFiles/x.dir/<long path>/conv.cc.obj" -> "[ 40%] conv.cc"
    m = re.match(r"^(\[\s*\d+%\]) Building \w+ object .*/([^/]+?)\.obj$", line)
    return f"{m.group(1)} {m.group(2)}" if m else line

"""The firmware variants a command names: comma lists (or `all`) on each axis, and the
CI cache key of a set of them. Shared by `simrun build` and `simrun cache key`."""
from __future__ import annotations

from dataclasses import dataclass

from ..device.targets import (DEFAULT_FP_CONTRACT, DEFAULT_ROUNDING, FP_CONTRACT_MODES, KERNEL_VARIANTS,
                              ROUNDING_MODES, TARGETS)
from ..errors import BadInput

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


def key_for(requests) -> str:
    """simrun-<version>-<cpus>-<digest of the variants' firmware cache keys>: stable for the
    same simrun, compiler, sources and variants (order and repetition do not matter)."""
    from .. import __version__
    from ..device.build import cache_key, digest
    cpus = "+".join(sorted({r.target.cpu for r in requests}))
    keys = sorted({f"{r.label}={cache_key(r.inputs)}" for r in requests})
    return f"simrun-{__version__}-{cpus}-{digest(keys)[:16]}"

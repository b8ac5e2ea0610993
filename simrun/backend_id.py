"""A backend's identity: the label users type, parsed once into a value.

    tflite-optimized | tflite-reference | tflm-host | tflite-optimized-nodelegate
    target:<cpu>:<kernels>[:single-rounding][:no-fp-contract]

`BackendId.parse(label)` is the one parser of that grammar; everything else asks the value
(`.label`, `.variant.cache_suffix`, `.neighbours(...)`, `.rank`) instead of splitting strings.
A target's firmware is a `FirmwareVariant` (cpu, kernels, rounding, fp_contract): the same
value names the build, its cache entry and its label.

This module sits in the base layer, below the device layer that owns the targets table, so
it knows the firmware options (pure constants, defined here and re-exported by
simrun.device.targets) but not which CPUs exist: a caller that is about to run a label
passes the table's names (`BackendId.parse(label, cpus=TARGETS)`, as simrun.backends does).
Without `cpus` the grammar alone is checked and any cpu and kernels name is taken, because
the analysis also reads labels of firmware simrun did not build (the CI fixture's
`target:<cpu>:fixture`).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from .errors import BadInput

KERNEL_VARIANTS = ("reference", "cmsis-nn")
# Requantization rounding (tflite-micro issues 2629, 3130, 3252): "double" is
# what TFLM's and TFLite's reference kernels do, "single" what TFLite's
# optimized kernels do. CMakeLists.txt maps "single" to TFLITE_SINGLE_ROUNDING=1
# (TFLM) and CMSIS_NN_USE_SINGLE_ROUNDING (CMSIS-NN).
ROUNDING_MODES = ("double", "single")
DEFAULT_ROUNDING = "double"
# Floating-point contraction: GCC's default for GNU C/C++ is -ffp-contract=fast, which fuses
# a*b+c into one VFMA on FPU cores (one rounding instead of two), so float kernels can differ
# from a host build that does not fuse. "off" builds every object with -ffp-contract=off.
FP_CONTRACT_MODES = ("fast", "off")
DEFAULT_FP_CONTRACT = "fast"

# The host interpreters, in the order `simrun diff` lists them. `tflite-optimized-nodelegate`
# is LiteRT's own optimized kernels without the default XNNPACK delegate: not run by default,
# it tells an XNNPACK difference from one of TFLite's kernels.
HOST_KINDS = ("tflite-optimized", "tflite-reference", "tflm-host", "tflite-optimized-nodelegate")
NODELEGATE = "tflite-optimized-nodelegate"
TARGET_GRAMMAR = "target:<cpu>:<kernels>[:single-rounding][:no-fp-contract]"
NO_FP_CONTRACT = "no-fp-contract"
# The suffixes in the only order the grammar allows.
SUFFIXES = tuple(f"{m}-rounding" for m in ROUNDING_MODES if m != DEFAULT_ROUNDING) + (NO_FP_CONTRACT,)

# Ordering: the more reference-like backend first (pairs are compared that way round).
_HOST_RANKS = {"tflite-reference": 0, "tflm-host": 1, "tflite-optimized": 2, NODELEGATE: 2}
_RANK_TARGET_REFERENCE, _RANK_TARGET = 3, 4
RANK_UNKNOWN = 5                     # a label outside the grammar sorts last


def check_rounding(rounding: str) -> None:
    if rounding not in ROUNDING_MODES:
        raise BadInput(f"unknown rounding {rounding!r}; known: {', '.join(ROUNDING_MODES)}")


def check_fp_contract(fp_contract: str) -> None:
    if fp_contract not in FP_CONTRACT_MODES:
        raise BadInput(f"unknown fp-contract {fp_contract!r}; known: {', '.join(FP_CONTRACT_MODES)}")


@dataclass(frozen=True)
class FirmwareVariant:
    """One firmware build: what `target:<cpu>:<kernels>[...]` runs and `ensure_firmware` builds."""

    cpu: str
    kernels: str
    rounding: str = DEFAULT_ROUNDING
    fp_contract: str = DEFAULT_FP_CONTRACT

    def __post_init__(self):
        check_rounding(self.rounding)
        check_fp_contract(self.fp_contract)

    @property
    def single_rounding(self) -> bool:
        return self.rounding != DEFAULT_ROUNDING

    @property
    def no_fp_contract(self) -> bool:
        return self.fp_contract != DEFAULT_FP_CONTRACT

    @property
    def suffixes(self) -> tuple[str, ...]:
        # The defaults add nothing, so labels, policies and caches from before the options match.
        return ((f"{self.rounding}-rounding",) if self.single_rounding else ()) + \
               ((NO_FP_CONTRACT,) if self.no_fp_contract else ())

    @property
    def label(self) -> str:
        return ":".join(("target", self.cpu, self.kernels) + self.suffixes)

    @property
    def cache_suffix(self) -> str:
        """Cache entry and build tree name suffix: "", "-single-rounding", "-no-fp-contract" or both."""
        return "".join(f"-{s}" for s in self.suffixes)

    def other_rounding(self) -> FirmwareVariant:
        return replace(self, rounding=next(m for m in ROUNDING_MODES if m != self.rounding))

    def without_fp_contract(self) -> FirmwareVariant | None:
        """The same firmware built -ffp-contract=off; None when this one already is."""
        return None if self.no_fp_contract else replace(self, fp_contract="off")

    def __str__(self) -> str:
        return self.label


@dataclass(frozen=True)
class BackendId:
    """A host interpreter (`host`: one of HOST_KINDS) or a firmware run in an emulator (`variant`)."""

    host: str | None = None
    variant: FirmwareVariant | None = None

    def __post_init__(self):
        if (self.host is None) == (self.variant is None):
            raise ValueError("a BackendId is a host kind or a firmware variant, exactly one")
        if self.host is not None and self.host not in HOST_KINDS:
            raise BadInput(_unknown(self.host))

    @staticmethod
    def target(cpu: str, kernels: str, rounding: str = DEFAULT_ROUNDING,
               fp_contract: str = DEFAULT_FP_CONTRACT) -> BackendId:
        return BackendId(variant=FirmwareVariant(cpu, kernels, rounding, fp_contract))

    @staticmethod
    def parse(label: str, cpus: Iterable[str] | None = None) -> BackendId:
        """The label as a value; BadInput naming what is wrong. With `cpus` (the targets
        table's names) a target must also be runnable: a known CPU and kernel variant."""
        if label in HOST_KINDS:
            return BackendId(host=label)
        if not label.startswith("target:"):
            raise BadInput(_unknown(label))
        parts = label.split(":")
        if len(parts) < 3 or not parts[1] or not parts[2]:
            raise BadInput(f"backend {label!r}: expected {TARGET_GRAMMAR}")
        cpu, kernels, suffixes = parts[1], parts[2], parts[3:]
        positions = [SUFFIXES.index(s) if s in SUFFIXES else -1 for s in suffixes]
        if -1 in positions or positions != sorted(set(positions)):
            bad = next((s for s in suffixes if s not in SUFFIXES), ":".join(suffixes))
            raise BadInput(f"backend {label!r}: unknown or misplaced suffix {bad!r}; expected "
                           f"{TARGET_GRAMMAR} (known suffixes: {', '.join(SUFFIXES)})")
        if cpus is not None:
            known = list(cpus)
            if cpu not in known:
                raise BadInput(f"backend {label!r}: unknown CPU {cpu!r}; known: {', '.join(known)}")
            if kernels not in KERNEL_VARIANTS:
                raise BadInput(f"backend {label!r}: unknown kernels {kernels!r}; "
                               f"known: {', '.join(KERNEL_VARIANTS)}")
        rounding = next((s.removesuffix("-rounding") for s in suffixes if s.endswith("-rounding")),
                        DEFAULT_ROUNDING)
        fp_contract = "off" if NO_FP_CONTRACT in suffixes else DEFAULT_FP_CONTRACT
        return BackendId(variant=FirmwareVariant(cpu, kernels, rounding, fp_contract))

    @staticmethod
    def lookup(label: str) -> BackendId | None:
        """The label as a value, or None for a name outside the grammar: the analysis compares
        Captures under any name (Robot's `Compare Captures`), and those are simply not targets."""
        try:
            return BackendId.parse(label)
        except BadInput:
            return None

    @property
    def is_target(self) -> bool:
        return self.variant is not None

    @property
    def label(self) -> str:
        return self.host if self.host is not None else self.variant.label

    @property
    def rank(self) -> int:
        """0 most reference-like: tflite-reference, tflm-host, LiteRT optimized, reference-kernel
        firmware with the default numerics, any other firmware."""
        if self.host is not None:
            return _HOST_RANKS[self.host]
        v = self.variant
        if v.kernels == "reference" and not v.suffixes:
            return _RANK_TARGET_REFERENCE
        return _RANK_TARGET

    def neighbours(self, float_layer: bool) -> list[BackendId]:
        """The numerics variants whose isolated runs test a cause of an own error on this backend:
        LiteRT without XNNPACK for tflite-optimized; for firmware, the other rounding mode on an
        integer layer, the build without FMA contraction on a float layer."""
        if self.host == "tflite-optimized":
            return [BackendId(host=NODELEGATE)]
        if self.variant is None:
            return []
        alt = self.variant.without_fp_contract() if float_layer else self.variant.other_rounding()
        return [BackendId(variant=alt)] if alt else []

    def __str__(self) -> str:
        return self.label


def _unknown(label: str) -> str:
    return f"unknown backend {label!r}; known: {', '.join(HOST_KINDS)}, {TARGET_GRAMMAR}"


def backend_rank(label: str) -> tuple[int, str]:
    """Sort key for labels: (rank, label); labels outside the grammar last."""
    found = BackendId.lookup(label)
    return (found.rank if found else RANK_UNKNOWN), label

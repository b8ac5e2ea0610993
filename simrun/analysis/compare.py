"""Align Captures of one input layer by layer and measure how far they drift apart.

A *layer* is one output tensor of one operator: key (subgraph, operator index,
tensor index). Two Captures are aligned on that key; a layer captured by only
one side (desktop TFLite sees only subgraph 0, a target may stop early) is
kept with status "only_a" / "only_b" instead of being dropped. Depth is the
operator's position in the execution order of side `a` (the reference-like
side of the pair).

Metrics are facts, not judgements (simrun.analysis.policy judges):
- integer tensors: Δ = b - a in integer steps, exact equality; `mismatched`
  counts values with Δ != 0; `histogram` counts Δ in bins HIST_BINS.
- float tensors: Δ in float units, `mismatched` counts values not exactly
  equal; no histogram (None).
- both: MAE / RMSE / cosine similarity of the dequantized values
  (Tensor.dequantized(), per-channel aware; a side without quantization
  parameters borrows the model's).
- sizes to judge an error by: `max_error` is the largest dequantized |Δ|;
  `value_range` the tensor's dynamic range on side a (a quantized tensor's
  representable range, (qmax - qmin) * scale; a float tensor's observed
  max - min); `magnitude` the largest dequantized |a|. `relative_error`
  (max_error / value_range) is the impact in real units; `relative_delta`
  (max_error / magnitude) is what a float tolerance relative to the tensor's
  magnitude judges: an absolute 1e-4 means nothing on a tensor of size 1e3.
- different shape or dtype: status "shape_mismatch" / "dtype_mismatch", no
  value metrics.
The model's final outputs are compared the same way (PairResult.outputs).
"""
from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass

import numpy as np

from ..backend_id import backend_rank  # noqa: F401 (re-exported: reports sort by it)
from ..capture import Capture, Tensor
from ..errors import BadInput

# Integer Δ histogram bins; the outer ones collect everything beyond ±2.
HIST_BINS = ("<=-3", "-2", "-1", "0", "+1", "+2", ">=+3")

def default_pairs(labels) -> list[tuple[str, str]]:
    """Every pair, the more reference-like backend first (BackendId.rank: side "a" is that one)."""
    return list(itertools.combinations(sorted(labels, key=backend_rank), 2))


@dataclass
class LayerStats:
    subgraph: int
    op_index: int | None                    # None for a final model output
    op_name: str                            # "CONV_2D"; "OUTPUT" for a final model output
    tensor_index: int
    tensor_name: str
    depth: int | None                       # execution position on side a; None if a lacks it
    status: str                             # compared | shape_mismatch | dtype_mismatch | only_a | only_b
    shape_a: tuple[int, ...] | None = None
    shape_b: tuple[int, ...] | None = None
    dtype_a: str | None = None
    dtype_b: str | None = None
    integer: bool = False                   # Δ in integer steps (else float units)
    count: int = 0                          # values compared
    mismatched: int = 0
    max_abs_delta: float = 0.0
    histogram: dict[str, int] | None = None
    mae: float | None = None                # dequantized
    rmse: float | None = None
    cosine: float | None = None
    max_error: float | None = None          # largest dequantized |Δ|
    value_range: float | None = None        # dynamic range of side a (dequantized)
    magnitude: float | None = None          # largest dequantized |a|

    @property
    def relative_error(self) -> float | None:
        """Largest dequantized |Δ| as a share of the tensor's dynamic range."""
        return _ratio(self.max_error, self.value_range)

    @property
    def relative_delta(self) -> float | None:
        """Largest dequantized |Δ| relative to the tensor's magnitude (largest |a|)."""
        return _ratio(self.max_error, self.magnitude)

    @property
    def id(self) -> str:
        if self.op_index is None:
            return f"output/{self.tensor_index}"
        return f"{self.subgraph}:{self.op_index}/{self.tensor_index}"

    @property
    def label(self) -> str:
        return f"{self.id} {self.op_name} {self.tensor_name}".rstrip()

    @property
    def compared(self) -> bool:
        return self.status == "compared"

    @property
    def layout_differs(self) -> bool:
        """Shape or dtype differ, so no value metrics exist."""
        return self.status in ("shape_mismatch", "dtype_mismatch")

    @property
    def one_sided(self) -> bool:
        """Captured by one side of the pair only: reported, never judged."""
        return self.status in ("only_a", "only_b")

    @property
    def mismatch_ratio(self) -> float:
        return self.mismatched / self.count if self.count else 0.0

    @property
    def diverges(self) -> bool:
        """Any difference at all: a mismatched value, shape or dtype."""
        return self.layout_differs or self.mismatched > 0

    def severity(self) -> tuple:
        return (self.layout_differs, self.mismatched > 0,
                self.max_abs_delta, self.mismatch_ratio)


@dataclass
class PairResult:
    a: str
    b: str
    layers: list[LayerStats]                # a's execution order, then layers only b has
    outputs: list[LayerStats]
    first_divergent: LayerStats | None      # first layer (execution order) with any difference
    seconds: float = 0.0                    # wall time comparing the pair (junit.xml's time=)

    @property
    def name(self) -> str:
        return f"{self.a} vs {self.b}"

    @property
    def compared_layers(self) -> list[LayerStats]:
        return [s for s in self.layers if s.compared]

    @property
    def worst(self) -> LayerStats | None:
        candidates = [s for s in self.layers if not s.one_sided]
        if not candidates:
            return None
        worst = max(candidates, key=LayerStats.severity)
        return worst if worst.diverges else None

    @property
    def mismatch_ratio(self) -> float:
        """Mismatched share over every value compared in every layer."""
        count = sum(s.count for s in self.layers)
        return sum(s.mismatched for s in self.layers) / count if count else 0.0

    @property
    def max_abs_delta(self) -> float:
        return max((s.max_abs_delta for s in self.layers + self.outputs), default=0.0)


@dataclass
class Comparison:
    backends: list[str]
    pairs: list[PairResult]

    def pair(self, a: str, b: str) -> PairResult:
        for p in self.pairs:
            if (p.a, p.b) == (a, b):
                return p
        raise KeyError(f"no pair {a} vs {b} (have: {', '.join(p.name for p in self.pairs)})")


# --- comparing ------------------------------------------------------------------

def compare(model, captures: dict[str, Capture], pairs=None) -> Comparison:
    """Compare the Captures of one input, every pair (or `pairs`, (a, b) tuples)."""
    expected = getattr(model, "sha256", None)   # models that are not .tflite files have none
    for label, cap in captures.items():
        if expected and cap.model_sha256 and cap.model_sha256 != expected:
            raise BadInput(f"capture of {label} is for model sha256 {cap.model_sha256[:12]}…, "
                           f"not {expected[:12]}…")
    if pairs is None:
        pairs = default_pairs(captures)
    for a, b in pairs:
        for label in (a, b):
            if label not in captures:
                raise BadInput(f"pair {a} vs {b}: no capture from {label} "
                               f"(have: {', '.join(captures) or 'none'})")
    return Comparison(backends=sorted(captures, key=backend_rank),
                      pairs=[compare_pair(model, a, captures[a], b, captures[b]) for a, b in pairs])


def compare_pair(model, a: str, cap_a: Capture, b: str, cap_b: Capture) -> PairResult:
    start = time.perf_counter()
    side_a, side_b = _layers_by_key(cap_a), _layers_by_key(cap_b)
    layers = []
    for key, (depth, op_name, ta) in side_a.items():
        hit = side_b.get(key)
        layers.append(layer_stats(model, key, op_name, depth, ta, hit[2] if hit else None))
    for key, (_, op_name, tb) in side_b.items():
        if key not in side_a:
            layers.append(layer_stats(model, key, op_name, None, None, tb))

    outs_b = {t.index: t for t in cap_b.outputs}
    outputs = [layer_stats(model, (0, None, t.index), "OUTPUT", None, t, outs_b.get(t.index))
               for t in cap_a.outputs]
    outputs += [layer_stats(model, (0, None, t.index), "OUTPUT", None, None, t)
                for t in cap_b.outputs if t.index not in {o.index for o in cap_a.outputs}]

    first = next((s for s in layers if s.depth is not None and s.diverges), None)
    return PairResult(a, b, layers, outputs, first, time.perf_counter() - start)


def _layers_by_key(cap: Capture) -> dict[tuple, tuple[int, str, Tensor]]:
    # An operator that runs several times (a loop body) is compared at its last run.
    out = {}
    for depth, rec in enumerate(cap.ops):
        for t in rec.outputs:
            out[(rec.subgraph, rec.index, t.index)] = (depth, rec.op_name, t)
    return out


def layer_stats(model, key, op_name, depth, ta: Tensor | None, tb: Tensor | None) -> LayerStats:
    """One layer's statistics; key is (subgraph, operator index or None, tensor index)."""
    sg, op_index, t_index = key
    name = (ta or tb).name or _model_tensor_name(model, sg, t_index)
    s = LayerStats(sg, op_index, op_name, t_index, name, depth, "compared")
    if ta is not None:
        s.shape_a, s.dtype_a = ta.shape, ta.dtype
    if tb is not None:
        s.shape_b, s.dtype_b = tb.shape, tb.dtype
    if ta is None or tb is None:
        s.status = "only_b" if ta is None else "only_a"
        return s
    if ta.dtype != tb.dtype:
        s.status = "dtype_mismatch"
        return s
    if ta.shape != tb.shape:
        s.status = "shape_mismatch"
        return s

    va, vb = ta.values, tb.values
    s.count = int(va.size)
    s.integer = va.dtype.kind in "iub"
    if np.array_equal(va, vb) and ta.quantization == tb.quantization:
        # The common case between bit-exact backends: every metric is known without arithmetic.
        s.histogram = dict.fromkeys(HIST_BINS, 0) | {"0": s.count} if s.integer else None
        s.mae = s.rmse = 0.0 if s.count else None
        s.cosine = 1.0 if s.count else None
        if s.count:
            s.max_error = 0.0
            _sizes(s, _dequantized(model, sg, ta), ta, model, sg)
        return s
    if s.integer:
        wide = np.int16 if va.dtype.itemsize == 1 else np.int64   # room for b - a without overflow
        delta = vb.astype(wide) - va.astype(wide)
        nonzero = delta[delta != 0]
        bins = np.bincount(np.clip(nonzero, -3, 3).astype(np.int64) + 3, minlength=7)
        bins[3] = s.count - nonzero.size
        s.histogram = dict(zip(HIST_BINS, (int(n) for n in bins)))
    else:
        fa, fb = va.astype(np.float64), vb.astype(np.float64)
        with np.errstate(invalid="ignore"):
            delta = fb - fa
        # NaN on both sides (or equal infinities) agree; NaN on one side is the largest difference.
        delta[(np.isnan(fa) & np.isnan(fb)) | (fa == fb)] = 0.0
        delta[np.isnan(delta)] = np.inf
    s.mismatched = int(np.count_nonzero(delta))
    s.max_abs_delta = float(np.abs(delta).max()) if delta.size else 0.0
    if s.integer:
        s.max_abs_delta = int(s.max_abs_delta)

    da, db = _dequantized(model, sg, ta), _dequantized(model, sg, tb)
    if da is not None and db is not None and da.size:
        with np.errstate(invalid="ignore", over="ignore"):   # NaN/inf values: NaN metrics, null in JSON
            _dequantized_metrics(s, da, db)
            _sizes(s, da, ta, model, sg)
    return s


def _sizes(s: LayerStats, da: np.ndarray | None, ta: Tensor, model, sg: int) -> None:
    """value_range and magnitude of side a (see the module docstring)."""
    if da is None or not da.size:
        return
    finite = da[np.isfinite(da)]
    s.magnitude = float(np.abs(finite).max()) if finite.size else None
    q = ta.quantization if ta.quantization.scale else getattr(_model_tensor(model, sg, ta.index),
                                                              "quantization", ta.quantization)
    if q.scale and ta.values.dtype.kind in "iu":
        info = np.iinfo(ta.values.dtype)
        s.value_range = float((int(info.max) - int(info.min)) * max(q.scale))
    elif finite.size:
        s.value_range = float(finite.max() - finite.min())


def _ratio(x: float | None, y: float | None) -> float | None:
    if x is None or y is None or not math.isfinite(x):
        return None
    if y == 0.0:
        return 0.0 if x == 0.0 else None
    return x / y


def _dequantized_metrics(s: LayerStats, da: np.ndarray, db: np.ndarray) -> None:
    err = (db - da).ravel()
    s.mae = float(np.mean(np.abs(err)))
    s.max_error = float(np.abs(err).max())
    s.rmse = float(np.sqrt(np.einsum("i,i->", err, err) / err.size))
    s.cosine = _cosine(da.ravel(), db.ravel())


def _dequantized(model, sg: int, t: Tensor) -> np.ndarray | None:
    if not t.quantization.scale and t.values.dtype.kind in "iu":
        info = _model_tensor(model, sg, t.index)
        if info is not None and info.quantization.scale:
            t = Tensor(t.index, t.name, t.values, info.quantization)
    try:
        return t.dequantized()
    except ValueError:  # per-channel scales that do not fit the tensor's shape
        return None


def _cosine(x: np.ndarray, y: np.ndarray) -> float:
    # einsum, not np.dot / linalg.norm: BLAS threads cost more than they save on a busy host.
    nx, ny = np.sqrt(np.einsum("i,i->", x, x)), np.sqrt(np.einsum("i,i->", y, y))
    if nx == 0.0 or ny == 0.0:
        return 1.0 if nx == ny else 0.0
    return max(-1.0, min(1.0, float(np.einsum("i,i->", x, y) / (nx * ny))))


def _model_tensor(model, sg: int, index: int):
    try:
        return model.tensor(sg, index)
    except (IndexError, AttributeError):
        return None


def _model_tensor_name(model, sg: int, index: int) -> str:
    info = _model_tensor(model, sg, index)
    return info.name if info is not None else ""


def finite_or_none(x):
    """JSON has no NaN/inf: report them as null."""
    return x if x is None or not isinstance(x, float) or math.isfinite(x) else None

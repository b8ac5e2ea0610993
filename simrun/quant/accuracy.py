"""Quantization error: a quantized model against its float model on the same inputs.

Both models come from one float graph through one converter, so a tensor keeps its
name (e.g. "functional_1/c2_1/Relu;functional_1/c2_1/BiasAdd;...") in the float and
the quantized .tflite. Tensors are aligned by that name: the model outputs, and
every operator output of the quantized model whose name the float model also
captured (layers the quantizer added or fused away have no partner and are left out).

Per tensor, pooled over every input (q: the quantized values dequantized with the
tensor's scale and zero point, f: the float values):
- mae        mean |q - f|
- max_error  max |q - f|, also in quantization steps of the tensor (max_error / scale)
- rel_error  ||q - f||_2 / ||f||_2 (0 when both are zero)
- cosine     cosine similarity of q and f (1.0 = same direction)
- range      max(f) - min(f), to read the absolute figures against
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from ..capture import Capture, Tensor


@dataclass
class ErrorStats:
    name: str                       # tensor name, shared by both models
    op_name: str                    # operator of the quantized model producing it; "OUTPUT"
    depth: int | None               # its position in the quantized model's execution order
    shape: tuple[int, ...]
    count: int                      # values compared, over every input
    mae: float
    max_error: float
    rel_error: float
    cosine: float
    range: float
    step: float | None              # one quantization step of the tensor (its scale)

    @property
    def max_error_steps(self) -> float | None:
        return self.max_error / self.step if self.step else None

    def as_dict(self) -> dict:
        d = asdict(self)
        d["shape"] = list(self.shape)
        d["max_error_steps"] = self.max_error_steps
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


def output_errors(float_caps: list[Capture], quant_caps: list[Capture], quant_model) -> list[ErrorStats]:
    """Each model output of the quantized model against the float output of the same name,
    in the quantized model's output order."""
    pooled: dict[str, list] = {}
    for fcap, qcap in zip(float_caps, quant_caps, strict=True):
        floats = {t.name: t for t in fcap.outputs}
        for t in qcap.outputs:
            f = floats.get(t.name)
            real, step = _real(t, quant_model)
            if f is not None and real is not None and f.values.shape == t.values.shape:
                pooled.setdefault(t.name, []).append((real, f.values, step))
    return [_stats(name, "OUTPUT", None, parts) for name, parts in pooled.items()]


def layer_errors(float_caps: list[Capture], quant_caps: list[Capture], quant_model) -> list[ErrorStats]:
    """Every operator output both models captured under one name, in execution order."""
    pooled: dict[str, list] = {}
    where: dict[str, tuple[str, int]] = {}
    for fcap, qcap in zip(float_caps, quant_caps, strict=True):
        floats = {t.name: t for rec in fcap.ops for t in rec.outputs if t.values.dtype.kind == "f"}
        for depth, rec in enumerate(qcap.ops):
            for t in rec.outputs:
                f = floats.get(t.name)
                if f is None or t.values.dtype.kind not in "iu" or f.values.shape != t.values.shape:
                    continue
                real, step = _real(t, quant_model, rec.subgraph)
                if real is None:
                    continue
                pooled.setdefault(t.name, []).append((real, f.values, step))
                where.setdefault(t.name, (rec.op_name, depth))
    return [_stats(name, *where[name], parts) for name, parts in pooled.items()]


def _real(t: Tensor, model, subgraph: int = 0) -> tuple[np.ndarray | None, float | None]:
    """(dequantized values, one quantization step), with the model's parameters where a
    backend left them out; (None, None) for a tensor that cannot be dequantized."""
    if not t.quantization.scale:
        try:
            q = model.tensor(subgraph, t.index).quantization
        except (IndexError, AttributeError):
            q = None
        if not q or not q.scale:
            return (t.values.astype(np.float64), None) if t.values.dtype.kind == "f" else (None, None)
        t = Tensor(t.index, t.name, t.values, q)
    scale = t.quantization.scale
    try:
        return t.dequantized(), (float(scale[0]) if len(scale) == 1 else None)
    except ValueError:
        return None, None


def _stats(name: str, op_name: str, depth: int | None, parts) -> ErrorStats:
    q = np.concatenate([np.ravel(p[0]) for p in parts]).astype(np.float64)
    f = np.concatenate([np.ravel(p[1]) for p in parts]).astype(np.float64)
    shape, step = np.shape(parts[0][1]), parts[0][2]
    err = q - f
    norm_f = math.sqrt(float(np.einsum("i,i->", f, f)))
    norm_e = math.sqrt(float(np.einsum("i,i->", err, err)))
    norm_q = math.sqrt(float(np.einsum("i,i->", q, q)))
    if norm_f == 0.0:
        rel = 0.0 if norm_e == 0.0 else math.inf
    else:
        rel = norm_e / norm_f
    cosine = (float(np.einsum("i,i->", q, f)) / (norm_q * norm_f) if norm_q and norm_f
              else (1.0 if norm_q == norm_f else 0.0))
    return ErrorStats(
        name=name, op_name=op_name, depth=depth, shape=tuple(shape), count=int(f.size),
        mae=float(np.mean(np.abs(err))) if err.size else 0.0,
        max_error=float(np.max(np.abs(err))) if err.size else 0.0,
        rel_error=rel, cosine=max(-1.0, min(1.0, cosine)),
        range=float(f.max() - f.min()) if f.size else 0.0, step=step)

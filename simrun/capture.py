"""What every backend returns: per-operator output tensors of one inference.

A Capture does not know where it came from beyond a label and version
strings; alignment, metrics, reports and Robot keywords work on Captures
only. Captures round-trip through a single .npz file.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Quantization:
    scale: tuple[float, ...] = ()          # empty: not quantized
    zero_point: tuple[int, ...] = ()
    quantized_dimension: int = 0

    @property
    def per_channel(self) -> bool:
        return len(self.scale) > 1


@dataclass
class Tensor:
    index: int                              # tensor index within its subgraph
    name: str
    values: np.ndarray                      # dtype and shape are the tensor's own
    quantization: Quantization = field(default_factory=Quantization)

    @property
    def dtype(self) -> str:
        return str(self.values.dtype)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.values.shape)

    def dequantized(self) -> np.ndarray:
        q = self.quantization
        if not q.scale or self.values.dtype.kind == "f":
            return self.values.astype(np.float64)
        scale = np.asarray(q.scale, dtype=np.float64)
        zp = np.asarray(q.zero_point or (0,) * len(q.scale), dtype=np.float64)
        if len(q.scale) > 1:
            shape = [1] * self.values.ndim
            shape[q.quantized_dimension] = -1
            scale, zp = scale.reshape(shape), zp.reshape(shape)
        return (self.values.astype(np.float64) - zp) * scale


@dataclass
class OpRecord:
    subgraph: int
    index: int                              # operator index within the subgraph
    op_name: str                            # "CONV_2D", ...
    outputs: list[Tensor]
    # Instructions the target executed for this operator (simrun.device.cost), exact and
    # identical on every run of the same firmware and input; None where nothing counted.
    instructions: int | None = None

    @property
    def key(self) -> tuple[int, int]:
        return (self.subgraph, self.index)


@dataclass
class Capture:
    backend: str                            # "tflite-optimized", "tflm-host", "target:cortex-m55:cmsis-nn", ...
    model_sha256: str
    ops: list[OpRecord] = field(default_factory=list)     # in execution order
    outputs: list[Tensor] = field(default_factory=list)   # the model's final outputs
    versions: dict[str, str] = field(default_factory=dict)
    meta: dict[str, object] = field(default_factory=dict) # timings, arena bytes, ...

    def op(self, subgraph: int, index: int) -> OpRecord:
        for rec in self.ops:
            if rec.key == (subgraph, index):
                return rec
        raise KeyError(f"{self.backend}: no operator {subgraph}:{index} captured")

    # --- persistence -------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        path = Path(path)
        arrays: dict[str, np.ndarray] = {}
        header = {
            "backend": self.backend, "model_sha256": self.model_sha256,
            "versions": self.versions, "meta": self.meta,
            "ops": [], "outputs": [],
        }

        def put(t: Tensor, key: str) -> dict:
            arrays[key] = t.values
            return {"index": t.index, "name": t.name, "key": key,
                    "quantization": asdict(t.quantization)}

        for i, rec in enumerate(self.ops):
            header["ops"].append({
                "subgraph": rec.subgraph, "index": rec.index, "op_name": rec.op_name,
                "instructions": rec.instructions,
                "outputs": [put(t, f"op{i}_out{j}") for j, t in enumerate(rec.outputs)],
            })
        header["outputs"] = [put(t, f"final{j}") for j, t in enumerate(self.outputs)]
        arrays["__header__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
        with open(path, "wb") as f:
            np.savez_compressed(f, **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Capture":
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(bytes(z["__header__"]).decode())

            def get(d: dict) -> Tensor:
                q = d["quantization"]
                return Tensor(d["index"], d["name"], z[d["key"]],
                              Quantization(tuple(q["scale"]), tuple(q["zero_point"]),
                                           q["quantized_dimension"]))

            ops = [OpRecord(o["subgraph"], o["index"], o["op_name"],
                            [get(t) for t in o["outputs"]], o.get("instructions"))
                   for o in header["ops"]]
            return cls(header["backend"], header["model_sha256"], ops,
                       [get(t) for t in header["outputs"]],
                       header["versions"], header["meta"])


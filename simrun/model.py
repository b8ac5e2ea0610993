"""A read-only view of a .tflite file: subgraphs, operators, tensors, quantization.

Parsed with the flatbuffer schema module that ai-edge-litert ships (or, where
only the tflite-micro wheel is installed, the copy that wheel ships), so
reading a model never imports TensorFlow.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from .capture import Quantization
from .errors import BadInput

SCHEMA_VERSION = 3           # the only version TFLite's and TFLM's model readers accept
_WHAT_TO_GIVE = "give a .tflite file written by the TFLite converter"

# TensorType enum of the TFLite schema -> numpy dtype.
_DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64,
           6: np.bool_, 7: np.int16, 9: np.int8, 10: np.float64, 15: np.uint32,
           16: np.uint16}


def _schema():
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:
        from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema
    return schema


@dataclass(frozen=True)
class TensorInfo:
    index: int
    name: str
    dtype: np.dtype | None                  # None for types numpy cannot hold (string, resource)
    shape: tuple[int, ...]
    quantization: Quantization
    is_constant: bool                       # backed by a non-empty buffer
    type_name: str = ""                     # the schema's TensorType name ("INT8", "RESOURCE", ...)

    @property
    def holds_data(self) -> bool:
        """False for resource/variant/string tensors: a handle or pointer, no array to read."""
        return self.dtype is not None


@dataclass(frozen=True)
class OperatorInfo:
    subgraph: int
    index: int
    op_name: str                            # "CONV_2D"; custom ops: "CUSTOM:<code>"
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


@dataclass(frozen=True)
class SubgraphInfo:
    index: int
    name: str
    tensors: tuple[TensorInfo, ...]
    operators: tuple[OperatorInfo, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


class Model:
    """Parse once; every accessor is a plain attribute afterwards."""

    def __init__(self, data: bytes, path: Path | None = None):
        where = f"{path}: " if path else ""
        if not data:
            raise BadInput(f"{where}empty file; {_WHAT_TO_GIVE}")
        if len(data) < 8 or data[4:8] != b"TFL3":
            raise BadInput(f"{where}not a TFLite flatbuffer (no 'TFL3' identifier); {_WHAT_TO_GIVE}")
        self.data = bytes(data)
        self.path = path
        schema = _schema()
        try:
            m = schema.Model.GetRootAsModel(self.data, 0)
            self.version = m.Version()
            codes = [self._op_name(schema, m.OperatorCodes(i)) for i in range(m.OperatorCodesLength())]
            self._type_names = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
            self.subgraphs = tuple(self._subgraph(m, i, codes) for i in range(m.SubgraphsLength()))
            self.call_once_subgraphs = self._call_once_targets(schema, m, codes)
        except BadInput:
            raise
        except Exception as err:  # a truncated or corrupt flatbuffer fails deep in the reader
            raise BadInput(f"{path or 'model'}: cannot parse TFLite flatbuffer ({err}): truncated or "
                           f"corrupt; {_WHAT_TO_GIVE}") from None
        if not self.subgraphs:
            raise BadInput(f"{path or 'model'}: model has no subgraphs")
        if self.version != SCHEMA_VERSION:
            # TFLite and TFLM refuse other versions too; say so before any backend runs.
            raise BadInput(f"{path or 'model'}: TFLite schema version {self.version}; TFLite, TFLM and simrun "
                           f"read version {SCHEMA_VERSION}: convert the model again with a current converter")

    @classmethod
    def from_file(cls, path: str | Path) -> "Model":
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as err:
            raise BadInput(f"cannot read model {path}: {err.strerror}") from None
        return cls(data, path)

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def main(self) -> SubgraphInfo:
        return self.subgraphs[0]

    @property
    def inputs(self) -> list[TensorInfo]:
        return [self.main.tensors[i] for i in self.main.inputs]

    @property
    def outputs(self) -> list[TensorInfo]:
        return [self.main.tensors[i] for i in self.main.outputs]

    def operators(self) -> list[OperatorInfo]:
        return [op for sg in self.subgraphs for op in sg.operators]

    def tensor(self, subgraph: int, index: int) -> TensorInfo:
        return self.subgraphs[subgraph].tensors[index]

    @cached_property
    def resource_variables(self) -> dict[tuple[int, int], str]:
        """(subgraph, resource tensor) -> the variable a VAR_HANDLE there names
        ("container/shared_name"): handles in different subgraphs (CALL_ONCE's initialiser,
        the main graph) with one name are one variable, as TFLite and TFLM resolve them."""
        schema = _schema()
        m = schema.Model.GetRootAsModel(self.data, 0)
        found = {}
        for op in self.operators():
            if op.op_name != "VAR_HANDLE" or not op.outputs:
                continue
            raw = m.Subgraphs(op.subgraph).Operators(op.index)
            name = f"{op.subgraph}:{op.outputs[0]}"      # no options: the handle is its own variable
            if raw.BuiltinOptions() is not None:
                options = schema.VarHandleOptions()
                options.Init(raw.BuiltinOptions().Bytes, raw.BuiltinOptions().Pos)
                container, shared = options.Container(), options.SharedName()
                if container or shared:
                    name = f"{(container or b'').decode()}/{(shared or b'').decode()}"
            found[(op.subgraph, op.outputs[0])] = name
        return found

    # --- parsing ------------------------------------------------------------
    @staticmethod
    def _op_name(schema, code) -> str:
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
        name = names.get(builtin, f"BUILTIN_{builtin}")
        if name == "CUSTOM":
            custom = code.CustomCode()
            return f"CUSTOM:{custom.decode() if custom else '?'}"
        return name

    @staticmethod
    def _call_once_targets(schema, m, codes: list[str]) -> frozenset[int]:
        """Subgraphs a CALL_ONCE operator initialises: they run on an interpreter's
        first invoke only, so later invokes capture none of their operators."""
        found = set()
        for s in range(m.SubgraphsLength()):
            sg = m.Subgraphs(s)
            for o in range(sg.OperatorsLength()):
                op = sg.Operators(o)
                if codes[op.OpcodeIndex()] != "CALL_ONCE" or op.BuiltinOptions() is None:
                    continue
                options = schema.CallOnceOptions()
                options.Init(op.BuiltinOptions().Bytes, op.BuiltinOptions().Pos)
                found.add(int(options.InitSubgraphIndex()))
        return frozenset(found)

    def _subgraph(self, m, sg_index: int, codes: list[str]) -> SubgraphInfo:
        sg = m.Subgraphs(sg_index)
        tensors = []
        for t in range(sg.TensorsLength()):
            tt = sg.Tensors(t)
            q = tt.Quantization()
            quant = Quantization()
            if q is not None and q.ScaleLength():
                quant = Quantization(tuple(float(x) for x in q.ScaleAsNumpy()),
                                     tuple(int(x) for x in q.ZeroPointAsNumpy()) if q.ZeroPointLength() else (0,) * q.ScaleLength(),
                                     int(q.QuantizedDimension()))
            buf = m.Buffers(tt.Buffer()) if tt.Buffer() < m.BuffersLength() else None
            const = buf is not None and (buf.DataLength() > 0 or buf.Size() > 0)
            dtype = _DTYPES.get(tt.Type())
            tensors.append(TensorInfo(
                t, (tt.Name() or b"").decode(errors="replace"),
                np.dtype(dtype) if dtype is not None else None,
                tuple(int(x) for x in tt.ShapeAsNumpy()) if tt.ShapeLength() else (),
                quant, const, self._type_names.get(tt.Type(), f"TYPE_{tt.Type()}")))
        ops = []
        for o in range(sg.OperatorsLength()):
            op = sg.Operators(o)
            ops.append(OperatorInfo(
                sg_index, o, codes[op.OpcodeIndex()],
                tuple(int(x) for x in op.InputsAsNumpy()) if op.InputsLength() else (),
                tuple(int(x) for x in op.OutputsAsNumpy()) if op.OutputsLength() else ()))
        name = sg.Name()
        return SubgraphInfo(sg_index, name.decode() if name else f"subgraph{sg_index}",
                            tuple(tensors), tuple(ops),
                            tuple(int(x) for x in sg.InputsAsNumpy()) if sg.InputsLength() else (),
                            tuple(int(x) for x in sg.OutputsAsNumpy()) if sg.OutputsLength() else ())

"""Tensors and models between the host and the firmware's descriptions (simrun_tensor_t)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..capture import Quantization, Tensor
from ..errors import BadInput
from ..model import Model
from .abi import TargetTensor


def model_bytes(model, raw: bool) -> tuple[Model | None, bytes]:
    """(Model or None for raw bytes, the bytes) of a Model, bytes or path; BadInput if unreadable."""
    if isinstance(model, Model):
        return model, model.data
    if isinstance(model, (bytes, bytearray, memoryview)):
        data = bytes(model)
    else:
        try:
            data = Path(model).read_bytes()
        except OSError as err:
            raise BadInput(f"cannot read model {model}: {err.strerror}") from None
    if not data:
        raise BadInput("model is empty")
    if raw:
        return None, data
    return Model(data, None if isinstance(model, (bytes, bytearray, memoryview)) else Path(model)), data


def check_inputs(inputs, descs: list[TargetTensor]) -> list[np.ndarray]:
    """The inputs as arrays, each checked against the firmware's description (no implicit casts)."""
    if isinstance(inputs, np.ndarray):
        inputs = [inputs]
    inputs = list(inputs)
    if len(inputs) != len(descs):
        raise BadInput(f"model takes {len(descs)} input(s), got {len(inputs)}")
    arrays = []
    for i, (x, desc) in enumerate(zip(inputs, descs)):
        x = np.asarray(x)
        if desc.dtype is None:
            raise BadInput(f"input {i}: firmware tensor type {desc.type} has no numpy dtype")
        if x.dtype != desc.dtype:
            raise BadInput(f"input {i}: dtype {x.dtype}, model expects {desc.dtype} (no implicit casts)")
        if tuple(x.shape) != desc.shape:
            raise BadInput(f"input {i}: shape {tuple(x.shape)}, model expects {desc.shape}")
        if x.nbytes != desc.bytes:
            raise BadInput(f"input {i}: {x.nbytes} bytes, firmware tensor holds {desc.bytes}")
        arrays.append(x)
    return arrays


def decode_tensor(model: Model | None, subgraph: int, desc: TargetTensor, data: bytes) -> Tensor:
    """A captured tensor: values from `data`, name and (per-channel) quantization from the model."""
    dtype = desc.dtype
    if dtype is None or dtype.itemsize * int(np.prod(desc.shape, dtype=np.int64)) != len(data):
        values = np.frombuffer(data, dtype=np.uint8).copy()   # packed/unknown types stay raw bytes
    else:
        values = np.frombuffer(data, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(desc.shape)
    name, quant = "", Quantization()
    if model is not None and subgraph < len(model.subgraphs) \
            and 0 <= desc.tensor_index < len(model.subgraphs[subgraph].tensors):
        info = model.tensor(subgraph, desc.tensor_index)
        name, quant = info.name, info.quantization     # per-channel parameters live only here
    elif desc.scale:
        quant = Quantization((float(desc.scale),), (int(desc.zero_point),), 0)
    return Tensor(desc.tensor_index, name, values, quant)

"""Turn an interpreter's preserved tensors into a Capture, the same way for every host backend."""
from __future__ import annotations

import sys
import time
from importlib import metadata
from typing import Callable

import numpy as np

from ..capture import Capture, OpRecord, Tensor
from ..errors import BackendError
from ..model import Model

# (subgraph, tensor index) -> the tensor's values, or None when the interpreter cannot show it.
TensorReader = Callable[[int, int], "np.ndarray | None"]


def collect(model: Model, label: str, read: TensorReader, *, versions: dict,
            meta: dict | None = None) -> Capture:
    ops = []
    unreadable = []
    for op in model.operators():
        outputs = []
        for idx in op.outputs:
            if idx < 0:                      # optional output left out
                continue
            values = read(op.subgraph, idx)
            if values is None:
                unreadable.append(f"{op.subgraph}:{idx}")
                continue
            outputs.append(_tensor(model, op.subgraph, idx, values))
        ops.append(OpRecord(op.subgraph, op.index, op.op_name, outputs))
    finals = []
    for idx in model.main.outputs:
        values = read(0, idx)
        if values is None:
            raise RuntimeError(f"{label}: cannot read model output tensor {idx}")
        finals.append(_tensor(model, 0, idx, values))
    meta = dict(meta or {})
    if unreadable:
        meta["unreadable_tensors"] = unreadable
    return Capture(label, model.sha256, ops, finals, versions, meta)


def invoke_each(model: Model, label: str, inputs: list[list[np.ndarray]], *,
                set_inputs: Callable[[list[np.ndarray]], None], invoke: Callable[[], None],
                read: TensorReader, versions: dict) -> list[Capture]:
    """One Capture per input: set, invoke, collect. The loop every host interpreter shares."""
    captures = []
    for i, sample in enumerate(inputs):
        stage(f"invoking input {i}")
        set_inputs(sample)
        start = time.perf_counter()
        try:
            invoke()
        except RuntimeError as err:
            raise BackendError(label, f"invoke failed: {first_sentence(str(err))}") from None
        seconds = time.perf_counter() - start
        captures.append(collect(model, label, read, versions=dict(versions),
                                meta={"invoke_seconds": seconds}))
    return captures


def first_sentence(text: str, limit: int = 400) -> str:
    """Interpreters repeat one complaint per tensor ("... Was 3.Tensor 33 has ..."): keep the first."""
    text = " ".join(text.split())
    for stop in (".Tensor ", ". Tensor "):
        if stop in text:
            return text.split(stop, 1)[0] + " (and more)"
    return text[:limit]


def _tensor(model: Model, subgraph: int, index: int, values: np.ndarray) -> Tensor:
    info = model.tensor(subgraph, index)
    # Copy: preserved buffers belong to the interpreter and change on the next invoke.
    return Tensor(index, info.name, np.array(values, copy=True), info.quantization)


def package_versions(*names: str) -> dict[str, str]:
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


STAGE_MARK = "@simrun-stage "


def stage(what: str) -> None:
    """Tell the parent what the worker is doing, so a crash can say when it happened."""
    print(f"{STAGE_MARK}{what}", file=sys.stderr, flush=True)

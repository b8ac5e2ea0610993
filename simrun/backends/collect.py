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
            meta: dict | None = None, invocation: int = 0) -> Capture:
    """Every operator's outputs after invoke number `invocation` (0: the interpreter's first).

    Tensors that hold no data (resource handles of VAR_HANDLE, strings, variants) are
    never read: an interpreter hands out no array for them (TFLM's reader crashes on
    one); the Capture lists them in meta["no_data_tensors"]. Operators of subgraphs
    that CALL_ONCE initialises ran on the first invoke only and are not captured after."""
    ops = []
    unreadable = []
    no_data: dict[str, str] = {}
    skipped = sorted(model.call_once_subgraphs) if invocation else []
    for op in model.operators():
        if op.subgraph in skipped:
            continue
        outputs = []
        for idx in op.outputs:
            if idx < 0:                      # optional output left out
                continue
            info = model.tensor(op.subgraph, idx)
            if not info.holds_data:
                no_data[f"{op.subgraph}:{idx}"] = f"{info.type_name} tensor {info.name!r} of {op.op_name}"
                continue
            # Named before reading, so a crash inside the interpreter's reader says where.
            stage(f"reading tensor {op.subgraph}:{idx} ({info.name!r}), output of {op.op_name} "
                  f"{op.subgraph}:{op.index}, after invoking input {invocation}")
            values = read(op.subgraph, idx)
            if values is None:
                unreadable.append(f"{op.subgraph}:{idx}")
                continue
            outputs.append(_tensor(model, op.subgraph, idx, values))
        ops.append(OpRecord(op.subgraph, op.index, op.op_name, outputs))
    finals = []
    for idx in model.main.outputs:
        stage(f"reading model output tensor {idx}, after invoking input {invocation}")
        values = read(0, idx)
        if values is None:
            raise RuntimeError(f"{label}: cannot read model output tensor {idx}")
        finals.append(_tensor(model, 0, idx, values))
    meta = dict(meta or {})
    if unreadable:
        meta["unreadable_tensors"] = unreadable
    return Capture(label, model.sha256, ops, finals, versions, describe_state(meta, no_data, skipped))


def describe_state(meta: dict, no_data: dict[str, str], skipped: list[int]) -> dict:
    """What a capture of a stateful model leaves out, and why (JSON-safe for Capture.meta)."""
    if no_data:
        meta["no_data_tensors"] = no_data
    if skipped:
        meta["call_once_skipped"] = {str(s): "CALL_ONCE initialisation subgraph: runs on the "
                                             "first invoke of a sequence only" for s in skipped}
    return meta


def drop_no_data(model: Model, cap: Capture) -> Capture:
    """A target reports a resource handle as a few raw bytes (its resource id): drop
    them like the host backends never read them, so the two captures align."""
    no_data = {}
    for rec in cap.ops:
        kept = []
        for t in rec.outputs:
            sg = model.subgraphs[rec.subgraph] if rec.subgraph < len(model.subgraphs) else None
            info = sg.tensors[t.index] if sg and 0 <= t.index < len(sg.tensors) else None
            if info is not None and not info.holds_data:
                no_data[f"{rec.subgraph}:{t.index}"] = f"{info.type_name} tensor {info.name!r} of {rec.op_name}"
            else:
                kept.append(t)
        rec.outputs = kept
    describe_state(cap.meta, no_data, [])
    return cap


def invoke_each(model: Model, label: str, inputs: list[list[np.ndarray]], *,
                set_inputs: Callable[[list[np.ndarray]], None], invoke: Callable[[], None],
                read: TensorReader, versions: dict) -> list[Capture]:
    """One Capture per input: set, invoke, collect. The loop every host interpreter shares.
    One interpreter for all inputs, never reset: a stateful model carries its state over."""
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
                                meta={"invoke_seconds": seconds}, invocation=i))
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

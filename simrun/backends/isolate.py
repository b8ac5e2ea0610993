"""Host isolation: every operator cut out as a single-operator model and fed the reference's values.

A host interpreter cannot be stopped between operators to overwrite an operator's inputs (what
the target session does, contract 1). Instead each operator of the main subgraph becomes a model
of its own: the same operator code, options, tensors (shapes, types, quantization) and constant
buffers (weights, biases), whose non-constant inputs are the new model's inputs. Fed the values the
reference backend captured for those tensors, its outputs are that backend's *own* result for the
layer. Built with the TFLite schema's object API (ModelT ... Pack) from the installed packages,
never by editing flatbuffer bytes.

Not isolated (reported with the reason, never silently skipped): operators outside the main
subgraph (their captured values are from the last iteration of a body only), operators that call
subgraphs or share resource variables, inputs the reference did not capture or captured with
another shape or dtype, and cut models a backend refuses.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..capture import Capture, OpRecord, Tensor
from ..model import Model, _schema
from .collect import first_sentence, stage

# Operators whose meaning depends on other subgraphs or on state shared between operators.
_NOT_CUTTABLE = {
    "WHILE": "calls other subgraphs", "IF": "calls other subgraphs", "CALL_ONCE": "calls other subgraphs",
    "CALL": "calls other subgraphs", "VAR_HANDLE": "shares a resource variable with other operators",
    "READ_VARIABLE": "shares a resource variable with other operators",
    "ASSIGN_VARIABLE": "shares a resource variable with other operators",
}
_FILE_IDENTIFIER = b"TFL3"


@dataclass
class CutModel:
    subgraph: int
    op_index: int
    data: bytes
    inputs: list[int]                       # original tensor indices fed, in input order
    outputs: list[int]                      # original tensor indices read, in output order


def cut_models(model: Model) -> tuple[list[CutModel], dict[str, str]]:
    """One single-operator model per operator of the main subgraph, and the reasons the others
    cannot be cut ({"<sg>:<op>": reason})."""
    schema = _schema()
    full = schema.ModelT.InitFromPackedBuf(model.data, 0)
    cuts, refused = [], {}
    for op in model.operators():
        key = f"{op.subgraph}:{op.index}"
        if op.subgraph != 0:
            refused[key] = (f"runs in subgraph {op.subgraph} (a control-flow body): its captured inputs "
                            "are from its last iteration only")
        elif op.op_name in _NOT_CUTTABLE:
            refused[key] = f"{op.op_name} {_NOT_CUTTABLE[op.op_name]}"
        else:
            bad = [i for i in op.inputs + op.outputs
                   if i >= 0 and model.tensor(0, i).dtype is None]
            if bad:
                refused[key] = f"tensor {bad[0]} has a type numpy cannot hold (string, resource, variant)"
            else:
                cuts.append(_cut(schema, full, model, op))
    return cuts, refused


def _cut(schema, full, model: Model, op) -> CutModel:
    sg = full.subgraphs[0]
    opt = sg.operators[op.index]
    tensors, buffers, remap = [], [schema.BufferT()], {}

    def take(index: int) -> int:
        if index < 0 or index in remap:
            return remap.get(index, index)
        t = copy.copy(sg.tensors[index])
        info = model.tensor(0, index)
        if info.is_constant:
            buffers.append(full.buffers[t.buffer])
            t.buffer = len(buffers) - 1
        else:
            t.buffer = 0                    # buffer 0 is the schema's empty sentinel
        remap[index] = len(tensors)
        tensors.append(t)
        return remap[index]

    fed = [i for i in dict.fromkeys(op.inputs)
           if i >= 0 and not model.tensor(0, i).is_constant and not sg.tensors[i].isVariable]
    new_op = copy.copy(opt)
    new_op.inputs = [take(int(i)) for i in _ints(opt.inputs)]
    new_op.outputs = [take(int(i)) for i in _ints(opt.outputs)]
    new_op.intermediates = [take(int(i)) for i in _ints(opt.intermediates)] or None
    new_op.mutatingVariableInputs = None
    reads = [i for i in op.outputs if i >= 0]
    cut_sg = schema.SubGraphT()
    cut_sg.tensors, cut_sg.operators, cut_sg.name = tensors, [new_op], f"cut_{op.index}"
    cut_sg.inputs = [remap[i] for i in fed]
    cut_sg.outputs = [remap[i] for i in reads]
    cut = schema.ModelT()
    cut.version, cut.operatorCodes, cut.description = full.version, full.operatorCodes, b"simrun cut model"
    cut.subgraphs, cut.buffers = [cut_sg], buffers
    import flatbuffers
    builder = flatbuffers.Builder(1024)
    builder.Finish(cut.Pack(builder), file_identifier=_FILE_IDENTIFIER)
    return CutModel(0, op.index, bytes(builder.Output()), fed, reads)


def _ints(values) -> list[int]:
    return [] if values is None else [int(v) for v in values]


@dataclass
class CutRunner:
    """What a host backend gives for one cut model: feed inputs by position, run, read outputs."""
    set_input: Callable[[int, np.ndarray], None]
    invoke: Callable[[], None]
    get_output: Callable[[int], np.ndarray]


def run_isolated(model: Model, label: str, inputs: list[list[np.ndarray]], references: list[Capture],
                 open_cut: Callable[[bytes], CutRunner], versions: dict) -> list[Capture]:
    """One isolated Capture per input: every cuttable operator run alone on `references[i]`'s
    values (model inputs: `inputs[i]`). Meta: "isolated_from", "not_isolated"."""
    if len(references) != len(inputs):
        raise ValueError(f"{len(references)} reference captures for {len(inputs)} inputs")
    cuts, refused = cut_models(model)
    feeds = [_values(model, sample, ref) for sample, ref in zip(inputs, references)]
    not_isolated = [dict(refused) for _ in inputs]
    records: list[dict] = [{} for _ in inputs]
    for n, cut in enumerate(cuts):
        key = f"{cut.subgraph}:{cut.op_index}"
        stage(f"isolating operator {key} ({n + 1}/{len(cuts)})")
        try:
            runner = open_cut(cut.data)
        except Exception as err:  # noqa: BLE001 - native interpreters raise anything
            for missing in not_isolated:
                missing[key] = f"{label} refused the cut model: {first_sentence(str(err), 200)}"
            continue
        op = model.subgraphs[0].operators[cut.op_index]
        for i, feed in enumerate(feeds):
            reason = _run_one(model, runner, cut, feed, records[i], op.op_name, label)
            if reason:
                not_isolated[i][key] = reason
        del runner
    captures = []
    for i, ref in enumerate(references):
        ops = [records[i][op.index] for op in model.operators() if op.subgraph == 0 and op.index in records[i]]
        produced = {t.index: t for rec in ops for t in rec.outputs}
        finals = [produced[t] for t in model.main.outputs if t in produced]
        captures.append(Capture(label, model.sha256, ops, finals, dict(versions),
                                {"isolated_from": ref.backend, "not_isolated": not_isolated[i]}))
    return captures


def _run_one(model: Model, runner: CutRunner, cut: CutModel, feed: dict, out: dict,
             op_name: str, label: str) -> str | None:
    for pos, index in enumerate(cut.inputs):
        info = model.tensor(0, index)
        values = feed.get(index)
        if values is None:
            return f"input tensor {index} has no value in the reference capture"
        if values.dtype != info.dtype or (info.shape and tuple(values.shape) != info.shape):
            return (f"input tensor {index}: the reference holds {values.dtype}{list(values.shape)}, "
                    f"the model {info.dtype}{list(info.shape)}")
        runner.set_input(pos, values)
    try:
        runner.invoke()
        outputs = [np.array(runner.get_output(pos), copy=True) for pos in range(len(cut.outputs))]
    except Exception as err:  # noqa: BLE001
        return f"{label} failed on the cut model: {first_sentence(str(err), 200)}"
    tensors = [Tensor(index, model.tensor(0, index).name, values, model.tensor(0, index).quantization)
               for index, values in zip(cut.outputs, outputs)]
    out[cut.op_index] = OpRecord(0, cut.op_index, op_name, tensors)
    return None


def _values(model: Model, sample: list[np.ndarray], ref: Capture) -> dict[int, np.ndarray]:
    """Main-subgraph tensor index -> the reference's value (model inputs: the given sample)."""
    values = {index: np.asarray(a) for index, a in zip(model.main.inputs, sample)}
    for rec in ref.ops:
        if rec.subgraph == 0:
            for t in rec.outputs:
                values[t.index] = t.values
    return values

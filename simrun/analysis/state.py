"""Error carried by state: a READ_VARIABLE returns what an earlier ASSIGN_VARIABLE stored.

Isolation cannot feed a READ_VARIABLE the reference's values (it shares a resource variable
with other operators), so the diagnosis first labels a differing one "unexplained (not
isolated)". On a streaming model its output is whatever the last ASSIGN_VARIABLE on the same
variable stored: in this step before it (CALL_ONCE's initialiser on the first step), else in an
earlier step of the sequence. When on each side the read returns exactly what that side stored,
the difference was there before the variable held it: inherited through state, from that
ASSIGN_VARIABLE at that step (its stored value is a layer the diagnosis explains on its own).

Reads the normal runs' Captures of every step of a sequence (DiffRun.captures, .sequences) and
the model's VAR_HANDLE names (Model.resource_variables); relabels LayerDiagnosis objects in place.
"""
from __future__ import annotations

import numpy as np

from ..capture import Capture
from .summary import summarize


def explain_reads(model, captures: dict[str, list[Capture]], sequences: dict[str, list[int]],
                  input_names: list[str], pairs: list[list]) -> None:
    """For every step of every sequence and every pair (pairs[n]: PairDiagnosis list of input n),
    relabel the unexplained, not isolated READ_VARIABLE rows whose value the state explains."""
    if not sequences or not captures:
        return
    graph = _Graph.of(model)
    if graph is None:
        return
    for steps in sequences.values():
        for k, n in enumerate(steps):
            for p in pairs[n] if n < len(pairs) else ():
                changed = False
                for d in p.layers:
                    if d.op_name == "READ_VARIABLE" and d.cause == "unexplained" and d.own is None:
                        changed |= _explain(d, p, graph, captures, steps[:k + 1], input_names)
                if changed:
                    p.summary = summarize(p)


class _Graph:
    """What the model says about its variables: per operator its inputs, and which variable
    each READ_VARIABLE / ASSIGN_VARIABLE uses."""

    def __init__(self, inputs: dict, variable_of: dict):
        self.inputs = inputs                # (subgraph, op) -> input tensor indices
        self.variable_of = variable_of      # (subgraph, op) of READ/ASSIGN -> variable name

    @classmethod
    def of(cls, model) -> "_Graph | None":
        try:
            handles = model.resource_variables
            ops = model.operators()
        except AttributeError:              # a model stand-in without variables
            return None
        inputs = {(op.subgraph, op.index): op.inputs for op in ops}
        variable_of = {(op.subgraph, op.index): handles[(op.subgraph, op.inputs[0])]
                       for op in ops if op.op_name in ("READ_VARIABLE", "ASSIGN_VARIABLE")
                       and op.inputs and (op.subgraph, op.inputs[0]) in handles}
        return cls(inputs, variable_of) if variable_of else None


def _explain(d, p, graph: _Graph, captures: dict[str, list[Capture]], steps: list[int],
             input_names: list[str]) -> bool:
    read_key = (d.subgraph, d.op_index)
    variable = graph.variable_of.get(read_key)
    if variable is None:
        return False
    found = {}
    for side in (p.a, p.b):
        caps = captures.get(side)
        if caps is None or any(n >= len(caps) for n in steps):
            return False
        found[side] = _last_store(graph, variable, read_key, d.tensor_index, [caps[n] for n in steps])
        if found[side] is None:
            return False
    (_, stored_a, where_a), (_, stored_b, where_b) = found[p.a], found[p.b]
    if where_a != where_b:                  # the sides' last stores are different operators/steps
        return False
    (sg, op), step, producer = where_a
    name = input_names[steps[step]] if steps[step] < len(input_names) else f"step {step}"
    origin = f"ASSIGN_VARIABLE {sg}:{op} at step {step} ({name})"
    unequal = [side for side, (r, s, _) in found.items() if not _same(r, s)]
    if unequal:
        d.evidence += (f"; {' and '.join(unequal)} read(s) something other than what {origin} stored, "
                       f"so the state does not explain it")
        return False
    delta = _max_delta(stored_a, stored_b)
    d.cause = "inherited"
    d.through_state = origin
    d.evidence = (f"inherited through state: on both sides it returns what {origin} stored "
                  f"(the output of operator {producer}), which already differed there by max |Δ| "
                  f"{delta:g}; not isolated ({d.not_isolated})")
    return True


def _last_store(graph: _Graph, variable: str, read_key, read_tensor: int, caps: list[Capture]):
    """(the read's values, the values last stored in `variable` before it, ((subgraph, op) of
    that ASSIGN_VARIABLE, step within `caps`, "subgraph:op" of the stored value's producer))."""
    current = caps[-1]
    at = next((i for i in range(len(current.ops) - 1, -1, -1) if current.ops[i].key == read_key), None)
    if at is None:
        return None
    read = next((t.values for t in current.ops[at].outputs if t.index == read_tensor), None)
    if read is None:
        return None
    for step in range(len(caps) - 1, -1, -1):
        ops = caps[step].ops
        end = at if step == len(caps) - 1 else len(ops)
        for j in range(end - 1, -1, -1):
            rec = ops[j]
            if rec.op_name != "ASSIGN_VARIABLE" or graph.variable_of.get(rec.key) != variable:
                continue
            stored = _value_before(graph, ops, j)
            if stored is None:
                return None                 # a constant initial value, or not captured
            values, producer = stored
            return read, values, (rec.key, step, producer)
    return None


def _value_before(graph: _Graph, ops, j: int):
    """The value input of the ASSIGN_VARIABLE at ops[j]: the latest output of that tensor
    before it in the same invoke, and its producer ("subgraph:op")."""
    rec = ops[j]
    inputs = graph.inputs.get(rec.key, ())
    if len(inputs) < 2:
        return None
    tensor = inputs[1]
    for i in range(j - 1, -1, -1):
        if ops[i].subgraph != rec.subgraph:
            continue
        for t in ops[i].outputs:
            if t.index == tensor:
                return t.values, f"{ops[i].subgraph}:{ops[i].index} {ops[i].op_name}"
    return None


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.size == b.size and np.array_equal(a.reshape(-1), b.reshape(-1))


def _max_delta(a: np.ndarray, b: np.ndarray) -> float:
    if a.size != b.size or a.size == 0:
        return float("nan")
    diff = np.abs(a.reshape(-1).astype(np.float64) - b.reshape(-1).astype(np.float64))
    return float(diff.max())

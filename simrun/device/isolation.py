"""Isolation on the target (TEAM.md contract 1): every operator runs on the reference's inputs.

Stopped at an operator's begin hook (the firmware described its inputs), the
session overwrites each input that is neither constant (in the model) nor a
variable/state tensor with the values the reference capture holds for the
same (subgraph, tensor index), then lets the operator run. Its outputs are
then its own error against the reference, free of anything inherited.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from ..capture import Capture
from .abi import OpEvent


class Isolation:
    def __init__(self, reference: Capture, model_inputs: dict[int, np.ndarray]):
        self.backend = reference.backend
        found: dict[tuple[int, int], list[np.ndarray]] = defaultdict(list)
        for rec in reference.ops:
            for t in rec.outputs:
                found[(rec.subgraph, t.index)].append(t.values)
        for index, x in model_inputs.items():
            found[(0, index)] = [np.asarray(x)]
        self.values = dict(found)
        self.not_isolated: dict[str, str] = {}
        self.overwritten_bytes = 0

    def apply(self, event: OpEvent, memory) -> None:
        """Overwrite the inputs of the operator `event` begins; record why one could not be."""
        reasons = []
        if event.input_total > len(event.inputs):
            reasons.append(f"{event.input_total - len(event.inputs)} input(s) beyond the "
                           f"{len(event.inputs)} the firmware describes")
        for t in event.inputs:
            if t.constant or t.variable:
                continue
            found = self.values.get((event.subgraph, t.tensor_index))
            if not found:
                reasons.append(f"input tensor {t.tensor_index} not captured by {self.backend}")
                continue
            if len(found) > 1:
                # Produced more than once (a loop body): which value belongs to this run is unknown.
                reasons.append(f"input tensor {t.tensor_index} has {len(found)} values in {self.backend}")
                continue
            ref = found[0]
            if t.dtype is None or ref.dtype != t.dtype or ref.size * ref.itemsize != t.bytes:
                reasons.append(f"input tensor {t.tensor_index}: {self.backend} has {ref.dtype}{list(ref.shape)}, "
                               f"target {t.dtype}{list(t.shape)} ({t.bytes} bytes)")
                continue
            raw = np.ascontiguousarray(ref).astype(ref.dtype.newbyteorder("<"), copy=False)
            memory.write(t.address, raw.view(np.uint8).reshape(-1))
            self.overwritten_bytes += t.bytes
        if reasons:
            self.not_isolated[event.key] = "; ".join(reasons)

"""Hand-built Captures for the compare / policy / report tests: a chain of
int8 layers whose values we choose, so every expected metric is known."""
from __future__ import annotations

import numpy as np

from simrun.capture import Capture, OpRecord, Quantization, Tensor
from simrun.analysis.compare import compare
from simrun.analysis.diffrun import DiffRun

OP_NAMES = ("CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "AVERAGE_POOL_2D", "RESHAPE", "LOGISTIC")


class FakeModel:
    """What compare() reads from a Model: its sha256 and tensor metadata."""
    sha256 = "ab" * 32
    path = "synthetic.tflite"

    def __init__(self, quantization: dict | None = None):
        self._quant = quantization or {}

    def tensor(self, sg, index):
        from simrun.model import TensorInfo
        return TensorInfo(index, f"t{index}", np.dtype(np.int8), (),
                          self._quant.get((sg, index), Quantization()), False)


def base_layers(n: int = len(OP_NAMES), seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(-100, 100, size=(1, 4, 4, 8), dtype=np.int8) for _ in range(n)]


def make_capture(label: str, layers: list[np.ndarray], op_names=OP_NAMES, subgraph: int = 0,
                 quant=Quantization((0.05,), (-3,)), extra_ops=()) -> Capture:
    ops = [OpRecord(subgraph, i, op_names[i], [Tensor(10 + i, f"layer{i}/out", v.copy(), quant)])
           for i, v in enumerate(layers)]
    ops += list(extra_ops)
    final = Tensor(10 + len(layers) - 1, f"layer{len(layers) - 1}/out", layers[-1].copy(), quant)
    return Capture(label, FakeModel.sha256, ops, [final], {"numpy": np.__version__})


def off_by(layers: list[np.ndarray], layer: int, delta: int, where=(0, 0, 0, 0)) -> list[np.ndarray]:
    """A copy of `layers` with one value of `layer` and of every later layer moved by `delta`."""
    out = [v.copy() for v in layers]
    for i in range(layer, len(out)):
        out[i][where] = np.clip(int(out[i][where]) + delta, -128, 127)
    return out


def sample_run(backend_errors=None) -> DiffRun:
    """Three backends, one diverging from layer 2 on: a run with something to report."""
    model = FakeModel()
    layers = base_layers()
    caps = {
        "tflite-reference": make_capture("tflite-reference", layers),
        "tflm-host": make_capture("tflm-host", layers),
        "tflite-optimized": make_capture("tflite-optimized", off_by(layers, 2, 1, (0, 1, 1, 3))),
    }
    worse = off_by(layers, 2, 1, (0, 1, 1, 3))
    worse[4][0, 2, 2, :] += 5
    caps2 = dict(caps, **{"tflite-optimized": make_capture("tflite-optimized", worse)})
    return DiffRun(model, [compare(model, caps), compare(model, caps2)],
                   backend_errors=backend_errors if backend_errors is not None else
                   {"target:cortex-m55:cmsis-nn": "emulator timed out after 120 s"},
                   versions={"tflite-reference": {"ai-edge-litert": "2.3.0"},
                             "tflm-host": {"tflite-micro": "0.dev"}},
                   input_names=["random:1", "cat.png"])


# --- a diagnosis (simrun.analysis.diagnose's data model) with chosen causes -------------------

def attach_diagnosis(run: DiffRun, n: int, a: str, b: str, reference: list[np.ndarray],
                     isolated: list[np.ndarray], causes: dict[str, str], summary: str = ""):
    """Diagnose pair (a, b) of input n: `reference` are a's layer values, `isolated` b's when
    every layer ran on a's inputs (own error); `causes` names the cause per layer id (others:
    inherited when the layer diverges, else none)."""
    from simrun.analysis.diagnose import Diagnosis, LayerDiagnosis, PairDiagnosis
    pair = run.comparisons[n].pair(a, b)
    own_pair = compare(run.model, {a: make_capture(a, reference), b: make_capture(b, isolated)},
                       [(a, b)]).pairs[0]
    own = {s.id: s for s in own_pair.layers}
    layers = []
    for s in pair.layers:
        if s.op_index is None:
            continue
        cause = causes.get(s.id, "inherited" if s.diverges else "none")
        layers.append(LayerDiagnosis(s.subgraph, s.op_index, s.op_name, s.tensor_index, s.tensor_name,
                                     s.depth, s, own.get(s.id), cause, f"synthetic evidence for {s.id}",
                                     kernel="reference (synthetic)"))
    pd = PairDiagnosis(a, b, a, layers, list(pair.outputs), summary or f"{a} vs {b}: synthetic")
    if run.diagnosis is None:
        run.diagnosis = Diagnosis(a, [[] for _ in run.comparisons])
    run.diagnosis.pairs[n].append(pd)
    return pd

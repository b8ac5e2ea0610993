"""A detector-shaped synthetic run for the report tests and bench/report_bench.py.

A YOLO-style graph of about N operators (a stem, C2f-like blocks with split, residual adds
and concat, an upsample + concat neck, three heads) and three backends: two bit-exact, one
whose CONV_2D layers of one stage add ±1 themselves and pass it on, with a diagnosis (own
error and causes) attached.
"""
from __future__ import annotations

import numpy as np

from simrun.analysis.compare import compare
from simrun.analysis.diffrun import DiffRun
from simrun.analysis.diagnose import Diagnosis, LayerDiagnosis, PairDiagnosis
from simrun.capture import Capture, OpRecord, Quantization, Tensor
from simrun.model import OperatorInfo, SubgraphInfo, TensorInfo

Q = Quantization((0.05,), (0,))


class DetectorModel:
    """What the reports read of a Model: main subgraph, tensors, sha256, path."""
    sha256 = "cd" * 32
    path = "synthetic-detector.tflite"

    def __init__(self, target_ops: int):
        self.ops: list[tuple[str, list[int], list[int]]] = []
        self.n_tensors = 1                                  # tensor 0: the model input
        self._build(target_ops)
        tensors = tuple(TensorInfo(i, f"t{i}", np.dtype(np.int8), (1, 64), Q, False)
                        for i in range(self.n_tensors))
        ops = tuple(OperatorInfo(0, i, name, tuple(ins), tuple(outs)) for i, (name, ins, outs) in enumerate(self.ops))
        self.main = SubgraphInfo(0, "main", tensors, ops, (0,), (self.ops[-1][2][0],))
        self.subgraphs = [self.main]

    def tensor(self, sg, index):
        return self.main.tensors[index]

    def _op(self, name: str, *inputs: int, outputs: int = 1) -> list[int]:
        outs = list(range(self.n_tensors, self.n_tensors + outputs))
        self.n_tensors += outputs
        self.ops.append((name, list(inputs), outs))
        return outs

    def _c2f(self, x: int, bottlenecks: int) -> int:
        x = self._op("CONV_2D", x)[0]
        a, b = self._op("SPLIT", x, outputs=2)
        parts = [a, b]
        for _ in range(bottlenecks):
            y = self._op("CONV_2D", parts[-1])[0]
            y = self._op("CONV_2D", y)[0]
            parts.append(self._op("ADD", parts[-1], y)[0])
        return self._op("CONV_2D", self._op("CONCATENATION", *parts)[0])[0]

    def _build(self, target: int) -> None:
        bottlenecks = max(1, (target - 60) // 12)    # 3 operators each, in 4 stages
        x = 0
        for _ in range(3):
            x = self._op("CONV_2D", x)[0]
        stages = []
        for _ in range(4):
            x = self._op("CONV_2D", x)[0]                   # stride-2 downsample
            x = self._c2f(x, bottlenecks)
            stages.append(x)
        p5 = stages[3]
        up = self._op("RESIZE_NEAREST_NEIGHBOR", p5)[0]
        p4 = self._c2f(self._op("CONCATENATION", up, stages[2])[0], 1)
        up = self._op("RESIZE_NEAREST_NEIGHBOR", p4)[0]
        p3 = self._c2f(self._op("CONCATENATION", up, stages[1])[0], 1)
        heads = []
        for p in (p3, p4, p5):
            box = self._op("CONV_2D", self._op("CONV_2D", self._op("CONV_2D", p)[0])[0])[0]
            cls = self._op("CONV_2D", self._op("CONV_2D", self._op("CONV_2D", p)[0])[0])[0]
            heads.append(self._op("RESHAPE", self._op("CONCATENATION", box, cls)[0])[0])
        self._op("LOGISTIC", self._op("CONCATENATION", *heads)[0])


def synthetic_run(ops: int, inputs: int, values: int) -> DiffRun:
    model = DetectorModel(ops)
    rng = np.random.default_rng(0)
    conv = [i for i, (name, _, _) in enumerate(model.ops) if name == "CONV_2D"]
    introducing = set(conv[len(conv) // 3: len(conv) // 3 + 6])     # one stage's convolutions
    comparisons, isolated_runs = [], []
    for _ in range(inputs):
        ref, dev, iso, delta = [], [], [], {}
        for i, (name, ins, outs) in enumerate(model.ops):
            base = [rng.integers(-100, 100, values).astype(np.int8) for _ in outs]
            inherited = any(t in delta for t in ins)
            own = rng.integers(-1, 2, values) * (rng.random(values) < 0.1) if i in introducing else 0
            for t, v in zip(outs, base):
                d = (delta[ins[0]] if inherited and ins[0] in delta else 0) + own
                if not isinstance(d, int) or d:
                    delta[t] = d
                ref.append((i, t, v))
                dev.append((i, t, np.clip(v + d, -128, 127).astype(np.int8)))
                iso.append((i, t, np.clip(v + own, -128, 127).astype(np.int8)))
        caps = {"tflite-reference": _capture("tflite-reference", model, ref),
                "tflm-host": _capture("tflm-host", model, ref),
                "target:cortex-m55:cmsis-nn": _capture("target:cortex-m55:cmsis-nn", model, dev)}
        comparisons.append(compare(model, caps))
        isolated_runs.append({"tflite-reference": caps["tflite-reference"],
                              "target:cortex-m55:cmsis-nn": _capture("target:cortex-m55:cmsis-nn", model, iso)})
    run = DiffRun(model, comparisons, input_names=[f"random:1#{k}" for k in range(inputs)])
    run.diagnosis = Diagnosis("tflite-reference", [[] for _ in comparisons])
    for n, cmp in enumerate(comparisons):
        for pair in cmp.pairs:
            own = compare(model, {pair.a: isolated_runs[n]["tflite-reference"],
                                  pair.b: isolated_runs[n]["target:cortex-m55:cmsis-nn"]}, [(pair.a, pair.b)]).pairs[0] \
                if pair.b.startswith("target") else pair
            by_id = {s.id: s for s in own.layers}
            layers = [LayerDiagnosis(s.subgraph, s.op_index, s.op_name, s.tensor_index, s.tensor_name, s.depth, s,
                                     by_id.get(s.id), _cause(by_id.get(s.id), s), "synthetic")
                      for s in pair.layers if s.op_index is not None]
            run.diagnosis.pairs[n].append(PairDiagnosis(pair.a, pair.b, "tflite-reference", layers,
                                                        list(pair.outputs), f"{pair.name}: synthetic"))
    return run


def _cause(own, prop) -> str:
    if own is not None and own.diverges:
        return "kernel"
    return "inherited" if prop.diverges else "none"


def _capture(label: str, model: DetectorModel, records) -> Capture:
    ops = {}
    for i, t, v in records:
        ops.setdefault(i, []).append(Tensor(t, f"t{t}", v, Q))
    recs = [OpRecord(0, i, model.ops[i][0], tensors) for i, tensors in ops.items()]
    last = recs[-1].outputs[0]
    return Capture(label, model.sha256, recs, [last], {})

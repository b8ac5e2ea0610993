"""Wall time of compare + policy + reports on a large synthetic run.

    python bench/compare_bench.py [--layers 300] [--values 98304] [--inputs 1]

Three backends (two bit-exact, one off by ±1 everywhere) with LAYERS int8 layers
of VALUES values each: the numbers say whether the metrics and the reports stay
cheap next to the backends themselves.
"""
from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from simrun.capture import Capture, OpRecord, Quantization, Tensor
from simrun.analysis.compare import compare
from simrun.analysis.diffrun import DiffRun
from simrun.analysis.policy import Policy
from simrun.analysis.result import DiffResult, exit_code
from simrun.report import terminal, write_reports


class _Model:
    sha256 = ""
    path = "synthetic"

    def tensor(self, sg, index):
        raise IndexError(index)


def _capture(label: str, layers: list[np.ndarray]) -> Capture:
    q = Quantization((0.05,), (0,))
    return Capture(label, "", [OpRecord(0, i, "CONV_2D", [Tensor(i, f"layer{i}", v, q)])
                               for i, v in enumerate(layers)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=300)
    ap.add_argument("--values", type=int, default=98304)
    ap.add_argument("--inputs", type=int, default=1)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    model = _Model()
    t0 = time.perf_counter()
    comparisons = []
    compare_s = 0.0
    for _ in range(args.inputs):
        layers = [rng.integers(-128, 127, args.values, dtype=np.int8) for _ in range(args.layers)]
        noisy = [np.clip(v.astype(np.int16) + rng.integers(-1, 2, v.size), -128, 127).astype(np.int8)
                 for v in layers]
        caps = {"tflite-reference": _capture("tflite-reference", layers),
                "tflm-host": _capture("tflm-host", [v.copy() for v in layers]),
                "tflite-optimized": _capture("tflite-optimized", noisy)}
        t = time.perf_counter()
        comparisons.append(compare(model, caps))
        compare_s += time.perf_counter() - t
    run = DiffRun(model, comparisons)
    t = time.perf_counter()
    verdict = Policy.default().evaluate(run)
    policy_s = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        write_reports(DiffResult(run, verdict, exit_code(run, verdict)), out)
        reports_s = time.perf_counter() - t
    t = time.perf_counter()
    terminal.render(run, verdict)
    terminal_s = time.perf_counter() - t
    print(f"{args.inputs} input(s) x 3 pairs x {args.layers} layers x {args.values} int8 values")
    print(f"compare  {compare_s:7.2f} s")
    print(f"policy   {policy_s:7.2f} s")
    print(f"reports  {reports_s:7.2f} s  (summary.json, junit.xml, report.html + plots)")
    print(f"terminal {terminal_s:7.2f} s")
    print(f"total    {time.perf_counter() - t0:7.2f} s  (including synthetic data)")


if __name__ == "__main__":
    main()

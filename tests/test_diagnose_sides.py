"""Two causes the diagnosis used to leave "unexplained":
- error carried by state: a streaming model's READ_VARIABLE returning what an earlier step's
  ASSIGN_VARIABLE stored (simrun/analysis/state.py);
- a pair without the reference whose two sides each differ from it for their own reason
  (simrun/analysis/sides.py): the device's FMA contraction on one, XNNPACK on the other.
Synthetic Captures first, then real models on the host backends (built with TensorFlow)."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np

from simrun.analysis.compare import compare
from simrun.analysis.diagnose import CAUSES, diagnose_run, without_fp_contract
from simrun.analysis.diffrun import DiffRun
from simrun.analysis.result import judge
from simrun.capture import Capture, OpRecord, Quantization, Tensor
from simrun.model import OperatorInfo
from simrun.report import json_report, model_explorer, palette
from synthetic_captures import OP_NAMES, FakeModel, make_capture

REF, HOST, OPT = "tflite-reference", "tflm-host", "tflite-optimized"
TGT = "target:cortex-m55:cmsis-nn"
NOT_ISOLATED = "READ_VARIABLE shares a resource variable with other operators"


# --- state: READ_VARIABLE -> CONV_2D -> ASSIGN_VARIABLE, one variable, a few steps -----------
class StateModel(FakeModel):
    """Operator 0 reads the variable (handle tensor 5) into tensor 10, operator 1 convolves it
    with the model input into tensor 11, operator 2 stores tensor 11 back."""
    resource_variables = {(0, 5): "/state"}

    def operators(self):
        return [OperatorInfo(0, 0, "READ_VARIABLE", (5,), (10,)),
                OperatorInfo(0, 1, "CONV_2D", (10, 0), (11,)),
                OperatorInfo(0, 2, "ASSIGN_VARIABLE", (5, 11), ())]


Q = Quantization((0.05,), (0,))


def _step(label: str, read: np.ndarray | None, conv: np.ndarray, meta=None) -> Capture:
    ops = [] if read is None else [OpRecord(0, 0, "READ_VARIABLE", [Tensor(10, "state", read.copy(), Q)])]
    ops += [OpRecord(0, 1, "CONV_2D", [Tensor(11, "conv", conv.copy(), Q)]), OpRecord(0, 2, "ASSIGN_VARIABLE", [])]
    return Capture(label, FakeModel.sha256, ops, [Tensor(11, "conv", conv.copy(), Q)], {}, dict(meta or {}))


def _state_run(steps=3, plant_step=0, corrupt_read_at=None, sequences=True):
    """Side HOST's convolution has an own error of 2 steps from `plant_step` on; each next step
    reads it back from the variable. Isolated runs cannot isolate the read (as in the real backends)."""
    rng = np.random.default_rng(3)
    conv = [rng.integers(-50, 50, (1, 8), dtype=np.int8) for _ in range(steps)]
    host_conv = [c.copy() for c in conv]
    for c in host_conv[plant_step:]:
        c[0, 2] += 2
    model = StateModel()
    normal = {REF: [], HOST: []}
    isolated = []
    for k in range(steps):
        ref_read = conv[k - 1] if k else np.zeros((1, 8), np.int8)
        host_read = host_conv[k - 1] if k else np.zeros((1, 8), np.int8)
        if corrupt_read_at == k:
            host_read = host_read.copy()
            host_read[0, 7] += 1
        normal[REF].append(_step(REF, ref_read, conv[k]))
        normal[HOST].append(_step(HOST, host_read, host_conv[k]))
        isolated.append({REF: normal[REF][k],
                         HOST: _step(HOST, None, host_conv[k],
                                     {"not_isolated": {"0:0": NOT_ISOLATED}})})
    comparisons = [compare(model, {label: caps[k] for label, caps in normal.items()}) for k in range(steps)]
    run = DiffRun(model, comparisons, input_names=[f"random:0@{k}" for k in range(steps)],
                  sequences={"random:0": list(range(steps))} if sequences else {}, captures=normal)
    return run, diagnose_run(run, isolated, REF)


def _read(diagnosis, step):
    [d] = [d for d in diagnosis.pair(step, REF, HOST).layers if d.op_name == "READ_VARIABLE"]
    return d


def test_a_read_of_what_the_previous_step_stored_is_inherited_through_state():
    _, diagnosis = _state_run()
    assert _read(diagnosis, 0).cause == "none"
    conv = next(d for d in diagnosis.pair(0, REF, HOST).layers if d.op_name == "CONV_2D")
    assert conv.cause == "unexplained" and conv.own.max_abs_delta == 2     # the error's own origin
    for step in (1, 2):
        d = _read(diagnosis, step)
        assert d.propagated.diverges and d.own is None
        assert d.cause == "inherited"
        assert d.through_state == f"ASSIGN_VARIABLE 0:2 at step {step - 1} (random:0@{step - 1})"
        assert d.evidence.startswith("inherited through state") and "max |Δ| 2" in d.evidence
        assert NOT_ISOLATED in d.evidence                                   # still says why not isolated
        assert not d.introduces
    assert "READ_VARIABLE" not in [d.op_name for d in diagnosis.pair(1, REF, HOST).introducing]


def test_without_the_steps_of_a_sequence_the_read_stays_unexplained():
    _, diagnosis = _state_run(sequences=False)
    d = _read(diagnosis, 1)
    assert d.cause == "unexplained" and d.through_state is None and "not isolated" in d.evidence


def test_a_read_that_is_not_what_was_stored_stays_unexplained_and_says_so():
    _, diagnosis = _state_run(corrupt_read_at=2)
    assert _read(diagnosis, 1).cause == "inherited"
    d = _read(diagnosis, 2)
    assert d.cause == "unexplained" and d.through_state is None
    assert "tflm-host read(s) something other than what ASSIGN_VARIABLE 0:2 at step 1" in d.evidence


def test_the_state_label_reaches_summary_json():
    run, _ = _state_run()
    result = judge(run)
    doc = json_report.summary(run, result.verdict)
    layers = [layer for c in doc["comparisons"][1:] for p in c["pairs"] for layer in p["layers"]
              if layer["op_name"] == "READ_VARIABLE"]
    assert layers and all(layer["cause"] == "inherited" and layer["through_state"].startswith("ASSIGN_VARIABLE 0:2")
                          for layer in layers)


# --- both sides differ from the reference --------------------------------------------------
class ChainModel(FakeModel):
    """Operator i reads tensor 10 + i - 1; a main graph for the Model Explorer overlays."""

    @property
    def main(self):
        return SimpleNamespace(name="main", index=0, operators=self.operators())

    def operators(self):
        return [OperatorInfo(0, i, name, (10 + i - 1 if i else 0,), (10 + i,))
                for i, name in enumerate(OP_NAMES)]


def _float_run(opt_off_at=2, tgt_off_at=2):
    """Float chain: the device's layer `tgt_off_at` is 1e-6 off (FMA contraction: its
    -ffp-contract=off variant equals the reference), tflite-optimized's layer `opt_off_at`
    -2e-6 (XNNPACK: LiteRT without it equals the reference)."""
    rng = np.random.default_rng(1)
    ref = [rng.normal(size=(1, 8)).astype(np.float32) for _ in OP_NAMES]

    def off(at, delta):
        normal = [v.copy() for v in ref]
        for v in normal[at:]:
            v[0, 0] += delta
        own = [v.copy() for v in ref]
        own[at] = normal[at].copy()
        return normal, own

    tgt, tgt_own = off(tgt_off_at, 1e-6)
    opt, opt_own = off(opt_off_at, -2e-6)
    none = Quantization()
    model = ChainModel()
    caps = {REF: make_capture(REF, ref, quant=none), TGT: make_capture(TGT, tgt, quant=none),
            OPT: make_capture(OPT, opt, quant=none)}
    run = DiffRun(model, [compare(model, caps)], captures={k: [v] for k, v in caps.items()})
    nofma = without_fp_contract(TGT)
    iso = {REF: caps[REF], TGT: make_capture(TGT, tgt_own, quant=none),
           OPT: make_capture(OPT, opt_own, quant=none),
           nofma: make_capture(nofma, ref, quant=none),
           "tflite-optimized-nodelegate": make_capture("tflite-optimized-nodelegate", ref, quant=none)}
    return run, diagnose_run(run, [iso], REF)


def test_each_side_gets_its_own_cause_when_both_differ_from_the_reference():
    _, diagnosis = _float_run()
    assert diagnosis.pair(0, REF, TGT).layers[2].cause == "float-contraction"
    assert diagnosis.pair(0, REF, OPT).layers[2].cause == "kernel"
    d = diagnosis.pair(0, TGT, OPT).layers[2]
    assert d.cause == "both-sides" and d.introduces
    assert d.side_causes == {TGT: "float-contraction", OPT: "kernel"}
    assert f"both sides differ from {REF} here" in d.evidence
    assert f"{TGT}: float-contraction" in d.evidence and f"{OPT}: kernel (XNNPACK delegate" in d.evidence
    kernels = {d.kernel_a, d.kernel}
    assert "XNNPACK delegate (LiteRT default)" in kernels
    pair = diagnosis.pair(0, TGT, OPT)
    assert "cause both-sides (" in pair.summary
    assert f"{TGT}: float-contraction" in pair.summary and f"{OPT}: kernel" in pair.summary
    assert "both-sides" in CAUSES and "both-sides" in palette.CAUSE_COLOURS


def test_layers_where_one_side_equals_the_reference_keep_their_direct_cause():
    """The device differs at layer 2, tflite-optimized at layer 4: the pair's own variants
    explain each (one side equals the reference there), so neither is "both-sides"."""
    _, diagnosis = _float_run(opt_off_at=4, tgt_off_at=2)
    pair = diagnosis.pair(0, TGT, OPT)
    assert pair.layers[2].cause == "float-contraction" and not pair.layers[2].side_causes
    assert pair.layers[4].cause == "kernel" and not pair.layers[4].side_causes
    assert pair.count("unexplained") == 0 and pair.count("both-sides") == 0


def test_both_sides_reaches_summary_json_and_the_model_explorer_overlay():
    run, _ = _float_run()
    result = judge(run)
    doc = json_report.summary(run, result.verdict)
    [pair] = [p for p in doc["comparisons"][0]["pairs"] if {p["a"], p["b"]} == {TGT, OPT}]
    layer = next(x for x in pair["layers"] if x["op_index"] == 2)
    assert layer["cause"] == "both-sides" and layer["side_causes"] == {TGT: "float-contraction", OPT: "kernel"}
    overlays = model_explorer.overlays(run, result.verdict)
    cause_files = {name: data for name, data in overlays.items() if name.endswith(".cause.json")}
    values = [r["value"] for data in cause_files.values() for g in data.values() for r in g["results"].values()]
    assert "both-sides" in values and "unexplained" not in values
    assert palette.CAUSE_COLOURS["both-sides"] in [r["bgColor"] for data in cause_files.values()
                                                   for g in data.values() for r in g["results"].values()]


# --- real models on the host backends ------------------------------------------------------
def _diff(*argv) -> int:
    from test_stream import simrun_diff
    return simrun_diff(*argv)


def _layers(summary: dict):
    for c in summary["comparisons"]:
        for p in c["pairs"]:
            for layer in p["layers"]:
                yield c["input"], p, layer


def test_a_streaming_model_whose_state_diverges_on_host_backends(tf_model, tmp_path):
    """tflm-host rounds a bias-less FULLY_CONNECTED apart from TFLite; the ring buffers store
    that, and each later step's READ_VARIABLE returns it: inherited through state, no longer
    unexplained (before this, 5 READ_VARIABLE rows per pair with tflm-host)."""
    from testmodels import streaming_state_int8
    path = tf_model(streaming_state_int8)
    code = _diff(path, "--input", "random:0", "--steps", 6, "--backends", f"{OPT},{REF},{HOST}",
                 "--report", tmp_path)
    assert code == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    reads = [(name, p, layer) for name, p, layer in _layers(summary) if layer["op_name"] == "READ_VARIABLE"
             and layer["max_abs_delta"]]
    assert reads, "the state no longer diverges between the host backends: the test model changed"
    for name, p, layer in reads:
        assert layer["cause"] == "inherited", (name, p["a"], p["b"], layer["evidence"])
        assert layer["through_state"].startswith("ASSIGN_VARIABLE 0:") and " at step " in layer["through_state"]
        assert HOST in (p["a"], p["b"])
    assert not [x for x in _layers(summary) if x[2]["op_name"] == "READ_VARIABLE" and x[2]["cause"] == "unexplained"]
    page = (tmp_path / "report.html").read_text()
    assert "inherited through state: on both sides it returns what ASSIGN_VARIABLE" in page
    read_ops = {str(layer["op_index"]) for _, _, layer in reads}
    overlay = json.loads((tmp_path / "model-explorer" / f"{REF}_vs_{HOST}.cause.json").read_text())
    [graph] = overlay.values()
    assert read_ops and {graph["results"][op]["value"] for op in read_ops} == {"inherited"}


def test_litert_without_xnnpack_is_explained_on_a_float_model(tf_model, tmp_path):
    """Host backends on a float model: LiteRT's optimized built-in kernels differ from its
    reference kernels (kernel), and tflm-host, equal to the reference, takes that side's cause
    in its pair with tflite-optimized-nodelegate (both used to be unexplained)."""
    from testmodels import float_mix
    path = tf_model(float_mix)
    nodelegate = "tflite-optimized-nodelegate"
    code = _diff(path, "--backends", f"{OPT},{REF},{HOST},{nodelegate}", "--report", tmp_path)
    assert code == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    causes = {(p["a"], p["b"], layer["id"]): layer for _, p, layer in _layers(summary)}
    assert not [k for k, v in causes.items() if v["cause"] == "unexplained"]
    with_host = [v for (a, b, _), v in causes.items() if {a, b} == {HOST, nodelegate} and v["own"]
                 and v["own"]["max_abs_delta"]]
    assert with_host and all(v["cause"] == "kernel" and f"{HOST} equals {REF} here" in v["evidence"]
                             for v in with_host)

"""simrun.analysis.baseline: judging what changed since an earlier run's summary.json."""
from __future__ import annotations

import json

import pytest

from simrun.analysis import baseline
from simrun.analysis.compare import compare
from simrun.analysis.diffrun import DiffRun
from simrun.analysis.policy import Policy
from simrun.errors import BadInput
from simrun.report import json_report, terminal

from synthetic_captures import FakeModel, attach_diagnosis, base_layers, make_capture, off_by

HOST, DEVICE = "tflm-host", "target:cortex-m4:cmsis-nn"


def device_run(device_layers=None, isolated=None, causes=None, backend_errors=None) -> DiffRun:
    """host TFLM vs a device, diagnosed: `isolated` are the device's layers run on the host's inputs."""
    layers = base_layers()
    device_layers = device_layers if device_layers is not None else layers
    model = FakeModel()
    run = DiffRun(model, [compare(model, {HOST: make_capture(HOST, layers),
                                          DEVICE: make_capture(DEVICE, device_layers)})],
                  backend_errors=dict(backend_errors or {}))
    attach_diagnosis(run, 0, HOST, DEVICE, layers,
                     isolated if isolated is not None else device_layers, causes or {})
    return run


def planted(at: int, steps: int):
    """Device layers where layer `at` adds `steps` itself and the later ones inherit it."""
    layers = base_layers()
    device = off_by(layers, at, steps)
    isolated = off_by(layers, at, steps)
    for i in range(at + 1, len(layers)):
        isolated[i] = layers[i].copy()
    return device, isolated


def snapshot(run: DiffRun, policy=None):
    """The run as a baseline reads it: through its summary.json, as JSON text."""
    policy = policy or Policy.default()
    doc = json.loads(json.dumps(json_report.summary(run, policy.evaluate(run))))
    return baseline.from_summary(doc, "old/summary.json")


def gated(old_run: DiffRun, new_run: DiffRun, policy=None):
    policy = policy or Policy.default()
    return baseline.gate(snapshot(old_run, policy), new_run, policy.evaluate(new_run), policy)


def test_an_unchanged_run_reports_no_regression():
    device, isolated = planted(2, 1)                # a known 1-step own error: within the policy
    verdict = gated(device_run(device, isolated, {"0:2/12": "rounding"}),
                    device_run(device, isolated, {"0:2/12": "rounding"}))
    assert verdict.passed and verdict.baseline.passed
    assert not verdict.baseline.regressions and not verdict.baseline.improvements
    (was, now), = verdict.baseline.rows
    assert was.side() == now.side() and now.side()["introducing"] == 1
    text = terminal.render(device_run(device, isolated), verdict)
    assert "no regression against the baseline" in text
    assert text.splitlines()[-1].startswith("verdict: PASSED against the baseline")


def test_a_layer_that_newly_introduces_error_is_a_regression_though_within_tolerance():
    device, isolated = planted(3, 1)                # one step: the policy alone passes it
    new = device_run(device, isolated, {"0:3/13": "kernel"})
    assert Policy.default().evaluate(new).passed
    verdict = gated(device_run(), new)
    assert not verdict.passed
    kinds = {c.kind: c for c in verdict.baseline.regressions}
    assert set(kinds) == {"introduces", "not-bit-exact", "output-grew"}
    assert kinds["introduces"].layer == "0:3/13"
    assert kinds["introduces"].text == (f"input0: {HOST} vs {DEVICE}: 0:3/13 AVERAGE_POOL_2D layer3/out now "
                                        f"introduces error (own max |Δ| 0 -> 1)")
    assert f"baseline: {kinds['introduces'].text}" in verdict.failures
    # A baseline margin does not excuse a layer that starts introducing error; it allows growth.
    assert "output output/15 error grew: 0.00% -> 0.39% of its range (margin 0.00%)" in kinds["output-grew"].text
    loose = Policy.parse("[defaults]\nmax_abs_delta = 2\nown_max_abs_delta = 2\n"
                         "[baseline]\nown_margin = 1\nbit_exact = false\noutput_margin = 0.01\n", "loose.toml")
    assert not gated(device_run(), new, loose).passed
    grown, grown_iso = planted(3, 2)
    base_run = device_run(device, isolated, {"0:3/13": "kernel"})
    grew = device_run(grown, grown_iso, {"0:3/13": "kernel"})
    assert gated(base_run, grew, loose).baseline.passed
    strict = gated(base_run, grew).baseline.regressions
    assert any(c.kind == "own-grew" and "max |Δ| 1 -> 2 (margin 0)" in c.text for c in strict)


def test_failures_the_baseline_had_are_known_and_improvements_reported():
    device, isolated = planted(2, 3)                # 3 steps of own error: fails the policy
    failing = device_run(device, isolated, {"0:2/12": "kernel"})
    assert not Policy.default().evaluate(failing).passed
    verdict = gated(failing, failing)
    assert verdict.passed and len(verdict.known) == 1 and not verdict.failures
    assert json_report.summary(failing, verdict)["verdict"]["known"] == verdict.known
    # Fixed since: the old failure is gone and reported as an improvement.
    fixed = gated(failing, device_run())
    assert fixed.passed
    assert {c.kind for c in fixed.baseline.improvements} == {"improved"}
    assert any("0:2/12" in c.text and "no longer introduces error" in c.text
               for c in fixed.baseline.improvements)


def test_a_backend_that_newly_fails_is_a_regression_one_that_failed_before_is_known():
    timeout = {"target:cortex-m4:reference": "emulator timed out after 120 s"}
    ran = device_run()
    ran.comparisons[0] = compare(ran.model, {
        HOST: make_capture(HOST, base_layers()), DEVICE: make_capture(DEVICE, base_layers()),
        "target:cortex-m4:reference": make_capture("target:cortex-m4:reference", base_layers())})
    now_fails = device_run(backend_errors=timeout)
    verdict = gated(ran, now_fails)
    assert not verdict.passed
    assert [c.kind for c in verdict.baseline.regressions] == ["backend-fails"]
    assert verdict.backend_errors["target:cortex-m4:reference"] == "fail"
    both = gated(device_run(backend_errors=timeout), now_fails)
    assert both.passed and both.backend_errors["target:cortex-m4:reference"] == "known"
    assert both.known == ["backend target:cortex-m4:reference failed: emulator timed out after 120 s"]


def test_summary_json_shows_old_and_new_side_by_side():
    device, isolated = planted(3, 1)
    new = device_run(device, isolated, {"0:3/13": "kernel"})
    verdict = gated(device_run(), new)
    doc = json.loads(json.dumps(json_report.summary(new, verdict)))
    section = doc["baseline"]
    assert section["path"] == "old/summary.json" and section["passed"] is False
    (pair,) = section["pairs"]
    assert (pair["a"], pair["b"]) == (HOST, DEVICE)
    assert pair["old"]["bit_exact"] and pair["old"]["introducing"] == 0
    assert not pair["new"]["bit_exact"] and pair["new"]["introducing"] == 1
    assert {c["kind"] for c in section["regressions"]} == {"introduces", "not-bit-exact", "output-grew"}
    assert json_report.summary(new, Policy.default().evaluate(new))["baseline"] is None


@pytest.mark.parametrize("text, message", [
    (None, "cannot read it"),
    ("{not json", "not JSON"),
    ('{"schema": "simrun-ab/1", "schemes": []}', "not the summary.json of `simrun diff`"),
    ('{"schema": 99, "comparisons": []}', "summary schema 99; this simrun reads schema 1, 2"),
    ('{"schema": 1, "comparisons": [{"input": "x"}]}', "lacks a field simrun needs"),
    ('{"schema_version": 2, "complete": false, "exit_code": 130, "error": "interrupted (Ctrl-C)"}',
     "that run stopped before its verdict (exit 130: interrupted (Ctrl-C))"),
])
def test_a_bad_baseline_is_a_clear_error(tmp_path, text, message):
    path = tmp_path / "summary.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(BadInput) as err:
        baseline.load(path)
    assert message in str(err.value) and str(path) in str(err.value)


# --- end to end: a model with one perturbed weight ---------------------------------------------

def _xnnpack_differs(data: bytes, sample, tensor: int) -> bool:
    """Does desktop TFLite's optimized path (XNNPACK) give another value than its reference
    kernels for `tensor` on this input? (In process: milliseconds a candidate.)"""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    values = []
    for resolver in (OpResolverType.BUILTIN_REF, OpResolverType.BUILTIN):
        interp = Interpreter(model_content=data, experimental_op_resolver_type=resolver,
                             experimental_preserve_all_tensors=True)
        interp.allocate_tensors()
        for detail, array in zip(interp.get_input_details(), sample):
            interp.set_tensor(detail["index"], array)
        interp.invoke()
        values.append(interp.get_tensor(tensor).copy())
    return bool((values[0] != values[1]).any())


@pytest.fixture(scope="module")
def models(tf_model, tmp_path_factory):
    """The old model: two convolutions, the first with zero weights and bias (its output is the
    zero point exactly, on every backend); the new one: one of those weights set, the first value
    (from 127 down) for which XNNPACK rounds some output of that layer differently."""
    import warnings
    import numpy as np
    from simrun.inputs import load_named_inputs
    from simrun.model import Model
    from testmodels import two_conv_int8, with_constant
    out = tmp_path_factory.mktemp("baseline-models")
    data = tf_model(two_conv_int8).read_bytes()
    conv = Model(data).operators()[0]
    weights, bias = conv.inputs[1], conv.inputs[2]
    shape = Model(data).tensor(0, weights).shape
    old = with_constant(with_constant(data, 0, weights, np.zeros(shape, np.int8)), 0, bias,
                        np.zeros(Model(data).tensor(0, bias).shape, np.int32))
    ((_, sample),) = load_named_inputs(Model(old), ["random:0"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")            # LiteRT: preserve-all-tensors is for debugging
        assert not _xnnpack_differs(old, sample, conv.outputs[0])
        for value in range(127, 0, -1):
            w = np.zeros(shape, np.int8)
            w.flat[0] = value
            new = with_constant(old, 0, weights, w)
            if _xnnpack_differs(new, sample, conv.outputs[0]):
                break
        else:
            pytest.fail("no single weight value makes XNNPACK round the first convolution differently")
    (out / "old.tflite").write_bytes(old)
    (out / "new.tflite").write_bytes(new)
    return out / "old.tflite", out / "new.tflite", f"0:0/{conv.outputs[0]}"


@pytest.mark.backends
def test_baseline_end_to_end_names_the_layer_a_perturbed_weight_makes_introduce_error(models, tmp_path):
    from test_diff import simrun_diff
    old, new, layer = models
    # Judge desktop TFLite's optimized kernels too, own error included (the default reports
    # those pairs without judging them), so that two host backends show the gate working.
    policy = tmp_path / "policy.toml"
    policy.write_text('[defaults]\npairs = ["*"]\n[pair."tflite-optimized* vs *"]\nown_max_abs_delta = 1\n')
    common = ["--backends", "tflite-reference,tflite-optimized", "--policy", policy]
    assert simrun_diff(old, *common, "--report", tmp_path / "old") == 0
    base = tmp_path / "old" / "summary.json"
    # The same model again: nothing changed, nothing regressed.
    assert simrun_diff(old, *common, "--baseline", base, "--report", tmp_path / "same") == 0
    same = json.loads((tmp_path / "same" / "summary.json").read_text())["baseline"]
    assert same["passed"] and not same["regressions"] and same["pairs"][0]["old"] == same["pairs"][0]["new"]
    # One perturbed weight: within the policy on its own (1 step), a regression against the baseline.
    assert simrun_diff(new, *common, "--report", tmp_path / "alone") == 0
    assert simrun_diff(new, *common, "--baseline", base, "--report", tmp_path / "new") == 1
    doc = json.loads((tmp_path / "new" / "summary.json").read_text())
    introduced = [c for c in doc["baseline"]["regressions"] if c["kind"] == "introduces"]
    assert introduced and introduced[0]["layer"] == layer
    assert any(f.startswith("baseline: ") and f"{layer} CONV_2D" in f and "now introduces error" in f
               for f in doc["verdict"]["failures"])
    assert doc["baseline"]["model_sha256"]["old"] != doc["baseline"]["model_sha256"]["new"]
    assert "Against the baseline" in (tmp_path / "new" / "report.html").read_text()
    # The Python API takes the baseline as the CLI does.
    import simrun
    result = simrun.diff(new, backends="tflite-reference,tflite-optimized", policy=policy, baseline=base)
    assert result.exit_code == 1 and [c.layer for c in result.verdict.baseline.regressions
                                      if c.kind == "introduces"] == [layer]


def test_without_a_diagnosis_an_earlier_divergence_is_the_regression():
    layers = base_layers()
    model = FakeModel()

    def undiagnosed(device):
        return DiffRun(model, [compare(model, {HOST: make_capture(HOST, layers),
                                               DEVICE: make_capture(DEVICE, device)})])
    late, early = undiagnosed(off_by(layers, 4, 1)), undiagnosed(off_by(layers, 2, 1))
    regressions = gated(late, early).baseline.regressions
    assert [c.kind for c in regressions] == ["diverges-earlier"]
    assert regressions[0].text == (f"input0: {HOST} vs {DEVICE}: now diverges from 0:2/12 CONV_2D layer2/out "
                                   f"(baseline: 0:4/14 RESHAPE layer4/out); run with diagnosis to see which "
                                   f"layer introduces it")
    assert gated(early, late).passed            # diverging later is no regression


def test_the_summary_this_version_writes_is_one_it_reads_as_a_baseline():
    """A tripwire: bumping summary.json's schema (report/json_report.py) without teaching
    analysis/baseline.py to read it would make every new run's summary unusable as a baseline."""
    run = device_run()
    doc = json_report.summary(run, Policy.default().evaluate(run))
    assert doc.get("schema_version", doc.get("schema")) in baseline.SCHEMAS
    assert baseline.from_summary(json.loads(json.dumps(doc)), "x").pairs

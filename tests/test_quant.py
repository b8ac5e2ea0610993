"""`simrun quantize` and `simrun ab` on a small Keras detector (convolutions, upsample,
concatenation, a Dense layer, LOGISTIC heads): the schemes convert as their settings
say, the A/B reports quantization error per output and implementation error that a
direct re-run of two backends reproduces; bad input is one message and exit 2."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from simrun.cli import main
from simrun.model import Model

pytestmark = pytest.mark.tensorflow       # every test converts the detector with TensorFlow


@pytest.fixture(scope="module")
def detector(tmp_path_factory) -> tuple[Path, Path]:
    """(detector.keras, calibration.npy): the example detector saved as a user's model."""
    pytest.importorskip("tensorflow", reason="converting Keras models needs TensorFlow")
    from simrun.quant.convert import quiet, tensorflow
    from simrun.quant.examples import build_detector, dataset_array, detector_dataset
    out = tmp_path_factory.mktemp("detector")
    tf = tensorflow()
    model = build_detector(tf)
    with quiet():
        model.save(out / "detector.keras")
    np.save(out / "calibration.npy", dataset_array(detector_dataset(count=8)))
    return out / "detector.keras", out / "calibration.npy"


@pytest.fixture(scope="module")
def ab_report(detector, tmp_path_factory) -> Path:
    keras, data = detector
    report = tmp_path_factory.mktemp("ab")
    code = main(["ab", str(keras), "--dataset", str(data), "--count", "2", "--report", str(report)])
    assert code in (0, 1)
    return report


def test_quantize_writes_every_scheme_with_its_settings(detector, tmp_path, capsys):
    keras, data = detector
    out = tmp_path / "q"
    assert main(["quantize", str(keras), "--dataset", str(data), "--out", str(out),
                 "--schemes", "per-channel,per-tensor,int16x8"]) == 0
    stdout = capsys.readouterr().out
    settings = {}
    for scheme in ("per_channel", "per_tensor", "int16x8"):
        path = out / f"detector_{scheme}.tflite"
        assert str(path) in stdout
        settings[scheme] = json.loads(path.with_suffix(".json").read_text())
        assert settings[scheme]["representative_dataset"]["samples"] == 8
    assert settings["per_tensor"]["result"]["per_channel_weight_tensors"] == 0
    assert settings["per_channel"]["result"]["per_tensor_weight_tensors"] == 0
    assert settings["int16x8"]["converter"]["supported_ops"] == [
        "EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8"]
    assert Model.from_file(out / "detector_int16x8.tflite").inputs[0].dtype == np.int16
    assert Model.from_file(out / "detector_per_tensor.tflite").inputs[0].dtype == np.int8
    # deterministic: converting again gives the same bytes
    again = tmp_path / "again"
    assert main(["quantize", str(keras), "--dataset", str(data), "--out", str(again),
                 "--schemes", "per-tensor"]) == 0
    assert (again / "detector_per_tensor.tflite").read_bytes() == \
        (out / "detector_per_tensor.tflite").read_bytes()


def test_quantize_from_a_savedmodel(detector, tmp_path):
    from simrun.quant.convert import quiet, tensorflow
    tf = tensorflow()
    keras, data = detector
    with quiet():
        tf.keras.models.load_model(keras).export(str(tmp_path / "saved"))
    assert main(["quantize", str(tmp_path / "saved"), "--dataset", str(data), "--out",
                 str(tmp_path / "q"), "--schemes", "per-channel"]) == 0
    model = Model.from_file(tmp_path / "q" / "saved_per_channel.tflite")
    assert [o.dtype.name for o in model.outputs] == ["int8"] * 3


def test_ab_reports_both_errors_per_scheme(ab_report, detector):
    s = json.loads((ab_report / "summary.json").read_text())
    assert s["schema_version"] == 2 and s["kind"] == "simrun ab" and s["exit_code"] in (0, 1)
    assert s["run"]["command"][:2] == ["simrun", "ab"] and s["run"]["exit_code"] == s["exit_code"]
    junit = ET.parse(ab_report / "junit.xml").getroot()
    bad = sum(int(junit.get(k)) for k in ("failures", "errors"))
    assert (bad > 0) == (s["exit_code"] != 0)
    assert {c.get("classname") for c in junit.iter("testcase")} == {"simrun.detector"}
    assert (ab_report / "summary.md").read_text().startswith("## simrun ab detector.keras: ")
    assert [x["scheme"] for x in s["schemes"]] == ["per-channel", "per-tensor"]
    assert s["backends"] == ["tflite-optimized", "tflite-reference", "tflm-host"]
    for sch in s["schemes"]:
        q = sch["quantization_error"]
        assert q["error"] is None and q["measured_on"] == "tflite-reference"
        model = Model.from_file(sch["model"])
        # one entry per model output (two grid heads and the Dense class head)
        assert sorted(e["name"] for e in q["outputs"]) == sorted(o.name for o in model.outputs)
        for e in q["outputs"]:
            assert e["count"] == 2 * int(np.prod(e["shape"]))
            assert 0 < e["mae"] <= e["max_error"] and 0.9 < e["cosine"] <= 1.0
        assert len(q["layers"]) >= 10
        impl = sch["implementation_error"]
        assert impl["verdict"] is not None and impl["backend_errors"] == {}
        assert {(p["a"], p["b"]) for p in impl["pairs"]} == {
            ("tflite-reference", "tflm-host"), ("tflite-reference", "tflite-optimized"),
            ("tflm-host", "tflite-optimized")}
        assert (ab_report / sch["scheme"] / "summary.json").is_file()
        for p in impl["pairs"]:   # the pipeline's diagnosis: a difference starts somewhere
            assert p["own_layers"] is not None
            assert (p["own_layers"] > 0) == (p["mismatched"] > 0), p
    pc, pt = s["schemes"]
    # per-channel and per-tensor weights really differ, and so do their figures
    assert (pc["weights"]["per_tensor"], pt["weights"]["per_channel"]) == (0, 0)
    assert [e["mae"] for e in pc["quantization_error"]["layers"]] != \
        [e["mae"] for e in pt["quantization_error"]["layers"]]
    html = (ab_report / "report.html").read_text()
    assert "Quantization error vs float" in html and "per-tensor/report.html" in html


def test_ab_implementation_figures_match_a_direct_rerun(ab_report, detector):
    """Run tflite-reference and tflite-optimized again on the per-tensor model with the
    A/B's inputs (the dataset's first two samples, quantized) and count mismatches."""
    from simrun.analysis.compare import compare_pair
    from simrun.backends import run_backend
    from simrun.inputs import convert_dtype

    s = json.loads((ab_report / "summary.json").read_text())
    sch = next(x for x in s["schemes"] if x["scheme"] == "per-tensor")
    model = Model.from_file(sch["model"])
    data = np.load(detector[1])[:2]
    inputs = [[convert_dtype(x[None], model.inputs[0], "test")] for x in data]
    ref = run_backend("tflite-reference", model.path, inputs)
    opt = run_backend("tflite-optimized", model.path, inputs)
    pairs = [compare_pair(model, "tflite-reference", r, "tflite-optimized", o) for r, o in zip(ref, opt)]
    mismatched = sum(l.mismatched for p in pairs for l in p.layers)
    figures = next(p for p in sch["implementation_error"]["pairs"]
                   if (p["a"], p["b"]) == ("tflite-reference", "tflite-optimized"))
    assert figures["mismatched"] == mismatched
    assert figures["max_abs_delta"] == max(p.max_abs_delta for p in pairs)
    # and the float comparison of an output from scratch: dequantized int8 vs float model
    out = sch["quantization_error"]["outputs"][0]
    q = next(t for t in ref[0].outputs if t.name == out["name"])
    floats = run_backend("tflite-reference", s["float_model"],
                         [[(inputs[0][0].astype(np.float32) - model.inputs[0].quantization.zero_point[0])
                           * np.float32(model.inputs[0].quantization.scale[0])]])
    f = next(t for t in floats[0].outputs if t.name == out["name"]).values
    err = np.abs(q.dequantized() - f)
    assert out["max_error"] >= float(err.max()) - 1e-9


def test_ab_terminal_table_and_progress(detector, tmp_path, capsys):
    keras, data = detector
    code = main(["ab", str(keras), "--dataset", str(data), "--count", "1", "--report",
                 str(tmp_path / "r"), "--backends", "tflite-reference,tflm-host",
                 "--schemes", "per-tensor"])
    assert code == 0
    captured = capsys.readouterr()
    assert "quantization error vs float" in captured.out
    assert "tflite-reference vs tflm-host" in captured.out
    assert "[ab] per-tensor: tflm-host: finished in" in captured.err
    assert "[ab] quantize: detector per-tensor: wrote" in captured.err


@pytest.mark.backends
def test_ab_with_a_task_reports_the_decisions_per_scheme_first(detector, tmp_path, capsys):
    """classify on the detector's class head: per scheme the float model's top-1 against the
    quantized model's, and between backends as each scheme's own diff report has them."""
    keras, data = detector
    report = tmp_path / "r"
    code = main(["ab", str(keras), "--dataset", str(data), "--count", "2", "--report", str(report),
                 "--backends", "tflite-reference,tflite-optimized,tflm-host", "--schemes", "per-channel,per-tensor",
                 "--task", "classify", "--task-option", "output=2", "--task-option", "top_k=2"])
    out = capsys.readouterr().out
    assert code in (0, 1)
    assert out.startswith("task classify per scheme") and out.index("task classify") < out.index(
        "quantization error vs float")
    s = json.loads((report / "summary.json").read_text())
    for sch in s["schemes"]:
        task = sch["task"]
        vs = task["vs_float"]
        assert (vs["a"], vs["b"]) == ("float", sch["quantization_error"]["measured_on"])
        assert vs["metrics"]["inputs"] == 2 and len(vs["inputs"]) == 2
        # the class scores' largest move is the quantization error of that output
        head = Model.from_file(sch["model"]).outputs[2].name
        [err] = [e for e in sch["quantization_error"]["outputs"] if e["name"] == head]
        assert vs["metrics"]["max_score_delta"] == pytest.approx(err["max_error"], abs=1e-6)
        own = json.loads((report / sch["scheme"] / "summary.json").read_text())["task"]
        assert task["between_backends"] == own and {(p["a"], p["b"]) for p in own["pairs"]} >= {
            ("tflite-reference", "tflm-host")}
        assert f"{sch['scheme']}  " in out
    md = (report / "summary.md").read_text()
    assert md.index("### Task classify, per scheme") < md.index("### per-channel")
    assert "| `float vs tflite-reference` | per-tensor |" in md
    assert "<h2>Task: classify, per scheme</h2>" in (report / "report.html").read_text()


def test_ab_refuses_a_task_over_sequences_before_converting(detector, tmp_path, capsys):
    keras, data = detector
    assert main(["ab", str(keras), "--dataset", str(data), "--report", str(tmp_path / "r"),
                 "--task", "wakeword"]) == 2
    err = capsys.readouterr().err
    assert "simrun ab does not run" in err and "Traceback" not in err and "loading TensorFlow" not in err


@pytest.mark.parametrize("argv, message", [
    (["ab", "missing.keras"], "model missing.keras: no such file"),
    (["quantize", "missing.keras"], "model missing.keras: no such file"),
    (["ab", "{keras}", "--schemes", "per-banana"], "unknown scheme 'per-banana'"),
    (["quantize", "{keras}", "--schemes", ","], "--schemes is empty"),
    (["ab", "{keras}", "--range", "1,0"], "LO must be below HI"),
    (["ab", "{keras}", "--cpu", "cortex-m99"], "cortex-m99"),
    (["ab", "{keras}", "--task", "segment"], "unknown task 'segment'"),
    (["ab", "{keras}", "--task", "classify", "--task-option", "top_k"], "write KEY=VALUE"),
    (["quantize", "{keras}", "--dataset", "nowhere.npy"], "dataset 'nowhere.npy': no such file"),
    (["quantize", "{keras}", "--dataset", "{bad_npy}"], "does not fit input"),
    (["quantize", "{tflite}"], "already a .tflite model"),
    (["quantize", "{not_keras}"], "cannot load Keras model"),
])
def test_bad_input_is_one_message_and_exit_2(argv, message, detector, tmp_path, capsys, monkeypatch):
    keras, _ = detector
    monkeypatch.chdir(tmp_path)         # the stopped run's report goes to ./simrun-ab: not the checkout's
    np.save(tmp_path / "bad.npy", np.zeros((3, 5), np.float32))
    (tmp_path / "m.tflite").write_bytes(b"x")
    (tmp_path / "broken.keras").write_bytes(b"not a zip")
    names = {"keras": keras, "bad_npy": tmp_path / "bad.npy", "tflite": tmp_path / "m.tflite",
             "not_keras": tmp_path / "broken.keras"}
    argv = [a.format(**{k: str(v) for k, v in names.items()}) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len([ln for ln in err.splitlines() if "error:" in ln]) == 1


@pytest.mark.tflm
def test_ab_on_an_emulated_cortex_m55(detector, tmp_path, tflm_firmware):
    """With TFLM sources: the emulated target joins the matrix of both schemes and agrees
    with host TFLM on the reference kernels, as the policy demands."""
    keras, data = detector
    tflm_firmware("cortex-m55", "reference")
    tflm_firmware("cortex-m55", "cmsis-nn")
    code = main(["ab", str(keras), "--dataset", str(data), "--count", "1", "--cpu", "cortex-m55",
                 "--report", str(tmp_path / "r")])
    s = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert code == (0 if s["passed"] else 1)
    for sch in s["schemes"]:
        impl = sch["implementation_error"]
        assert impl["backend_errors"] == {}
        pair = next(p for p in impl["pairs"]
                    if (p["a"], p["b"]) == ("tflm-host", "target:cortex-m55:reference"))
        assert pair["count"] > 0 and pair["mismatched"] == 0
        assert any(p["b"] == "target:cortex-m55:cmsis-nn" and p["count"] > 0 for p in impl["pairs"])

"""`simrun example`: the models it writes are what it says (a YOLO-style detector per
channel and per tensor, a keyword spotter) and the same bytes in another process."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from simrun.model import Model

pytestmark = pytest.mark.tensorflow       # the example models are converted with TensorFlow
REPO = Path(__file__).resolve().parents[1]
TFLITES = ["detector_float.tflite", "detector_per_channel.tflite", "detector_per_tensor.tflite",
           "kws_per_channel.tflite"]


@pytest.fixture(scope="module")
def example_dir(tmp_path_factory) -> Path:
    pytest.importorskip("tensorflow", reason="writing the example models needs TensorFlow")
    from simrun.quant.convert import tensorflow
    from simrun.quant.examples import write_examples
    out = tmp_path_factory.mktemp("example")
    write_examples(tensorflow(), out)
    return out


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_example_command_writes_the_same_bytes_in_another_process(example_dir, tmp_path):
    out = tmp_path / "again"
    done = subprocess.run([sys.executable, "-m", "simrun", "example", str(out)],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.glob("*.tflite")) == TFLITES
    for name in TFLITES:
        assert sha256(out / name) == sha256(example_dir / name), name
        assert json.loads((out / name).with_suffix(".json").read_text())["sha256"] == sha256(out / name)
    # progress on stderr, TensorFlow's own chatter kept out of it
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert lines and all(ln.startswith("[example] ") for ln in lines), done.stderr
    assert "detector per-tensor: wrote" in done.stderr
    assert f"simrun diff {out / 'detector_per_channel.tflite'}" in done.stdout


def test_example_detector_and_kws_have_the_promised_shape(example_dir):
    ops = lambda name: [o.op_name for o in Model.from_file(example_dir / name).main.operators]
    det = ops("detector_per_channel.tflite")
    for op in ("CONV_2D", "RESIZE_NEAREST_NEIGHBOR", "CONCATENATION", "FULLY_CONNECTED", "LOGISTIC"):
        assert op in det
    assert det.count("LOGISTIC") == 3                    # two grid heads and the class head
    assert ops("detector_per_tensor.tflite") == det
    assert {"DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "SOFTMAX"} <= set(ops("kws_per_channel.tflite"))
    detector = Model.from_file(example_dir / "detector_per_channel.tflite")
    assert [o.dtype.name for o in detector.outputs] == ["int8"] * 3
    assert Model.from_file(example_dir / "detector_float.tflite").inputs[0].dtype.name == "float32"


def test_example_settings_record_the_per_tensor_switches_and_their_effect(example_dir):
    pc = json.loads((example_dir / "detector_per_channel.json").read_text())
    pt = json.loads((example_dir / "detector_per_tensor.json").read_text())
    assert pt["converter"]["_experimental_disable_per_channel"] is True
    assert pt["converter"]["_experimental_disable_per_channel_quantization_for_dense_layers"] is True
    assert "_experimental_disable_per_channel" not in pc["converter"]
    # 6 convolutions + 1 Dense: every weight tensor per channel in one, per tensor in the other
    assert (pc["result"]["per_channel_weight_tensors"], pc["result"]["per_tensor_weight_tensors"]) == (7, 0)
    assert (pt["result"]["per_channel_weight_tensors"], pt["result"]["per_tensor_weight_tensors"]) == (0, 7)
    assert pc["representative_dataset"]["sha256"] == pt["representative_dataset"]["sha256"]
    assert pc["tensorflow"] and pc["converter"]["supported_ops"] == ["TFLITE_BUILTINS_INT8"]

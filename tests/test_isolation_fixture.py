"""Isolation on the emulated target through the backend (worker process, Captures saved and
handed to Session.invoke(isolate_from=...)), and the diagnosis over it, on simrun's fixture
firmware: needs only qemu-system-arm and arm-none-eabi-gcc, so CI runs it.

The fixture's numpy model is the reference; a second "implementation" differs in layer 0 only
(as another kernel would) and computes layers 1 and 2 from that. Isolated against it, the
target introduces error in layer 0 alone; layers 1 and 2 only inherit it."""
from __future__ import annotations

import numpy as np
import pytest

from simrun.analysis.compare import compare
from simrun.analysis.diffrun import DiffRun
from simrun.analysis.diagnose import diagnose_run
from simrun.backends import run_backend
from simrun.run_options import RunOptions
from simrun.capture import Capture, OpRecord, Tensor
from simrun.device import fixture

pytestmark = pytest.mark.qemu
TARGET = "target:cortex-m4:reference"
NAMES = ("FULLY_CONNECTED", "RELU", "FULLY_CONNECTED")


class FixtureModelInfo:
    """What compare/diagnose read from a model; the fixture's model is no .tflite."""
    sha256 = None

    def tensor(self, sg, index):
        raise IndexError(index)

    def operators(self):
        from simrun.model import OperatorInfo
        return [OperatorInfo(0, i, n, (i,), (i + 1,)) for i, n in enumerate(NAMES)]


def _capture(label: str, layers: list[np.ndarray]) -> Capture:
    return Capture(label, "", [OpRecord(0, i, NAMES[i], [Tensor(i + 1, f"t{i + 1}", y)])
                               for i, y in enumerate(layers)], [Tensor(3, "t3", layers[-1])])


def _single_layer(model, k, x):
    layer, n, _ = model.resolved()[k]
    return fixture.reference(fixture.FixtureModel(n, [layer]), x)[0]


@pytest.fixture(scope="module")
def setup(qemu, arm_gcc, tmp_path_factory):
    elf = fixture.build_fixture("cortex-m4")
    model = fixture.demo_model(seed=7)
    path = tmp_path_factory.mktemp("fixture") / "demo.bin"
    path.write_bytes(model.to_bytes())
    x = np.random.default_rng(4).integers(-128, 128, (1, 64)).astype(np.int8)
    return elf, model, path, x


def _run(setup, isolate_from=None):
    elf, _, path, x = setup
    return run_backend(TARGET, path, [[x]], RunOptions(firmware_elf=elf, raw_model=True, timeout=120),
                       isolate_from=isolate_from)[0]


def test_isolated_against_its_own_reference_is_lossless(setup):
    _, model, _, x = setup
    ref = fixture.reference(model, x)
    iso = _run(setup, isolate_from=[_capture("fixture-numpy", ref)])
    assert iso.meta["isolated_from"] == "fixture-numpy" and iso.meta["not_isolated"] == {}
    assert [r.op_name for r in iso.ops] == list(NAMES)
    assert all(np.array_equal(r.outputs[0].values, y) for r, y in zip(iso.ops, ref, strict=True))


def test_the_diagnosis_attributes_a_planted_error_to_its_layer(setup):
    _, model, _, x = setup
    other0 = fixture.reference(model, x)[0].copy()
    other0[0, ::3] = np.clip(other0[0, ::3].astype(int) + 9, -128, 127).astype(np.int8)
    other1 = _single_layer(model, 1, other0)
    other = _capture("other", [other0, other1, _single_layer(model, 2, other1)])
    plain = _run(setup)
    iso = _run(setup, isolate_from=[other])
    info = FixtureModelInfo()
    run = DiffRun(info, [compare(info, {"other": other, TARGET: plain}, [("other", TARGET)])])
    pd = diagnose_run(run, [{"other": other, TARGET: iso}], "other").pair(0, "other", TARGET)
    assert [d.propagated.diverges for d in pd.layers] == [True, True, True]
    assert [d.own.diverges for d in pd.layers] == [True, False, False]
    assert [d.cause for d in pd.layers] == ["unexplained", "inherited", "inherited"]
    assert pd.summary.startswith(f"other vs {TARGET}: 1 of 3 layers introduce error, all FULLY_CONNECTED")

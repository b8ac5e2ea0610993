"""The `rounding` build option: single-rounding requantization firmware beside the default.

The fast tests need no sources: labels, cache keys and the CMake command line.
The slow one builds cortex-m55 reference firmware with single rounding (minutes
when cold; cached after) and skips, saying why, without SIMRUN_SOURCES_DIR.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simrun.device import build, sources
from simrun.backend_id import BackendId, FirmwareVariant
from simrun.backends import parse_backend
from simrun.commands.diff import backend_labels
from simrun.errors import BadInput
from simrun.analysis.policy import Policy
from simrun.device.targets import get_target

REPO = Path(__file__).resolve().parents[1]


# --- labels ---------------------------------------------------------------------

def test_double_rounding_keeps_the_old_label_and_single_gets_a_suffix():
    assert FirmwareVariant("cortex-m55", "reference").label == "target:cortex-m55:reference"
    assert FirmwareVariant("cortex-m55", "reference", "double").label == "target:cortex-m55:reference"
    assert FirmwareVariant("cortex-m4", "cmsis-nn", "single").label == "target:cortex-m4:cmsis-nn:single-rounding"
    assert parse_backend("target:cortex-m55:reference") == BackendId(variant=FirmwareVariant("cortex-m55",
                                                                                              "reference"))
    spec = parse_backend("target:cortex-m4:cmsis-nn:single-rounding")
    assert spec.is_target
    assert spec.variant == FirmwareVariant(cpu="cortex-m4", kernels="cmsis-nn", rounding="single")


@pytest.mark.parametrize("bad", ["target:cortex-m55:reference:double-rounding",
                                 "target:cortex-m55:reference:single",
                                 "target:cortex-m55:reference:single-rounding:x"])
def test_bad_rounding_suffix_is_bad_input(bad):
    with pytest.raises(BadInput, match="single-rounding"):
        parse_backend(bad)


def test_diff_rounding_list_expands_the_target_matrix():
    assert backend_labels("target", ["cortex-m55"], "reference", "double,single") == [
        "target:cortex-m55:reference", "target:cortex-m55:reference:single-rounding"]
    assert backend_labels(None, ["cortex-m4"], "cmsis-nn")[-1] == "target:cortex-m4:cmsis-nn"
    assert backend_labels("tflm-host,target:cortex-m55:reference:single-rounding", [], "reference") == [
        "tflm-host", "target:cortex-m55:reference:single-rounding"]
    with pytest.raises(BadInput, match="unknown rounding 'triple'"):
        backend_labels("target", ["cortex-m55"], "reference", "triple")


def test_default_policy_keeps_bit_exactness_for_double_rounding_only():
    from simrun.analysis.compare import LayerStats
    layer = LayerStats(subgraph=0, op_index=0, op_name="CONV_2D", tensor_index=1, tensor_name="conv",
                       depth=0, status="compared")

    def pair_rule(a, b):
        return Policy.load(None).tolerance(a, b, layer)
    exact = pair_rule("tflm-host", "target:cortex-m55:reference")
    single = pair_rule("tflm-host", "target:cortex-m55:reference:single-rounding")
    assert exact.max_abs_delta == 0 and exact.max_mismatch_ratio == 0.0 and exact.judge_layers
    # The single-rounding label gets the rule tflite-optimized gets (its drift inside the model is
    # reported, its outputs judged), not the bit-exact rule; being a device, its own error (one
    # rounding step at most) is still judged.
    assert not single.judge_layers and single.max_abs_delta != 0
    assert single.judge_layers == pair_rule("tflm-host", "tflite-optimized").judge_layers
    assert single.own_max_abs_delta == 1
    assert pair_rule("target:cortex-m4:cmsis-nn", "tflm-host").max_abs_delta == 1


# --- build keys and CMake -----------------------------------------------------------

def _inputs(rounding=None, kernels="reference"):
    extra = () if rounding is None else (rounding,)
    return build.key_inputs(get_target("cortex-m55"), kernels, sources.identity(None), "gcc 12.2", "f0",
                            *extra)


def test_rounding_is_part_of_the_cache_key_not_of_the_tree_key():
    double, single = _inputs("double"), _inputs("single")
    assert build.cache_key(single) != build.cache_key(double)
    # One CMake tree builds both modes, sharing what the mode cannot change (source_split.py).
    assert build.tree_key(single) == build.tree_key(double)
    assert build.tree_key(_inputs("single", "cmsis-nn")) == build.tree_key(single)
    assert build.executable_name("cmsis-nn", "single") == "simrun_cmsis-nn-single"
    assert build.executable_name("reference") == "simrun_reference"


def test_default_rounding_leaves_keys_as_they_were():
    assert _inputs() == _inputs("double") and "rounding" not in _inputs()
    assert FirmwareVariant("cortex-m55", "reference", "double").cache_suffix == ""
    assert FirmwareVariant("cortex-m55", "reference", "single").cache_suffix == "-single-rounding"


def test_both_rounding_modes_are_targets_of_one_tree(tmp_path):
    cmd = build.configure_command("cmake", tmp_path / "b", get_target("cortex-m55"), None, tmp_path)
    assert not any("SIMRUN_ROUNDING" in arg for arg in cmd)
    # CMakeLists.txt gives the single-mode libraries and firmware both upstream switches.
    text = (REPO / "CMakeLists.txt").read_text()
    assert "set(SIMRUN_SINGLE_ROUNDING_DEFINES TFLITE_SINGLE_ROUNDING=1 CMSIS_NN_USE_SINGLE_ROUNDING)" in text
    assert "target_compile_definitions(${part}_single PRIVATE ${SIMRUN_SINGLE_ROUNDING_DEFINES})" in text
    assert "set(exe simrun_${variant}-single)" in text


def test_unknown_rounding_is_bad_input(tmp_path):
    with pytest.raises(BadInput, match="unknown rounding 'half'"):
        build.ensure_firmware("cortex-m55", "reference", rounding="half", cache_dir=tmp_path)


def test_build_cli_refuses_unknown_rounding(capsys):
    from simrun.cli import main as cli_main
    # build takes comma lists (`--rounding double,single`), so simrun names the bad item, not argparse
    rc = cli_main(["build", "--cpu", "cortex-m55", "--rounding", "half"])
    err = capsys.readouterr().err
    assert rc == 2 and "--rounding: unknown 'half'" in err and "double, single" in err


# --- with sources: a real single-rounding firmware -------------------------------------------

def _function_bytes(elf: Path, needle: str) -> dict[str, bytes]:
    """Code of every function whose mangled name contains `needle`."""
    from elftools.elf.elffile import ELFFile
    out = {}
    with open(elf, "rb") as f:
        ef = ELFFile(f)
        text = ef.get_section_by_name(".text")
        data, base = text.data(), text["sh_addr"]
        for s in ef.get_section_by_name(".symtab").iter_symbols():
            if needle in s.name and s["st_info"]["type"] == "STT_FUNC" and s["st_size"]:
                start = (s["st_value"] & ~1) - base
                out[s.name] = data[start:start + s["st_size"]]
    return out


@pytest.mark.tflm
@pytest.mark.qemu
@pytest.mark.slow
def test_single_rounding_firmware_requantizes_differently(tflm_firmware, models_dir):
    from conftest import random_input
    from simrun.model import Model
    from simrun.device.session import Session

    double = tflm_firmware("cortex-m55", "reference")
    single = build.ensure_firmware("cortex-m55", "reference", rounding="single")
    assert single.metadata["rounding"] == "single" and double.metadata["rounding"] == "double"
    assert single.metadata["label"] == "target:cortex-m55:reference:single-rounding"
    assert single.elf != double.elf
    # The define reached the compiler: TFLM's requantization helper is other code.
    helpers = _function_bytes(single.elf, "MultiplyByQuantizedMultiplier")
    assert helpers and helpers != _function_bytes(double.elf, "MultiplyByQuantizedMultiplier")

    model = Model.from_file(models_dir / "person_detect.tflite")
    x = random_input(model, seed=0)
    caps = {}
    for fw in (double, single):
        with Session(fw.elf, cpu="cortex-m55", timeout=600) as s:
            s.load_model(model)
            caps[fw.metadata["rounding"]] = s.invoke(x, capture_layers=True)
    assert caps["single"].backend == "target:cortex-m55:reference:single-rounding"
    assert caps["double"].backend == "target:cortex-m55:reference"
    differing = [rec.op_name for rec in caps["single"].ops
                 for t, u in zip(rec.outputs, caps["double"].op(rec.subgraph, rec.index).outputs)
                 if not np.array_equal(t.values, u.values)]
    assert differing, "single and double rounding gave identical outputs on every layer"


def _differing_values(a, b) -> int:
    return sum(int(np.sum(t.values != u.values)) for rec in a.ops
               for t, u in zip(rec.outputs, b.op(rec.subgraph, rec.index).outputs))


@pytest.mark.tflm
@pytest.mark.qemu
@pytest.mark.slow
def test_single_rounding_target_matches_tflite_optimized_where_double_does_not(tflm_firmware, tf_model):
    """What the option is for: on our conv/depthwise/dense model, desktop TFLite's optimized
    (XNNPACK) int8 kernels and the double-rounding firmware differ by 1-2 steps; the
    single-rounding firmware equals tflite-optimized on every layer (ai-edge-litert 2.3)."""
    from conftest import random_input
    from simrun.backends import run_backend
    from simrun.model import Model
    from simrun.run_options import RunOptions
    from testmodels import conv_logistic_int8

    tflm_firmware("cortex-m55", "reference")  # skips, saying why, without sources
    path = tf_model(conv_logistic_int8)
    x = random_input(Model.from_file(path), seed=0)
    caps = {label: run_backend(label, path, [x], RunOptions(timeout=600))[0]
            for label in ("tflite-optimized", "target:cortex-m55:reference",
                          "target:cortex-m55:reference:single-rounding")}
    assert caps["target:cortex-m55:reference:single-rounding"].versions["firmware.rounding"] == "single"
    optimized = caps["tflite-optimized"]
    assert _differing_values(caps["target:cortex-m55:reference"], optimized) > 0
    assert _differing_values(caps["target:cortex-m55:reference:single-rounding"], optimized) == 0

"""The `fp_contract` build option: firmware built -ffp-contract=off beside GCC's default (fast).

Fast tests need no sources (labels, keys, the CMake command line); the slow one builds
cortex-m4 reference firmware without contraction and counts the fused multiply-adds left."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from simrun.backend_id import FirmwareVariant
from simrun.backends import parse_backend
from simrun.commands.diff import backend_labels
from simrun.errors import BadInput
from simrun.device import build, sources
from simrun.device.targets import get_target


def _inputs(fp_contract="fast", rounding="double", kernels="reference"):
    return build.key_inputs(get_target("cortex-m4"), kernels, sources.identity(None), "gcc 12.2", "f0",
                            rounding, fp_contract)


def test_labels():
    assert FirmwareVariant("cortex-m4", "reference", "double", "off").label == \
        "target:cortex-m4:reference:no-fp-contract"
    assert FirmwareVariant("cortex-m4", "cmsis-nn", "single", "off").label == \
        "target:cortex-m4:cmsis-nn:single-rounding:no-fp-contract"
    assert FirmwareVariant("cortex-m4", "reference").label == "target:cortex-m4:reference"
    assert parse_backend("target:cortex-m4:cmsis-nn:single-rounding:no-fp-contract").variant == FirmwareVariant(
        cpu="cortex-m4", kernels="cmsis-nn", rounding="single", fp_contract="off")
    with pytest.raises(BadInput, match="misplaced suffix"):
        parse_backend("target:cortex-m4:reference:no-fp-contract:single-rounding")
    assert backend_labels("target", ["cortex-m4"], "reference", "double", "fast,off") == [
        "target:cortex-m4:reference", "target:cortex-m4:reference:no-fp-contract"]
    with pytest.raises(BadInput, match="unknown fp-contract 'slow'"):
        backend_labels(None, ["cortex-m4"], "reference", "double", "slow")


def test_keys_trees_and_cmake_flags(tmp_path):
    fast, off = _inputs(), _inputs("off")
    assert "fp_contract" not in fast and fast == build.key_inputs(
        get_target("cortex-m4"), "reference", sources.identity(None), "gcc 12.2", "f0")
    assert build.cache_key(off) != build.cache_key(fast)
    assert build.tree_key(off) != build.tree_key(fast)          # every object changes
    assert build.tree_key(_inputs("off", kernels="cmsis-nn")) == build.tree_key(off)
    assert FirmwareVariant("cortex-m4", "reference", "single", "off").cache_suffix == \
        "-single-rounding-no-fp-contract"
    cmd = build.configure_command("cmake", tmp_path / "b", get_target("cortex-m4"), None, tmp_path, "off")
    assert "-DSIMRUN_OPT_FLAGS=-O2;-ffp-contract=off" in cmd
    cmd = build.configure_command("cmake", tmp_path / "b", get_target("cortex-m4"), None, tmp_path)
    assert "-DSIMRUN_OPT_FLAGS=-O2" in cmd


def test_unknown_fp_contract_is_bad_input(tmp_path):
    with pytest.raises(BadInput, match="unknown fp-contract 'on'"):
        build.ensure_firmware("cortex-m4", "reference", fp_contract="on", cache_dir=tmp_path)


def _vfma_by_function(elf) -> dict[str, int]:
    """Fused multiply-add instructions (VFMA/VFMS/VFNMA/VFNMS) per function of the ELF."""
    objdump = shutil.which("arm-none-eabi-objdump")
    if not objdump:
        pytest.skip("arm-none-eabi-objdump not on PATH")
    out = subprocess.run([objdump, "-d", str(elf)], capture_output=True, text=True, check=True).stdout
    counts, function = {}, "?"
    for line in out.splitlines():
        if line.endswith(">:") and " <" in line:
            function = line.split(" <", 1)[1][:-2]
        elif "\tvfma" in line or "\tvfms" in line or "\tvfnm" in line:
            counts[function] = counts.get(function, 0) + 1
    return counts


def _prebuilt_libm_functions(cpu: str) -> set[str]:
    """Functions of the toolchain's prebuilt libm for this CPU's multilib: compiled by the
    distribution, so our -ffp-contract does not reach them (newlib's expf/logf/sinf use VFMA)."""
    gcc = shutil.which("arm-none-eabi-gcc")
    libm = subprocess.run([gcc, *get_target(cpu).compile_flags(), "-print-file-name=libm.a"],
                          capture_output=True, text=True, check=True).stdout.strip()
    out = subprocess.run([shutil.which("arm-none-eabi-nm"), "--defined-only", libm],
                         capture_output=True, text=True, check=True).stdout
    return {line.split()[-1] for line in out.splitlines() if line.count(" ") >= 2 and line.split()[1] in "TtWw"}


@pytest.mark.tflm
@pytest.mark.slow
def test_no_fp_contract_firmware_has_no_fused_multiply_add(tflm_firmware):
    fast = tflm_firmware("cortex-m4", "reference")
    off = build.ensure_firmware("cortex-m4", "reference", fp_contract="off")
    assert off.metadata["fp_contract"] == "off" and "-ffp-contract=off" in off.metadata["opt_flags"]
    assert off.metadata["label"] == "target:cortex-m4:reference:no-fp-contract"
    libm = _prebuilt_libm_functions("cortex-m4")
    ours = lambda elf: {f: n for f, n in _vfma_by_function(elf).items() if f not in libm}  # noqa: E731
    assert sum(ours(fast.elf).values()) > 0          # GCC's default contracts in TFLM's own code
    assert ours(off.elf) == {}, f"fused multiply-add left in code we compile: {ours(off.elf)}"

"""Firmware build: targets table, cache keys, clear errors, and (with sources) the cache.

The fast tests need no upstream sources and no toolchain. The tests marked
`tflm` build or reuse real firmware and skip, saying why, without
SIMRUN_SOURCES_DIR; they share the default cache (~/.cache/simrun or
$SIMRUN_CACHE_DIR), so on a machine that has built before they take seconds.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import shutil
import time
from pathlib import Path

import pytest

from simrun.device import build, sources
from simrun.cli import main as cli_main
from simrun.errors import BadInput, SourcesMissing, ToolMissing
from simrun.device.targets import KERNEL_VARIANTS, TARGETS, get_target

REPO = Path(__file__).resolve().parents[1]
FIRMWARE_CPUS = ("cortex-m55", "cortex-m4")  # the CPUs CI builds; others verified by hand


def _gen_op_resolver():
    spec = importlib.util.spec_from_file_location("gen_op_resolver", REPO / "firmware/src/gen_op_resolver.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# --- targets table ------------------------------------------------------------

@pytest.mark.parametrize("cpu", sorted(TARGETS))
def test_every_target_has_a_linker_script_and_room_for_the_buffers(cpu):
    t = get_target(cpu)
    assert (REPO / "firmware" / "boards" / f"{t.board.name}.ld").is_file()
    assert t.board.bulk_size >= 16 * 1024 * 1024          # model, arena and capture log share it at run time
    # The bulk region lies in the machine's main RAM, which the host maps (memory-backend-file).
    assert t.board.main_ram_origin <= t.board.bulk_origin
    assert t.board.bulk_origin + t.board.bulk_size <= t.board.main_ram_origin + t.board.main_ram_size
    assert t.cmsis_nn_path in ("c", "dsp", "mve")
    flags = t.compile_flags()
    assert f"-mcpu={t.mcpu}" in flags and "-mthumb" in flags
    # The bulk region must not overlap code or RAM.
    regions = sorted([(t.board.flash_origin, t.board.flash_size), (t.board.ram_origin, t.board.ram_size),
                      (t.board.bulk_origin, t.board.bulk_size)])
    for (a, n), (b, _) in zip(regions, regions[1:]):
        assert a + n <= b, f"{cpu}: memory regions overlap"


def test_cmsis_nn_path_follows_the_cpu_features():
    assert get_target("cortex-m55").cmsis_nn_path == "mve"
    assert get_target("cortex-m4").cmsis_nn_path == "dsp"
    assert get_target("cortex-m0plus").cmsis_nn_path == "c"


@pytest.mark.parametrize("cpu", sorted(TARGETS))
def test_compiler_flags_select_the_cmsis_nn_path_the_table_names(cpu, arm_gcc):
    assert build.check_cmsis_nn_path(arm_gcc, get_target(cpu)) == get_target(cpu).cmsis_nn_path


def test_table_and_flags_disagreeing_is_refused(arm_gcc):
    wrong = dataclasses.replace(get_target("cortex-m55"), cmsis_nn_path="dsp")
    with pytest.raises(build.BuildFailed, match="select 'mve'"):
        build.check_cmsis_nn_path(arm_gcc, wrong)


# --- cache key ------------------------------------------------------------------

def _key(cpu="cortex-m55", kernels="reference", target=None, compiler="gcc 12.2", fw="f0", src=None):
    target = target or get_target(cpu)
    inputs = build.key_inputs(target, kernels, src or sources.identity(None), compiler, fw)
    return build.cache_key(inputs), build.tree_key(inputs)


def test_cache_key_is_stable():
    assert _key() == _key()


def test_cache_key_changes_with_cpu_variant_flags_compiler_sources_and_our_files():
    base_key, base_tree = _key()
    flagged = dataclasses.replace(get_target("cortex-m55"), extra_flags=("-ffast-math",))
    changed = {
        "cpu": _key(cpu="cortex-m4"),
        "variant": _key(kernels="cmsis-nn"),
        "flags": _key(target=flagged),
        "compiler": _key(compiler="gcc 13.1"),
        "firmware sources": _key(fw="f1"),
        "upstream sources": _key(src={**sources.identity(None), "tflite-micro": "local:abc"}),
    }
    for what, (key, _) in changed.items():
        assert key != base_key, f"cache key ignores the {what}"
    # Both variants and edits of our own files share one CMake tree (incremental);
    # a different CPU, flag set, compiler or source tree does not.
    assert changed["variant"][1] == base_tree and changed["firmware sources"][1] == base_tree
    for what in ("cpu", "flags", "compiler", "upstream sources"):
        assert changed[what][1] != base_tree, what


def test_firmware_digest_covers_runner_and_linker_scripts(tmp_path):
    for rel in ("firmware/src/runner.cc", "firmware/boards/sections.ld"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("a")
    before = build.files_digest(tmp_path, ("firmware/src", "firmware/boards"))
    (tmp_path / "firmware/boards/sections.ld").write_text("b")
    assert build.files_digest(tmp_path, ("firmware/src", "firmware/boards")) != before


# --- clear errors -------------------------------------------------------------------

def test_sources_dir_that_does_not_exist_is_a_clear_error(tmp_path):
    with pytest.raises(SourcesMissing, match="not a directory.*SIMRUN_SOURCES_DIR"):
        build.ensure_firmware("cortex-m55", "reference", sources_dir=tmp_path / "nope", cache_dir=tmp_path)


def test_incomplete_sources_dir_names_every_missing_tree(tmp_path):
    probe = tmp_path / "src" / "tflite-micro" / "tensorflow/lite/micro/micro_interpreter.h"
    probe.parent.mkdir(parents=True)
    probe.write_text("")
    with pytest.raises(SourcesMissing) as err:
        build.ensure_firmware("cortex-m4", "cmsis-nn", sources_dir=tmp_path / "src", cache_dir=tmp_path)
    msg = str(err.value)
    assert "lacks CMSIS-NN, CMSIS_6, flatbuffers, gemmlowp" in msg
    assert "--sources DIR" in msg
    assert not (tmp_path / "build").exists(), "CMake must not start when sources are missing"


def test_env_sources_dir_is_checked_too(tmp_path, monkeypatch):
    monkeypatch.setenv("SIMRUN_SOURCES_DIR", str(tmp_path))
    with pytest.raises(SourcesMissing, match="SIMRUN_SOURCES_DIR: .* lacks tflite-micro"):
        sources.resolve(None)
    assert sources.local_sources() is None


def test_missing_toolchain_is_a_clear_error_with_install_hint(tmp_path, monkeypatch):
    monkeypatch.delenv("SIMRUN_SOURCES_DIR", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH
    with pytest.raises(ToolMissing, match=r"(cmake|arm-none-eabi-gcc) not found: install it.*apt-get"):
        build.ensure_firmware("cortex-m55", "reference", cache_dir=tmp_path)


def test_unknown_cpu_or_variant_is_bad_input(tmp_path):
    with pytest.raises(BadInput, match="unknown CPU 'cortex-m99'"):
        build.ensure_firmware("cortex-m99", "reference", cache_dir=tmp_path)
    with pytest.raises(BadInput, match="unknown kernel variant 'fast'"):
        build.ensure_firmware("cortex-m55", "fast", cache_dir=tmp_path)


def test_cli_reports_missing_sources_and_exits_4(tmp_path, capsys):
    code = cli_main(["build", "--cpu", "cortex-m55", "--kernels", "cmsis-nn",
                     "--sources", str(tmp_path / "none"), "--cache-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 4       # the environment lacks something
    assert err.startswith("simrun build: error: --sources:") and "Traceback" not in err


# --- op resolver generation -------------------------------------------------------------

def test_op_list_generator_keeps_builtin_adders_callable_without_arguments():
    header = """
  TfLiteStatus AddCustom(const char* name, const TFLMRegistration* registration) { return kTfLiteOk; }
  TfLiteStatus AddAbs(const TFLMRegistration& registration = Register_ABS()) {
    return AddBuiltin(BuiltinOperator_ABS, registration, ParseAbs);
  }
  TfLiteStatus AddCeil() {
    return AddBuiltin(BuiltinOperator_CEIL, Register_CEIL(), ParseCeil);
  }
  TfLiteStatus AddDelay() { return AddCustom("SignalDelay", tflm_signal::Register_DELAY()); }
  TfLiteStatus AddNeeds(const TFLMRegistration& registration) {
    return AddBuiltin(BuiltinOperator_ADD, registration, ParseAdd);
  }
  TfLiteStatus AddBuiltin(tflite::BuiltinOperator op, const TFLMRegistration& registration) {}
"""
    assert _gen_op_resolver().builtin_adders(header) == ["AddAbs", "AddCeil"]


# --- with sources: real builds through the cache ---------------------------------------------

@pytest.fixture(scope="module")
def have_sources():
    if sources.local_sources() is None:
        pytest.skip("TFLM sources not available: set SIMRUN_SOURCES_DIR to a directory holding "
                    "tflite-micro/, CMSIS-NN/, CMSIS_6/, flatbuffers/, gemmlowp/")
    for tool in ("cmake", "arm-none-eabi-gcc"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} not on PATH")
    return sources.local_sources()


def test_real_resolver_header_yields_every_builtin(have_sources):
    header = (have_sources / "tflite-micro/tensorflow/lite/micro/micro_mutable_op_resolver.h").read_text()
    names = _gen_op_resolver().builtin_adders(header)
    assert len(names) >= 90
    for expected in ("AddConv2D", "AddDepthwiseConv2D", "AddFullyConnected", "AddWhile", "AddCallOnce",
                     "AddIf", "AddSvdf", "AddUnidirectionalSequenceLSTM"):
        assert expected in names
    assert "AddCustom" not in names and "AddDelay" not in names


@pytest.mark.tflm
@pytest.mark.slow
@pytest.mark.parametrize("kernels", KERNEL_VARIANTS)
def test_second_build_is_a_cache_hit_and_metadata_describes_the_elf(have_sources, kernels):
    first = build.ensure_firmware("cortex-m55", kernels)
    lines: list[str] = []
    started = time.monotonic()
    again = build.ensure_firmware("cortex-m55", kernels, progress=lines.append)
    assert time.monotonic() - started < 10
    assert again.elf == first.elf and again.metadata == first.metadata
    assert not [l for l in lines if "Building" in l or "configuring" in l], lines

    meta = again.metadata
    assert meta["cpu"] == "cortex-m55" and meta["kernels"] == kernels
    assert meta["label"] == f"target:cortex-m55:{kernels}"
    assert meta["cmsis_nn_path"] == ("mve" if kernels == "cmsis-nn" else None)
    assert meta["sources"]["tflite-micro"] == "90b983c2b3f1480642e040bbd2ddb37b998f3424"
    assert "arm-none-eabi-gcc" in meta["compiler"]
    assert "-mcpu=cortex-m55" in meta["cpu_flags"]
    assert meta["sections"][".text"] > 100_000
    assert meta["sections"][".bulk"] == meta["bulk_bytes"] == get_target("cortex-m55").board.bulk_size
    assert (again.elf.parent / "metadata.json").is_file()


@pytest.mark.tflm
@pytest.mark.slow
def test_variants_differ_in_the_kernels_they_link(have_sources):
    from elftools.elf.elffile import ELFFile

    def symbols(elf: Path) -> set[str]:
        with open(elf, "rb") as f:
            return {s.name for s in ELFFile(f).get_section_by_name(".symtab").iter_symbols()}

    ref = symbols(build.ensure_firmware("cortex-m55", "reference").elf)
    nn = symbols(build.ensure_firmware("cortex-m55", "cmsis-nn").elf)
    assert "arm_convolve_wrapper_s8" in nn and "arm_convolve_wrapper_s8" not in ref
    for sym in ("simrun_bulk", "simrun_layout", "simrun_hook_op_end", "simrun_hook_drain", "simrun_fault"):
        assert sym in ref and sym in nn

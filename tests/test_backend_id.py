"""Backend labels are parsed in one place (simrun.backend_id) and render back to what users type;
run options cross the worker's JSON job whole."""
from __future__ import annotations

import itertools
import json
from dataclasses import replace
from pathlib import Path

import pytest

from simrun.backend_id import (FP_CONTRACT_MODES, HOST_KINDS, KERNEL_VARIANTS, ROUNDING_MODES, BackendId,
                               FirmwareVariant, backend_rank)
from simrun.backends import parse_backend
from simrun.device.targets import TARGETS
from simrun.errors import BadInput
from simrun.run_options import RunOptions

EVERY_VARIANT = [FirmwareVariant(*combo) for combo in
                 itertools.product(TARGETS, KERNEL_VARIANTS, ROUNDING_MODES, FP_CONTRACT_MODES)]


def _typed(v: FirmwareVariant) -> str:
    """The label as the README spells it, built by hand (not by the code under test)."""
    return (f"target:{v.cpu}:{v.kernels}" + (":single-rounding" if v.rounding == "single" else "")
            + (":no-fp-contract" if v.fp_contract == "off" else ""))


@pytest.mark.parametrize("label", HOST_KINDS)
def test_host_labels_round_trip(label):
    backend = parse_backend(label)
    assert backend == BackendId(host=label) and not backend.is_target and backend.variant is None
    assert backend.label == str(backend) == label


def test_every_firmware_label_round_trips():
    assert len(EVERY_VARIANT) == len(TARGETS) * 2 * 2 * 2
    labels = set()
    for v in EVERY_VARIANT:
        label = _typed(v)
        backend = parse_backend(label)
        assert backend.is_target and backend.variant == v, label
        assert backend.label == v.label == label
        assert BackendId.target(v.cpu, v.kernels, v.rounding, v.fp_contract) == backend
        # The cache entry names the same options in the same order, dash-separated.
        assert v.cache_suffix == "".join(f"-{s}" for s in label.split(":")[3:])
        labels.add(label)
    assert len(labels) == len(EVERY_VARIANT)      # no two variants share a label


def test_numeric_neighbours():
    base = FirmwareVariant("cortex-m55", "cmsis-nn")
    single = base.other_rounding()
    assert single.label == "target:cortex-m55:cmsis-nn:single-rounding"
    assert single.other_rounding() == base
    assert base.without_fp_contract().label == "target:cortex-m55:cmsis-nn:no-fp-contract"
    assert single.without_fp_contract().label == "target:cortex-m55:cmsis-nn:single-rounding:no-fp-contract"
    assert base.without_fp_contract().without_fp_contract() is None
    target = BackendId(variant=base)
    assert [n.label for n in target.neighbours(float_layer=False)] == [single.label]
    assert [n.label for n in target.neighbours(float_layer=True)] == [base.without_fp_contract().label]
    assert [n.label for n in parse_backend("tflite-optimized").neighbours(False)] == ["tflite-optimized-nodelegate"]
    assert parse_backend("tflm-host").neighbours(True) == []


def test_rank_orders_the_more_reference_like_first():
    labels = ["target:cortex-m4:cmsis-nn", "tflite-optimized", "someone's capture",
              "target:cortex-m4:reference:single-rounding", "tflm-host", "target:cortex-m4:reference",
              "tflite-reference", "tflite-optimized-nodelegate"]
    assert sorted(labels, key=backend_rank) == [
        "tflite-reference", "tflm-host", "tflite-optimized", "tflite-optimized-nodelegate",
        "target:cortex-m4:reference", "target:cortex-m4:cmsis-nn",
        "target:cortex-m4:reference:single-rounding", "someone's capture"]


@pytest.mark.parametrize("bad, why", [
    ("tflite", "unknown backend 'tflite'; known: tflite-optimized, tflite-reference, tflm-host"),
    ("target:cortex-m55", "expected target:<cpu>:<kernels>"),
    ("target::reference", "expected target:<cpu>:<kernels>"),
    ("target:cortex-m99:reference", "unknown CPU 'cortex-m99'; known: cortex-m0plus"),
    ("target:cortex-m55:fast", "unknown kernels 'fast'; known: reference, cmsis-nn"),
    ("target:cortex-m55:reference:double-rounding", "unknown or misplaced suffix 'double-rounding'"),
    ("target:cortex-m55:reference:single-rounding:single-rounding", "misplaced suffix"),
    ("target:cortex-m4:reference:no-fp-contract:single-rounding", "misplaced suffix"),
])
def test_bad_labels_name_what_is_wrong(bad, why):
    with pytest.raises(BadInput) as err:
        parse_backend(bad)
    assert why in str(err.value) and repr(bad) in str(err.value)


def test_the_grammar_alone_takes_firmware_simrun_did_not_build():
    """The analysis reads labels like the CI fixture's; only a runnable label needs the table."""
    fixture = BackendId.parse("target:cortex-m4:fixture")
    assert fixture.variant.kernels == "fixture" and fixture.label == "target:cortex-m4:fixture"
    assert BackendId.lookup("my-capture") is None
    with pytest.raises(BadInput, match="unknown kernels 'fixture'"):
        parse_backend("target:cortex-m4:fixture")


def test_bad_build_options_are_bad_input():
    with pytest.raises(BadInput, match="unknown rounding 'half'; known: double, single"):
        FirmwareVariant("cortex-m4", "reference", rounding="half")
    with pytest.raises(BadInput, match="unknown fp-contract 'on'; known: fast, off"):
        FirmwareVariant("cortex-m4", "reference", fp_contract="on")


def test_run_options_cross_the_job_file_whole(tmp_path):
    options = RunOptions(timeout=12.5, session_timeout=3.0, emulator="renode", gdb="127.0.0.1:3333",
                         memory="gdb", arena_limit=4096, count_instructions=True, sources_dir="src",
                         cache_dir=tmp_path, firmware_elf=tmp_path / "fw.elf", raw_model=True,
                         firmware_by_label={"target:cortex-m4:reference": str(tmp_path / "m4.elf")})
    assert options.sources_dir == Path("src")        # paths are Paths, whatever the caller gave
    assert options.firmware_by_label == {"target:cortex-m4:reference": tmp_path / "m4.elf"}
    again = RunOptions.from_json(json.loads(json.dumps(options.to_json())))
    assert again == options
    assert RunOptions.from_json(RunOptions().to_json()) == RunOptions()
    assert replace(options, count_instructions=False).count_instructions is False
    assert RunOptions(timeout=7).emulator_timeout() == 7 and options.emulator_timeout() == 3.0
    with pytest.raises(ValueError, match="unknown fields bogus"):
        RunOptions.from_json({**RunOptions().to_json(), "bogus": 1})
    with pytest.raises(BadInput, match="timeout must be positive"):
        RunOptions(timeout=0)

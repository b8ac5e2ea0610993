"""The diagnosis's firmware, built in the background while it emulates (simrun/pipeline/prefetch.py)."""
from __future__ import annotations

import os
import time
from types import SimpleNamespace

import pytest

from simrun.backend_id import BackendId
from simrun.pipeline.prefetch import FirmwarePrefetch, build_command, prefetch_variants
from simrun.run_options import RunOptions

DEVICE = "target:cortex-m55:cmsis-nn"


def layer(diverges: bool, integer: bool = True, compared: bool = True):
    return SimpleNamespace(diverges=diverges, integer=integer, compared=compared)


def comparison(*pairs):
    return SimpleNamespace(pairs=[SimpleNamespace(a=a, b=b, layers=layers) for a, b, layers in pairs])


def test_a_diverging_device_pair_wants_the_other_rounding_on_integer_layers():
    cmp = comparison((DEVICE, "tflite-optimized", [layer(False), layer(True)]))
    got = [v.label for v in prefetch_variants([cmp], ran=[DEVICE, "tflite-optimized"])]
    assert got == ["target:cortex-m55:cmsis-nn:single-rounding"]


def test_a_float_layer_wants_the_build_without_contraction():
    cmp = comparison(("tflite-reference", DEVICE, [layer(True, integer=False)]))
    got = [v.label for v in prefetch_variants([cmp], ran=[DEVICE, "tflite-reference"])]
    assert got == ["target:cortex-m55:cmsis-nn:no-fp-contract"]


def test_nothing_ahead_without_divergence_a_device_or_where_it_ran_already():
    quiet = comparison((DEVICE, "tflite-reference", [layer(False), layer(True, compared=False)]))
    host_only = comparison(("tflm-host", "tflite-optimized", [layer(True)]))
    assert prefetch_variants([quiet, host_only], ran=[DEVICE]) == []
    ran_both = comparison((DEVICE, "target:cortex-m55:cmsis-nn:single-rounding", [layer(True)]))
    got = [v.label for v in prefetch_variants([ran_both], ran=[DEVICE, "target:cortex-m55:cmsis-nn:single-rounding"])]
    assert got == []       # each side's other rounding is the other side: both ran
    ruled_out = comparison((DEVICE, "tflite-reference", [layer(True)]))
    assert prefetch_variants([ruled_out], ran=[DEVICE], runnable=lambda label: False) == []


def test_the_build_command_is_simrun_build_of_that_variant(tmp_path):
    variant = BackendId.lookup("target:cortex-m4:reference:single-rounding")
    cmd = build_command(variant, RunOptions(cache_dir=tmp_path))
    assert cmd[1:4] == ["-m", "simrun", "build"]
    assert ("--cpu", "cortex-m4") == tuple(cmd[cmd.index("--cpu"):cmd.index("--cpu") + 2])
    assert cmd[cmd.index("--rounding") + 1] == "single"
    assert cmd[cmd.index("--cache-dir") + 1] == str(tmp_path)


def _alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def test_stop_ends_the_background_build_and_everything_it_started(tmp_path, arm_gcc):
    """An empty cache: the variant is not cached, so the 'build' (here a shell that starts
    children and sleeps) runs; stop() must leave none of its processes behind."""
    notes = []
    pid_file = tmp_path / "pid"
    command = lambda v, o: ["sh", "-c", f"echo $$ > {pid_file}; sleep 60 & sleep 60"]  # noqa: E731
    variant = BackendId.lookup("target:cortex-m4:reference:single-rounding")
    prefetch = FirmwarePrefetch([variant], RunOptions(cache_dir=tmp_path / "cache"), notes.append, command)
    prefetch.start()
    deadline = time.monotonic() + 10
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert time.monotonic() < deadline, "the background build never started"
        time.sleep(0.05)
    pgid = int(pid_file.read_text())
    assert _alive(pgid)
    assert any("in the background for the diagnosis" in n and variant.label in n for n in notes), notes
    prefetch.stop()
    deadline = time.monotonic() + 5
    while _alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pgid), "a process of the background build outlived stop()"
    assert prefetch.built == []


def test_a_cached_or_unbuildable_variant_starts_nothing(tmp_path):
    notes = []
    # An unknown CPU cannot be planned: nothing to build ahead (the diagnosis reports it itself).
    bogus = SimpleNamespace(label="target:cortex-m99:reference", variant=SimpleNamespace(
        cpu="cortex-m99", kernels="reference", rounding="double", fp_contract="fast"))
    with FirmwarePrefetch([bogus], RunOptions(cache_dir=tmp_path), notes.append,
                          lambda v, o: pytest.fail("must not run")) as prefetch:
        assert prefetch.variants == []
    assert notes == []

"""Instructions executed per operator (simrun.device.cost + the QEMU plugin).

The fixture tests run real QEMU with the plugin built from QEMU's own plugin
header (downloaded from the Debian archive once, or SIMRUN_QEMU_SOURCE_DIR);
they skip with the reason where neither is available. The TFLM tests need
SIMRUN_SOURCES_DIR.
"""
from __future__ import annotations

import threading

import numpy as np
import pytest

from simrun.capture import Capture, OpRecord, Quantization, Tensor
from simrun.errors import BadInput, EmulatorError, SourcesMissing
from simrun.device import fixture
from simrun.device.cost import BEGIN, END, KERNEL_END, per_operator
from simrun.device.session import Session

CPU = "cortex-m4"


@pytest.fixture(scope="module")
def plugin(qemu):
    from simrun.device.qemu_plugin import ensure_plugin
    try:
        return ensure_plugin()
    except SourcesMissing as err:
        pytest.skip(f"instruction-counting plugin cannot be built: {err}")


@pytest.fixture(scope="module")
def elf(qemu, arm_gcc):
    return fixture.build_fixture(CPU)


def sample(seed: int = 1, n: int = 64) -> np.ndarray:
    return np.random.default_rng(seed).integers(-128, 128, (1, n)).astype(np.int8)


def counted_run(elf, model, x, capture_layers=True, invocations=1) -> list[Capture]:
    with Session(elf, cpu=CPU, timeout=30, count_instructions=True) as s:
        s.load_model(model.to_bytes(), raw=True)
        return [s.invoke([x], capture_layers=capture_layers) for _ in range(invocations)]


# --- pairing marker records with operators ---------------------------------------

def test_records_pair_into_operators_with_nesting_and_kernel_end():
    records = [(BEGIN, 100), (KERNEL_END, 150), (END, 180),          # op A: 50 (kernel end wins)
               (BEGIN, 200),                                         # op B (runs a subgraph)
               (BEGIN, 210), (END, 240),                             #   nested op: 30 (no kernel end)
               (KERNEL_END, 260), (END, 300),                        # op B: 60, includes nested
               (KERNEL_END, 400)]                                    # profiler off: no frame, ignored
    counts, total = per_operator(records)
    assert counts == [50, 30, 60]
    assert total == 110                                              # nested op counted once, in B


def test_unbalanced_records_are_an_error():
    with pytest.raises(EmulatorError, match="never began"):
        per_operator([(END, 5)])
    with pytest.raises(EmulatorError, match="never ended"):
        per_operator([(BEGIN, 5)])


def test_instructions_survive_save_and_load(tmp_path):
    t = Tensor(1, "y", np.arange(4, dtype=np.int8).reshape(1, 4), Quantization((0.5,), (0,), 0))
    cap = Capture("target:cortex-m4:reference", "ab", [OpRecord(0, 0, "RELU", [t], 1234),
                                                       OpRecord(0, 1, "RELU", [t])], [t])
    back = Capture.load(cap.save(tmp_path / "c.npz"))
    assert [r.instructions for r in back.ops] == [1234, None]


# --- the plugin on real QEMU with the fixture firmware ---------------------------------

@pytest.mark.qemu
def test_counts_are_identical_on_every_run_and_without_per_layer_stops(plugin, elf):
    model, x = fixture.demo_model(seed=3), sample()
    first, again = counted_run(elf, model, x, invocations=2)
    other_session = counted_run(elf, model, x)[0]
    # Another session at the same time as a busy neighbour: counts must not care.
    busy = []
    threads = [threading.Thread(target=lambda: busy.append(counted_run(elf, model, x)[0])) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts = [r.instructions for r in first.ops]
    assert all(isinstance(n, int) and n > 0 for n in counts), counts
    for cap in (again, other_session, *busy):
        assert [r.instructions for r in cap.ops] == counts
        assert cap.meta["instructions_total"] == first.meta["instructions_total"]
    assert first.meta["instructions_total"] == sum(counts)
    # No breakpoint per operator: no records to attach to, the same total.
    plain = counted_run(elf, model, x, capture_layers=False)[0]
    assert plain.ops == [] and plain.meta["instructions_total"] == sum(counts)


@pytest.mark.qemu
def test_counts_follow_the_work_an_operator_does(plugin, elf):
    """A dense layer with twice the outputs runs its inner loop twice as often."""
    rng = np.random.default_rng(0)

    def dense_model(outputs: int) -> fixture.FixtureModel:
        return fixture.FixtureModel(64, [fixture.dense(rng.integers(-128, 128, (outputs, 64)),
                                                       rng.integers(-50, 50, outputs), 1 << 20, 31)])

    small = counted_run(elf, dense_model(16), sample())[0].ops[0].instructions
    large = counted_run(elf, dense_model(32), sample())[0].ops[0].instructions
    assert 1.9 < large / small < 2.1, (small, large)


@pytest.mark.qemu
def test_renode_path_counts_at_stops_the_same_as_the_plugin(plugin, elf, renode_replica):
    """On Renode the count is the emulator's own (`cpu ExecutedInstructions` via qRcmd),
    read at a stop per marker. The replica answers with QEMU's record-mode instruction
    count, an independent exact counter: it must agree with our plugin to the instruction."""
    model, x = fixture.demo_model(seed=3), sample()
    plugin_counts = [r.instructions for r in counted_run(elf, model, x)[0].ops]
    with Session(elf, cpu=CPU, emulator="renode", timeout=60, count_instructions=True) as s:
        s.load_model(model.to_bytes(), raw=True)
        layered, plain = s.invoke([x]), s.invoke([x], capture_layers=False)
    assert layered.meta["instruction_counter"] == "emulator count at breakpoints"
    assert [r.instructions for r in layered.ops] == plugin_counts
    assert plain.meta["instructions_total"] == sum(plugin_counts)


def test_counting_where_the_emulator_has_no_count_says_so(qemu, arm_gcc):
    """Attached to a plain QEMU (no plugin, no monitor count): one clear error, not silent Nones."""
    from simrun.device.cost import StopCounter
    from simrun.device.elf import FirmwareImage
    image = FirmwareImage(fixture.build_fixture(CPU))
    with pytest.raises(EmulatorError, match="reports no instruction count"):
        StopCounter(image).stopped(image.address("simrun_hook_op_begin"), None)


# --- TFLM firmware (needs SIMRUN_SOURCES_DIR) ------------------------------------------

def _tflm_counts(firmware, cpu, model, x) -> Capture:
    with Session(firmware.elf, cpu=cpu, timeout=600, count_instructions=True) as s:
        s.load_model(model)
        return s.invoke(x)


@pytest.mark.qemu
@pytest.mark.parametrize("cpu", ["cortex-m55", "cortex-m4"])
def test_cmsis_nn_conv_executes_fewer_instructions_than_reference(tflm_firmware, plugin, models_dir, cpu):
    from conftest import random_input
    from simrun.model import Model

    model = Model.from_file(models_dir / "person_detect.tflite")
    x = random_input(model, 0)
    ref = _tflm_counts(tflm_firmware(cpu, "reference"), cpu, model, x)
    again = _tflm_counts(tflm_firmware(cpu, "reference"), cpu, model, x)
    nn = _tflm_counts(tflm_firmware(cpu, "cmsis-nn"), cpu, model, x)
    # Deterministic: a second emulator with the same firmware and input counts the same.
    assert [r.instructions for r in again.ops] == [r.instructions for r in ref.ops]
    assert all(r.instructions and r.instructions > 0 for r in ref.ops + nn.ops)

    def per_type(cap, name):
        return sum(r.instructions for r in cap.ops if r.op_name == name)
    conv_ref, conv_nn = per_type(ref, "CONV_2D"), per_type(nn, "CONV_2D")
    print(f"\n{cpu} person_detect CONV_2D: reference {conv_ref:,}, cmsis-nn {conv_nn:,} instructions "
          f"({conv_nn / conv_ref:.2f}x); totals {ref.meta['instructions_total']:,} / "
          f"{nn.meta['instructions_total']:,}")
    assert conv_nn < conv_ref
    assert ref.meta["instructions_total"] == sum(r.instructions for r in ref.ops)


@pytest.mark.qemu
def test_simrun_run_prints_the_counts_with_and_without_layers(plugin, elf, tmp_path, capsys):
    from simrun.cli import main
    model = tmp_path / "fixture.bin"
    model.write_bytes(fixture.demo_model(seed=3).to_bytes())
    base = ["run", str(model), "--raw", "--cpu", CPU, "--elf", str(elf), "--instructions"]
    assert main(base) == 0
    layered = capsys.readouterr().out
    rows = [line for line in layered.splitlines() if " instr " in line]
    assert [r.split()[1] for r in rows] == ["FULLY_CONNECTED", "RELU", "FULLY_CONNECTED"]
    total = sum(int(r.split()[2].replace(",", "")) for r in rows)
    assert f"{total:,} instructions executed by the operators" in layered
    assert main(base + ["--no-layers"]) == 0
    assert f"{total:,} instructions executed by the operators" in capsys.readouterr().out


@pytest.mark.qemu
def test_target_backends_count_through_the_worker_and_summarize_per_variant(plugin, elf, tmp_path):
    """run_backend(..., RunOptions(count_instructions=True)) on two 'variants' of one CPU (the fixture
    under two labels): the counts cross the worker, and the summary pairs the variants."""
    from simrun.analysis.cost import summarize
    from simrun.backends import run_backend
    from simrun.run_options import RunOptions

    path = tmp_path / "demo.bin"
    path.write_bytes(fixture.demo_model(seed=3).to_bytes())
    x = sample()
    direct = counted_run(elf, fixture.demo_model(seed=3), x)[0]
    caps = {}
    for label in ("target:cortex-m4:reference", "target:cortex-m4:cmsis-nn"):
        caps[label] = run_backend(label, path, [[x], [x]], RunOptions(
            firmware_elf=elf, raw_model=True, timeout=120, count_instructions=True))
    for label, (first, second) in caps.items():
        assert [r.instructions for r in first.ops] == [r.instructions for r in direct.ops]
        assert second.meta["instructions_total"] == first.meta["instructions_total"]
        assert first.meta["firmware_text"] > 0 and first.meta["model_bytes"] == path.stat().st_size
    cost = summarize(caps)
    (variant,) = cost.variants
    assert (variant.a, variant.b, variant.differ_in) == ("target:cortex-m4:reference",
                                                         "target:cortex-m4:cmsis-nn", "kernels")
    assert variant.by_op_type["FULLY_CONNECTED"][0] == direct.ops[0].instructions + direct.ops[2].instructions
    assert variant.total_ratio == 1.0
    uncounted = run_backend("target:cortex-m4:reference", path, [[x]],
                            RunOptions(firmware_elf=elf, raw_model=True, timeout=120))[0]
    assert all(r.instructions is None for r in uncounted.ops) and "instructions_total" not in uncounted.meta

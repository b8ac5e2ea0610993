"""ABI v2 on real QEMU with the fixture firmware (no TFLM needed): the capture
log and its drain hook, the board RAM mapped into the host and the GDB fallback,
run-time buffer layout, memory figures, and isolation (TEAM.md contract 1)."""
from __future__ import annotations

import glob

import numpy as np
import pytest

from simrun.capture import Capture, OpRecord, Tensor
from simrun.errors import BadInput, ModelTooLarge
from simrun.device import fixture
from simrun.device.capture_log import plan_layout
from simrun.device.session import Session
from simrun.device.targets import TARGETS

pytestmark = pytest.mark.qemu
MiB = 1 << 20


@pytest.fixture(scope="module")
def elfs(qemu, arm_gcc):
    return {cpu: fixture.build_fixture(cpu) for cpu in ("cortex-m4", "cortex-m55", "cortex-m0plus")}


def sample(seed: int = 1, n: int = 64) -> np.ndarray:
    return np.random.default_rng(seed).integers(-128, 128, (1, n)).astype(np.int8)


def numpy_capture(outputs: list[np.ndarray], label: str = "fixture-numpy", skip=()) -> Capture:
    names = ("FULLY_CONNECTED", "RELU", "FULLY_CONNECTED")
    ops = [OpRecord(0, i, names[i], [Tensor(i + 1, "", y)]) for i, y in enumerate(outputs) if i not in skip]
    return Capture(label, "", ops, [Tensor(len(outputs), "", outputs[-1])])


def single_layer(model: fixture.FixtureModel, k: int, x: np.ndarray) -> np.ndarray:
    """Layer k of `model` alone on input x: what an isolated layer k must output."""
    layer, n, _ = model.resolved()[k]
    return fixture.reference(fixture.FixtureModel(n, [layer]), x)[0]


def outputs(cap: Capture) -> list[np.ndarray]:
    return [r.outputs[0].values for r in cap.ops]


@pytest.mark.parametrize("memory", ["auto", "gdb"])
@pytest.mark.parametrize("log_limit", [None, 256, 64])
def test_capture_log_and_drains(elfs, memory, log_limit):
    # 256 bytes hold one record of the first layer (64 + 56 + 48) but not two: every operator drains;
    # 64 bytes hold no record at all: each comes from the END event at the drain.
    model = fixture.demo_model(seed=3)
    x = sample()
    with Session(elfs["cortex-m4"], cpu="cortex-m4", timeout=20, memory=memory, log_limit=log_limit) as s:
        s.load_model(model.to_bytes(), raw=True)
        assert s.memory_mapped == (memory == "auto")
        caps = [s.invoke([x]), s.invoke([x], capture_layers=False)]
        records = s.gdb.read_u32(s.image.address("simrun_log_state") + 4)   # simrun_log_state.records
        caps.append(s.invoke([x]))
    assert records == 0                          # a plain run appends nothing to the log
    ref = fixture.reference(model, x)
    for cap in (caps[0], caps[2]):
        assert [(r.index, r.op_name) for r in cap.ops] == [(0, "FULLY_CONNECTED"), (1, "RELU"), (2, "FULLY_CONNECTED")]
        assert all(np.array_equal(a, b) for a, b in zip(outputs(cap), ref, strict=True))
        assert cap.meta["memory"] == ("mapped" if memory == "auto" else "gdb")
        assert cap.meta["log_drains"] == {None: 0, 256: 2, 64: 3}[log_limit]
        assert cap.meta["readback_bytes"] == (48 + 48 + 12 + 3 * (64 + 56) if log_limit != 64 else 48 + 48 + 10)  # records pad to 4
    assert caps[1].ops == [] and caps[1].meta["log_drains"] == 0
    assert np.array_equal(caps[1].outputs[0].values, ref[-1])


def test_mapping_is_the_board_ram_and_is_removed(elfs):
    model = fixture.demo_model(seed=4)
    x = sample(2)
    with Session(elfs["cortex-m55"], cpu="cortex-m55", timeout=20) as s:
        s.load_model(model.to_bytes(), raw=True)
        ram = s.emulator.ram.path
        assert not ram.exists()                  # unlinked once QEMU and the host hold it: no leftovers
        s.invoke([x])
        lay = s.layout
        through_map = s.memory.read(lay.model_address, lay.end - lay.model_address)
        through_gdb = s.gdb.read_memory(lay.model_address, lay.end - lay.model_address)
        assert through_map == through_gdb and through_map[:4] == b"SFX1"
        s.memory.write(s.input_details[0].address, bytes(range(64)))     # host write, target sees it
        assert s.gdb.read_memory(s.input_details[0].address, 64) == bytes(range(64))
    assert not glob.glob(f"/dev/shm/{ram.name}*")


def test_ram_file_is_private_and_sparse(tmp_path):
    from simrun.device.memory import RamFile
    ram = RamFile.create(f"simrun-test-{tmp_path.name}-ram", 0x60000000, 2048 * MiB)
    try:
        st = ram.path.stat()
        assert st.st_mode & 0o777 == 0o600 and st.st_size == 2048 * MiB
        assert st.st_blocks == 0                 # tmpfs pages exist only once touched
        with pytest.raises(FileExistsError):     # never reuses (or follows a planted link to) a file
            RamFile.create(ram.path.name, 0, MiB)
    finally:
        ram.remove()
    assert not ram.path.exists()


def test_whole_bulk_region_on_cortex_m55(qemu, arm_gcc):
    # The board row's 512 MiB bulk: the log sits at its very end, 0x60000000 + 512 MiB - log.
    elf = fixture.build_fixture("cortex-m55", bulk_bytes=None)
    model = fixture.demo_model(seed=5)
    x = sample(3)
    with Session(elf, cpu="cortex-m55", timeout=30, arena_limit=4096) as s:
        s.load_model(model.to_bytes(), raw=True)
        assert s.layout.end == TARGETS["cortex-m55"].board.bulk_origin + 512 * MiB
        assert s.layout.log_capacity == 16 * MiB and s.memory_mapped
        cap = s.invoke([x])
    assert all(np.array_equal(a, b) for a, b in zip(outputs(cap), fixture.reference(model, x), strict=True))


def test_memory_figures_in_meta(elfs):
    model = fixture.demo_model(seed=1)
    with Session(elfs["cortex-m4"], cpu="cortex-m4", timeout=20) as s:
        s.load_model(model.to_bytes(), raw=True)
        meta = s.invoke([sample()]).meta
    assert meta["model_bytes"] == len(model.to_bytes())
    assert meta["arena_used"] == 64 + 48 + 48 + 16
    assert 1000 < meta["firmware_text"] < 64 * 1024
    assert 4096 < meta["firmware_data"] < 64 * 1024          # the ABI state and the 4 KiB log ring, no bulk


def test_model_too_large_names_the_boards_that_hold_it(elfs):
    with pytest.raises(ModelTooLarge) as info:
        plan_layout(0x21000000, 16 * MiB, 20 * MiB)
    msg = str(info.value)
    assert "20971520 bytes" in msg and "holds 16777216" in msg and msg.endswith("CPUs whose board can hold it: cortex-m55")
    with pytest.raises(ModelTooLarge, match="no supported board holds it"):
        plan_layout(0x60000000, 512 * MiB, 600 * MiB)
    lay = plan_layout(0x60000000, 512 * MiB, 8 * MiB, arena_limit=64 * MiB)
    assert lay.arena_size == 64 * MiB and lay.model_address + 8 * MiB <= lay.arena_address
    assert lay.arena_address + lay.arena_capacity <= lay.log_address and lay.end == 0x60000000 + 512 * MiB
    with pytest.raises(BadInput, match="log_limit"):
        Session(elfs["cortex-m4"], cpu="cortex-m4", log_limit=1 << 30)


@pytest.mark.parametrize("memory", ["auto", "gdb"])
def test_isolation_against_own_reference_is_lossless(elfs, memory):
    model = fixture.demo_model(seed=7)
    x = sample(4)
    ref = fixture.reference(model, x)
    with Session(elfs["cortex-m0plus"], cpu="cortex-m0plus", timeout=20, memory=memory) as s:
        s.load_model(model.to_bytes(), raw=True)
        iso = s.invoke([x], isolate_from=numpy_capture(ref))
        again = s.invoke([x])                                     # breakpoint gone, plain capture again
    assert iso.meta["isolated_from"] == "fixture-numpy" and iso.meta["not_isolated"] == {}
    assert all(np.array_equal(a, b) for a, b in zip(outputs(iso), ref, strict=True))
    assert "isolated_from" not in again.meta
    assert all(np.array_equal(a, b) for a, b in zip(outputs(again), ref, strict=True))


def test_isolation_attributes_a_planted_error_to_its_layer(elfs):
    model = fixture.demo_model(seed=7)
    x = sample(4)
    ref = fixture.reference(model, x)
    # A reference whose first layer differs (as another kernel would), the layers after it
    # computed from that: its layers 1 and 2 introduce no error of their own.
    other0 = ref[0].copy()
    other0[0, ::3] = np.clip(other0[0, ::3].astype(int) + 9, -128, 127).astype(np.int8)
    other1 = single_layer(model, 1, other0)
    other = [other0, other1, single_layer(model, 2, other1)]
    assert not np.array_equal(other[2], ref[2])                   # the planted error propagates
    with Session(elfs["cortex-m4"], cpu="cortex-m4", timeout=20) as s:
        s.load_model(model.to_bytes(), raw=True)
        plain = s.invoke([x])
        iso = s.invoke([x], isolate_from=numpy_capture(other, "other"))
    propagated = [not np.array_equal(a, b) for a, b in zip(outputs(plain), other)]
    own = [not np.array_equal(a, b) for a, b in zip(outputs(iso), other)]
    assert propagated == [True, True, True]
    assert own == [True, False, False]                            # only layer 0 introduces error
    assert np.array_equal(outputs(iso)[0], ref[0])                # on the model input, layer 0 is itself
    assert iso.meta["not_isolated"] == {}


def test_isolation_reports_inputs_the_reference_lacks(elfs):
    model = fixture.demo_model(seed=2)
    x = sample(5)
    ref = fixture.reference(model, x)
    with Session(elfs["cortex-m4"], cpu="cortex-m4", timeout=20) as s:
        s.load_model(model.to_bytes(), raw=True)
        iso = s.invoke([x], isolate_from=numpy_capture(ref, skip=(1,)))
        with pytest.raises(BadInput, match="capture_layers"):
            s.invoke([x], capture_layers=False, isolate_from=numpy_capture(ref))
        wrong = numpy_capture([ref[0].astype(np.int16), ref[1], ref[2]])
        iso2 = s.invoke([x], isolate_from=wrong)
    assert iso.meta["not_isolated"] == {"0:2": "input tensor 2 not captured by fixture-numpy"}
    assert all(np.array_equal(a, b) for a, b in zip(outputs(iso), ref, strict=True))  # ran on its own input
    assert list(iso2.meta["not_isolated"]) == ["0:1"] and "int16" in iso2.meta["not_isolated"]["0:1"]


def test_log_drains_and_isolation_on_the_renode_path(elfs, renode_replica):
    # No mapping there: GDB memory for everything, and a stop after each operator to see logged faults.
    model = fixture.demo_model(seed=8)
    x = sample(6)
    ref = fixture.reference(model, x)
    with Session(elfs["cortex-m4"], cpu="cortex-m4", timeout=60, emulator="renode", log_limit=256) as s:
        s.load_model(model.to_bytes(), raw=True)
        assert not s.memory_mapped
        cap = s.invoke([x])
        iso = s.invoke([x], isolate_from=numpy_capture(ref))
    assert cap.meta["log_drains"] == 2 and cap.meta["memory"] == "gdb"
    for c in (cap, iso):
        assert all(np.array_equal(a, b) for a, b in zip(outputs(c), ref, strict=True))
    assert iso.meta["not_isolated"] == {}

"""Renode's bulk memory through files its Monitor copies (emulators/renode_memory.py), on the replica
in CI and on the real Renode with SIMRUN_TEST_RENODE=real: the same bytes as over GDB, errors in
Renode's words, and GDB only where asked (memory="gdb")."""
from __future__ import annotations

import numpy as np
import pytest

from simrun.device import fixture
from simrun.device.emulators.renode_memory import BULK_MIN, RenodeBusMemory
from simrun.device.memory import GdbMemory
from simrun.device.session import Session
from simrun.errors import EmulatorError

pytestmark = pytest.mark.qemu


@pytest.fixture
def fixture_elf(arm_gcc):
    return fixture.build_fixture("cortex-m4")


def test_bulk_ranges_go_through_files_and_match_gdb(renode_replica, fixture_elf):
    model = fixture.demo_model(seed=2)
    x = np.arange(-32, 32, dtype=np.int8).reshape(1, 64)
    with Session(fixture_elf, cpu="cortex-m4", emulator="renode", timeout=60) as s:
        s.load_model(model.to_bytes(), raw=True)
        mem, gdb = s.memory, s.gdb
        assert isinstance(mem, RenodeBusMemory)
        # A range in the arena's unused end (the fixture's window is 64 KiB; its model needs 176 bytes).
        at = s.layout.log_address - 12 * 1024
        assert mem.start + 1024 < at
        data = np.random.default_rng(0).integers(0, 256, 12 * 1024, dtype=np.uint8).tobytes()
        mem.write(at, data)                                   # through a file
        assert gdb.read_memory(at, 4096) == data[:4096]      # GDB sees what the file put there
        assert gdb.read_memory(at + len(data) - 64, 64) == data[-64:]
        gdb.write_memory(at + 100, b"\xa5" * 16)              # and the file copy sees GDB's write
        back = mem.read(at, len(data))
        assert back == data[:100] + b"\xa5" * 16 + data[116:]
        assert not list(mem.folder.glob("bus-*.bin"))          # each copy's file is gone
        assert mem.read(at, BULK_MIN - 1) == back[:BULK_MIN - 1]   # small: GDB
        # The session still runs on it: the capture log comes back through the same path.
        cap = s.invoke([x])
    for rec, expected in zip(cap.ops, fixture.reference(model, x), strict=True):
        assert np.array_equal(rec.outputs[0].values, expected)


def test_a_failed_copy_is_an_error_in_renodes_words(renode_replica, fixture_elf):
    with Session(fixture_elf, cpu="cortex-m4", emulator="renode", timeout=60) as s:
        s.load_model(fixture.demo_model().to_bytes(), raw=True)
        mem = s.memory
        missing = mem.folder / "never-written.bin"
        from simrun.device.emulators.renode_memory import WRITE_COMMAND
        with pytest.raises(EmulatorError, match=r"Could not find file") as info:
            mem._run(WRITE_COMMAND.format(path=missing, address=s.layout.log_address), "write from a missing file")
        assert "Renode could not write from a missing file" in str(info.value)


def test_memory_gdb_keeps_every_byte_on_gdb(renode_replica, fixture_elf):
    model = fixture.demo_model(seed=4)
    x = np.zeros((1, 64), dtype=np.int8)
    with Session(fixture_elf, cpu="cortex-m4", emulator="renode", timeout=60, memory="gdb") as s:
        s.load_model(model.to_bytes(), raw=True)
        assert type(s.memory) is GdbMemory
        cap = s.invoke([x])
    assert np.array_equal(cap.outputs[0].values, fixture.reference(model, x)[-1])


def test_folders_a_monitor_command_cannot_carry_are_refused(tmp_path):
    odd = tmp_path / "it's here"
    odd.mkdir()
    with pytest.raises(EmulatorError, match="quote, backslash"):
        RenodeBusMemory(None, odd, 0, 16)


def test_session_waits_default_to_the_emulators_slowdown(fixture_elf):
    from simrun.device.emulators import QemuEmulator, RenodeEmulator
    from simrun.device.session import DEFAULT_WAIT
    assert Session(fixture_elf, cpu="cortex-m4").timeout == DEFAULT_WAIT * QemuEmulator.slowdown
    assert Session(fixture_elf, cpu="cortex-m4", emulator="renode").timeout == DEFAULT_WAIT * RenodeEmulator.slowdown
    assert Session(fixture_elf, cpu="cortex-m4", emulator="renode", timeout=5).timeout == 5.0

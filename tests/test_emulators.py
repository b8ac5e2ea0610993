"""One emulator interface (issue 17): what each emulator can do is data, and the session asks
only that, never an emulator's name."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from simrun.device.emulators import (AttachedEmulator, Capability, Emulator, QemuEmulator, RenodeEmulator,
                                     make_emulator)
from simrun.errors import BadInput, EmulatorError

DEVICE = Path(__file__).resolve().parents[1] / "simrun" / "device"


def test_each_emulator_states_what_it_can_do():
    assert QemuEmulator.capabilities == {Capability.MAPPED_RAM, Capability.COUNTER_PLUGIN}
    assert RenodeEmulator.capabilities == {Capability.BUS_FILES, Capability.COUNTER_AT_STOPS, Capability.FAULT_LOG}
    assert AttachedEmulator.capabilities == {Capability.COUNTER_AT_STOPS}
    assert Capability.MAPPED_RAM in RenodeEmulator().lacks()


def test_default_time_limits_follow_each_emulators_stated_slowdown():
    from simrun.device.emulators import slowdown
    from simrun.run_options import DEFAULT_TIMEOUT, RunOptions
    assert QemuEmulator.slowdown == 1.0 and RenodeEmulator.slowdown > 1.0 and slowdown("renode") == RenodeEmulator.slowdown
    options = RunOptions(emulator="renode")
    assert options.timeout is None                                   # "the emulator's default"
    assert options.run_timeout(slowdown("renode")) == DEFAULT_TIMEOUT * RenodeEmulator.slowdown
    assert options.emulator_timeout(slowdown("renode")) == DEFAULT_TIMEOUT * RenodeEmulator.slowdown
    assert RunOptions().run_timeout(slowdown("qemu")) == DEFAULT_TIMEOUT
    assert RunOptions(timeout=42).run_timeout(slowdown("renode")) == 42          # a stated limit wins
    assert RunOptions(timeout=42, session_timeout=7).emulator_timeout(slowdown("renode")) == 7
    assert RunOptions.from_json(options.to_json()) == options                    # None survives the worker's JSON
    with pytest.raises(EmulatorError, match="unknown emulator 'bochs'"):
        slowdown("bochs")
    with pytest.raises(BadInput, match="timeout must be positive"):
        RunOptions(timeout=0)


def test_the_cli_leaves_the_limit_to_the_emulator_unless_given():
    from simrun.cli import make_parser
    parser = make_parser()
    assert parser.parse_args(["diff", "m.tflite"]).timeout is None
    assert parser.parse_args(["run", "m.tflite", "--cpu", "cortex-m4"]).timeout is None
    assert parser.parse_args(["diff", "m.tflite", "--timeout", "9"]).timeout == 9.0
    assert parser.parse_args(["ab", "m.keras"]).timeout is None


def test_make_emulator_picks_the_implementation():
    assert type(make_emulator("qemu")) is QemuEmulator and type(make_emulator("renode")) is RenodeEmulator
    attached = make_emulator("renode", gdb="127.0.0.1:3333")        # --gdb wins: the user's emulator
    assert type(attached) is AttachedEmulator and attached.address == "127.0.0.1:3333"
    with pytest.raises(EmulatorError, match="unknown emulator 'bochs'; known: qemu, renode"):
        make_emulator("bochs")
    with pytest.raises(BadInput, match="not a loopback address"):
        make_emulator("qemu", gdb="192.0.2.1:3333")


@pytest.mark.parametrize("module", ["session.py", "failures.py", "firmware_state.py", "capture_log.py"])
def test_the_session_never_asks_an_emulators_name(module):
    code = (DEVICE / module).read_text()
    names = r"(qemu|renode|attached?)"
    assert not re.search(rf"""[=!]=\s*["']{names}["']|["']{names}["']\s*[=!]=|\bin\s*[(\[{{][^)\]}}]*["']{names}["']""",
                         code, re.I), f"{module} compares with an emulator's name"
    assert not re.search(r"isinstance\([^)]*(Qemu|Renode|Attached)", code)
    assert not re.search(r"\.name\s*[=!]=", code)


def test_failures_read_only_public_state():
    code = (DEVICE / "failures.py").read_text()
    assert not re.search(r"session\._", code), "failures.py reaches into the Session's private fields"


def test_the_base_class_is_the_whole_interface():
    """Every public method an implementation defines is one the base class declares."""
    declared = {n for n in vars(Emulator) if not n.startswith("_")}
    for cls in (QemuEmulator, RenodeEmulator, AttachedEmulator):
        extra = {n for n in vars(cls) if not n.startswith("_") and callable(getattr(cls, n))} - declared
        assert not extra, f"{cls.__name__} adds {extra}: the session could not use them without asking its type"

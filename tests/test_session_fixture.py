"""The controller end to end with the fixture firmware (no TFLM needed), on real QEMU and on the
Renode path (the replica in tests/renode_replica, which runs the firmware on QEMU underneath and
speaks Renode's GDB dialect and process shape); tests that take `emulator` run on both."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from simrun.device import fixture
from simrun.errors import (ArenaTooSmall, BadInput, EmulatorTimeout, ModelTooLarge, SimrunError,
                           TargetFault, UnsupportedOperator)
from simrun.device.session import Session

from conftest import REAL_RENODE

pytestmark = pytest.mark.qemu
ALL_CPUS = ("cortex-m0plus", "cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55")


@pytest.fixture(scope="session")
def elfs(qemu, arm_gcc):
    return {cpu: fixture.build_fixture(cpu) for cpu in ALL_CPUS}


def lacks_scalar_shifts(cpu: str, emulator: str) -> bool:
    """Renode 1.16.1 does not implement the Armv8.1-M scalar shifts (lsll, asrl: tlib's translate.c
    leaves them out) that GCC emits on cortex-m55 for the fixture's 64-bit dense arithmetic, so a
    dense layer faults there (UNDEFINSTR, named: test_every_layer_matches_the_numpy_reference)."""
    return cpu == "cortex-m55" and emulator == "renode"


def model_for(cpu: str, emulator: str, seed: int = 0, extra: list | None = None) -> fixture.FixtureModel:
    """The demo model; where dense layers cannot run (above), a RELU in front of `extra` instead."""
    if lacks_scalar_shifts(cpu, emulator):
        return fixture.FixtureModel(64, [fixture.relu(zero_point=-3)] + list(extra or []))
    return fixture.demo_model(seed=seed, extra=extra)


def sample(seed: int = 1, n: int = 64) -> np.ndarray:
    return np.random.default_rng(seed).integers(-128, 128, (1, n)).astype(np.int8)


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("cpu", ALL_CPUS)
def test_every_layer_matches_the_numpy_reference(elfs, cpu, emulator):
    model = fixture.demo_model(seed=3)
    x = sample()
    with Session(elfs[cpu], cpu=cpu, timeout=20, label=f"target:{cpu}:fixture", emulator=emulator) as s:
        s.load_model(model.to_bytes(), raw=True)
        (desc,) = s.input_details
        assert (desc.shape, desc.dtype) == ((1, 64), np.dtype(np.int8))
        if lacks_scalar_shifts(cpu, emulator):
            with pytest.raises(TargetFault) as info:
                s.invoke([x])
            msg = str(info.value)
            assert "UsageFault on cortex-m55 in operator 0:0 FULLY_CONNECTED" in msg and "UNDEFINSTR" in msg
            assert re.search(r"the instruction is `(lsll|asrl) [^`]+` at 0x[0-9a-f]{8} in main", msg), msg
            assert "Renode 1.16.1 does not implement it" in msg and "run cortex-m55 on QEMU (--emulator qemu)" in msg
            return
        cap = s.invoke([x])
        assert np.array_equal(s.read_input(0), x)          # injected input arrived bit-exact
    ref = fixture.reference(model, x)
    assert cap.backend == f"target:{cpu}:fixture"
    assert [(r.subgraph, r.index, r.op_name) for r in cap.ops] == \
        [(0, 0, "FULLY_CONNECTED"), (0, 1, "RELU"), (0, 2, "FULLY_CONNECTED")]
    for rec, expected in zip(cap.ops, ref, strict=True):
        (t,) = rec.outputs
        assert t.index == rec.index + 1
        assert t.values.dtype == np.int8 and t.values.shape == expected.shape
        assert np.array_equal(t.values, expected), f"{cpu} layer {rec.index} differs"
    assert cap.ops[0].outputs[0].quantization.scale == pytest.approx((0.1,))
    assert cap.ops[0].outputs[0].quantization.zero_point == (-3,)
    assert np.array_equal(cap.outputs[0].values, ref[-1])
    assert len(set(np.unique(ref[0]))) > 10                  # the reference is not trivially constant


def test_plain_mode_and_repeated_invokes(elfs, emulator):
    model = fixture.demo_model(seed=5)
    with Session(elfs["cortex-m4"], cpu="cortex-m4", timeout=20, emulator=emulator) as s:
        s.load_model(model.to_bytes(), raw=True)
        for seed in (1, 2):
            x = sample(seed)
            plain = s.invoke([x], capture_layers=False)
            assert plain.ops == []
            assert np.array_equal(plain.outputs[0].values, fixture.reference(model, x)[-1])
        layered = s.invoke([sample(3)], capture_layers=True)
        assert len(layered.ops) == 3
        assert np.array_equal(layered.ops[-1].outputs[0].values, fixture.reference(model, sample(3))[-1])
        assert s.last_status.invocations == 3


def test_bad_inputs_are_refused_and_session_survives(elfs, emulator):
    model = fixture.demo_model()
    with Session(elfs["cortex-m4"], cpu="cortex-m4", timeout=20, emulator=emulator) as s:
        s.load_model(model.to_bytes(), raw=True)
        with pytest.raises(BadInput, match="dtype float32"):
            s.invoke([sample().astype(np.float32)])
        with pytest.raises(BadInput, match=r"shape \(64,\)"):
            s.invoke([sample().reshape(64)])
        with pytest.raises(BadInput, match="1 input"):
            s.invoke([sample(), sample()])
        x = sample()
        assert np.array_equal(s.invoke([x]).outputs[0].values, fixture.reference(model, x)[-1])


@pytest.mark.parametrize("cpu", ["cortex-m4", "cortex-m55", "cortex-m0plus"])
def test_fault_reports_registers_and_operator(elfs, cpu, emulator):
    from simrun.device.elf import FirmwareImage
    if emulator == "renode" and cpu == "cortex-m0plus" and not REAL_RENODE:
        pytest.skip("the replica cannot locate a faulting load on ARMv6-M (no BFAR); Renode itself reads 0 "
                    "there and logs it, as on the other cores (run with SIMRUN_TEST_RENODE=real)")
    model = model_for(cpu, emulator, extra=[fixture.Layer(fixture.KIND_FAULT)])
    fault_at = len(model.layers) - 1
    flash = FirmwareImage(elfs[cpu])
    code = [seg for seg in flash.segments if seg.filesz][0]
    with Session(elfs[cpu], cpu=cpu, timeout=20, emulator=emulator) as s:
        s.load_model(model.to_bytes(), raw=True)
        with pytest.raises(TargetFault) as info:
            s.invoke([sample()])
        assert s.emulator_pid is None                      # killed on the error, not at exit
    err = info.value
    assert err.operator == f"0:{fault_at} FIXTURE_FAULT" and "FIXTURE_FAULT" in str(err)
    if emulator == "renode":
        # Renode reads 0 from unmapped memory and logs it; that log line is the fault we report.
        assert err.registers["address"] == 0xF0000000
        assert code.vaddr <= err.registers["pc"] < code.vaddr + code.memsz
        assert "from non existing peripheral at 0xF0000000" in str(err)
        assert "does not raise BusFaults" in str(err) and "Renode's log:" in str(err)
        return
    assert code.vaddr <= err.registers["pc"] < code.vaddr + code.memsz
    if cpu == "cortex-m0plus":                             # ARMv6-M: HardFault only, no CFSR
        assert err.registers["ipsr"] == 3 and "HardFault" in str(err)
    else:
        assert err.registers["ipsr"] == 5 and "BusFault" in str(err)
        assert err.registers["bfar"] == 0xF0000000 and err.registers["cfsr"] & (1 << 15)
    assert "PC=0x" in str(err)


def test_code_fetch_from_unmapped_memory(elfs, emulator):
    """A board (and QEMU) faults (0xF0000000 is execute-never: MemManage IACCVIOL); Renode aborts the
    CPU and GDB gets X06."""
    model = fixture.demo_model(extra=[fixture.Layer(fixture.KIND_BAD_CALL)])
    with Session(elfs["cortex-m4"], cpu="cortex-m4", timeout=20, emulator=emulator) as s:
        s.load_model(model.to_bytes(), raw=True)
        with pytest.raises(TargetFault) as info:
            s.invoke([sample()])
        assert s.emulator_pid is None
    err = info.value
    assert err.operator == "0:3 FIXTURE_BAD_CALL"
    if emulator == "renode":
        assert "GDB stop X06" in str(err) and "CPU abort [PC=0xF0000000]" in str(err)
        assert err.registers["pc"] == 0xF0000000 and "does not raise BusFaults" in str(err)
    else:
        assert err.registers["pc"] == 0xF0000000 and err.registers["cfsr"] & 1   # IACCVIOL
        assert "MemManage fault" in str(err) and "IACCVIOL" in str(err)


def test_infinite_loop_times_out_and_kills(elfs, emulator):
    model = model_for("cortex-m55", emulator, extra=[fixture.Layer(fixture.KIND_HANG)])
    with Session(elfs["cortex-m55"], cpu="cortex-m55", timeout=2.0, emulator=emulator) as s:
        s.load_model(model.to_bytes(), raw=True)
        pid = s.emulator_pid
        t0 = time.monotonic()
        with pytest.raises(EmulatorTimeout) as info:
            s.invoke([sample()], capture_layers=False)
        elapsed = time.monotonic() - t0
        assert not pid_alive(pid)
    assert 2.0 <= elapsed < 6.0
    hang_at = len(model.layers) - 1
    assert info.value.operator == f"0:{hang_at} FIXTURE_HANG" and "FIXTURE_HANG" in str(info.value)


def test_unsupported_operator_is_named(elfs, emulator):
    model = fixture.demo_model(extra=[fixture.Layer(42)])
    with Session(elfs["cortex-m4"], cpu="cortex-m4", timeout=20, emulator=emulator) as s:
        with pytest.raises(UnsupportedOperator) as info:
            s.load_model(model.to_bytes(), raw=True)
    assert info.value.name == "FIXTURE_KIND_42"


def test_arena_too_small_says_how_many_bytes(elfs, emulator):
    model = fixture.demo_model()                 # input 64 + 48 + 48 + 10 -> 16-byte aligned
    with Session(elfs["cortex-m4"], cpu="cortex-m4", timeout=20, arena_limit=100, emulator=emulator) as s:
        with pytest.raises(ArenaTooSmall) as info:
            s.load_model(model.to_bytes(), raw=True)
    assert info.value.bytes_needed == 64 + 48 + 48 + 16
    assert "176 bytes needed" in str(info.value) and "arena has 100" in str(info.value)


def test_refusals_before_launch(elfs, models_dir, monkeypatch):
    from simrun.device.emulators import Emulator

    def no_launch(*a, **k):
        raise AssertionError("emulator launched for a model that should be refused")

    monkeypatch.setattr(Emulator, "start", no_launch)
    with Session(elfs["cortex-m4"], cpu="cortex-m4") as s:
        with pytest.raises(ModelTooLarge, match="65536"):
            s.load_model(models_dir / "person_detect.tflite")   # a real model, larger than the fixture's buffer
        with pytest.raises(ModelTooLarge):
            s.load_model(b"SFX1" + bytes(70000), raw=True)
        with pytest.raises(BadInput, match="not a TFLite flatbuffer"):
            s.load_model(b"definitely not a model")
        with pytest.raises(BadInput, match="empty"):
            s.load_model(b"")
        with pytest.raises(SimrunError, match="load_model"):
            s.invoke([sample()])
    with pytest.raises(BadInput, match="arena_limit"):
        Session(elfs["cortex-m4"], cpu="cortex-m4", arena_limit=1 << 30)


def test_parallel_sessions_do_not_collide(elfs, emulator):
    def one(seed: int):
        x = sample(seed)
        cpu = ("cortex-m4", "cortex-m55", "cortex-m33")[seed % 3]
        model = model_for(cpu, emulator, seed=seed)
        with Session(elfs[cpu], cpu=cpu, timeout=30, emulator=emulator) as s:
            s.load_model(model.to_bytes(), raw=True)
            cap = s.invoke([x])
        return all(np.array_equal(r.outputs[0].values, e) for r, e in zip(cap.ops, fixture.reference(model, x)))

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(one, range(6))) == [True] * 6


def test_keyboard_interrupt_kills_the_emulator(elfs, emulator):
    model = fixture.demo_model(extra=[fixture.Layer(fixture.KIND_HANG)])
    s = Session(elfs["cortex-m4"], cpu="cortex-m4", timeout=30, emulator=emulator)
    s.load_model(model.to_bytes(), raw=True)
    pid = s.emulator_pid
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            s.invoke([sample()])                            # no `with`: the session cleans up itself
    finally:
        timer.cancel()
    assert s.emulator_pid is None and not pid_alive(pid)


@pytest.mark.parametrize("ending", ["atexit", "hard-exit"])
def test_emulator_dies_with_the_python_process(elfs, ending, emulator):
    # os._exit skips atexit: QEMU dies by PDEATHSIG, Renode at the end of its stdin.
    exit_call = "sys.exit(0)" if ending == "atexit" else "os._exit(0)"
    code = f"""
import os, sys
from simrun.device import fixture
from simrun.device.session import Session
s = Session({str(elfs['cortex-m4'])!r}, cpu="cortex-m4", timeout=20, emulator={emulator!r})
s.load_model(fixture.demo_model().to_bytes(), raw=True)
print(s.emulator_pid, flush=True)
{exit_call}
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.returncode == 0, out.stderr
    pid = int(out.stdout.strip())
    deadline = time.monotonic() + 5
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    alive = pid_alive(pid)
    if alive:
        os.kill(pid, signal.SIGKILL)
    assert not alive, f"{emulator} {pid} outlived its Python process ({ending})"


def test_run_command_prints_layers_and_saves_capture(elfs, tmp_path, capsys, emulator):
    from simrun.capture import Capture
    from simrun.cli import main

    model = fixture.demo_model(seed=2)
    model_path = tmp_path / "fixture.bin"
    model_path.write_bytes(model.to_bytes())
    x = sample(9)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "cap.npz"
    cpu = "cortex-m4" if lacks_scalar_shifts("cortex-m55", emulator) else "cortex-m55"
    rc = main(["run", str(model_path), "--cpu", cpu, "--elf", str(elfs[cpu]), "--raw",
               "--input", str(tmp_path / "x.npy"), "--out", str(out), "--kernels", "reference",
               "--emulator", emulator])
    text = capsys.readouterr().out
    assert rc == 0
    assert "0:1   RELU" in text and "int8[1, 48]" in text
    cap = Capture.load(out)
    for rec, expected in zip(cap.ops, fixture.reference(model, x), strict=True):
        assert np.array_equal(rec.outputs[0].values, expected)
    rc = main(["run", str(model_path), "--cpu", cpu, "--elf", str(elfs[cpu]), "--raw",
               "--arena-limit", "16", "--emulator", emulator])
    assert rc == 3 and "arena too small" in capsys.readouterr().err    # failed on the device


def test_missing_qemu_is_a_clear_error(elfs, monkeypatch):
    from simrun.errors import ToolMissing

    monkeypatch.setenv("PATH", "/nonexistent")
    with Session(elfs["cortex-m4"], cpu="cortex-m4") as s:
        with pytest.raises(ToolMissing, match="apt-get install qemu-system-arm"):
            s.load_model(fixture.demo_model().to_bytes(), raw=True)
        assert s.emulator_pid is None


def test_other_abi_version_is_refused(elfs, tmp_path, monkeypatch):
    from simrun.errors import AbiMismatch

    src = tmp_path / "src"
    src.mkdir()
    text = (fixture.FIXTURE_DIR / "fixture.c").read_text()
    text = text.replace('#include "simrun_abi.h"\n',
                        '#include "simrun_abi.h"\n#undef SIMRUN_ABI_VERSION\n#define SIMRUN_ABI_VERSION 99u\n', 1)
    (src / "fixture.c").write_text(text)
    monkeypatch.setattr(fixture, "FIXTURE_DIR", src)
    elf = fixture.build_fixture("cortex-m4", cache_dir=tmp_path / "cache")
    with Session(elf, cpu="cortex-m4", timeout=20) as s:
        with pytest.raises(AbiMismatch, match="ABI version 99"):
            s.load_model(fixture.demo_model().to_bytes(), raw=True)
        assert s.emulator_pid is None

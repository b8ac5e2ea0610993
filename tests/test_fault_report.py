"""An undefined-instruction fault names the instruction, its function and whose gap it is (issue 18).

The fixture firmware gets one instruction planted in `simrun_hook_op_end` (a hook made of
nops that runs after every operator; r0-r3 are free there): an Armv8.1-M scalar shift,
`asrl r0, r1, #2`, valid on cortex-m55 and implemented by QEMU, which Renode 1.16.1 does not
translate (the replica models that); and a UDF, undefined on every emulator. (The fixture's own
dense layers hold such shifts on cortex-m55 too: test_session_fixture checks those are named.)
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from simrun.device import fixture
from simrun.errors import TargetFault


def assemble(line: str, cpu: str, tmp: Path) -> bytes:
    """The machine code of one Thumb instruction, assembled for `cpu` as the firmware is compiled."""
    from simrun.device.targets import get_target
    tools = [shutil.which(t) for t in ("arm-none-eabi-gcc", "arm-none-eabi-objcopy")]
    if not all(tools):
        pytest.skip("arm-none-eabi-gcc/objcopy not on PATH")
    src, obj, raw = tmp / "insn.s", tmp / "insn.o", tmp / "insn.bin"
    src.write_text(f".syntax unified\n.thumb\n{line}\n")
    subprocess.run([tools[0], *get_target(cpu).compile_flags(), "-c", "-o", str(obj), str(src)], check=True)
    subprocess.run([tools[1], "-O", "binary", "-j", ".text", str(obj), str(raw)], check=True)
    return raw.read_bytes()


def planted(cpu: str, line: str, tmp: Path) -> Path:
    """A copy of the fixture ELF with `line` over the first instruction(s) of simrun_hook_op_end."""
    from elftools.elf.elffile import ELFFile
    from simrun.device.elf import FirmwareImage

    src = fixture.build_fixture(cpu)
    code = assemble(line, cpu, tmp)
    hook = FirmwareImage(src).address("simrun_hook_op_end")
    assert FirmwareImage(src).size("simrun_hook_op_end") >= len(code) + 2      # its `bx lr` stays
    elf = tmp / f"planted-{cpu}.elf"
    shutil.copyfile(src, elf)
    with open(elf, "r+b") as f:
        text = ELFFile(f).get_section_by_name(".text")
        offset = text["sh_offset"] + hook - text["sh_addr"]
        f.seek(offset)
        f.write(code)
    return elf


def run(elf: Path, cpu: str, emulator: str, dense: bool = True):
    """The demo model's outputs and reference; dense=False: a single RELU (no 64-bit arithmetic,
    which on cortex-m55 compiles to scalar shifts that Renode 1.16.1 lacks: test_session_fixture)."""
    from simrun.device.session import Session
    model = fixture.demo_model(seed=5) if dense else fixture.FixtureModel(64, [fixture.relu(zero_point=-3)])
    x = np.arange(-32, 32, dtype=np.int8).reshape(1, 64)
    with Session(elf, cpu=cpu, emulator=emulator, timeout=60) as s:
        s.load_model(model.to_bytes(), raw=True)
        return s.invoke([x]), fixture.reference(model, x)


def test_an_instruction_renode_lacks_is_named(arm_gcc, renode_replica, tmp_path):
    elf = planted("cortex-m55", "asrl r0, r1, #2", tmp_path)
    with pytest.raises(TargetFault) as info:
        run(elf, "cortex-m55", "renode", dense=False)
    msg = str(info.value)
    assert msg.startswith("UsageFault on cortex-m55 outside any operator") and "(UNDEFINSTR)" in msg
    hook = fixture_address(elf, "simrun_hook_op_end")
    assert f"the instruction is `asrl r0, r1, #2` at {hook:#010x} in simrun_hook_op_end" in msg
    assert "a valid cortex-m55 instruction" in msg and "Renode 1.16.1 does not implement it" in msg
    assert "run cortex-m55 on QEMU (--emulator qemu)" in msg and "it lacks the Armv8.1-M scalar shifts" in msg
    assert info.value.registers["pc"] == hook


def test_the_same_instruction_runs_on_qemu(arm_gcc, qemu, tmp_path):
    """The control: the planted instruction is valid for the CPU; QEMU runs it, outputs exact."""
    cap, expected = run(planted("cortex-m55", "asrl r0, r1, #2", tmp_path), "cortex-m55", "qemu")
    for rec, want in zip(cap.ops, expected, strict=True):
        assert np.array_equal(rec.outputs[0].values, want)


def test_a_udf_is_named_a_trap_not_an_emulator_gap(arm_gcc, emulator, tmp_path):
    elf = planted("cortex-m4", "udf #254", tmp_path)
    with pytest.raises(TargetFault) as info:
        run(elf, "cortex-m4", emulator)
    msg = str(info.value)
    hook = fixture_address(elf, "simrun_hook_op_end")
    assert "UsageFault on cortex-m4" in msg and "(UNDEFINSTR)" in msg
    assert f"the instruction is `udf #254` at {hook:#010x} in simrun_hook_op_end" in msg
    assert "permanently undefined instruction (UDF)" in msg and "not an emulator gap" in msg
    assert "does not implement" not in msg


def test_without_objdump_the_fault_says_what_is_missing(arm_gcc, tmp_path, monkeypatch):
    from simrun.device import disassembly
    elf = planted("cortex-m4", "udf #254", tmp_path)
    monkeypatch.setattr(disassembly, "OBJDUMP", "arm-none-eabi-objdump-not-installed")
    with pytest.raises(TargetFault, match=r"UNDEFINSTR.*cannot show the instruction at PC: "
                                          r"arm-none-eabi-objdump-not-installed not found"):
        run(elf, "cortex-m4", "qemu")


def fixture_address(elf: Path, name: str) -> int:
    from simrun.device.elf import FirmwareImage
    return FirmwareImage(elf).address(name)

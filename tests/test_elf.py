"""Reading the firmware ELF: symbols, ABI symbol checks, entry and segments."""
from __future__ import annotations

import subprocess

import pytest

from simrun.device.elf import REQUIRED, FirmwareImage
from simrun.errors import AbiMismatch, BadInput
from simrun.device.fixture import build_fixture
from simrun.device.targets import get_target


@pytest.fixture(scope="module")
def fixture_elf(arm_gcc):
    return build_fixture("cortex-m55")


def test_symbols_and_abi(fixture_elf):
    image = FirmwareImage(fixture_elf).check_abi()
    board = get_target("cortex-m55").board
    bulk = image.symbol("simrun_bulk")
    assert bulk.kind == "STT_OBJECT" and bulk.size == image.bulk_capacity == 64 * 1024
    assert board.bulk_origin <= bulk.address < board.bulk_origin + board.bulk_size
    assert image.symbol("simrun_status").size == 68
    hooks = {image.address(n) for n in REQUIRED if n.startswith("simrun_hook_")}
    assert len(hooks) == 6 and all(a % 2 == 0 for a in hooks)   # thumb bit cleared, all distinct
    assert board.flash_origin <= image.entry < board.flash_origin + board.flash_size


def test_loadable_segments_cover_the_code(fixture_elf):
    image = FirmwareImage(fixture_elf)
    code = [s for s in image.segments if s.filesz]
    assert any(s.vaddr <= image.entry < s.vaddr + s.memsz for s in code)


def test_missing_abi_symbols_are_named(tmp_path, arm_gcc):
    src = tmp_path / "plain.c"
    src.write_text("int simrun_layout; void _start(void) { for (;;) {} }\n")
    elf = tmp_path / "plain.elf"
    subprocess.run([arm_gcc, "-mcpu=cortex-m4", "-mthumb", "-nostdlib", str(src), "-o", str(elf)], check=True)
    with pytest.raises(AbiMismatch, match="simrun_hook_ready"):
        FirmwareImage(elf).check_abi()
    with pytest.raises(AbiMismatch, match="simrun_bulk"):
        FirmwareImage(elf).symbol("simrun_bulk")


def test_not_an_elf(tmp_path):
    bad = tmp_path / "x.elf"
    bad.write_bytes(b"hello")
    with pytest.raises(BadInput, match="not a valid ELF"):
        FirmwareImage(bad)
    with pytest.raises(BadInput, match="cannot read"):
        FirmwareImage(tmp_path / "missing.elf")

"""Renode backend: platform files match the targets table; a real run when renode is installed."""
from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

from simrun.target.emulators.renode import RENODE_DIR, platform_files, renode_argv, renode_script
from simrun.target.targets import BOARDS, TARGETS


def regions(repl_text: str) -> dict[str, tuple[int, int]]:
    found = re.findall(r"^(\w+): Memory\.MappedMemory @ sysbus (0x[0-9a-fA-F]+)\s*\n\s*size: (0x[0-9a-fA-F]+)",
                       repl_text, re.M)
    return {name: (int(addr, 16), int(size, 16)) for name, addr, size in found}


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_platform_matches_the_board_memory_map(board):
    b = BOARDS[board]
    repl = (RENODE_DIR / f"{b.renode_platform}.repl").read_text()
    assert regions(repl) == {"flash": (b.flash_origin, b.flash_size), "ram": (b.ram_origin, b.ram_size),
                             "bulk": (b.bulk_origin, b.bulk_size)}
    resc = (RENODE_DIR / f"{b.renode_platform}.resc").read_text()
    assert f"cpu VectorTableOffset {b.flash_origin:#010x}" in resc
    assert "machine StartGdbServer $gdb_port" in resc


def test_every_cpu_has_platform_files():
    for cpu in TARGETS:
        repl, resc = platform_files(cpu)
        assert repl.is_file() and resc.is_file()


def test_launch_line_quotes_paths_and_lifts_the_throttle(tmp_path):
    repl, resc = platform_files("cortex-m55")
    elf = tmp_path / "my firmware" / "fw.elf"          # a space ends an @path token unless escaped
    script = renode_script(repl, resc, elf, 4444)
    argv = renode_argv("renode", script, tmp_path / "renode.pid")
    assert argv[:4] == ["renode", "--disable-xwt", "--console", "--plain"]
    assert argv[argv.index("--pid-file") + 1] == str(tmp_path / "renode.pid") and argv[-1] == script
    assert "$gdb_port=4444" in script and f"include @{resc}" in script
    assert "$elf=@" + str(elf).replace(" ", "\\ ") + ";" in script
    assert "emulation SetGlobalAdvanceImmediately true" in script   # else 100 MIPS in real time


@pytest.mark.renode
def test_fixture_on_renode(arm_gcc):
    if not shutil.which("renode"):
        pytest.skip("renode not on PATH (Renode is not installable here; this runs where it is)")
    from simrun.target import fixture
    from simrun.target.session import Session

    model = fixture.demo_model()
    x = np.arange(-32, 32, dtype=np.int8).reshape(1, 64)
    with Session(fixture.build_fixture("cortex-m4"), cpu="cortex-m4", emulator="renode", timeout=60) as s:
        s.load_model(model.to_bytes(), raw=True)
        cap = s.invoke([x])
    for rec, expected in zip(cap.ops, fixture.reference(model, x), strict=True):
        assert np.array_equal(rec.outputs[0].values, expected)

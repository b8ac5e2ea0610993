"""Renode backend: platform files match the targets table; a real run when renode is installed."""
from __future__ import annotations

import os
import re
import shutil
import socket
import time
from pathlib import Path

import numpy as np
import pytest

from simrun.device.emulators.renode import RENODE_DIR, platform_files, renode_argv, renode_script
from simrun.device.targets import BOARDS, TARGETS

from conftest import REAL_RENODE


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
    assert "--keep-temporary-files" in argv             # Renode's cleanup of other renode-* folders: off
    assert argv[argv.index("--pid-file") + 1] == str(tmp_path / "renode.pid") and argv[-1] == script
    assert "$gdb_port=4444" in script and f"include @{resc}" in script
    assert "$elf=@" + str(elf).replace(" ", "\\ ") + ";" in script
    assert "emulation SetGlobalAdvanceImmediately true" in script   # else 100 MIPS in real time


@pytest.mark.renode
def test_fixture_on_renode(arm_gcc):
    if not shutil.which("renode"):
        pytest.skip("renode not on PATH (Renode is not installable here; this runs where it is)")
    from simrun.device import fixture
    from simrun.device.session import Session

    model = fixture.demo_model()
    x = np.arange(-32, 32, dtype=np.int8).reshape(1, 64)
    with Session(fixture.build_fixture("cortex-m4"), cpu="cortex-m4", emulator="renode", timeout=60) as s:
        s.load_model(model.to_bytes(), raw=True)
        cap = s.invoke([x])
    for rec, expected in zip(cap.ops, fixture.reference(model, x), strict=True):
        assert np.array_equal(rec.outputs[0].values, expected)


# --- the launcher against the replica (tests/renode_replica: Renode's process shape and log lines) ----

def _descendants(pid: int) -> set[int]:
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                kids = (task / "children").read_text().split()
            except OSError:
                continue
            for k in map(int, kids):
                if k not in found:
                    found.add(k)
                    todo.append(k)
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _argv0(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except OSError:
        return ""


def _is_renode(pid: int) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return argv[0] == b"Renode" or any(Path(a.decode()).name in ("Renode.exe", "Renode.dll") for a in argv[:4])


def _left_alive(pids: set[int]) -> list[int]:
    deadline = time.monotonic() + 5                       # SIGKILLed processes still need reaping
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [p for p in pids if _alive(p)]


def _listening_ports(net_tcp: str) -> set[tuple[str, int]]:
    out = set()
    for line in net_tcp.splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        if state == "0A":                                 # TCP_LISTEN
            addr, port = local.split(":")
            out.add((addr, int(port, 16)))
    return out


@pytest.fixture
def fixture_elf(arm_gcc):
    from simrun.device import fixture
    return fixture.build_fixture("cortex-m4")


@pytest.fixture
def model_bytes():
    from simrun.device import fixture
    return fixture.demo_model().to_bytes()


def test_gdb_port_is_private_and_process_tree_is_cleaned_up(renode_replica, fixture_elf, model_bytes):
    from simrun.device.session import Session

    with Session(fixture_elf, cpu="cortex-m4", emulator="renode", timeout=20) as s:
        s.load_model(model_bytes, raw=True)
        emu = s.emulator.process
        renode_pid = s.emulator_pid                         # from --pid-file: the real process
        tree = _descendants(os.getpid()) & ({emu.proc.pid} | _descendants(emu.proc.pid))
        names = {p: _argv0(p) for p in tree}
        wrappers = [p for p, n in names.items() if n.endswith("bash") or n.endswith("/renode")]
        # The replica calls itself Renode; the real one runs as `mono .../Renode.exe` (or dotnet Renode.dll).
        assert _is_renode(renode_pid) and renode_pid != emu.proc.pid
        assert wrappers and all(renode_pid in _descendants(w) for w in wrappers)   # the wrapper did not exec
        if not REAL_RENODE:
            assert any(n.endswith("qemu-system-arm") for n in names.values())   # the replica's engine
        # Renode listens on every interface, but in a namespace whose only interface is loopback:
        assert os.readlink(f"/proc/{renode_pid}/ns/net") != os.readlink("/proc/self/ns/net")
        inside = Path(f"/proc/{renode_pid}/net/dev").read_text()
        assert [line.split(":")[0].strip() for line in inside.splitlines()[2:]] == ["lo"]
        assert ("00000000", 3333) in _listening_ports(Path(f"/proc/{renode_pid}/net/tcp").read_text())
        assert 3333 not in {port for _, port in _listening_ports(Path("/proc/self/net/tcp").read_text())}
        with pytest.raises(OSError):                        # nothing answers on the host side
            socket.create_connection(("127.0.0.1", 3333), timeout=1).close()
        assert s.executed_instructions() > 1000             # `cpu ExecutedInstructions` via qRcmd
        assert len(tree) >= (3 if REAL_RENODE else 4)       # relay, wrapper, Renode (the replica: + QEMU)
    assert not _left_alive(tree), "processes left after the session closed"


def test_renode_that_ignores_end_of_input_is_still_stopped(replica_only, fixture_elf, model_bytes, monkeypatch):
    from simrun.device.session import Session

    monkeypatch.setenv("RENODE_REPLICA_IGNORE_EOF", "1")   # a hung Renode: only the --pid-file PID helps
    s = Session(fixture_elf, cpu="cortex-m4", emulator="renode", timeout=20)
    s.load_model(model_bytes, raw=True)
    s.emulator.process.quit_grace = 0.5
    group = s.emulator.process.proc.pid
    tree = _descendants(group) | {group}
    t0 = time.monotonic()
    s.close()
    assert time.monotonic() - t0 < 5 and not _left_alive(tree)


def test_script_error_fails_at_once_with_renodes_message(renode_replica, fixture_elf, model_bytes, tmp_path,
                                                         monkeypatch):
    from simrun.errors import EmulatorError
    from simrun.device.emulators import renode
    from simrun.device.session import Session

    broken = tmp_path / "platforms"
    shutil.copytree(RENODE_DIR, broken)
    repl = broken / "mps2-an386.repl"
    repl.write_text(repl.read_text().replace('"cortex-m4"', '"cortex-m4x"'))
    monkeypatch.setattr(renode, "RENODE_DIR", broken)
    t0 = time.monotonic()
    with Session(fixture_elf, cpu="cortex-m4", emulator="renode", timeout=120) as s:
        with pytest.raises(EmulatorError) as info:
            s.load_model(model_bytes, raw=True)
        assert s.emulator_pid is None
    # Not the 120 s budget (Renode never exits on a script error). 90 s, not 15: the real Renode 1.16.1's
    # Mono start-up alone took 18 s here at load 8 (45-50 s seen at load 15).
    assert time.monotonic() - t0 < 90
    assert "Renode reported an error in its start script" in str(info.value)
    assert "Unknown CPU type" in str(info.value)


def test_old_renode_is_refused_for_cortex_m55(replica_only, arm_gcc, monkeypatch):
    from simrun.errors import ToolMissing
    from simrun.device import fixture
    from simrun.device.session import Session

    monkeypatch.setenv("RENODE_REPLICA_VERSION", "1.16.0")
    monkeypatch.setattr("simrun.device.emulators.renode._versions", {})
    with Session(fixture.build_fixture("cortex-m55"), cpu="cortex-m55", emulator="renode") as s:
        with pytest.raises(ToolMissing, match=r"Renode 1\.16\.0 cannot run cortex-m55: .*only from 1\.16\.1"):
            s.load_model(fixture.demo_model().to_bytes(), raw=True)
        assert s.emulator_pid is None


def test_no_private_namespace_means_a_refusal_not_an_open_port(renode_replica, fixture_elf, model_bytes,
                                                               monkeypatch):
    from simrun.errors import ToolMissing
    from simrun.device.session import Session

    monkeypatch.setenv("PATH", f"{renode_replica.parent}{os.pathsep}/nonexistent")   # renode, but no unshare
    with Session(fixture_elf, cpu="cortex-m4", emulator="renode") as s:
        with pytest.raises(ToolMissing, match="private network namespace.*SIMRUN_RENODE_NETWORK=host"):
            s.load_model(model_bytes, raw=True)


def test_paths_renode_cannot_take_are_refused(tmp_path):
    from simrun.errors import BadInput
    from simrun.device.emulators.renode import renode_path

    assert renode_path(tmp_path / "a b.elf").endswith("a\\ b.elf")
    with pytest.raises(BadInput, match="';'"):
        renode_path(tmp_path / "a;b.elf")


def test_missing_renode_is_a_clear_error(fixture_elf, model_bytes, monkeypatch):
    from simrun.errors import ToolMissing
    from simrun.device.session import Session

    monkeypatch.setenv("PATH", "/nonexistent")
    with Session(fixture_elf, cpu="cortex-m4", emulator="renode") as s:
        with pytest.raises(ToolMissing, match="renode not found: install Renode"):
            s.load_model(model_bytes, raw=True)


def test_port_in_use_is_retried_on_another(renode_replica, fixture_elf, model_bytes, tmp_path):
    """SIMRUN_RENODE_NETWORK=host picks a port per try; run inside a private namespace of its own
    so even this test's host-mode Renode is reachable from nowhere else."""
    import subprocess
    import sys

    from simrun.device.emulators.renode import RELAY, unshare_prefix

    code = f"""
import socket, sys
sys.path.insert(0, {str(RELAY.parent)!r})
import netns_relay
netns_relay.loopback_up()
from simrun.device.emulators import renode
from simrun.device.session import Session
blocker = socket.socket()
blocker.bind(("0.0.0.0", 0))
blocker.listen(1)
ports = iter([blocker.getsockname()[1], 4444])
renode.free_loopback_port = lambda: next(ports)
with Session({str(fixture_elf)!r}, cpu="cortex-m4", emulator="renode", timeout=20) as s:
    s.load_model({model_bytes!r}, raw=True)
    print("attempts", len(list(s.emulator.process.workdir.glob("renode-*.pid"))))
"""
    env = dict(os.environ, SIMRUN_RENODE_NETWORK="host", PYTHONPATH=str(RENODE_DIR.parent))
    out = subprocess.run(unshare_prefix() + [sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "attempts 2" in out.stdout                        # the first Renode could not bind, the second did


def test_platform_files_fetch_nothing():
    """Renode downloads what a platform file names by URL (SVD files) at load; ours name none."""
    for f in sorted(RENODE_DIR.iterdir()):
        assert not re.search(r"https?://|\.svd\b", f.read_text(), re.I), f


@pytest.mark.parametrize("version,expect", [
    ("1.16.1", ["OK       renode ", "Renode 1.16.1", "runs cortex-m0plus, cortex-m3, cortex-m4, cortex-m7, cortex-m33",
                "WARN     renode cortex-m55", "runs cortex-m55 partly: lacks the Armv8.1-M scalar shifts"]),
    ("1.15.3", ["Renode 1.15.3", "cannot run cortex-m33: needs Renode 1.16.0 or later",
                "cannot run cortex-m55: needs Renode 1.16.1 or later"]),
])
def test_doctor_names_renodes_version_and_what_it_runs_per_cpu(replica_only, version, expect, tmp_path):
    import subprocess
    import sys
    env = dict(os.environ, RENODE_REPLICA_VERSION=version, PYTHONPATH=str(RENODE_DIR.parent),
               SIMRUN_CACHE_DIR=str(tmp_path / "cache"), TMPDIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-m", "simrun", "doctor"], capture_output=True, text=True, env=env,
                         timeout=300, cwd=tmp_path)
    lines = "\n".join(ln for ln in out.stdout.splitlines() if "renode" in ln.lower())
    for text in expect:
        assert text in lines, lines

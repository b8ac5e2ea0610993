"""Nothing of the user's is touched by a Renode that simrun starts (issue 18).

Renode deletes every folder named `renode-*` directly under its temp dir
($TMPDIR, else /tmp) whose suffix is not a live PID (TemporaryFilesManager.cs),
at start and at exit. simrun gives it a temp dir of its own. These tests plant
such folders in the user's temp dir (a TMPDIR of the test's, so a regression
cannot cost a developer's /tmp) and prove they survive a Renode session, a
fault, a Renode killed mid-run and a Ctrl-C; and, as the control, that the
Renode under test (the replica, or the real one with SIMRUN_TEST_RENODE=real)
does delete them when started plainly.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO
from simrun.device import fixture
from simrun.errors import EmulatorError, TargetFault

DEAD_PID = "renode-2147483646"        # a PID no process has: Renode deletes it
PLANTED = (DEAD_PID, "renode-user-notes", "renode-1234-results")


@pytest.fixture
def user_tmp(tmp_path, monkeypatch) -> Path:
    """The user's temp dir, with the folders Renode would delete planted in it."""
    tmp = tmp_path / "user-tmp"
    tmp.mkdir()
    for name in PLANTED:
        (tmp / name).mkdir()
        (tmp / name / "data.txt").write_text(f"the user's {name}\n")
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))     # Python caches the temp dir it found first
    return tmp


def assert_untouched(tmp: Path) -> None:
    for name in PLANTED:
        assert (tmp / name / "data.txt").read_text() == f"the user's {name}\n", f"{name} was deleted"
    leftovers = sorted(p.name for p in tmp.iterdir() if p.name not in PLANTED)
    assert not leftovers, f"left in the user's temp dir: {leftovers}"


def test_the_renode_under_test_deletes_planted_folders_when_started_plainly(renode_replica, user_tmp, fixture_elf):
    """The control: Renode's own cleanup, which simrun must keep away from the user's files."""
    from simrun.device.emulators.renode import platform_files, renode_path
    live = user_tmp / f"renode-{os.getpid()}"          # a live PID: kept
    crash = user_tmp / "renode-77-crash"               # "-crash": kept
    for folder in (live, crash):
        folder.mkdir()
    repl, _ = platform_files("cortex-m4")
    script = (f"mach create; machine LoadPlatformDescription {renode_path(repl)}; "
              f"sysbus LoadELF {renode_path(fixture_elf)}; quit")
    out = subprocess.run([str(renode_replica), "--disable-xwt", "--console", "--plain", "-e", script],
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, TMPDIR=str(user_tmp)))
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert not any((user_tmp / name).exists() for name in PLANTED), sorted(os.listdir(user_tmp))
    assert live.is_dir() and crash.is_dir()


@pytest.fixture
def fixture_elf(arm_gcc) -> Path:
    return fixture.build_fixture("cortex-m4")


def test_planted_folders_survive_a_session_a_fault_and_a_killed_renode(renode_replica, user_tmp, fixture_elf):
    from simrun.device.session import Session

    model = fixture.demo_model(seed=2)
    x = np.arange(-32, 32, dtype=np.int8).reshape(1, 64)
    with Session(fixture_elf, cpu="cortex-m4", emulator="renode", timeout=60) as s:
        s.load_model(model.to_bytes(), raw=True)
        s.invoke([x])
        assert_untouched_but_ours(user_tmp)
    assert_untouched(user_tmp)

    faulty = fixture.demo_model(extra=[fixture.Layer(fixture.KIND_FAULT)])
    with Session(fixture_elf, cpu="cortex-m4", emulator="renode", timeout=60) as s:
        s.load_model(faulty.to_bytes(), raw=True)
        with pytest.raises(TargetFault):
            s.invoke([x])
    assert_untouched(user_tmp)

    with Session(fixture_elf, cpu="cortex-m4", emulator="renode", timeout=60) as s:
        s.load_model(model.to_bytes(), raw=True)
        os.kill(s.emulator_pid, signal.SIGKILL)         # Renode crashes: its own files stay behind it
        with pytest.raises(EmulatorError):
            s.invoke([x])
    assert_untouched(user_tmp)


def assert_untouched_but_ours(tmp: Path) -> None:
    """While a session runs: the planted folders, and only simrun's private directory beside them."""
    for name in PLANTED:
        assert (tmp / name / "data.txt").is_file(), f"{name} was deleted"
    ours = [p for p in tmp.iterdir() if p.name not in PLANTED]
    assert len(ours) == 1 and ours[0].name.startswith("simrun-"), [p.name for p in ours]
    assert list(ours[0].glob("tmp/renode-*")), "Renode's own temp folder is not in simrun's private directory"


def test_planted_folders_survive_ctrl_c(renode_replica, user_tmp, fixture_elf, tmp_path):
    """`simrun run --emulator renode`, interrupted once Renode has started (its cleanup done)."""
    model = tmp_path / "hang.bin"
    model.write_bytes(fixture.demo_model(extra=[fixture.Layer(fixture.KIND_HANG)]).to_bytes())
    # SIGINT raises KeyboardInterrupt even where this test runs with SIGINT ignored (a background job).
    code = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "from simrun.cli import main; sys.exit(main(sys.argv[1:]))")
    proc = subprocess.Popen([sys.executable, "-c", code, "run", str(model), "--raw", "--elf", str(fixture_elf),
                             "--cpu", "cortex-m4", "--emulator", "renode", "--timeout", "120"],
                            env=dict(os.environ, PYTHONPATH=str(REPO)), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not list(user_tmp.glob("simrun-*/tmp/renode-*")):   # Renode made its own folder: cleanup ran
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "Renode never started in simrun's private temp dir"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)        # simrun stops its emulator on the way out
            proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err, err
    assert_untouched(user_tmp)

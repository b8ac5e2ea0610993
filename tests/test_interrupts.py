"""Runs that end early: the emulator killed, Ctrl-C during a run and a build, a timeout
in `simrun diff`, two processes building one firmware. Each ends with one message,
its documented exit code, no traceback and nothing left running.

The `simrun` command runs as a child process here (signals, exit codes, stderr as a
user sees them). Rows that need TFLM firmware skip without SIMRUN_SOURCES_DIR.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO


def children(pid: int) -> list[tuple[int, str]]:
    """(pid, command name) of every process whose parent is `pid` (recursively)."""
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            name = stat[stat.index("(") + 1:stat.rindex(")")]
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            if ppid == parent:
                found.append((int(entry.name), name))
                frontier.append(int(entry.name))
    return found


def start(*argv, env: dict | None = None) -> subprocess.Popen:
    e = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "simrun", *map(str, argv)], env=e, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for_child(proc: subprocess.Popen, names: tuple[str, ...], timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"simrun ended early: {proc.communicate()}"
        for pid, name in children(proc.pid):
            if name.startswith(names):
                return pid
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"no {names} process appeared under simrun in {timeout} s")


def finish(proc: subprocess.Popen, timeout: float = 60) -> tuple[int, str]:
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("simrun did not end after the interruption") from None
    return proc.returncode, err


@pytest.fixture(scope="module")
def hang(tmp_path_factory, qemu, arm_gcc) -> tuple[Path, Path]:
    from simrun.target import fixture
    model = tmp_path_factory.mktemp("hang") / "hang.bin"
    model.write_bytes(fixture.demo_model(extra=[fixture.Layer(fixture.KIND_HANG)]).to_bytes())
    return model, fixture.build_fixture("cortex-m4")


def test_the_emulator_killed_during_a_run(hang):
    model, elf = hang
    proc = start("run", model, "--raw", "--elf", elf, "--cpu", "cortex-m4", "--timeout", "60")
    qemu = wait_for_child(proc, ("qemu-system",))
    time.sleep(1.0)                                   # inside the hanging operator
    os.kill(qemu, signal.SIGKILL)
    code, err = finish(proc)
    assert code == 4, err                             # the environment: the emulator went away
    assert "simrun run: error:" in err and "emulator" in err and "Traceback" not in err
    assert err.count("error:") == 1


def test_ctrl_c_during_a_run(hang):
    model, elf = hang
    proc = start("run", model, "--raw", "--elf", elf, "--cpu", "cortex-m4", "--timeout", "60")
    qemu = wait_for_child(proc, ("qemu-system",))
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    code, err = finish(proc)
    assert code == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert not Path(f"/proc/{qemu}").exists() or "Z" in Path(f"/proc/{qemu}/stat").read_text().split()[2]


@pytest.fixture(scope="module")
def sources():
    from simrun.target.sources import HOW_TO_PROVIDE, local_sources
    if local_sources() is None:
        pytest.skip(f"needs TFLM sources: {HOW_TO_PROVIDE}")
    return local_sources()


def test_ctrl_c_during_a_build(sources, arm_gcc, tmp_path):
    cache = tmp_path / "cache"
    # A CPU no test builds: its tree starts cold, so compilers are running when Ctrl-C comes.
    proc = start("build", "--cpu", "cortex-m0plus", "--kernels", "reference", "--cache-dir", cache)
    wait_for_child(proc, ("cc1", "cc1plus"), timeout=300)
    pgid_children = children(proc.pid)
    proc.send_signal(signal.SIGINT)
    code, err = finish(proc)
    assert code == 130, err
    assert "simrun build: interrupted" in err and "Traceback" not in err
    time.sleep(0.5)
    left = [pid for pid, name in pgid_children if Path(f"/proc/{pid}").exists()
            and "Z" not in Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]]
    assert not left, f"build processes left running: {left}"
    assert not list((cache / "firmware").glob("*")) if (cache / "firmware").exists() else True


def test_two_diffs_building_the_same_firmware(sources, qemu, tmp_path, conv_model):
    from simrun.target.build import ensure_firmware
    import shutil
    fw = ensure_firmware("cortex-m4", "reference")
    entry = fw.elf.parent
    shutil.rmtree(entry)        # the CMake tree stays warm: the build relinks and republishes
    argv = ("diff", conv_model, "--backends", "tflm-host,target:cortex-m4:reference", "--no-diagnose")
    procs = [start(*argv, "--report", tmp_path / f"r{i}") for i in range(2)]
    results = [finish(p, timeout=600) for p in procs]
    for code, err in results:
        assert code in (0, 1), err                  # the policy's verdict: the runs completed
        assert "Traceback" not in err and "FAILED" not in err
    assert (entry / "firmware.elf").is_file()
    assert not list(entry.parent.glob(f"{entry.name}.tmp*"))      # no half-published entry
    said = " ".join(err for _, err in results)
    assert "waiting: another process is building" in said or said.count("cached:") >= 1


@pytest.fixture(scope="module")
def conv_model(tmp_path_factory):
    pytest.importorskip("tensorflow", reason="the model is built with TensorFlow")
    from testmodels import conv_logistic_int8
    return conv_logistic_int8(tmp_path_factory.mktemp("models"))

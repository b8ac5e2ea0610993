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


def _ram_file(qemu_pid: int) -> Path | None:
    """QEMU's open descriptor of the file it maps as the board's main RAM (`-object
    memory-backend-file,...,mem-path=`); None until QEMU has opened it. The Session unlinks the
    file once both hold it, so it is read through /proc/PID/fd, not by its name."""
    argv = Path(f"/proc/{qemu_pid}/cmdline").read_bytes().decode().split("\0")
    paths = [part.split("=", 1)[1] for arg in argv for part in arg.split(",") if part.startswith("mem-path=")]
    assert paths, f"QEMU runs without a memory-backend-file, so its RAM cannot be read here: {argv}"
    for fd in Path(f"/proc/{qemu_pid}/fd").iterdir():
        try:
            if os.readlink(fd).removesuffix(" (deleted)") == paths[0]:
                return fd
        except OSError:
            continue
    return None


def _logged_operators(log: bytes) -> list[int]:
    """Operator indices of the capture log's records, up to the first unwritten (zero) header."""
    from simrun.device.abi import RECORD
    found, at = [], 0
    while at + RECORD.size <= len(log):
        size, _sg, op, *_ = RECORD.unpack_from(log, at)
        if size < RECORD.size:
            break
        found.append(op)
        at += size
    return found


def wait_inside_operator(proc: subprocess.Popen, qemu_pid: int, elf: Path, model: Path, operator: int,
                         timeout: float = 60) -> None:
    """Until the fixture firmware runs `operator` of `model`: per-layer capture appends a record
    to the capture log when an operator ends, so once the log in board RAM holds the records
    of operators 0..operator-1, `operator` has begun. The log is read from QEMU's RAM file (the
    bulk region is in the board's main RAM), where it is laid out as the Session lays it out."""
    from simrun.device.capture_log import plan_layout
    from simrun.device.elf import FirmwareImage
    from simrun.device.targets import get_target

    bulk = FirmwareImage(elf).symbol("simrun_bulk")
    layout = plan_layout(bulk.address, bulk.size, model.stat().st_size)
    offset = layout.log_address - get_target("cortex-m4").board.main_ram_origin
    want, seen = list(range(operator)), None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"simrun ended early: {proc.communicate()}"
        ram = _ram_file(qemu_pid)
        if ram is not None:
            with ram.open("rb") as f:
                f.seek(offset)
                seen = _logged_operators(f.read(layout.log_capacity))
        if seen == want:
            return
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"the firmware did not reach operator {operator} in {timeout} s "
                         f"(operators in the capture log: {seen})")


def wait_gone(pids: list[int], timeout: float = 30) -> list[int]:
    """Waits until none of pids runs (gone or a zombie); returns those still running at the end."""
    def running(pid: int) -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            return False
    deadline = time.monotonic() + timeout
    while (left := [pid for pid in pids if running(pid)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def finish(proc: subprocess.Popen, timeout: float = 60) -> tuple[int, str]:
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("simrun did not end after the interruption") from None
    return proc.returncode, err


HANG_AT = 3          # the demo model's three layers, then the one that never returns


@pytest.fixture(scope="module")
def hang(tmp_path_factory, qemu, arm_gcc) -> tuple[Path, Path]:
    from simrun.device import fixture
    model = tmp_path_factory.mktemp("hang") / "hang.bin"
    layers = fixture.demo_model(extra=[fixture.Layer(fixture.KIND_HANG)])
    assert layers.layers[HANG_AT].kind == fixture.KIND_HANG
    model.write_bytes(layers.to_bytes())
    return model, fixture.build_fixture("cortex-m4")


def test_the_emulator_killed_during_a_run(hang):
    model, elf = hang
    proc = start("run", model, "--raw", "--elf", elf, "--cpu", "cortex-m4", "--timeout", "60")
    qemu = wait_for_child(proc, ("qemu-system",))
    wait_inside_operator(proc, qemu, elf, model, HANG_AT)
    os.kill(qemu, signal.SIGKILL)
    code, err = finish(proc)
    assert code == 4, err                             # the environment: the emulator went away
    assert "simrun run: error:" in err and "emulator" in err and "Traceback" not in err
    assert err.count("error:") == 1


def test_ctrl_c_during_a_run(hang):
    model, elf = hang
    proc = start("run", model, "--raw", "--elf", elf, "--cpu", "cortex-m4", "--timeout", "60")
    qemu = wait_for_child(proc, ("qemu-system",))
    wait_inside_operator(proc, qemu, elf, model, HANG_AT)
    proc.send_signal(signal.SIGINT)
    code, err = finish(proc)
    assert code == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert not wait_gone([qemu], timeout=0), "simrun ended but left its QEMU running"


def test_ctrl_c_during_a_renode_run(hang, renode_replica):
    """Ctrl-C while `simrun run --emulator renode` waits in the hanging layer: exit 130, and every
    process of Renode's tree (relay, launcher script, Renode or the replica and its QEMU) gone."""
    model, elf = hang
    proc = start("run", model, "--raw", "--elf", elf, "--cpu", "cortex-m4", "--emulator", "renode",
                 "--timeout", "300")
    deadline = time.monotonic() + 240
    relay = None                      # the network-namespace relay in front of Renode, in the workdir
    while relay is None:
        assert proc.poll() is None and time.monotonic() < deadline, f"no Renode started: {proc.communicate()}"
        for pid, _ in children(proc.pid):
            try:
                if b"netns_relay.py" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    relay = pid
            except OSError:
                pass
        time.sleep(0.1)
    log = Path(os.readlink(f"/proc/{relay}/cwd")) / "renode.log"
    while "GDB server with all CPUs started" not in (log.read_text(errors="replace") if log.exists() else ""):
        assert proc.poll() is None and time.monotonic() < deadline, f"Renode did not start: {proc.communicate()}"
        time.sleep(0.2)
    time.sleep(5)                    # connect, upload, allocate, run to the hang (any moment will do)
    tree = [pid for pid, _ in children(proc.pid)]
    proc.send_signal(signal.SIGINT)
    code, err = finish(proc, timeout=90)
    assert code == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert not wait_gone(tree, timeout=30), "simrun ended but left part of Renode's tree running"


@pytest.fixture(scope="module")
def sources():
    from simrun.device.sources import HOW_TO_PROVIDE, local_sources
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
    left = wait_gone([pid for pid, _ in pgid_children])
    assert not left, f"build processes still running 30 s after simrun ended: {left}"
    assert not list((cache / "firmware").glob("*")) if (cache / "firmware").exists() else True


def test_two_diffs_building_the_same_firmware(sources, qemu, tmp_path, conv_model):
    from simrun.device.build import ensure_firmware
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
def conv_model(tf_model):
    from testmodels import conv_logistic_int8
    return tf_model(conv_logistic_int8)


# --- on the TFLM firmware (needs sources) -----------------------------------------------------

def endless_while(out_dir: Path) -> Path:
    """A float model whose WHILE loop runs for hours."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([1], tf.float32)])
    def endless(x):
        _, y = tf.while_loop(lambda i, x: i < 2_000_000_000, lambda i, x: (i + 1, x + 1.0),
                             [tf.constant(0), x])
        return y

    path = out_dir / "while.tflite"
    path.write_bytes(
        tf.lite.TFLiteConverter.from_concrete_functions([endless.get_concrete_function()], endless).convert())
    return path


def small_float_dense(out_dir: Path) -> Path:
    import tensorflow as tf

    dense = tf.keras.Sequential([tf.keras.Input(shape=(8,)), tf.keras.layers.Dense(4, activation="relu")])
    path = out_dir / "float.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(dense).convert())
    return path


@pytest.fixture(scope="module")
def tf_models(tf_model, tmp_path_factory):
    """A float model whose WHILE loop runs for hours, a small float Dense model, an int8 model
    with an operator TFLM lacks and one larger than any board's bulk memory."""
    from test_bad_inputs import _huge_buffer, _op_tflm_lacks, patched_model
    from testmodels import conv_logistic_int8
    d = tmp_path_factory.mktemp("tfmodels")
    conv = tf_model(conv_logistic_int8)
    return {"while": tf_model(endless_while), "float": tf_model(small_float_dense),
            "lacking": patched_model(conv, d / "lacking.tflite", _op_tflm_lacks),
            "huge": patched_model(conv, d / "huge.tflite", _huge_buffer), "conv": conv}


@pytest.fixture(scope="module")
def m4_firmware(sources, qemu, arm_gcc):
    from simrun.device.build import ensure_firmware
    return ensure_firmware("cortex-m4", "reference")


def test_run_timeout_names_the_operator(m4_firmware, tf_models):
    proc = start("run", tf_models["while"], "--cpu", "cortex-m4", "--timeout", "5", "--no-layers")
    code, err = finish(proc, timeout=120)
    assert code == 3, err
    # The WHILE loop's body (subgraph 2) or condition (subgraph 1) is what runs.
    assert "did not finish within 5 s in operator" in err and "Traceback" not in err
    assert any(f"operator {sg}:" in err for sg in (0, 1, 2))


def test_diff_timeout_names_the_operator(m4_firmware, tf_models, tmp_path):
    proc = start("diff", tf_models["while"], "--backends", "tflite-reference,target:cortex-m4:reference",
                 "--no-diagnose", "--timeout", "8", "--report", tmp_path / "r")
    code, err = finish(proc, timeout=300)
    failed = next(ln for ln in err.splitlines() if ln.startswith("[diff] target:cortex-m4:reference: FAILED"))
    assert "timed out after 8 s" in failed and "in operator" in failed, failed
    assert code == 3, err                         # a backend the policy does not excuse failed on the device
    assert "Traceback" not in err


def test_operator_tflm_lacks_on_the_target(m4_firmware, tf_models):
    code, err = finish(start("run", tf_models["lacking"], "--cpu", "cortex-m4"), timeout=120)
    assert code == 3, err
    assert "SKIP_GRAM" in err and err.count("error:") == 1 and "Traceback" not in err


def test_float_model_on_the_target_runs(m4_firmware, tf_models):
    proc = start("run", tf_models["float"], "--cpu", "cortex-m4", "--input", "random:1")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "FULLY_CONNECTED" in out and "float32[1, 4]" in out


def test_model_larger_than_the_board(m4_firmware, tf_models):
    """17 MiB: more than the MPS2 boards' 16 MiB bulk RAM (the M55's MPS3 board holds 512 MiB)."""
    code, err = finish(start("run", tf_models["huge"], "--cpu", "cortex-m4"), timeout=120)
    assert code == 2, err
    assert "bytes" in err and "cortex-m55" in err          # names the CPUs whose board can hold it
    assert err.count("error:") == 1 and "Traceback" not in err


def test_a_damaged_cache_entry_is_built_again(m4_firmware, tmp_path):
    elf = m4_firmware.elf
    elf.write_bytes(elf.read_bytes()[:4096])         # truncated, as by a full disk
    proc = start("build", "--cpu", "cortex-m4", "--kernels", "reference")
    out, err = proc.communicate(timeout=1800)
    assert proc.returncode == 0, err
    assert "is damaged" in err and Path(out.strip()) == elf
    from simrun.device.build import load_entry
    assert load_entry(elf.parent) is not None and elf.stat().st_size > 100_000

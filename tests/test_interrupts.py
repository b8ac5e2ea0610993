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
    from simrun.device import fixture
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
    time.sleep(0.5)
    left = [pid for pid, name in pgid_children if Path(f"/proc/{pid}").exists()
            and "Z" not in Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]]
    assert not left, f"build processes left running: {left}"
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
def conv_model(tmp_path_factory):
    pytest.importorskip("tensorflow", reason="the model is built with TensorFlow")
    from testmodels import conv_logistic_int8
    return conv_logistic_int8(tmp_path_factory.mktemp("models"))


# --- on the TFLM firmware (needs sources) -----------------------------------------------------

@pytest.fixture(scope="module")
def tf_models(tmp_path_factory):
    """A float model whose WHILE loop runs for hours, a small float Dense model, an int8 model
    with an operator TFLM lacks and one larger than any board's bulk memory."""
    tf = pytest.importorskip("tensorflow", reason="the models are built with TensorFlow")
    from test_bad_inputs import _huge_buffer, _op_tflm_lacks, patched_model
    from testmodels import conv_logistic_int8
    d = tmp_path_factory.mktemp("tfmodels")

    @tf.function(input_signature=[tf.TensorSpec([1], tf.float32)])
    def endless(x):
        _, y = tf.while_loop(lambda i, x: i < 2_000_000_000, lambda i, x: (i + 1, x + 1.0),
                             [tf.constant(0), x])
        return y

    (d / "while.tflite").write_bytes(
        tf.lite.TFLiteConverter.from_concrete_functions([endless.get_concrete_function()], endless).convert())
    dense = tf.keras.Sequential([tf.keras.Input(shape=(8,)), tf.keras.layers.Dense(4, activation="relu")])
    (d / "float.tflite").write_bytes(tf.lite.TFLiteConverter.from_keras_model(dense).convert())
    conv = conv_logistic_int8(d)
    return {"while": d / "while.tflite", "float": d / "float.tflite",
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

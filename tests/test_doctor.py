"""`simrun doctor`: names what is missing with its fix and exits 4; 0 when the emulated targets can run."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from conftest import REPO

pytestmark = pytest.mark.integration          # each test runs `simrun doctor` in a child process


def doctor(tmp_path, path: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": path, "PYTHONPATH": str(REPO), "SIMRUN_CACHE_DIR": str(tmp_path / "cache")}
    return subprocess.run([sys.executable, "-m", "simrun", "doctor", *args], capture_output=True, text=True,
                          env=env, timeout=120, cwd=tmp_path)


def test_without_the_arm_toolchain_doctor_names_it_and_fails(tmp_path):
    # A PATH holding everything of the real one except the Arm toolchain.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for d in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(d):
            continue
        for name in os.listdir(d):
            if not name.startswith("arm-none-eabi-") and not (bin_dir / name).exists():
                (bin_dir / name).symlink_to(os.path.join(d, name))
    out = doctor(tmp_path, str(bin_dir))
    assert out.returncode == 4, out.stdout + out.stderr
    line = next(ln for ln in out.stdout.splitlines() if " arm-none-eabi-gcc " in ln)
    assert line.startswith("MISSING")
    assert "fix: apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi" in out.stdout
    assert "missing arm-none-eabi-gcc" in out.stderr and "Traceback" not in out.stderr


def test_an_unwritable_cache_and_a_partial_sources_dir_are_named(tmp_path):
    (tmp_path / "sources" / "tflite-micro").mkdir(parents=True)
    out = doctor(tmp_path, os.environ["PATH"], "--cache-dir", "/proc/simrun-cache",
                 "--sources", str(tmp_path / "sources"))
    assert out.returncode == 4
    assert "MISSING  cache" in out.stdout and "/proc/simrun-cache is not writable" in out.stdout
    assert "lacks tflite-micro, CMSIS-NN" in out.stdout


def test_a_complete_machine_passes(tmp_path):
    needed = ("arm-none-eabi-gcc", "arm-none-eabi-g++", "qemu-system-arm", "cmake")
    if not all(shutil.which(t) for t in needed):
        import pytest
        pytest.skip(f"needs {', '.join(needed)} on PATH")
    out = doctor(tmp_path, os.environ["PATH"])
    assert out.returncode == 0, out.stdout + out.stderr
    assert "MISSING" not in out.stdout
    assert "OK       qemu-system-arm  " in out.stdout.replace("qemu-system-arm     ", "qemu-system-arm  ")
    assert f"cache" in out.stdout and str(tmp_path / "cache") in out.stdout

"""The installed package carries every file a run needs, whatever the working directory.

Builds the wheel from a copy of this checkout, installs it into a fresh virtual
environment and runs simrun from outside the checkout. The venv is created with
--system-site-packages and the wheel installed with --no-deps: installing
TensorFlow, LiteRT and tflite-micro again would take minutes and network, and
those packages are not what this test is about (the files inside simrun are).
The test checks that `simrun` in the venv is the wheel's copy, not the checkout.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import REPO
from simrun import resources

pytestmark = pytest.mark.slow


def clean_env(tmp: Path, **extra: str) -> dict:
    """No PYTHONPATH (it would import the checkout), no sources, a fresh cache."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "SIMRUN_SOURCES_DIR", "VIRTUAL_ENV")}
    env["SIMRUN_CACHE_DIR"] = str(tmp / "cache")
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    # Build from a copy: an in-tree build would leave build/ and *.egg-info in the checkout.
    src = tmp / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(".git", "build", "*.egg-info", "__pycache__",
                                                             ".pytest_cache", "simrun-report"))
    # The installed setuptools and wheel when they are there (no download); else pip fetches
    # them from PyPI into an isolated build environment.
    have_backend = all(importlib.util.find_spec(m) for m in ("setuptools", "wheel"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--disable-pip-version-check",
                    *(["--no-build-isolation"] if have_backend else []), "-w", str(tmp / "dist"), str(src)],
                   check=True, capture_output=True, text=True, timeout=600)
    (wheel,) = (tmp / "dist").glob("simrun-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for entry in ("CMakeLists.txt", "cmake/arm-none-eabi.cmake", "firmware/fixture/fixture.c",
                  "firmware/src/runner.cc", "firmware/boards/sections.ld", "firmware/include/simrun_abi.h",
                  "renode/mps3-an547.repl", "qemu_plugin/insn_count.c"):
        assert f"simrun/_resources/{entry}" in names, f"wheel lacks {entry}"
    assert "simrun/data/policy-default.toml" in names
    # --without-pip: no ensurepip (Debian splits it into python3-venv); this pip installs into it.
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(tmp / "venv")],
                   check=True, timeout=120)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(tmp / "venv" / "bin" / "python"), "install",
                    "-q", "--no-deps", "--no-index", "--disable-pip-version-check", str(wheel)],
                   check=True, timeout=300)
    assert (tmp / "venv" / "bin" / "simrun").is_file()
    return tmp


def run_in(venv: Path, *argv: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    """Run argv with the venv's bin first on PATH, from a directory outside the checkout."""
    work = venv / "elsewhere"
    work.mkdir(exist_ok=True)
    e = clean_env(venv, **env)
    e["PATH"] = f"{venv / 'venv' / 'bin'}{os.pathsep}{e['PATH']}"
    return subprocess.run(list(argv), cwd=work, env=e, capture_output=True, text=True, timeout=timeout)


def test_the_wheel_finds_its_files_not_the_checkout(venv):
    out = run_in(venv, "python", "-c",
                 "import json, simrun, simrun.resources as r; "
                 "print(json.dumps([simrun.__file__, str(r.root())]))")
    assert out.returncode == 0, out.stderr
    module, root = json.loads(out.stdout)
    site = str(venv / "venv")
    assert module.startswith(site), f"imported {module}, not the wheel"
    assert root.startswith(site) and root.endswith("_resources")
    assert not root.startswith(str(REPO))
    doctor = run_in(venv, "simrun", "doctor")
    line = next(ln for ln in doctor.stdout.splitlines() if " simrun files " in ln)
    assert line.startswith("OK") and root in line, doctor.stdout


def test_the_checkout_uses_its_own_files():
    assert resources.root() == REPO.resolve()
    assert resources.path("firmware", "fixture", "fixture.c").is_file()


@pytest.mark.qemu
def test_fixture_session_from_the_wheel(venv, qemu, arm_gcc):
    script = """
import numpy as np
from simrun.device import fixture
from simrun.device.session import Session
elf = fixture.build_fixture("cortex-m4")
model = fixture.demo_model(seed=3)
x = np.random.default_rng(1).integers(-128, 128, (1, 64)).astype(np.int8)
with Session(elf, cpu="cortex-m4", timeout=20) as s:
    s.load_model(model.to_bytes(), raw=True)
    cap = s.invoke([x])
ref = fixture.reference(model, x)
assert all(np.array_equal(r.outputs[0].values, e) for r, e in zip(cap.ops, ref, strict=True))
print(elf)
"""
    out = run_in(venv, "python", "-c", script, timeout=120)
    assert out.returncode == 0, out.stderr
    elf = Path(out.stdout.strip())
    assert elf.is_file() and str(elf).startswith(str(venv / "cache"))
    # The same through the CLI: `simrun run --raw --elf` on the fixture.
    model = venv / "elsewhere" / "fixture.bin"
    from simrun.device import fixture
    model.write_bytes(fixture.demo_model(seed=3).to_bytes())
    out = run_in(venv, "simrun", "run", str(model), "--raw", "--elf", str(elf), "--cpu", "cortex-m4",
                 "--input", "random:1", "--out", "cap.npz", timeout=120)
    assert out.returncode == 0, out.stderr
    assert "FULLY_CONNECTED" in out.stdout and (venv / "elsewhere" / "cap.npz").is_file()


@pytest.mark.qemu
def test_build_reaches_the_sources_step_from_the_wheel(venv, arm_gcc):
    """Without sources, CMake runs from the packaged CMakeLists.txt until it needs TFLM:
    then the sources error (exit 4), not a FileNotFoundError for CMakeLists.txt."""
    if not shutil.which("cmake"):
        pytest.skip("cmake not on PATH")
    empty = venv / "no-sources"
    empty.mkdir(exist_ok=True)
    # An empty sources dir fails before CMake; without one CMake starts and its download fails
    # offline. Both must end in the sources message.
    out = run_in(venv, "simrun", "build", "--cpu", "cortex-m4", "--kernels", "reference",
                 "--sources", str(empty))
    assert out.returncode == 4, out.stderr
    assert "lacks tflite-micro" in out.stderr and "Traceback" not in out.stderr
    configured = run_in(venv, "simrun", "build", "--cpu", "cortex-m4", "--kernels", "reference",
                        GIT_ALLOW_PROTOCOL="none")   # no download even where a network exists
    assert "Traceback" not in configured.stderr and "FileNotFoundError" not in configured.stderr
    assert configured.returncode == 4, configured.stderr
    assert "configuring" in configured.stderr and "could not download" in configured.stderr
    trees = list((venv / "cache" / "build").iterdir())
    assert trees and all(t.name.endswith(f"-{root_id_in(venv)}") for t in trees)


def root_id_in(venv: Path) -> str:
    out = run_in(venv, "python", "-c", "from simrun import resources; print(resources.root_id())")
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()

"""Every bench script runs, in a quick mode, so none rots (issue 10: diff_bench died with an
AttributeError for weeks). The figures themselves are not judged here: they are printed by the
scripts for people, from one run; a test only checks that each script runs and prints its figures."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO.parent / "shared" / "models"
# script: (arguments for a quick run, what its output must contain, needs QEMU + arm-none-eabi-gcc)
QUICK = {
    "build_time.py": (["--quick", "--cpu", "cortex-m4"], ["cold  cortex-m4 fixture", "warm  cortex-m4 fixture"], True),
    "compare_bench.py": (["--layers", "4", "--values", "512"], ["compare ", "reports ", "total "], False),
    "diff_bench.py": (["--quick", "--model", str(MODELS / "hello_world_int8.tflite")],
                      ["host backends only: --quick", "tflm-host", "report generation:"], False),
    "report_bench.py": (["--ops", "80", "--inputs", "2", "--values", "64", "--no-browser"],
                        ["write_reports", "Model Explorer overlays", "browser load"], False),
    "suite_bench.py": (["--quick"], ["machine: ", "--jobs 1: 2 models", "throughput ratio --jobs 2 / --jobs 1", "peak memory of one job: "], False),
    "diagnose_bench.py": (["--model", str(MODELS / "hello_world_int8.tflite")], ["tflm-host"], False),
    # Without QEMU's plugin header (no network, no SIMRUN_QEMU_SOURCE_DIR) it prints why and skips.
    "cost_bench.py": (["--quick", "--cpu", "cortex-m4"], ["machine: ", "plugin"], True),
    "emulator_bench.py": (["--quick", "--cpu", "cortex-m4"], ["machine: ", "mapped", "skipped TFLM figures: --quick"],
                          True),
    # Without a renode on PATH it prints the QEMU run and why Renode was skipped.
    "renode_bench.py": (["--quick"], ["machine: ", "run: cortex-m4, the fixture", "QEMU"], True),
}


def test_every_bench_script_has_a_quick_run():
    scripts = {p.name for p in (REPO / "bench").glob("*.py")} - {"common.py"}
    assert scripts == set(QUICK), "add the new bench script to QUICK in tests/test_bench.py"


@pytest.mark.integration
@pytest.mark.parametrize("script", sorted(QUICK))
def test_bench_script_runs(script, request, tmp_path):
    args, expected, needs_emulator = QUICK[script]
    if needs_emulator:
        request.getfixturevalue("qemu")
        request.getfixturevalue("arm_gcc")
    env = dict(os.environ, PYTHONPATH=str(REPO), SIMRUN_CACHE_DIR=str(tmp_path / "cache"), MPLBACKEND="Agg")
    env.pop("SIMRUN_SOURCES_DIR", None)         # quick: host backends and the fixture only
    proc = subprocess.run([sys.executable, str(REPO / "bench" / script), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{script} exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    for text in expected:
        assert text in proc.stdout, f"{script} did not print {text!r}:\n{proc.stdout[-2000:]}"

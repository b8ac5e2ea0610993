"""The Python API (simrun.diff), the assertion helpers (simrun.testing) and the pytest plugin."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import simrun
from simrun.analysis.compare import compare
from simrun.analysis.diffrun import DiffRun
from simrun.analysis.policy import Policy
from simrun.analysis.result import DiffResult, judge
from simrun.errors import BadInput
from simrun.testing import assert_bit_exact, assert_max_abs_delta, assert_no_own_error, assert_passed

from synthetic_captures import FakeModel, attach_diagnosis, base_layers, make_capture, off_by, sample_run

REPO = Path(__file__).resolve().parents[1]
DEVICE = "target:cortex-m55:cmsis-nn"


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def _pytest(*args, cwd: Path, env: dict | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "simrun.pytest_plugin", "-p", "no:cacheprovider",
                           *args], cwd=cwd, env=env or _env(), capture_output=True, text=True, timeout=timeout)


# --- the API ------------------------------------------------------------------------
def test_import_simrun_stays_cheap():
    code = ("import sys, simrun; print(sorted(m for m in sys.modules if m.startswith('simrun') "
            "or m in ('numpy', 'tensorflow')))")
    out = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['simrun', 'simrun.version']"      # the version string, nothing heavy
    assert simrun.diff is __import__("simrun.api", fromlist=["diff"]).diff
    assert simrun.DiffResult is DiffResult
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        simrun.nope  # noqa: B018


def test_bad_arguments_are_the_clis_messages(models_dir):
    model = models_dir / "hello_world_int8.tflite"
    with pytest.raises(BadInput, match="unknown backend 'tflm-hots'"):
        simrun.diff(model, backends="tflm-hots")
    with pytest.raises(BadInput, match="unknown CPU"):
        simrun.diff(model, cpu="cortex-m99")
    with pytest.raises(BadInput, match=r"inputs\[1\]: a dict"):
        simrun.diff(model, inputs=["random:0", {}], backends="tflm-host,tflite-reference")
    with pytest.raises(BadInput, match=r"inputs\[0\]: shape \(3,\) does not fit"):
        simrun.diff(model, inputs=[np.zeros(3, np.int8)], backends="tflm-host,tflite-reference")
    with pytest.raises(BadInput, match="reference tflite-optimized: not among the backends"):
        simrun.diff(model, backends=["tflm-host", "tflite-reference"], reference="tflite-optimized")
    for jobs in (0, 1.5, True):
        with pytest.raises(BadInput, match=r"jobs .*: give a whole number of at least 1"):
            simrun.diff(model, backends="tflm-host,tflite-reference", jobs=jobs)


@pytest.mark.backends
def test_diff_takes_arrays_and_specs_and_returns_the_typed_result(models_dir, tmp_path):
    model = models_dir / "hello_world_int8.tflite"
    events = []
    result = simrun.diff(model, inputs=[np.zeros((1, 1), np.int8), "random:3"],
                         backends=["tflite-reference", "tflm-host"], diagnose=False, report=tmp_path / "r",
                         progress=lambda label, event, secs, msg: events.append((label, event)))
    assert isinstance(result, DiffResult)
    assert result.run.input_names == ["array0", "random:3"]
    assert result.passed and result.exit_code == 0 and result.diagnosis is None
    assert result.layers("tflm-host", "tflite-reference", input=1)[0].op_name == "FULLY_CONNECTED"
    assert ("tflm-host", "finished") in events
    assert (tmp_path / "r" / "summary.json").is_file() and (tmp_path / "r" / "junit.xml").is_file()
    # Both backends at once: the same verdict and per-layer statistics.
    both = simrun.diff(model, inputs=[np.zeros((1, 1), np.int8), "random:3"],
                       backends=["tflite-reference", "tflm-host"], diagnose=False, jobs=2)
    assert both.exit_code == result.exit_code
    assert both.layers("tflm-host", "tflite-reference", input=1) == result.layers("tflm-host", "tflite-reference", input=1)


# --- the assertion helpers ------------------------------------------------------------
def test_assertion_messages_read_like_the_terminal_diagnosis():
    # From nothing: on top of the default, desktop-only pairs are not judged.
    strict = judge(sample_run(backend_errors={}), Policy.parse('extends = "none"\n[defaults]\nmax_abs_delta = 0\n', "strict.toml"))
    with pytest.raises(AssertionError) as err:
        assert_passed(strict)
    text = str(err.value)
    assert text.startswith("simrun diff FAILED\ndiagnosis:\n  ")
    assert "FAIL: random:1: tflite-reference vs tflite-optimized: " in text
    assert text.rstrip().endswith("verdict: FAILED (policy: strict.toml); exit code 1")

    result = judge(sample_run(backend_errors={}))
    assert_passed(result)
    assert_bit_exact(result, "tflm-host", "tflite-reference")
    with pytest.raises(AssertionError, match=r"(?s)tflite-reference vs tflite-optimized are not bit-exact:\n"
                                             r"  random:1: first divergent layer 0:2/12 CONV_2D .*worst"):
        assert_bit_exact(result, "tflite-optimized", "tflite-reference")
    assert_max_abs_delta(result, "tflite-reference", "tflite-optimized", 6)
    with pytest.raises(AssertionError, match=r"1 layer\(s\) beyond max \|Δ\| 1:\n  cat.png: 0:4/14 RESHAPE"):
        assert_max_abs_delta(result, "tflite-reference", "tflite-optimized", 1, layer="RESHAPE")
    with pytest.raises(AssertionError, match="no diagnosis to read own error from"):
        assert_no_own_error(result, "tflite-reference", "tflite-optimized")
    with pytest.raises(AssertionError, match="no-such-backend"):
        assert_bit_exact(result, "tflite-reference", "no-such-backend")


def test_own_error_assertion_names_the_layer_and_its_cause():
    model, layers = FakeModel(), base_layers()
    device = off_by(layers, 2, 2)
    isolated = [v.copy() for v in layers]
    isolated[2] = device[2].copy()
    caps = {"tflm-host": make_capture("tflm-host", layers), DEVICE: make_capture(DEVICE, device)}
    run = DiffRun(model, [compare(model, caps)], input_names=["random:1"])
    attach_diagnosis(run, 0, "tflm-host", DEVICE, layers, isolated, {"0:2/12": "kernel"},
                     summary=f"tflm-host vs {DEVICE}: 1 of 6 layers introduce error")
    result = judge(run)
    assert_no_own_error(result, "tflm-host", DEVICE, layer="0:3")      # inherited only
    with pytest.raises(AssertionError) as err:
        assert_no_own_error(result, DEVICE, "tflm-host")
    assert str(err.value) == (f"tflm-host vs {DEVICE}: layers introduce error of their own:\n"
                              f"  random:1: 0:2/12 CONV_2D layer2/out: cause kernel: synthetic evidence for 0:2/12\n"
                              f"  random:1: tflm-host vs {DEVICE}: 1 of 6 layers introduce error")


# --- the pytest plugin, as a user runs it ------------------------------------------------
@pytest.mark.integration
def test_readme_example_passes_with_the_plugin(models_dir):
    env = _env() | {"SIMRUN_MODELS": str(models_dir)}
    proc = _pytest("-q", "examples/test_model_numerics.py", cwd=REPO, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout


def test_readme_example_is_the_file_in_examples():
    readme = (REPO / "README.md").read_text()
    example = (REPO / "examples" / "test_model_numerics.py").read_text()
    body = example[example.index("import os"):]
    assert body in readme


FAILING = """
from pathlib import Path
from simrun.testing import assert_bit_exact

def test_desktop_kernels_agree(simrun_diff):
    result = simrun_diff(Path({model!r}), backends="tflite-reference,tflite-optimized")
    assert_bit_exact(result, "tflite-reference", "tflite-optimized")
"""


@pytest.mark.integration
def test_a_failing_diff_shows_the_diagnosis_and_the_report_folder(models_dir, tmp_path):
    """kws_ref_model: LiteRT's XNNPACK path differs from its reference kernels from the first convolution on."""
    (tmp_path / "test_failing.py").write_text(FAILING.format(model=str(models_dir / "kws_ref_model.tflite")))
    proc = _pytest("-q", "--basetemp", str(tmp_path / "base"), cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = proc.stdout
    assert "AssertionError: tflite-reference vs tflite-optimized are not bit-exact:" in out
    assert "random:0: first divergent layer 0:0/" in out
    assert "XNNPACK" in out                                  # the diagnosis sentence names the cause
    assert "simrun diff kws_ref_model.tflite (report: " in out      # the plugin's "simrun" section
    report = next((tmp_path / "base").rglob("simrun-report/report.html"))
    assert report.is_file()


TWO = """
from pathlib import Path
import os

def test_int8(simrun_diff):
    result = simrun_diff(Path({int8!r}), backends="tflite-reference,tflm-host", diagnose=False)
    assert result.passed
    Path(os.environ["OUT"], "int8-" + os.environ.get("PYTEST_XDIST_WORKER", "main")).write_text("x")

def test_float(simrun_diff):
    result = simrun_diff(Path({float!r}), backends="tflite-reference,tflm-host", diagnose=False)
    assert result.exit_code == 0
    Path(os.environ["OUT"], "float-" + os.environ.get("PYTEST_XDIST_WORKER", "main")).write_text("x")
"""


@pytest.mark.integration
def test_plugin_runs_under_xdist(models_dir, tmp_path):
    pytest.importorskip("xdist")
    (tmp_path / "test_two.py").write_text(TWO.format(int8=str(models_dir / "hello_world_int8.tflite"),
                                                     float=str(models_dir / "hello_world_float.tflite")))
    out = tmp_path / "out"
    out.mkdir()
    proc = _pytest("-q", "-n", "2", "--basetemp", str(tmp_path / "base"), cwd=tmp_path,
                   env=_env() | {"OUT": str(out)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 passed" in proc.stdout
    workers = {p.name.split("-", 1)[1] for p in out.iterdir()}
    assert len(list(out.iterdir())) == 2 and workers <= {"gw0", "gw1"}


SESSION = """
import os
from pathlib import Path

def test_session(simrun_session):
    import numpy as np
    from simrun.device import fixture
    s = simrun_session(Path({elf!r}), cpu="cortex-m3", timeout=20)
    model = fixture.demo_model()
    s.load_model(model.to_bytes(), raw=True)
    x = np.arange(64, dtype=np.int8).reshape(1, 64)
    cap = s.invoke([x])
    np.testing.assert_array_equal(cap.outputs[0].values.ravel(), fixture.reference(model, x)[-1].ravel())
    assert os.path.exists(f"/proc/{{s.emulator_pid}}")
    Path({pid_file!r}).write_text(str(s.emulator_pid))

def test_firmware_needs_a_cpu(simrun_session):
    import pytest
    from simrun.errors import BadInput
    with pytest.raises(BadInput, match="give cpu="):
        simrun_session(Path({elf!r}))
"""


def test_session_fixture_stops_its_emulator(qemu, arm_gcc, tmp_path):
    from simrun.device import fixture
    elf = fixture.build_fixture("cortex-m3")
    pid_file = tmp_path / "pid"
    (tmp_path / "test_session.py").write_text(SESSION.format(elf=str(elf), pid_file=str(pid_file)))
    proc = _pytest("-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 passed" in proc.stdout
    assert not os.path.exists(f"/proc/{int(pid_file.read_text())}")


def test_entry_point_names_the_plugin_module():
    text = (REPO / "pyproject.toml").read_text()
    assert '[project.entry-points.pytest11]\n"simrun.pytest_plugin" = "simrun.pytest_plugin"' in text

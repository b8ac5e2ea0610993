"""The Robot Framework library: a failing scenario fails robot, the keywords
are documented, and the keywords work when called directly."""
from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from robot.api import ExecutionResult, SkipExecution

from simrun.capture import Capture, OpRecord, Quantization, Tensor
from simrun.errors import SimrunError
from simrun.model import Model
from simrun.robot.SimrunLibrary import COMPONENTS, SimrunLibrary

from conftest import REPO

ROBOT_TESTS = REPO / "robot_tests"


def _robot(*args: str, outdir: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "robot", "--outputdir", str(outdir),
                           "--consolecolors", "off", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=300)


@pytest.mark.integration
def test_scenario_designed_to_fail_fails_the_robot_run(tmp_path, models_dir):
    proc = _robot(str(ROBOT_TESTS / "expected_failures" / "backend_refusal_not_expected.robot"),
                  outdir=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr   # robot's rc = number of failed tests
    result = ExecutionResult(str(tmp_path / "output.xml"))
    tests = list(result.suite.all_tests)
    assert [t.status for t in tests] == ["FAIL"]
    message = tests[0].message
    assert message.startswith("BackendError: tflite-reference: "), message
    assert "quantized_dimension must be in range" in message


@pytest.mark.integration
def test_normal_suite_leaves_out_the_expected_failures_and_resolves_every_keyword(tmp_path):
    # --dryrun imports the library and checks every keyword name and argument count.
    proc = _robot("--dryrun", "--exclude", "expected-failure", str(ROBOT_TESTS), outdir=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    names = {t.longname for t in ExecutionResult(str(tmp_path / "output.xml")).suite.all_tests}
    assert names and not any("Expected Failures" in n for n in names)


@pytest.mark.integration
def test_libdoc_documents_every_public_keyword_with_an_example(tmp_path):
    out = tmp_path / "SimrunLibrary.json"
    proc = subprocess.run([sys.executable, "-m", "robot.libdoc", "simrun.robot.SimrunLibrary", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(out.read_text())
    documented = {kw["name"].lower().replace(" ", "_"): kw["doc"] for kw in doc["keywords"]}
    # Keywords are the @keyword methods of the library's components (robotframework-pythonlibcore).
    public = {name for component in COMPONENTS for name, fn in inspect.getmembers(component, inspect.isfunction)
              if hasattr(fn, "robot_name")}
    assert set(documented) == public
    required = {"build_firmware", "use_firmware", "build_fixture_firmware", "start_emulator_session",
                "stop_emulator_session", "load_model", "set_input_from_file", "set_random_input",
                "run_inference", "get_layer_output", "run_backend", "compare_variants", "compare_captures",
                "layer_mismatch_ratio_should_be_below", "first_divergent_layer_should_be",
                "outputs_should_match_within_policy", "backend_should_have_failed_with",
                "run_should_fail_with", "write_reports", "skip_unless_tflm_sources"}
    assert required <= set(documented), f"missing keywords: {required - set(documented)}"
    undocumented = [name for name, text in documented.items() if "Example" not in text or len(text) < 80]
    assert not undocumented, f"keywords without a description and an example: {undocumented}"
    assert doc["scope"] == "SUITE"
    # The committed HTML is regenerated with the command in simrun/robot/__init__.py.
    committed = (REPO / "docs" / "SimrunLibrary.html").read_text()
    stale = [kw["name"] for kw in doc["keywords"] if f'"name": "{kw["name"]}"' not in committed
             and f'"name":"{kw["name"]}"' not in committed]
    assert not stale, f"docs/SimrunLibrary.html lacks {stale}: regenerate it with libdoc"


# --- keywords called directly ----------------------------------------------------

def _capture(label: str, model: Model, values: list[np.ndarray]) -> Capture:
    ops = [OpRecord(op.subgraph, op.index, op.op_name,
                    [Tensor(out, model.tensor(op.subgraph, out).name, v, Quantization())])
           for op, v, out in zip(model.operators(), values, (op.outputs[0] for op in model.operators()))]
    return Capture(label, model.sha256, ops, [ops[-1].outputs[0]])


@pytest.fixture
def hello_world(models_dir):
    lib = SimrunLibrary()
    lib.load_model(str(models_dir / "hello_world_int8.tflite"))
    model = lib.context.model
    shapes = [model.tensor(op.subgraph, op.outputs[0]).shape for op in model.operators()]
    base = [np.arange(int(np.prod(s)), dtype=np.int8).reshape(s) for s in shapes]
    drifted = [b.copy() for b in base]
    drifted[1].flat[0] += 1                         # layer 0:1 differs in one value
    lib.context.store(_capture("tflite-reference", model, base))
    lib.context.store(_capture("tflm-host", model, drifted))
    return lib, base


def test_get_layer_output_by_index_and_by_tensor_name(hello_world):
    lib, base = hello_world
    np.testing.assert_array_equal(lib.get_layer_output("0:2", label="tflite-reference"), base[2])
    np.testing.assert_array_equal(lib.get_layer_output("2", label="tflite-reference"), base[2])
    name = lib.context.model.tensor(0, lib.context.model.operators()[1].outputs[0]).name
    assert lib.get_layer_output(name).flat[0] == base[1].flat[0] + 1   # last stored: tflm-host
    with pytest.raises(SimrunError, match="no operator 0:7"):
        lib.get_layer_output("0:7")
    with pytest.raises(SimrunError, match="no layer or output tensor named 'nope'"):
        lib.get_layer_output("nope")


def test_comparison_assertions_report_the_drifting_layer(hello_world):
    lib, _ = hello_world
    lib.compare_captures("tflite-reference", "tflm-host")
    lib.first_divergent_layer_should_be("0:1")
    with pytest.raises(AssertionError, match="first divergent layer is 0:1 .*expected NONE"):
        lib.first_divergent_layer_should_be("NONE")
    lib.layer_mismatch_ratio_should_be_below(0.5)
    lib.layer_mismatch_ratio_should_be_below(1e-9, layer="0:0")
    with pytest.raises(AssertionError, match=r"mismatch ratio not below 1e-09 in 1 layer\(s\): 0:1/"):
        lib.layer_mismatch_ratio_should_be_below(1e-9)
    lib.outputs_should_match_within_policy()            # default policy: |Δ| <= 1 passes
    strict = REPO / "robot_tests" / "resources" / "bit_exact.toml"
    with pytest.raises(AssertionError, match="policy failed: .*tflite-reference vs tflm-host"):
        lib.outputs_should_match_within_policy(str(strict))


def test_task_keywords_judge_decisions_of_the_comparison(hello_world, tmp_path):
    lib, _ = hello_world
    with pytest.raises(SimrunError, match="no comparison"):
        lib.task_decisions_should_agree()
    lib.set_task("classify", "top_k=1")
    lib.compare_captures("tflite-reference", "tflm-host")
    lib.task_decisions_should_agree()                  # one output value: the same class
    assert lib.get_task_metric("top1_agreement") == 1.0
    with pytest.raises(SimrunError, match="task metric 'nope' not found"):
        lib.get_task_metric("nope")
    # a decoder whose class is the backend's own name: decisions differ on every input
    (tmp_path / "dec.py").write_text("def decode(outputs, context):\n    return context.backend\n")
    lib.set_task(f"python:{tmp_path / 'dec.py'}:decode")
    lib.compare_captures("tflite-reference", "tflm-host")      # the task applies from the next comparison
    with pytest.raises(AssertionError, match="task decisions differ: tflite-reference vs tflm-host: "
                                             "top-1 class changes on 1 of 1 input"):
        lib.task_decisions_should_agree()
    with pytest.raises(SimrunError, match="unknown setting 'k'"):
        lib.set_task("classify", "k=3")


def test_backend_failure_assertion_and_missing_state_errors(models_dir):
    lib = SimrunLibrary()
    with pytest.raises(SimrunError, match="no model: call Load Model first"):
        lib.set_random_input(1)
    with pytest.raises(SimrunError, match="no emulator session"):
        lib.run_inference()
    with pytest.raises(AssertionError, match="backend tflm-host did not fail"):
        lib.backend_should_have_failed_with("tflm-host", "anything")
    lib.context.backend_errors["tflite-reference"] = "refused the model: quantized_dimension must be in range"
    lib.backend_should_have_failed_with("tflite-reference", "quantized_dimension")
    with pytest.raises(AssertionError, match="does not contain 'segfault'"):
        lib.backend_should_have_failed_with("tflite-reference", "segfault")
    with pytest.raises(SimrunError, match="no firmware: call Build Firmware"):
        lib.start_emulator_session()
    with pytest.raises(SimrunError, match="firmware ELF not found: /nonexistent.elf"):
        lib.use_firmware("/nonexistent.elf", "cortex-m4")
    lib.stop_emulator_session()                          # no session: nothing to stop, no error


LEAVES_SESSION_RUNNING = """\
*** Settings ***
Library    simrun.robot.SimrunLibrary

*** Test Cases ***
Session Left Running
    Build Fixture Firmware    cortex-m3
    Start Emulator Session    timeout=30
    Load Fixture Model
    ${lib} =    Get Library Instance    simrun.robot.SimrunLibrary
    ${pid} =    Set Variable    ${lib.context.session.emulator_pid}
    Should Be True    os.path.exists("/proc/${pid}")
    Set Global Variable    ${EMULATOR PID}    ${pid}
"""

CHECKS_IT_STOPPED = """\
*** Test Cases ***
Emulator Of The Previous Suite Is Gone
    Should Not Be True    os.path.exists("/proc/${EMULATOR PID}")    emulator ${EMULATOR PID} still running
"""


def test_library_stops_a_session_the_suite_left_running(tmp_path, qemu, arm_gcc):
    suites = tmp_path / "suites"
    suites.mkdir()
    (suites / "s1_leaves_session.robot").write_text(LEAVES_SESSION_RUNNING)
    (suites / "s2_checks_it_stopped.robot").write_text(CHECKS_IT_STOPPED)
    proc = _robot(str(suites), outdir=tmp_path / "out")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    statuses = [t.status for t in ExecutionResult(str(tmp_path / "out" / "output.xml")).suite.all_tests]
    assert statuses == ["PASS", "PASS"]


def test_tflm_scenarios_skip_with_the_reason_when_sources_are_absent(tmp_path, monkeypatch):
    lib = SimrunLibrary()
    monkeypatch.delenv("SIMRUN_SOURCES_DIR", raising=False)
    with pytest.raises(SkipExecution, match="needs local TFLM/CMSIS-NN source trees: .*SIMRUN_SOURCES_DIR"):
        lib.skip_unless_tflm_sources()
    monkeypatch.setenv("SIMRUN_SOURCES_DIR", str(tmp_path))
    with pytest.raises(SkipExecution, match=f"{tmp_path} lacks tflite-micro, CMSIS-NN"):
        lib.skip_unless_tflm_sources()


def test_loading_a_model_forgets_the_previous_models_results(hello_world, models_dir):
    lib, _ = hello_world
    lib.context.backend_errors["tflite-optimized"] = "refused the model"
    lib.compare_captures()
    lib.load_model(str(models_dir / "micro_speech_quantized.tflite"))
    with pytest.raises(AssertionError, match="backend tflite-optimized did not fail"):
        lib.backend_should_have_failed_with("tflite-optimized", "refused")
    with pytest.raises(SimrunError, match="no capture yet"):
        lib.get_model_output()
    with pytest.raises(SimrunError, match="no comparison"):
        lib.outputs_should_match_within_policy()

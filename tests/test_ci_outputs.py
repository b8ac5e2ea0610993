"""What a CI system reads after `simrun diff`: the exit code, junit.xml (read with ElementTree
and with junitparser, a JUnit consumer), the report folder, summary.json's provenance, and
summary.md / GitHub annotations. Host backends on the shared models, --no-diagnose."""
from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest

from simrun import __version__
from simrun.cli import main

junitparser = pytest.importorskip("junitparser", reason="pip install junitparser (the test extra)")

REPO = Path(__file__).resolve().parents[1]
# Both start from nothing (not the default policy): every pair judged, every backend error fails.
STRICT = 'extends = "none"\n[defaults]\npairs = ["*"]\nmax_abs_delta = 0\nmax_mismatch_ratio = 0.0\n'
FAIL_ON_BACKEND_ERRORS = 'extends = "none"\n[backend_errors]\n"*" = "fail"\n'


def cli(*argv, env: dict | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    saved = dict(os.environ)
    os.environ.update(env or {})
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = main([str(a) for a in argv])
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return code, out.getvalue(), err.getvalue()


# name -> (model, extra arguments, policy text or None, expected exit code)
CASES = {
    "pass": ("hello_world_int8", ["--backends", "tflite-reference,tflm-host"], None, 0),
    "policy fail": ("kws_ref_model", ["--backends", "tflite-reference,tflite-optimized"], STRICT, 1),
    "nothing compared": ("hello_world_int8", ["--backends", "tflm-host"], None, 1),
    "backend error": ("person_detect", ["--backends", "tflite-reference,tflm-host"], FAIL_ON_BACKEND_ERRORS, 3),
}


@pytest.fixture(scope="module")
def runs(models_dir, tmp_path_factory):
    """Every case once, as inside a GitHub Actions job."""
    done = {}
    for name, (model, extra, policy, _) in CASES.items():
        tmp = tmp_path_factory.mktemp(name.replace(" ", "-"))
        argv = ["diff", models_dir / f"{model}.tflite", *extra, "--no-diagnose", "--report", tmp / "R"]
        if policy is not None:
            (tmp / "policy.toml").write_text(policy)
            argv += ["--policy", tmp / "policy.toml"]
        step_summary = tmp / "step-summary.md"
        code, out, err = cli(*argv, env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(step_summary)})
        done[name] = dict(code=code, out=out, err=err, report=tmp / "R", step_summary=step_summary)
    return done


@pytest.mark.backends
@pytest.mark.parametrize("case", list(CASES))
def test_junit_agrees_with_the_exit_code(runs, case):
    r = runs[case]
    assert r["code"] == CASES[case][3], r["err"]
    # ElementTree: the declared counts
    root = ET.parse(r["report"] / "junit.xml").getroot()
    declared = int(root.get("failures")) + int(root.get("errors"))
    # junitparser: what a CI plugin counts, testcase by testcase
    xml = junitparser.JUnitXml.fromfile(str(r["report"] / "junit.xml"))
    bad, cases = 0, 0
    for suite in xml:
        assert suite.time is not None
        for case_ in suite:
            cases += 1
            assert case_.time is not None and "." not in case_.classname.removeprefix("simrun.")
            bad += any(isinstance(x, (junitparser.Failure, junitparser.Error)) for x in case_.result)
    assert cases > 0
    assert (bad > 0) == (r["code"] != 0) and declared == bad
    assert json.loads((r["report"] / "summary.json").read_text())["exit_code"] == r["code"]


def _cases(report: Path) -> dict[str, ET.Element]:
    return {c.get("name"): c for c in ET.parse(report / "junit.xml").getroot().iter("testcase")}


@pytest.mark.backends
def test_each_failure_is_where_ci_shows_it(runs):
    failing = _cases(runs["policy fail"]["report"])["random:0: tflite-reference vs tflite-optimized"]
    message = failing.find("failure").get("message")
    assert message.startswith("12 of 14 layers out of tolerance; worst 0:") and "(first failing 0:0/22" in message
    assert len(failing.find("failure").text.splitlines()) == 12          # every failing layer
    nothing = _cases(runs["nothing compared"]["report"])
    assert nothing["verdict: nothing was compared"].find("failure").get("message").startswith(
        "nothing was compared: fewer than two backends produced results (only tflm-host)")
    refused = _cases(runs["backend error"]["report"])["backend tflite-reference"].find("error")
    assert "quantized_dimension must be in range" in refused.get("message")
    passed = _cases(runs["pass"]["report"])
    assert set(passed) == {"backend tflite-reference", "backend tflm-host", "random:0: tflite-reference vs tflm-host"}


@pytest.mark.backends
def test_summary_json_says_what_produced_it(runs, models_dir):
    r = runs["policy fail"]
    doc = json.loads((r["report"] / "summary.json").read_text())
    assert doc["schema_version"] == 2 and doc["complete"] is True and doc["exit_code"] == 1
    run = doc["run"]
    assert run["simrun"] == __version__ and run["command"][:2] == ["simrun", "diff"]
    assert run["exit_code"] == 1 and run["exit_meaning"].startswith("the tolerance policy failed")
    assert run["baseline_file"] is None
    assert run["started"] < run["finished"] and run["seconds"] > 0
    assert set(run["backend_seconds"]) == {"tflite-reference", "tflite-optimized"}
    assert all(s > 0 for s in run["backend_seconds"].values())
    assert run["host"]["python"] == ".".join(map(str, sys.version_info[:3])) and run["host"]["os"]
    model = models_dir / "kws_ref_model.tflite"
    assert run["model_file"] == {"path": str(model), "sha256": hashlib.sha256(model.read_bytes()).hexdigest()}
    assert doc["model"]["sha256"] == run["model_file"]["sha256"]
    policy = r["report"].parent / "policy.toml"
    assert doc["policy"] == {"source": str(policy), "path": str(policy), "text": STRICT,
                             "sha256": hashlib.sha256(STRICT.encode()).hexdigest()}
    assert run["input_files"] == [{"spec": "random:0", "path": None, "sha256": None}]


@pytest.mark.backends
def test_an_npy_input_is_recorded_by_path_and_hash(models_dir, tmp_path):
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((1, 1), np.int8))
    code, _, err = cli("diff", models_dir / "hello_world_int8.tflite", "--input", x, "--backends",
                       "tflite-reference,tflm-host", "--no-diagnose", "--report", tmp_path / "R")
    assert code == 0, err
    doc = json.loads((tmp_path / "R" / "summary.json").read_text())
    assert doc["inputs"] == ["x.npy"]
    assert doc["run"]["input_files"] == [{"spec": str(x), "path": str(x),
                                          "sha256": hashlib.sha256(x.read_bytes()).hexdigest()}]
    assert doc["policy"]["source"] == "built-in" and "[defaults]" in doc["policy"]["text"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["R", "x.npy"]     # no temporary folder left


@pytest.mark.backends
def test_summary_md_and_github_annotations(runs):
    r = runs["policy fail"]
    md = (r["report"] / "summary.md").read_text()
    assert md.startswith("## simrun diff kws_ref_model.tflite: FAILED (exit 1)\n")
    assert "- FAILED: random:0: tflite-reference vs tflite-optimized: 12 layer(s) out of tolerance" in md
    assert "| 1 `tflite-reference` | · | Δ" in md and "✗" in md           # the agreement matrix
    assert "### Failing pairs" in md and "| random:0 | `tflite-reference` vs `tflite-optimized` | 0:0/22 CONV_2D" in md
    assert r["step_summary"].read_text() == md + "\n"                     # appended to $GITHUB_STEP_SUMMARY
    errors = [line for line in r["out"].splitlines() if line.startswith("::error")]
    assert errors == ["::error title=simrun diff kws_ref_model.tflite::random:0: tflite-reference vs "
                      "tflite-optimized: 12 layer(s) out of tolerance, first 0:0/22 CONV_2D "
                      "functional_1/activation/Relu (max |Δ| 1 > 0; mismatch 0.11%25 > 0.00%25)"]   # % encoded, as GitHub wants
    assert not [line for line in runs["pass"]["out"].splitlines() if line.startswith("::")]


@pytest.mark.backends
def test_no_annotations_outside_github_actions(models_dir, tmp_path):
    code, out, _ = cli("diff", models_dir / "hello_world_int8.tflite", "--backends", "tflm-host",
                       "--no-diagnose", "--report", tmp_path / "R")
    assert code == 1 and "::error" not in out
    assert (tmp_path / "R" / "summary.md").read_text().startswith("## simrun diff hello_world_int8.tflite: FAILED")


# --- report folders ------------------------------------------------------------------------

def _pass_into(models_dir, report: Path) -> None:
    code, _, err = cli("diff", models_dir / "hello_world_int8.tflite", "--backends", "tflite-reference,tflm-host",
                       "--no-diagnose", "--report", report)
    assert code == 0, err
    assert json.loads((report / "summary.json").read_text())["verdict"]["passed"]


def _assert_stopped(report: Path, code: int, words: str) -> dict:
    assert sorted(p.name for p in report.iterdir()) == ["junit.xml", "summary.json", "summary.md"]
    doc = json.loads((report / "summary.json").read_text())
    assert doc["complete"] is False and doc["exit_code"] == code and doc["verdict"]["passed"] is False
    assert words in doc["error"] and doc["run"]["exit_code"] == code
    xml = junitparser.JUnitXml.fromfile(str(report / "junit.xml"))
    results = [x for suite in xml for case in suite for x in case.result]
    assert len(results) == 1 and isinstance(results[0], junitparser.Error) and words in results[0].message
    assert f"STOPPED (exit {code})" in (report / "summary.md").read_text()
    return doc


@pytest.mark.backends
def test_a_failing_run_after_a_pass_leaves_no_passing_file(models_dir, tmp_path):
    report = tmp_path / "R"
    _pass_into(models_dir, report)
    code, _, err = cli("diff", models_dir / "hello_world_int8.tflite", "--input", tmp_path / "missing.npy",
                       "--report", report)
    assert code == 2 and "missing.npy" in err
    _assert_stopped(report, 2, "missing.npy")
    assert [p.name for p in tmp_path.iterdir()] == ["R"]


@pytest.mark.integration
def test_an_interrupted_run_after_a_pass_leaves_no_passing_file(models_dir, tmp_path):
    report = tmp_path / "R"
    _pass_into(models_dir, report)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-m", "simrun", "diff", str(models_dir / "person_detect.tflite"),
                             "--backends", "tflm-host,tflite-reference", "--count", "20", "--no-diagnose",
                             "--report", str(report)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, text=True)
    try:
        seen = ""
        deadline = time.monotonic() + 60
        while "tflm-host: started" not in seen and time.monotonic() < deadline:
            seen += proc.stderr.readline()
        assert "tflm-host: started" in seen
        proc.send_signal(signal.SIGINT)             # Ctrl-C while the backend runs
        _, rest = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, seen + rest
    _assert_stopped(report, 130, "interrupted")


@pytest.mark.integration
def test_a_folder_that_is_not_a_report_is_refused_not_replaced(models_dir, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    code, _, err = cli("diff", models_dir / "hello_world_int8.tflite", "--report", tmp_path)
    assert code == 2 and "not a simrun report" in err
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


@pytest.mark.integration
def test_concurrent_runs_into_different_folders(models_dir, tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    procs = [subprocess.Popen([sys.executable, "-m", "simrun", "diff", str(models_dir / "hello_world_int8.tflite"),
                               "--input", f"random:{i}", "--backends", "tflite-reference,tflm-host", "--no-diagnose",
                               "--report", str(tmp_path / f"R{i}")], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, env=env, text=True) for i in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    for i in range(2):
        doc = json.loads((tmp_path / f"R{i}" / "summary.json").read_text())
        assert doc["inputs"] == [f"random:{i}"] and doc["run"]["command"][-1] == str(tmp_path / f"R{i}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["R0", "R1"]


def test_version():
    out = io.StringIO()
    with redirect_stdout(out), pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and out.getvalue() == f"simrun {__version__}\n"


# --- the same rules without running a backend (the unit selection) ------------------------

def test_a_stopped_run_replaces_a_passing_folder_whole(tmp_path):
    """Pure Python: a synthetic passing report, then a run that raises inside reporting_stops."""
    from simrun.analysis.policy import Policy
    from simrun.analysis.result import judge
    from simrun.errors import BadInput
    from simrun.report import write_reports
    from simrun.report.folder import ReportFolder
    from simrun.report.outcome import reporting_stops
    from simrun.report.provenance import RunRecord
    from synthetic_captures import sample_run

    report = tmp_path / "R"
    passing = Policy.parse('[defaults]\npairs = ["tflite-reference vs tflm-host"]\n'
                           '[backend_errors]\n"*" = "warn"\n', "p.toml")
    result = judge(sample_run(), passing)
    assert result.exit_code == 0
    written = write_reports(result, report)
    assert written["html"].is_file() and (report / "plots").is_dir()
    record = RunRecord("diff", ["simrun", "diff", "m.tflite"], model_path=str(tmp_path / "m.tflite"))
    with pytest.raises(BadInput):
        with reporting_stops(ReportFolder(report), record, "simrun diff"):
            raise BadInput("m.tflite: no such file")
    doc = _assert_stopped(report, 2, "m.tflite: no such file")
    assert doc["run"]["command"] == ["simrun", "diff", "m.tflite"] and doc["run"]["model_file"]["sha256"] is None
    assert [p.name for p in tmp_path.iterdir()] == ["R"]              # no temporary folder left


def test_junit_failures_follow_the_exit_code_on_synthetic_runs(tmp_path):
    from simrun.analysis.diffrun import DiffRun
    from simrun.analysis.policy import Policy
    from simrun.analysis.result import judge
    from simrun.report import junit
    from synthetic_captures import FakeModel, sample_run

    runs = {"backend error": sample_run(),                       # the default policy fails on it: exit 3
            "nothing compared": DiffRun(FakeModel(), [], backend_errors={}),
            "pass": sample_run(backend_errors={})}
    for name, run in runs.items():
        result = judge(run, Policy.default())
        root = junit.build(run, result.verdict, exit_code=result.exit_code).getroot()
        bad = int(root.get("failures")) + int(root.get("errors"))
        assert (bad > 0) == (result.exit_code != 0), name
    assert judge(runs["pass"]).exit_code == 0 and judge(runs["backend error"]).exit_code == 3

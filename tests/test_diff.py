"""`simrun diff` end to end: our own int8 model shows where desktop TFLite's optimized
kernels leave the reference ones; real models show refusing and crashing backends as
reported errors; with TFLM sources, the emulated Cortex-M55 matches host TFLM."""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from simrun.commands import diff
from simrun.errors import SimrunError
from simrun.model import Model

from testmodels import conv_logistic_int8


def simrun_diff(*argv) -> int:
    """What `simrun diff ...` does, through the diff command's own parser (the CLI's
    SimrunError -> its exit_code rule included)."""
    parser = argparse.ArgumentParser(prog="simrun")
    diff.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["diff", *map(str, argv)])
    try:
        return args.func(args)
    except SimrunError as err:
        return err.exit_code


@pytest.fixture(scope="session")
def own_model(tf_model) -> Path:
    return tf_model(conv_logistic_int8)


def summary(report_dir: Path) -> dict:
    return json.loads((report_dir / "summary.json").read_text())


def pairs(s: dict, a: str, b: str) -> list[dict]:
    found = [p for c in s["comparisons"] for p in c["pairs"] if (p["a"], p["b"]) in ((a, b), (b, a))]
    assert found, f"no pair {a} vs {b} in the report"
    return found


def test_own_model_is_what_the_issue_asks_for(own_model):
    model = Model.from_file(own_model)
    names = [op.op_name for op in model.operators()]
    assert names.count("CONV_2D") >= 3 and "DEPTHWISE_CONV_2D" in names and names[-1] == "LOGISTIC"
    conv_weights = model.tensor(0, model.operators()[0].inputs[1])
    assert conv_weights.dtype.name == "int8" and conv_weights.quantization.per_channel


def test_optimized_differs_from_reference_and_host_tflm_does_not(own_model, tmp_path):
    # Judge only the bit-exact pair: the exit code then says whether it held.
    policy = tmp_path / "policy.toml"
    policy.write_text('[defaults]\npairs = ["tflite-reference vs tflm-host"]\n'
                      'max_abs_delta = 0\nmax_mismatch_ratio = 0.0\n')
    out = tmp_path / "report"
    rc = simrun_diff(own_model, "--input", "random:1", "--count", "3",
                     "--policy", policy, "--report", out)
    s = summary(out)
    assert rc == 0 and s["verdict"]["passed"]
    assert not s["backend_errors"]
    assert set(s["versions"]) == {"tflite-optimized", "tflite-reference", "tflm-host"}
    assert s["versions"]["tflite-optimized"]["resolver"] == "BUILTIN"
    assert "tflite-micro" in s["versions"]["tflm-host"]

    optimized = pairs(s, "tflite-reference", "tflite-optimized")
    assert len(optimized) == 3
    for p in optimized:
        assert p["mismatch_ratio"] > 0 and p["max_abs_delta"] >= 1
        assert p["first_divergent"]["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D")
    host = pairs(s, "tflite-reference", "tflm-host")
    for p in host:
        assert p["layers_compared"] == p["layers_total"] == len(Model.from_file(own_model).operators())
        assert p["mismatch_ratio"] == 0 and p["max_abs_delta"] == 0 and p["first_divergent"] is None


def test_the_optimized_difference_is_xnnpack_not_tflite_kernels(own_model, tmp_path):
    """LiteRT's own optimized kernels, without the default XNNPACK delegate, agree with
    the reference kernels on our model; with XNNPACK they do not (ai-edge-litert 2.3)."""
    out = tmp_path / "report"
    simrun_diff(own_model, "--input", "random:1", "--count", "2", "--report", out, "--backends",
                "tflite-reference,tflite-optimized,tflite-optimized-nodelegate")
    s = summary(out)
    assert not s["backend_errors"]
    assert s["versions"]["tflite-optimized-nodelegate"]["resolver"] == "BUILTIN_WITHOUT_DEFAULT_DELEGATES"
    for p in pairs(s, "tflite-reference", "tflite-optimized-nodelegate"):
        assert p["mismatch_ratio"] == 0 and p["first_divergent"] is None
    for p in pairs(s, "tflite-reference", "tflite-optimized"):
        assert p["mismatch_ratio"] > 0


def test_a_failing_policy_exits_1(own_model, tmp_path):
    policy = tmp_path / "strict.toml"
    # From nothing: on top of the default, pairs with tflite-optimized are judged on outputs only.
    policy.write_text('extends = "none"\n[defaults]\nmax_abs_delta = 0\nmax_mismatch_ratio = 0.0\n')
    out = tmp_path / "report"
    assert simrun_diff(own_model, "--policy", policy, "--report", out) == 1
    failures = summary(out)["verdict"]["failures"]
    assert any("tflite-optimized" in f for f in failures)
    assert not any("tflite-reference vs tflm-host" in f for f in failures)


@pytest.mark.backends
@pytest.mark.parametrize("name", ["hello_world_int8", "hello_world_float", "micro_speech_quantized"])
def test_host_matrix_runs_on_shared_models(models_dir, tmp_path, name):
    out = tmp_path / "report"
    rc = simrun_diff(models_dir / f"{name}.tflite", "--count", "2", "--report", out)
    s = summary(out)
    assert not s["backend_errors"]
    assert [c["backends"] for c in s["comparisons"]] == [s["backends"]] * 2
    assert len(s["comparisons"][0]["pairs"]) == 3
    assert rc == (0 if s["verdict"]["passed"] else 1)


@pytest.mark.backends
def test_person_detect_desktop_refusals_are_reported(models_dir, tmp_path):
    out = tmp_path / "report"
    rc = simrun_diff(models_dir / "person_detect.tflite", "--report", out)
    s = summary(out)
    assert set(s["backend_errors"]) == {"tflite-optimized", "tflite-reference"}
    for err in s["backend_errors"].values():
        assert "quantized_dimension must be in range" in err["message"]
        assert err["action"] == "warn"     # desktop TFLite's refusal says nothing about the device
    assert s["comparisons"][0]["backends"] == ["tflm-host"]
    assert "ai-edge-litert" in s["versions"]["tflite-reference"]   # versions even for a refusal
    # With the refusals excused one backend is left: nothing was compared, and that is not a
    # pass (exit 1); the message names the refusals and what to add.
    assert rc == 1
    (failure,) = s["verdict"]["failures"]
    assert failure == ("nothing was compared: fewer than two backends produced results (only tflm-host; "
                       "tflite-optimized, tflite-reference failed, see backend errors); a diff needs at "
                       "least two: add target backends (simrun diff --cpu CPU) to compare the emulated device")
    assert len(s["verdict"]["warnings"]) == 2
    # A policy that fails on every backend error makes the refusal the device's failure (exit 3).
    strict = tmp_path / "strict.toml"
    strict.write_text('[backend_errors]\n"*" = "fail"\n')
    assert simrun_diff(models_dir / "person_detect.tflite", "--policy", strict, "--no-diagnose",
                       "--report", tmp_path / "r2") == 3


@pytest.mark.backends
def test_a_partial_policy_layers_on_the_default(models_dir, tmp_path):
    """Issue 19: `[defaults] max_abs_delta = 1` (the built-in value) alone turned kws_ref_model
    from PASSED into 6 layers out of tolerance; layered on the default it gives its verdict."""
    model = models_dir / "kws_ref_model.tflite"
    assert simrun_diff(model, "--report", tmp_path / "default") == 0
    partial = tmp_path / "partial.toml"
    partial.write_text("[defaults]\nmax_abs_delta = 1\n")
    assert simrun_diff(model, "--policy", partial, "--report", tmp_path / "partial") == 0
    default, layered = summary(tmp_path / "default"), summary(tmp_path / "partial")
    assert layered["verdict"] == default["verdict"] and default["verdict"]["passed"]
    assert [p["verdict"] for p in layered["comparisons"][0]["pairs"]] == \
        [p["verdict"] for p in default["comparisons"][0]["pairs"]]
    # A typo in a glob is named with the closest operator type of the run.
    typo = tmp_path / "typo.toml"
    typo.write_text("[op.CONV2D]\nmax_abs_delta = 2\n")
    assert simrun_diff(model, "--policy", typo, "--no-diagnose", "--report", tmp_path / "typo") == 0
    assert summary(tmp_path / "typo")["verdict"]["warnings"] == [
        f'policy {typo}: [op."CONV2D"] matches no operator type of this run; did you mean CONV_2D?']


@pytest.mark.backends
def test_keyword_litert_reference_abort_is_reported(models_dir, tmp_path):
    out = tmp_path / "report"
    simrun_diff(models_dir / "keyword_scrambled_8bit.tflite", "--report", out)
    s = summary(out)
    assert s["backend_errors"]["tflite-reference"]["message"].startswith("aborted by SIG")
    assert "tflm-host" not in s["backend_errors"]
    assert "tflm-host" in s["comparisons"][0]["backends"]
    # tflite-optimized: with ai-edge-litert 2.3 its heap is corrupted too (usually a
    # crash while releasing the interpreter); whichever way, it is reported, not fatal.
    assert "tflite-optimized" in s["backend_errors"] or "tflite-optimized" in s["comparisons"][0]["backends"]


@pytest.mark.parametrize("argv, why", [
    (["--backends", "tflite-fast"], "unknown backend"),
    (["--backends", "target"], "needs --cpu"),
    (["--cpu", "cortex-m99"], "unknown CPU"),
    (["--cpu", "cortex-m55", "--kernels", "fast"], "unknown kernel variant"),
    (["--input", "nope.npy"], "no such file"),
    (["--timeout", "0"], "positive"),
    (["--policy", __file__], "not valid TOML"),
])
def test_usage_errors_exit_2_before_running(models_dir, tmp_path, capsys, argv, why):
    parser = argparse.ArgumentParser(prog="simrun")
    diff.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["diff", str(models_dir / "hello_world_int8.tflite"), *argv,
                              "--report", str(tmp_path / "r")])
    with pytest.raises(SimrunError, match=why):
        args.func(args)
    # Nothing ran; the report folder holds only the stopped run's summary, junit.xml and summary.md.
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["junit.xml", "summary.json", "summary.md"]
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["exit_code"] == 2
    assert "started" not in capsys.readouterr().err


def test_not_a_model_exits_2(tmp_path):
    bad = tmp_path / "x.tflite"
    bad.write_bytes(b"hello")
    assert simrun_diff(bad, "--report", tmp_path / "r") == 2


@pytest.mark.tflm
@pytest.mark.qemu
@pytest.mark.slow
def test_person_detect_on_cortex_m55_matches_host_tflm(models_dir, tmp_path):
    from simrun.device.sources import local_sources
    if local_sources() is None:
        pytest.skip("needs TFLM/CMSIS sources: set SIMRUN_SOURCES_DIR to the pinned trees")
    for tool in ("qemu-system-arm", "arm-none-eabi-gcc", "cmake"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} not on PATH")
    out = tmp_path / "report"
    simrun_diff(models_dir / "person_detect.tflite", "--backends", "tflm-host,target",
                "--cpu", "cortex-m55", "--kernels", "reference,cmsis-nn", "--report", out)
    s = summary(out)
    assert not s["backend_errors"], s["backend_errors"]
    exact = pairs(s, "tflm-host", "target:cortex-m55:reference")[0]
    assert exact["layers_compared"] == exact["layers_total"] == 31
    assert exact["mismatch_ratio"] == 0 and exact["max_abs_delta"] == 0
    cmsis = pairs(s, "target:cortex-m55:reference", "target:cortex-m55:cmsis-nn")[0]
    assert cmsis["layers_compared"] == 31
    assert "firmware.compiler" in s["versions"]["target:cortex-m55:cmsis-nn"]
    assert (out / "report.html").is_file()


@pytest.mark.tflm
@pytest.mark.qemu
@pytest.mark.slow
def test_person_detect_passes_on_the_device_though_desktop_tflite_refuses_it(models_dir, tmp_path):
    """Issue 19: TFLM's flagship example exited 3 by default because desktop TFLite refuses it;
    host TFLM and both emulated variants agree bit for bit, and that is the verdict."""
    from simrun.device.sources import local_sources
    if local_sources() is None:
        pytest.skip("needs TFLM/CMSIS sources: set SIMRUN_SOURCES_DIR to the pinned trees")
    for tool in ("qemu-system-arm", "arm-none-eabi-gcc", "cmake"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} not on PATH")
    out = tmp_path / "report"
    rc = simrun_diff(models_dir / "person_detect.tflite", "--cpu", "cortex-m4", "--kernels", "reference,cmsis-nn",
                     "--no-diagnose", "--report", out)
    s = summary(out)
    assert {label: e["action"] for label, e in s["backend_errors"].items()} == \
        {"tflite-optimized": "warn", "tflite-reference": "warn"}
    assert rc == 0 and s["verdict"]["passed"] and not s["verdict"]["failures"]
    assert [p["verdict"] for p in s["comparisons"][0]["pairs"]] == ["pass"] * 3
    assert any(w.startswith("the verdict rests on the 3 backends that ran: tflm-host, target:cortex-m4:reference, "
                            "target:cortex-m4:cmsis-nn; not compared: tflite-optimized, tflite-reference")
               for w in s["verdict"]["warnings"])


@pytest.mark.backends
def test_the_simrun_command_prints_progress_table_and_exit_codes(models_dir, tmp_path):
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    done = subprocess.run([sys.executable, "-m", "simrun", "diff",
                           str(models_dir / "hello_world_int8.tflite"), "--count", "2",
                           "--report", str(tmp_path / "r")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == (0 if summary(tmp_path / "r")["verdict"]["passed"] else 1)
    for label in ("tflite-optimized", "tflite-reference", "tflm-host"):
        assert f"[diff] {label}: started" in done.stderr
        assert f"[diff] {label}: finished in " in done.stderr
    assert "tflite-reference vs tflm-host" in done.stdout
    assert (tmp_path / "r" / "report.html").is_file()
    bad = subprocess.run([sys.executable, "-m", "simrun", "diff", str(tmp_path / "none.tflite")],
                         capture_output=True, text=True, env=env, timeout=300)
    assert bad.returncode == 2 and "error: cannot read model" in bad.stderr

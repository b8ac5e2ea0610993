"""The typed result of a diff (simrun.analysis.result.DiffResult) and the pipeline call that makes it."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from simrun.analysis.policy import Policy
from simrun.analysis.result import DiffResult, exit_code, judge
from simrun.errors import EXIT_ENVIRONMENT, EXIT_OK, EXIT_POLICY

from synthetic_captures import sample_run

PACKAGE = Path(__file__).resolve().parents[1] / "simrun"
# From nothing: on top of the default, pairs with tflite-optimized are judged on outputs only.
STRICT = Policy.parse('extends = "none"\n[defaults]\nmax_abs_delta = 0\n', "strict.toml")


def test_exit_code_follows_the_verdict_and_the_backend_errors():
    run = sample_run(backend_errors={})
    assert judge(run).exit_code == EXIT_OK          # the default policy reports desktop pairs only
    strict = judge(run, STRICT)
    assert not strict.passed and strict.exit_code == EXIT_POLICY

    run = sample_run(backend_errors={"target:cortex-m4:reference": "qemu-system-arm not found"})
    run.error_codes["target:cortex-m4:reference"] = EXIT_ENVIRONMENT
    assert judge(run).exit_code == EXIT_ENVIRONMENT  # a failed backend's own code, not 1
    warned = Policy.parse('[defaults]\npairs = []\n[backend_errors]\n"target:*" = "warn"\n', "warn.toml")
    assert judge(run, warned).exit_code == EXIT_OK
    # a backend error with no recorded code counts as a device failure (3)
    run.error_codes.clear()
    assert exit_code(run, Policy.default().evaluate(run)) == 3


def test_result_lookups_name_the_pair_in_either_order():
    result = judge(sample_run())
    pair = result.pair("tflite-optimized", "tflite-reference", input=1)
    assert (pair.a, pair.b) == ("tflite-reference", "tflite-optimized")
    assert result.layers("tflite-reference", "tflite-optimized") == result.run.comparisons[0].pair(
        "tflite-reference", "tflite-optimized").layers
    with pytest.raises(KeyError, match="no pair tflm-host vs nope for random:1"):
        result.pair("tflm-host", "nope")


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            out.add(("." * node.level) + (node.module or ""))
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_reports_do_not_look_things_up_in_the_policy_module():
    for path in (PACKAGE / "report").glob("*.py"):
        assert not any(m.endswith("analysis.policy") for m in _imports(path)), path.name


def test_robot_components_use_the_public_context_only():
    for path in (PACKAGE / "robot").glob("*.py"):
        assert "ctx._" not in path.read_text(), path.name


@pytest.mark.backends
def test_diff_run_returns_the_typed_result(models_dir):
    from conftest import random_input
    from simrun.model import Model
    from simrun.pipeline import diff_run
    model = Model.from_file(models_dir / "hello_world_int8.tflite")
    labels = ["tflite-reference", "tflm-host"]
    result = diff_run(model, ["random:0"], [random_input(model, 0)], labels)
    assert isinstance(result, DiffResult)
    assert result.passed and result.exit_code == EXIT_OK
    assert set(result.captures) == set(labels) and all(len(c) == 1 for c in result.captures.values())
    assert set(result.seconds) == set(labels) and all(s > 0 for s in result.seconds.values())
    assert result.diagnosis is not None and result.diagnosis.reference == "tflite-reference"
    assert result.cost is None                      # no target backend ran
    layers = result.layers("tflite-reference", "tflm-host")
    assert len(layers) == len(model.operators()) and all(not s.diverges for s in layers)
    # one backend: nothing compared is a policy failure, not a pass
    alone = diff_run(model, ["random:0"], [random_input(model, 0)], ["tflm-host"], diagnose=False)
    assert not alone.passed and alone.exit_code == EXIT_POLICY
    assert "nothing was compared" in alone.verdict.failures[0]
    # judged by the policy it was given
    strict = diff_run(model, ["random:0"], [random_input(model, 0)], labels, diagnose=False,
                      policy=Policy.parse('[defaults]\nskip = true\n', "skip.toml"))
    assert strict.verdict.policy_source.startswith("skip.toml")   # "... on top of the default policy"

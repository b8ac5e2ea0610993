"""The Model Explorer overlays of a diff report, read back with Model Explorer's own code:
its .tflite adapter gives the main graph's node ids, its node-data classes take every file,
and every operator of the main graph has a value. `simrun view` without the package says
how to install it (exit 2); with it, it serves on loopback only."""
from __future__ import annotations

import json
import re

import pytest

from simrun import cli
from simrun.analysis.diagnose import CAUSES
from simrun.commands import view
from simrun.report import model_explorer as me

MODEL = "kws_ref_model.tflite"
HOST = "tflite-reference,tflm-host,tflite-optimized"


@pytest.fixture(scope="module")
def report(models_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("kws-report")
    rc = cli.main(["diff", str(models_dir / MODEL), "--input", "random:1", "--count", "2",
                   "--backends", HOST, "--report", str(out)])
    assert rc == 0
    return out


def _explorer():
    return pytest.importorskip("model_explorer", reason="ai-edge-model-explorer not installed "
                               "(pip install 'simrun[view]'); the overlays cannot be read back with its code")


def _main_graph_operators(models_dir):
    """Model Explorer's own reading of the .tflite: the main graph's id and its operator node ids."""
    from model_explorer.builtin_tflite_flatbuffer_adapter import BuiltinTfliteFlatbufferAdapter
    graphs = BuiltinTfliteFlatbufferAdapter().convert(str(models_dir / MODEL), {})["graphCollections"][0].graphs
    main = graphs[0]
    ops = {n["id"] for n in main["nodes"] if n["label"] not in ("GraphInputs", "GraphOutputs", "pseudo_const")}
    return main["id"], ops


def test_every_operator_of_the_main_graph_has_a_value_in_every_overlay(report, models_dir):
    _explorer()
    from dacite import Config, from_dict
    from model_explorer.node_data_builder import GraphNodeData, ModelNodeData
    graph_id, ops = _main_graph_operators(models_dir)
    assert len(ops) == 13
    files = sorted((report / me.FOLDER).glob("*.json"))
    names = {f.name for f in files}
    # the judged pairs of a host diff (tflm-host against both desktop backends), four metrics each
    for pair in ("tflite-reference_vs_tflm-host", "tflm-host_vs_tflite-optimized"):
        assert {f"{pair}.{m}.json" for m in ("propagated", "own", "cause", "impact")} <= names
    for f in files:
        doc = json.loads(f.read_text())
        assert list(doc) == [graph_id]
        categorical = f.name.endswith(".cause.json")
        # Model Explorer's classes type a value as a number; its UI also takes strings (the
        # categorical cause), so only that file is read without the type check.
        graph = from_dict(GraphNodeData, doc[graph_id], config=Config(check_types=not categorical))
        data = ModelNodeData(graphsData={graph_id: graph})
        back = json.loads(data.to_json_string())[graph_id]   # its own writer: nothing lost on the way
        assert back["results"] == doc[graph_id]["results"] and back["name"] == doc[graph_id]["name"]
        assert set(graph.results) == ops, f.name
        for result in graph.results.values():
            assert result.bgColor and result.bgColor.startswith("#")
            if categorical:
                assert result.value in CAUSES
            else:
                assert isinstance(result.value, (int, float)), (f.name, result.value)


def test_overlay_values_match_the_summary(report):
    """own error and cause of the optimized pair: the diagnosis in summary.json, worst of the inputs."""
    doc = json.loads((report / "summary.json").read_text())
    own = json.loads((report / me.FOLDER / "tflm-host_vs_tflite-optimized.own.json").read_text())["main"]
    cause = json.loads((report / me.FOLDER / "tflm-host_vs_tflite-optimized.cause.json").read_text())["main"]
    expected_own, causes = {}, {}
    for cmp in doc["comparisons"]:
        pair = next(p for p in cmp["pairs"] if (p["a"], p["b"]) == ("tflm-host", "tflite-optimized"))
        for layer in pair["layers"]:
            key = str(layer["op_index"])
            expected_own[key] = max(expected_own.get(key, 0), layer["own"]["max_abs_delta"])
            causes.setdefault(key, set()).add(layer["cause"])
    assert {k: v["value"] for k, v in own["results"].items()} == expected_own
    assert any(v > 0 for v in expected_own.values())                  # XNNPACK's own error is there
    for key, result in cause["results"].items():
        assert result["value"] in causes[key]
    assert "worst of 2 inputs" in own["name"]


def test_view_without_model_explorer_says_how_to_install_it(report, monkeypatch, capsys):
    import builtins
    real_import = builtins.__import__

    def no_explorer(name, *args, **kwargs):
        if name == "model_explorer" or name.startswith("model_explorer."):
            raise ImportError("No module named 'model_explorer'")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_explorer)
    assert cli.main(["view", str(report)]) == 2
    err = capsys.readouterr().err
    assert "pip install" in err and "simrun[view]" in err and "--node_data_paths=" in err


def test_view_serves_on_loopback_only(report, monkeypatch):
    _explorer()
    import model_explorer
    seen = {}
    monkeypatch.setattr(model_explorer, "visualize_from_config",
                        lambda config, **kw: seen.update(kw, config=config))
    assert cli.main(["view", str(report), "--no-browser", "--overlay", "*.own.json"]) == 0
    assert seen["host"] == "127.0.0.1" and seen["no_open_in_browser"] is True
    sources = seen["config"].node_data_sources
    assert len(sources) == 2 and all(s.endswith(".own.json") for s in sources)
    assert seen["config"].model_sources[0]["url"].endswith(MODEL)


def test_view_of_a_folder_without_a_report_is_a_usage_error(tmp_path, capsys):
    assert cli.main(["view", str(tmp_path)]) == 2
    assert "no summary.json" in capsys.readouterr().err
    with pytest.raises(Exception):
        view.view_plan(tmp_path, None, [])


def test_report_html_draws_every_operator_of_a_small_model(report):
    """13 operators: every one its own box (no collapsing), no external asset."""
    html = (report / "report.html").read_text()
    svg = re.search(r"<svg xmlns='http://www.w3.org/2000/svg' class='opgraph'.*?</svg>", html, re.S).group(0)
    labels = re.findall(r"<text x='[^']*' y='[^']*' text-anchor='middle'>([^<]*)</text>", svg)
    assert [label.split()[0] for label in labels] == [str(i) for i in range(13)]
    assert "tflm-host vs tflite-optimized over 2 input(s), own error" in html
    assert not re.search(r"(src|href)=['\"]https?:", html) and not re.search(r"<script[^>]*src=", html)

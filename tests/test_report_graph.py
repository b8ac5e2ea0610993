"""report.html on a detector-shaped run: the operator graph (coloured by own error, outlined by
cause, first divergent and worst marked, quiet blocks collapsed, branches kept), the layer
table over every input (min / median / max), the Model Explorer overlays of a graph model."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from simrun.analysis.policy import Policy
from simrun.analysis.result import DiffResult, exit_code
from simrun.report import aggregate, graph, html_layers, model_explorer, palette, write_reports

from synthetic_graph import synthetic_run

SVG = "{http://www.w3.org/2000/svg}"
DEVICE = "target:cortex-m55:cmsis-nn"


@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    run = synthetic_run(200, 3, 256)
    verdict = Policy.default().evaluate(run)
    return run, verdict, write_reports(DiffResult(run, verdict, exit_code(run, verdict)), tmp_path_factory.mktemp("detector"))


def _graph(html: str) -> ET.Element:
    return ET.fromstring(re.search(r"<svg xmlns='http://www.w3.org/2000/svg' class='opgraph'.*?</svg>", html,
                                   re.S).group(0))


def test_graph_colours_own_error_and_marks_first_and_worst(detector):
    run, verdict, paths = detector
    html = paths["html"].read_text()
    root = _graph(html)
    ps = aggregate.pair_summary(run, verdict, "tflite-reference", DEVICE)
    introducing = sorted(r.op_index for r in ps.rows if r.own_max)
    assert len(introducing) == 6
    boxes = {}
    for g in root.iter(f"{SVG}g"):
        label = g.find(f"{SVG}text").text
        boxes[label] = g.find(f"{SVG}rect")
    for i in introducing:                                  # one box each, own error 1 step, cause kernel
        rect = boxes[f"{i} CONV_2D"]
        assert rect.get("fill") == palette.error_colour(1, True)
        assert rect.get("stroke") == palette.CAUSE_COLOURS["kernel"]
    marks = [t.text for t in root.iter(f"{SVG}text") if t.get("font-weight") == "bold"]
    assert marks == ["first ▶", "◀ worst"]
    # every box links to a row of the layer table that exists
    anchors = {a.get("href")[1:] for a in root.iter(f"{SVG}a")}
    assert anchors and all(f"id='{a}'" in html for a in anchors)


def test_quiet_blocks_collapse_and_branches_stay(detector):
    run, _, paths = detector
    root = _graph(paths["html"].read_text())
    labels = [g.find(f"{SVG}text").text for g in root.iter(f"{SVG}g")]
    collapsed = [t for t in labels if " ops" in t]
    assert len(labels) < len(run.model.ops) / 3           # 199 operators, a few dozen boxes
    assert collapsed                                       # the quiet stages are one box each
    # the neck and the three heads are not swallowed: each upsample, the last concat, the sigmoid
    assert sum("RESIZE_NEAREST_NEIGHBOR" in t for t in labels) == 2
    assert f"{len(run.model.ops) - 1} LOGISTIC" in labels
    # the layered layout puts parallel heads side by side: some layer holds several boxes
    ys = [r.get("y") for r in root.iter(f"{SVG}rect")]
    assert max(ys.count(y) for y in set(ys)) >= 3


def test_layer_table_aggregates_the_inputs(detector):
    run, verdict, paths = detector
    html = paths["html"].read_text()
    ps = aggregate.pair_summary(run, verdict, "tflite-reference", DEVICE)
    assert ps.inputs == 3
    row = next(r for r in ps.rows if min(r.propagated, default=0) < max(r.propagated, default=0))
    lo, med, hi = sorted(row.propagated)
    cells = re.search(rf"<tr id='{html_layers.row_anchor(0, row.id)}'[^>]*>(.*?)</tr>", html).group(1)
    assert f"{lo:g} / {med:g} / <b>{hi:g}</b>" in cells
    # verdict and cause come right after where the layer is
    head = re.search(r"<table class='layers agg'><tr>(.*?)</tr>", html).group(1)
    assert re.findall(r"<th[^>]*>([^<]*)</th>", head)[:5] == ["depth", "layer", "op", "verdict", "cause"]
    # histograms are bars with the counts in the tooltip; quiet rows can be filtered away
    assert "<span class='hist' title='&lt;=-3:" in html
    assert "body:has(#only-diff:checked) tr.same { display: none; }" in html
    assert html.count("<tr id='row-0-") == len(ps.rows)


def test_a_run_of_ten_inputs_folds_its_failures(detector):
    _, verdict, paths = detector
    html = paths["html"].read_text()
    assert len(verdict.failures) == 6                      # two judged pairs x three inputs
    assert "<h3>Failures (6)</h3>" in html and "<summary>3 more</summary>" in html


def test_overlays_cover_every_operator_of_the_graph(detector):
    run, _, paths = detector
    files = paths["model_explorer"]
    assert {p.name for p in files} >= {f"tflite-reference_vs_{DEVICE.replace(':', '_')}.{m}.json"
                                       for m in ("propagated", "own", "cause", "impact")}
    doc = model_explorer.overlays(run, Policy.default().evaluate(run))
    own = doc[f"tflite-reference_vs_{DEVICE.replace(':', '_')}.own.json"]["main"]["results"]
    assert set(own) == {str(op.index) for op in run.model.main.operators}
    assert sum(v["value"] == 1 for v in own.values()) == 6


def test_instruction_counts_become_an_overlay_per_counted_backend():
    from simrun.analysis.cost import BackendCost, CostSummary, LayerCost
    run = synthetic_run(80, 1, 64)
    ops = run.model.main.operators
    counted = BackendCost(DEVICE, [LayerCost(0, op.index, op.op_name, 1000 + op.index) for op in ops[:-1]], [123456])
    uncounted = BackendCost("target:cortex-m55:reference", [], [None])
    run.cost = CostSummary([counted, uncounted], [])
    doc = model_explorer.overlays(run, Policy.default().evaluate(run))
    assert [k for k in doc if k.startswith("instructions.")] == [f"instructions.{DEVICE.replace(':', '_')}.json"]
    results = doc[f"instructions.{DEVICE.replace(':', '_')}.json"]["main"]["results"]
    assert set(results) == {str(op.index) for op in ops}
    assert results["3"]["value"] == 1003
    assert results[str(ops[-1].index)] == {"value": "not counted", "bgColor": palette.NO_DATA}
    assert results[str(ops[-2].index)]["bgColor"] == palette.count_colour(1, 1)   # the largest count: darkest

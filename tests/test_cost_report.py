"""The cost section of the reports, from hand-built target Captures whose counts we choose."""
from __future__ import annotations

import json

import pytest

from simrun.analysis.compare import compare
from simrun.analysis.diffrun import DiffRun
from simrun.analysis.cost import summarize
from simrun.analysis.policy import Policy
from simrun.analysis.result import DiffResult, exit_code, judge
from simrun.report import terminal, write_reports

from synthetic_captures import FakeModel, base_layers, make_capture

M55_REF, M55_NN = "target:cortex-m55:reference", "target:cortex-m55:cmsis-nn"
M55_REF_SINGLE = "target:cortex-m55:reference:single-rounding"
M4_REF = "target:cortex-m4:reference"
# OP_NAMES: CONV_2D, DEPTHWISE_CONV_2D, CONV_2D, AVERAGE_POOL_2D, RESHAPE, LOGISTIC
COUNTS = {
    M55_REF: [1000, 400, 2000, 50, 10, 40],
    M55_NN: [300, 100, 500, 30, 10, 40],
    M55_REF_SINGLE: [990, 400, 1980, 50, 10, 40],
    M4_REF: [1100, 420, 2100, 55, 12, 44],
}
MEMORY = {"arena_used": 81920, "model_bytes": 300568, "firmware_text": 200704, "firmware_data": 4096}


def target_capture(label: str, counted: bool = True):
    cap = make_capture(label, base_layers())
    if counted:
        for rec, n in zip(cap.ops, COUNTS[label]):
            rec.instructions = n
        cap.meta["instructions_total"] = sum(COUNTS[label])
    cap.meta.update(MEMORY)
    return cap


def cost_run(counted: bool = True) -> DiffRun:
    caps = {"tflm-host": make_capture("tflm-host", base_layers())}
    caps.update({label: target_capture(label, counted) for label in COUNTS})
    return DiffRun(FakeModel(), [compare(FakeModel(), caps)], cost=summarize({k: [v] for k, v in caps.items()}))


def test_summary_pairs_variants_that_differ_in_one_thing():
    cost = cost_run().cost
    assert [b.backend for b in cost.backends] == list(COUNTS)           # host backends have no cost
    pairs = {(v.a, v.b): v for v in cost.variants}
    # Same CPU only, differing in kernels or in one build option; the reference/default side first.
    assert set(pairs) == {(M55_REF, M55_NN), (M55_REF, M55_REF_SINGLE)}
    kernels = pairs[M55_REF, M55_NN]
    assert kernels.differ_in == "kernels"
    assert kernels.by_op_type["CONV_2D"] == (3000, 800)
    assert kernels.total_ratio == pytest.approx(sum(COUNTS[M55_NN]) / sum(COUNTS[M55_REF]))
    assert pairs[M55_REF, M55_REF_SINGLE].differ_in == "single-rounding"
    ref = cost.backend(M55_REF)
    assert ref.by_op_type()["CONV_2D"] == (2, 3000)
    assert list(ref.by_op_type())[0] == "CONV_2D"                       # heaviest first
    assert ref.layer("0:1").instructions == 400 and ref.layer("DEPTHWISE_CONV_2D").instructions == 400
    with pytest.raises(KeyError, match="more than one"):
        ref.layer("CONV_2D")
    assert ref.memory == MEMORY


def test_terminal_json_and_html_carry_the_cost_section(tmp_path):
    run = cost_run()
    verdict = Policy.default().evaluate(run)
    text = terminal.render(run, verdict)
    assert "cost on the target (instructions executed" in text
    assert f"{M55_REF}: {sum(COUNTS[M55_REF]):,} instructions in 6 operators" in text
    assert "arena used 80.0 KiB, model 293.5 KiB, firmware code 196.0 KiB, firmware data 4.0 KiB" in text
    conv_row = next(line for line in text.splitlines() if line.strip().startswith("CONV_2D"))
    assert conv_row.split()[1:] == ["3,000", "800", "0.27x"]

    paths = write_reports(DiffResult(run, verdict, exit_code(run, verdict)), tmp_path)
    doc = json.loads(paths["json"].read_text())["cost"]
    assert doc["unit"] == "instructions executed"
    nn = next(b for b in doc["backends"] if b["backend"] == M55_NN)
    assert [lc["instructions"] for lc in nn["layers"]] == COUNTS[M55_NN]
    assert nn["by_op_type"]["CONV_2D"] == {"operators": 2, "instructions": 800}
    assert nn["memory"] == MEMORY and nn["total"] == sum(COUNTS[M55_NN])
    variant = next(v for v in doc["variants"] if v["differ_in"] == "kernels")
    assert variant["by_op_type"]["CONV_2D"]["ratio"] == pytest.approx(800 / 3000)

    html = paths["html"].read_text()
    assert "<h2 id='cost'>Cost on the target</h2>" in html
    assert "alt='instructions per layer' src='data:image/svg+xml;base64," in html
    # CONV_2D of m55 reference, in its tables against cmsis-nn and against single rounding
    assert html.count("<td class='num'>3,000</td>") == 2
    assert "<td class='num'>800</td><td class='num'>0.27x</td>" in html


def test_uncounted_targets_still_report_memory_and_say_how_to_count(tmp_path):
    run = cost_run(counted=False)
    assert not run.cost.counted and run.cost.variants == []
    text = terminal.render(run, Policy.default().evaluate(run))
    assert "instructions not counted: run with --instructions" in text
    assert f"{M4_REF}: arena used 80.0 KiB" in text
    doc = json.loads(write_reports(judge(run), tmp_path)["json"].read_text())
    assert all(not b["counted"] and b["total"] is None for b in doc["cost"]["backends"])


def test_no_target_backend_means_no_cost_section():
    caps = {"tflm-host": make_capture("tflm-host", base_layers())}
    assert summarize({k: [v] for k, v in caps.items()}) is None
    run = DiffRun(FakeModel(), [compare(FakeModel(), caps)])
    assert "cost on the target" not in terminal.render(run, Policy.default().evaluate(run))

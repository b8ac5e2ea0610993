"""Reports of a DiffRun: summary.json shape, junit.xml validity, terminal table,
and report.html rendered in headless Chromium with its plots loaded."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import xml.etree.ElementTree as ET

import pytest

from simrun.analysis.diffrun import DiffRun
from simrun.analysis.policy import Policy
from simrun.analysis.result import DiffResult, exit_code
from simrun.report import terminal, write_reports

from synthetic_captures import FakeModel, sample_run


# Judges every pair, the desktop-only ones too (the default reports those without judging),
# so that the sample run has a failing pair and a passing one to show; from nothing, not on
# top of the default (which judges only outputs against tflite-optimized).
JUDGE_ALL = Policy.parse('extends = "none"\n[defaults]\npairs = ["*"]\n[pair."tflite-optimized vs *"]\nmax_abs_delta = 3\n'
                         '[backend_errors]\n"*" = "fail"\n', "judge-all.toml")


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    run = sample_run()
    verdict = JUDGE_ALL.evaluate(run)
    return run, verdict, write_reports(DiffResult(run, verdict, exit_code(run, verdict)), tmp_path_factory.mktemp("report"))


def test_write_reports_returns_the_files(written):
    _, _, paths = written
    for key in ("json", "junit", "html"):
        assert paths[key].is_file() and paths[key].stat().st_size > 0
    svgs = sorted(p.name for p in paths["plots"].iterdir())
    # Plots only where something differs, one per input and reference class: tflite-reference
    # and tflm-host agree bit for bit, so tflite-optimized is drawn once against both.
    assert svgs == ["0-random_1-tflite_reference.svg", "1-cat_png-tflite_reference.svg"]
    for path in paths["plots"].iterdir():
        root = ET.fromstring(path.read_text())               # well-formed SVG
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        assert len(root.findall("{http://www.w3.org/2000/svg}polyline")) == 2   # max |Δ| and mismatch


def test_summary_json_shape(written):
    run, _, paths = written
    doc = json.loads(paths["json"].read_text())
    assert doc["schema_version"] == 2 and doc["kind"] == "simrun diff" and doc["complete"] is True
    assert doc["run"] is None                   # not written by a command: no provenance
    assert doc["exit_code"] == 3                # the DiffResult's: a backend the policy fails on failed
    assert doc["model"]["sha256"] == FakeModel.sha256
    assert doc["inputs"] == ["random:1", "cat.png"]
    assert doc["backends"] == ["tflite-reference", "tflm-host", "tflite-optimized", "target:cortex-m55:cmsis-nn"]
    assert doc["versions"]["tflite-reference"] == {"ai-edge-litert": "2.3.0"}
    assert doc["backend_errors"] == {"target:cortex-m55:cmsis-nn": {
        "message": "emulator timed out after 120 s", "action": "fail"}}
    assert doc["verdict"]["passed"] is False and len(doc["verdict"]["failures"]) == 3
    assert doc["policy"]["source"] == "judge-all.toml"

    first, second = doc["comparisons"]
    assert first["input"] == "random:1"
    pairs = {(p["a"], p["b"]): p for p in first["pairs"]}
    exact = pairs[("tflite-reference", "tflm-host")]
    assert exact["verdict"] == "pass" and exact["first_divergent"] is None
    assert exact["mismatch_ratio"] == 0 and exact["layers_diverging"] == 0
    off = pairs[("tflite-reference", "tflite-optimized")]
    assert off["first_divergent"]["id"] == "0:2/12" and off["first_divergent"]["depth"] == 2
    assert off["layers_total"] == off["layers_compared"] == 6 and off["layers_diverging"] == 4
    layer = off["layers"][2]
    assert set(layer) >= {"id", "subgraph", "op_index", "op_name", "tensor_index", "tensor_name", "depth",
                          "status", "shape_a", "shape_b", "dtype_a", "dtype_b", "count", "mismatched",
                          "mismatch_ratio", "max_abs_delta", "histogram", "mae", "rmse", "cosine",
                          "verdict", "reasons"}
    assert layer["histogram"] == {"<=-3": 0, "-2": 0, "-1": 0, "0": 127, "+1": 1, "+2": 0, ">=+3": 0}
    assert layer["shape_a"] == [1, 4, 4, 8] and layer["dtype_a"] == "int8" and layer["verdict"] == "pass"
    assert off["outputs"][0]["id"] == "output/15" and off["outputs"][0]["op_index"] is None

    failing = {(p["a"], p["b"]): p for p in second["pairs"]}[("tflite-reference", "tflite-optimized")]
    assert failing["verdict"] == "fail" and failing["first_failing"]["id"] == "0:4/14"
    assert failing["layers"][4]["reasons"] == ["max |Δ| 5 > 3"] and failing["layers"][4]["verdict"] == "fail"
    assert failing["worst"]["id"] == "0:4/14" and failing["max_abs_delta"] == 5


def test_junit_xml_counts(written):
    _, verdict, paths = written
    root = ET.parse(paths["junit"]).getroot()
    assert root.tag == "testsuites" and root.get("name") == "simrun diff synthetic"
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert set(suites) == {"synthetic: backends", "synthetic: random:1", "synthetic: cat.png"}
    backends = suites["synthetic: backends"]
    assert backends.get("errors") == "1" and backends.get("tests") == "4"
    (error,) = backends.iter("error")
    assert error.get("message") == "emulator timed out after 120 s"
    # One testcase per input and pair, named with both; classnames without the labels' dots.
    bad = suites["synthetic: cat.png"]
    names = [c.get("name") for c in bad.findall("testcase")]
    assert names == ["cat.png: tflite-reference vs tflm-host", "cat.png: tflite-reference vs tflite-optimized",
                     "cat.png: tflm-host vs tflite-optimized"]
    assert {c.get("classname") for c in root.iter("testcase")} == {"simrun.synthetic"}
    assert bad.get("tests") == "3" and bad.get("failures") == "2"
    failure = bad.find("testcase[@name='cat.png: tflite-reference vs tflite-optimized']/failure")
    assert failure.get("message") == ("1 of 7 layers out of tolerance; worst 0:4/14 RESHAPE layer4/out: "
                                      "max |Δ| 5 > 3")
    assert failure.text.startswith("0:4/14 RESHAPE layer4/out: max |Δ| 5 > 3 (mismatched 9/128")
    for suite in suites.values():                         # declared counts match the cases
        cases = suite.findall("testcase")
        assert int(suite.get("tests")) == len(cases)
        assert int(suite.get("failures")) == sum(c.find("failure") is not None for c in cases)
        assert all(c.get("time") is not None for c in cases) and suite.get("time") is not None
    assert int(root.get("failures")) == 2 and int(root.get("errors")) == 1


def test_junit_layers_on_request(tmp_path):
    run = sample_run()
    verdict = JUDGE_ALL.evaluate(run)
    root = ET.parse(write_reports(DiffResult(run, verdict, exit_code(run, verdict)), tmp_path,
                                  junit_layers=True)["junit"]).getroot()
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    bad = suites["synthetic: cat.png: tflite-reference vs tflite-optimized"]
    assert bad.get("tests") == "7" and bad.get("failures") == "1"
    (failure,) = bad.iter("failure")
    assert failure.get("message") == "max |Δ| 5 > 3"
    assert int(root.get("failures")) == 2 and int(root.get("errors")) == 1


def test_junit_marks_unjudged_pairs_and_warned_backends_skipped(tmp_path):
    run = sample_run()
    policy = Policy.parse('[defaults]\npairs = ["tflite-reference vs tflm-host"]\n'
                          '[backend_errors]\n"target:*" = "warn"\n', "p.toml")
    verdict = policy.evaluate(run)
    assert verdict.passed
    root = ET.parse(write_reports(DiffResult(run, verdict, exit_code(run, verdict)), tmp_path)["junit"]).getroot()
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    cases = {c.get("name"): c for c in suites["synthetic: random:1"].findall("testcase")}
    # A differing pair the policy does not judge is skipped, with where it differs; never a pass.
    skipped = cases["random:1: tflm-host vs tflite-optimized"].find("skipped")
    assert skipped.get("message") == ("not judged by the policy: tflm-host vs tflite-optimized: differs from "
                                      "0:2/12 CONV_2D layer2/out on, max |Δ| 1, 0.52% of values")
    judged = cases["random:1: tflite-reference vs tflm-host"]
    assert judged.find("skipped") is None and judged.find("failure") is None
    assert judged.find("system-out").text == "tflite-reference vs tflm-host: bit-exact on all 6 layers"
    assert suites["synthetic: backends"].get("errors") == "0" and suites["synthetic: backends"].get("skipped") == "1"
    assert root.get("failures") == "0" and root.get("errors") == "0"


def test_terminal_table(written):
    run, verdict, _ = written
    text = terminal.render(run, verdict)
    lines = text.splitlines()
    # The answer first: the diagnosis in sentences, then the table of pairs that differ.
    assert lines[:3] == [
        "diagnosis:",
        "  tflite-reference and tflm-host agree bit for bit on every layer (2 inputs).",
        "  tflite-optimized differs from tflite-reference and tflm-host from layer 0:2/12 CONV_2D "
        "(#2 in execution order) on: "
        "up to 5 steps, 1.56% of values; final outputs differ by up to 1 step (0.4% of their range) "
        "(FAILS the policy)."]
    header = next(line for line in lines if line.startswith("input")).split()
    assert header[:3] == ["input", "pair", "layers"] and header[-1] == "verdict"
    row = next(line for line in lines
               if line.startswith("cat.png") and "tflite-reference vs tflite-optimized" in line)
    assert "0:2/12 CONV_2D (#2)" in row and "0:4/14 RESHAPE (#4)" in row and row.rstrip().endswith("FAIL")
    # bit-exact pairs: one line, not a row per input
    assert not any(line.startswith("random:1") and "tflite-reference vs tflm-host" in line for line in lines)
    assert "bit-exact on every layer: tflite-reference vs tflm-host" in lines
    assert "target:cortex-m55:cmsis-nn (fail): emulator timed out after 120 s" in text
    assert "tflite-reference: ai-edge-litert 2.3.0" in text
    assert text.rstrip().splitlines()[-1].startswith("verdict: FAILED")


def test_reports_with_only_backend_errors(tmp_path):
    run = DiffRun(FakeModel(), [], backend_errors={"tflite-optimized": "refused"})
    verdict = Policy.default().evaluate(run)
    paths = write_reports(DiffResult(run, verdict, exit_code(run, verdict)), tmp_path)
    assert json.loads(paths["json"].read_text())["comparisons"] == []
    text = terminal.render(run, verdict)
    assert "no backend pair to compare" in text
    # The default excuses desktop TFLite's refusal, so the one failure is that nothing was compared.
    assert text.splitlines()[2] == ("  FAILED: nothing was compared: fewer than two backends produced results "
                                    "(none; tflite-optimized failed, see backend errors); a diff needs at "
                                    "least two: add tflm-host (host TFLM, the device's kernels) to the "
                                    "backends and add target backends (simrun diff --cpu CPU) to compare "
                                    "the emulated device")
    html = paths["html"].read_text()
    assert "<code>tflite-optimized</code></th><td colspan='1' style='text-align:left'>" in html   # in the matrix
    assert "refused" in html


def test_html_highlights_first_divergent_layer(written):
    _, _, paths = written
    html = paths["html"].read_text()
    rows = re.findall(r"<tr (?:id='[^']*' )?class='[^']*first-divergent[^']*'>.*?</tr>", html)
    # per input: random:1: the two diverging pairs differ identically (tflite-reference = tflm-host)
    # and pass, so one gets a table and the other a line; cat.png: both fail, both get a table;
    # over the inputs: one table for the two classes that differ.
    assert len(rows) == 4
    assert ("The same difference through backends that agree bit for bit: <span id='pair-0-random_1-"
            "tflm_host-tflite_optimized'>tflm-host vs tflite-optimized") in html
    assert all("0:2/12" in r for r in rows)
    assert html.count("<div class='plot'>") == 2           # one per input: tflite-optimized vs the rest
    assert "emulator timed out after 120 s" in html and "ai-edge-litert 2.3.0" in html


def test_html_leads_with_the_diagnosis_and_the_matrix(written):
    _, _, paths = written
    html = paths["html"].read_text()
    diagnosis = html.index("<ul class='diagnosis'>")
    matrix = html.index("<table class='matrix'>")
    versions = html.index("<h2 id='versions'>Versions</h2>")
    layers = html.index("<h2 id='layers'>")
    assert diagnosis < matrix < layers < html.index("<b>Input random:1</b>") < html.index("<b>Input cat.png</b>") < versions
    toc = html[html.index("<nav class='toc'>"):html.index("</nav>")]
    assert [a for a in re.findall(r"href='#([a-z]+)'", toc)] == ["summary", "backends", "layers", "inputs", "versions"]
    # backend names on both axes of the matrix
    heads = re.findall(r"<th class='col' title='([^']*)'>", html[matrix:])
    assert heads == ["tflite-reference", "tflm-host", "tflite-optimized"]
    assert "tflite-reference and tflm-host agree bit for bit on every layer (2 inputs).</li>" in html
    assert "<details><summary>versions of every backend" in html[versions:]   # folded away
    assert "ai-edge-litert 2.3.0" not in html[:versions]
    # the matrix: the bit-exact pair is "=", tflite-optimized's cells link to the first input it differs on
    assert html[matrix:].count("<td class='same'") == 2
    assert "<a href='#pair-0-random_1-tflite_reference-tflite_optimized'>Δ5 from #2</a>" in html
    assert "id='pair-0-random_1-tflite_reference-tflite_optimized'" in html
    assert "Bit-exact on every layer and output: tflite-reference vs tflm-host." in html


# --- rendered in a browser -------------------------------------------------------------

_CHECK_SCRIPT = """<script>
window.addEventListener('load', () => {
  document.querySelectorAll('details').forEach(d => d.open = true);
  setTimeout(() => {                      // a folded input's detail is inserted on its toggle event
  const svgs = [...document.querySelectorAll('div.plot svg')];
  const out = document.createElement('pre');
  out.id = 'plot-check';
  out.textContent = JSON.stringify(svgs.map(s => {
    const r = s.getBoundingClientRect();
    return [r.width > 0, Math.round(r.width), Math.round(r.height), s.querySelectorAll('circle title').length];
  }));
  document.body.appendChild(out);
  }, 300);
});
</script></body>"""


@pytest.mark.integration
def test_html_plots_load_in_headless_chromium(written, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        pytest.skip("chromium not on PATH (Debian: apt-get install chromium)")
    _, _, paths = written
    # A copy with a probe script that opens every input's detail.
    probe = tmp_path / "probe.html"
    probe.write_text(paths["html"].read_text().replace("</body>", _CHECK_SCRIPT))
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", "--dump-dom",
           probe.as_uri()]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        dom, err = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("chromium did not finish rendering report.html within 90 s")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    match = re.search(rb'<pre id="plot-check">(.*?)</pre>', dom)
    assert match, f"probe did not run; chromium exit {proc.returncode}: {err.decode(errors='replace')[-800:]}"
    images = json.loads(match.group(1))
    assert len(images) == 2
    # drawn, and every point names its operator on hover
    assert all(shown and width > 0 and height > 0 and titles > 0 for shown, width, height, titles in images), images


# --- with a diagnosis --------------------------------------------------------------------------

DEVICE = "target:cortex-m4:cmsis-nn"


@pytest.fixture(scope="module")
def diagnosed(tmp_path_factory):
    """A planted device error: layer 2 on the device adds 2 steps itself, later layers inherit it."""
    from simrun.analysis.compare import compare
    from synthetic_captures import attach_diagnosis, base_layers, make_capture, off_by
    model = FakeModel()
    layers = base_layers()
    device = off_by(layers, 2, 2)
    isolated = [v.copy() for v in layers]
    isolated[2] = device[2].copy()
    caps = {label: make_capture(label, layers) for label in ("tflite-reference", "tflm-host")}
    caps[DEVICE] = make_capture(DEVICE, device)
    run = DiffRun(model, [compare(model, caps)], input_names=["random:1"])
    for a in ("tflite-reference", "tflm-host"):
        attach_diagnosis(run, 0, a, DEVICE, layers, isolated, {"0:2/12": "kernel"},
                         summary=f"{a} vs {DEVICE}: 1 of 6 layers introduce error, all CONV_2D, cause kernel; "
                                 f"the other 3 inherit it; output max error 0.78% of range")
    verdict = Policy.default().evaluate(run)
    return run, verdict, write_reports(DiffResult(run, verdict, exit_code(run, verdict)), tmp_path_factory.mktemp("diagnosed"))


def test_default_policy_fails_a_planted_device_error_and_reports_say_why(diagnosed):
    run, verdict, paths = diagnosed
    assert not verdict.passed
    assert verdict.failures[0] == (f"random:1: tflite-reference vs {DEVICE}: 5 layer(s) out of tolerance, first "
                                   "0:2/12 CONV_2D layer2/out (max |Δ| 2 > 1; own error max |Δ| 2 > 1), cause: kernel")
    text = terminal.render(run, verdict)
    lines = text.splitlines()
    assert lines[2] == (f"  {DEVICE} vs tflite-reference and tflm-host: 1 of 6 layers introduce error, all "
                        "CONV_2D, cause kernel; the other 3 inherit it; output max error 0.78% of range "
                        "(FAILS the policy).")
    row = next(line for line in lines if line.startswith("random:1") and f"tflm-host vs {DEVICE}" in line)
    assert " 1 kernel " in f" {' '.join(row.split())} "      # introducing layers by cause


def test_summary_json_has_the_cause_per_layer(diagnosed):
    _, _, paths = diagnosed
    doc = json.loads(paths["json"].read_text())
    assert doc["agreement"] == [["tflite-reference", "tflm-host"], [DEVICE]]
    assert doc["diagnosis"][0] == "tflite-reference and tflm-host agree bit for bit on every layer."
    pair = {(p["a"], p["b"]): p for p in doc["comparisons"][0]["pairs"]}[("tflm-host", DEVICE)]
    assert pair["diagnosis"].startswith(f"tflm-host vs {DEVICE}: 1 of 6 layers introduce error")
    causes = [(layer["id"], layer["cause"]) for layer in pair["layers"]]
    assert causes == [("0:0/10", "none"), ("0:1/11", "none"), ("0:2/12", "kernel"), ("0:3/13", "inherited"),
                      ("0:4/14", "inherited"), ("0:5/15", "inherited")]
    kernel, inherited = pair["layers"][2], pair["layers"][3]
    assert kernel["own"]["max_abs_delta"] == 2 and kernel["max_abs_delta"] == 2
    assert inherited["own"]["max_abs_delta"] == 0 and inherited["max_abs_delta"] == 2
    assert kernel["evidence"] == "synthetic evidence for 0:2/12" and kernel["kernel"] == "reference (synthetic)"
    assert pair["first_failing"]["cause"] == "kernel"
    assert pair["outputs"][0]["cause"] is None and pair["outputs"][0]["relative_error"] == pytest.approx(2 / 255)
    bare = {(p["a"], p["b"]): p for p in doc["comparisons"][0]["pairs"]}[("tflite-reference", "tflm-host")]
    assert bare["diagnosis"] is None and bare["layers"][0]["cause"] is None


def test_junit_failure_names_the_cause(diagnosed):
    _, _, paths = diagnosed
    root = ET.parse(paths["junit"]).getroot()
    case = next(c for c in root.iter("testcase") if c.get("name") == f"random:1: tflm-host vs {DEVICE}")
    failure = case.find("failure")
    assert failure.get("message") == ("5 of 7 layers out of tolerance; worst 0:2/12 CONV_2D layer2/out: "
                                      "max |Δ| 2 > 1; own error max |Δ| 2 > 1; cause: kernel")
    lines = failure.text.splitlines()
    assert lines[0].startswith("0:2/12 CONV_2D layer2/out: max |Δ| 2 > 1; own error max |Δ| 2 > 1 (mismatched 1/128")
    assert lines[0].endswith("cause: kernel (own max |Δ| 2; kernel reference (synthetic)): synthetic evidence for 0:2/12")
    assert lines[1].startswith("0:3/13 AVERAGE_POOL_2D layer3/out: max |Δ| 2 > 1") and "cause: inherited" in lines[1]
    assert lines[-1].startswith(f"diagnosis: tflm-host vs {DEVICE}: 1 of 6 layers introduce error")


def test_html_layer_table_has_own_error_and_cause(diagnosed):
    _, _, paths = diagnosed
    html = paths["html"].read_text()
    assert "max |Δ| propagated</th>" in html and "max |Δ| own</th>" in html and "<th>cause</th>" in html
    section = html[html.index(f"id='pair-0-random_1-tflm_host-{DEVICE.replace(':', '_').replace('-', '_')}'"):]
    row = re.search(r"<tr class='[^']*first-divergent[^']*'>(.*?)</tr>", section).group(1)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
    assert cells[3:7] == ["fail: max |Δ| 2 &gt; 1; own error max |Δ| 2 &gt; 1", "kernel", "2", "2"]   # verdict, cause, own, propagated
    assert cells[-1] == "synthetic evidence for 0:2/12 (kernel: reference (synthetic))"
    inherited = re.findall(r"<td[^>]*>(.*?)</td>", section.split("<tr", 6)[5])
    assert inherited[1] == "0:3/13" and inherited[4:7] == ["inherited", "0", "2"]
    assert "<b>Diagnosis:</b> tflm-host vs target:cortex-m4:cmsis-nn: 1 of 6 layers introduce error" in html
    assert html.count("<div class='plot'>") == 1         # the device against the reference class
    (svg,) = paths["plots"].iterdir()
    root = ET.fromstring(svg.read_text())
    lines = root.findall("{http://www.w3.org/2000/svg}polyline")
    assert len(lines) == 3                               # propagated and own max |Δ|, mismatch share
    assert [line.get("stroke-dasharray") for line in lines] == [None, "5,3", None]
    legend = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert f"{DEVICE}: own (isolated)" in legend and f"{DEVICE}: propagated" in legend


def test_terminal_shows_a_repeated_difference_once():
    run = sample_run()
    text = terminal.render(run, Policy.default().evaluate(run))
    rows = [line.split()[:4] for line in text.splitlines() if line.startswith(("random:1 ", "cat.png "))]
    # tflite-reference and tflm-host agree bit for bit, so their pairs with tflite-optimized differ
    # identically: the judged one is shown, the reported-only one counted.
    assert rows == [["random:1", "tflm-host", "vs", "tflite-optimized"], ["cat.png", "tflm-host", "vs", "tflite-optimized"]]
    assert "2 more differing pair(s) pass and repeat a row above" in text

"""junit.xml: what CI systems show as a test tree.

One <testsuite> per input and backend pair ("cat.png: tflite-reference vs tflm-host")
with one <testcase> per layer and final output: <failure> when the layer is out of
tolerance, <skipped> when the pair is not judged by the policy or the layer exists on
one side only. When a diagnosis ran, a failure's message ends with the layer's cause
("max |Δ| 3 > 1; cause: kernel") and its text, like the <system-out> of a differing layer
that passes, has the evidence. One more testsuite "backends" has a testcase per backend: <error> for a
backend error the policy fails on, <skipped> (with the message) for one it only warns on.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from ..analysis.diffrun import DiffRun
from .json_report import layer_verdict


def build(run: DiffRun, verdict) -> ET.ElementTree:
    root = ET.Element("testsuites", name="simrun diff")
    backends = _suite(root, "backends")
    for label in run.backends:
        case = ET.SubElement(backends, "testcase", classname="simrun.backends", name=label)
        if label in run.backend_errors:
            message = run.backend_errors[label]
            if verdict.backend_errors.get(label, "fail") == "fail":
                ET.SubElement(case, "error", message=message, type="BackendError").text = message
            else:
                ET.SubElement(case, "skipped", message=f"backend error (warn): {message}")
        versions = run.versions.get(label)
        if versions:
            ET.SubElement(case, "system-out").text = "\n".join(f"{k} {v}" for k, v in versions.items())

    pair_verdicts = iter(verdict.pairs)
    for n, (input_name, cmp) in enumerate(zip(run.input_names, run.comparisons)):
        for pair in cmp.pairs:
            pv = next(pair_verdicts)
            suite = _suite(root, f"{input_name}: {pair.name}")
            classname = f"simrun.{input_name}.{pair.a}.vs.{pair.b}"
            for s in pair.layers + pair.outputs:
                case = ET.SubElement(suite, "testcase", classname=classname, name=s.label)
                outcome = layer_verdict(s, pv)      # the verdict summary.json and the HTML show
                d = run.layer_diagnosis(n, pair, s)
                why = _why(d)
                if outcome == "fail":
                    reasons = "; ".join(pv.failing[s.id])
                    detail = reasons if not s.compared else (
                        f"{reasons}\nmismatched {s.mismatched}/{s.count}, max |Δ| {s.max_abs_delta:g}, "
                        f"histogram {s.histogram}")
                    if why:
                        detail += f"\n{why}"
                    message = reasons + (f"; cause: {d.cause}" if d is not None else "")
                    ET.SubElement(case, "failure", message=message, type="OutOfTolerance").text = detail
                elif why and d.cause != "none":
                    ET.SubElement(case, "system-out").text = why
                elif outcome == "unjudged":
                    ET.SubElement(case, "skipped", message="pair not judged by the policy")
                elif outcome == "not compared":
                    side = pair.a if s.status == "only_a" else pair.b
                    ET.SubElement(case, "skipped", message=f"captured by {side} only")
    for suite in root.iter("testsuite"):
        _count(suite)
    _count(root)
    return ET.ElementTree(root)


def _why(d) -> str | None:
    """The diagnosis of a layer in words, for the CI log; None when none ran."""
    if d is None:
        return None
    own = "not isolated" if d.own is None else f"own max |Δ| {d.own.max_abs_delta:g}"
    kernel = f"; kernel {d.kernel}" if d.kernel else ""
    return f"cause: {d.cause} ({own}{kernel}): {d.evidence}"


def _suite(root: ET.Element, name: str) -> ET.Element:
    return ET.SubElement(root, "testsuite", name=name)


def _count(element: ET.Element) -> None:
    cases = list(element.iter("testcase"))
    element.set("tests", str(len(cases)))
    for tag, attr in (("failure", "failures"), ("error", "errors"), ("skipped", "skipped")):
        element.set(attr, str(sum(1 for c in cases if c.find(tag) is not None)))


def write(run: DiffRun, verdict, path: Path) -> Path:
    tree = build(run, verdict)
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)
    return path

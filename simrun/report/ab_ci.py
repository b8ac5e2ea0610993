"""junit.xml and summary.md of a quantization A/B: each scheme's differential run as
`simrun diff` reports it (simrun.report.junit, .markdown), under the scheme's name.

junit.xml: the testsuites of every scheme's run, their names and testcase names starting
"SCHEME: "; classname "simrun.MODEL" (the float model's stem). A scheme that has no
differential run (its conversion or run failed) is one testcase with an <error>. As for
`simrun diff`, a non-zero exit has at least one <failure> or <error>, a pass none.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET

from . import ab_task, junit
from . import markdown as diff_markdown
from .digest import headline


def junit_tree(ab, exit_code: int | None = None, record=None) -> ET.ElementTree:
    stem = junit.model_stem(ab.source.get("path") or "model")
    cls = f"simrun.{stem}"
    root = ET.Element("testsuites", name=f"simrun ab {stem}")
    for res in ab.schemes:
        if res.result is None:
            suite = ET.SubElement(root, "testsuite", name=f"{res.scheme}: {stem}")
            case = ET.SubElement(suite, "testcase", classname=cls, name=f"{res.scheme}: differential run",
                                 time="0.000")
            why = res.error or "no differential run"
            ET.SubElement(case, "error", message=why, type="SchemeError").text = why
            continue
        junit.add_run(root, res.run, res.verdict, exit_code=res.result.exit_code,
                      backend_seconds=res.run.seconds, prefix=f"{res.scheme}: ", classname=cls)
    failed = exit_code not in (None, 0)
    if failed and not any(True for tag in ("failure", "error") for _ in root.iter(tag)):
        suite = ET.SubElement(root, "testsuite", name=f"{stem}: verdict")
        case = ET.SubElement(suite, "testcase", classname=cls, name="verdict", time="0.000")
        ET.SubElement(case, "failure", message=f"exit code {exit_code}", type="VerdictFailed")
    junit.finish(root, record.seconds if record is not None else None)
    return ET.ElementTree(root)


def markdown(ab, exit_code: int | None = None) -> str:
    passed = all(res.verdict is None or res.verdict.passed for res in ab.schemes)
    code = f" (exit {exit_code})" if exit_code is not None else ""
    name = str(ab.source.get("path") or "model").rstrip("/").rsplit("/", 1)[-1]
    lines = [f"## simrun ab {name}: {'PASSED' if passed else 'FAILED'}{code}", ""]
    lines += ab_task.markdown_lines(ab)
    for res in ab.schemes:
        if res.result is None:
            lines += [f"### {res.scheme}: no differential run", "", res.error or "", ""]
            continue
        state = "PASSED" if res.verdict.passed else "FAILED"
        lines += [f"### {res.scheme}: {state}", ""]
        lines += [f"- {diff_markdown._md(s)}" for s in headline(res.run, res.verdict)]
        lines += ["", f"Full report: `{res.scheme}/summary.md`", ""]
    return "\n".join(lines)


def annotations(ab) -> list[str]:
    out = []
    for res in ab.schemes:
        if res.result is not None:
            out += [line.replace("::error title=simrun diff", f"::error title=simrun ab {res.scheme}", 1)
                    for line in diff_markdown.annotations(res.run, res.verdict)]
        elif res.error:
            out.append(f"::error title=simrun ab {res.scheme}::{diff_markdown._escape_data(res.error)}")
    return out

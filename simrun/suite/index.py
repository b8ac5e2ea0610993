"""A suite's index, written from its records alone (so a merge of shards writes the same):

- summary.json: every record (simrun.suite.job.record + seconds, peak_rss_mib, order),
  the counts and the exit code. Shape (schema 1):

      {"schema": 1, "kind": "simrun-suite", "exit_code": int,
       "counts": {"models", "passed", "failed", "by_exit_code": {code: n}},
       "backends": [label, ...],                 # every backend of any model, first seen first
       "shard": {"index", "count", "total_models"} | null, "merged_from": [dir] | null,
       "jobs": int|null, "seconds": float,       # wall time of the run (a merge: its shards' sum)
       "baseline": {"path", "missing": [id], "regressed"|"improved"|"unchanged"|"new"|"not compared": [id]}
                   | null,                       # --baseline (simrun.suite.baseline)
       "models": [RECORD, ...]}                  # suite order

- summary.md: the same as a table (CI job summaries, pull-request comments);
- junit.xml: every model's junit.xml in one file, each testsuite named "<id>: <its name>";
  a model whose diff did not run gets one testcase with an <error>;
- index.html: models x backends (verdict against the model's reference and the first
  divergent layer), each row linking to the model's report folder.

Exit code: the worst of the models' (the highest, as simrun.analysis.result.exit_code
takes the highest of the failed backends'): 0 only when every model passed.
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from html import escape
from pathlib import Path

from .baseline import cell as baseline_cell, overview

SCHEMA = 1


def suite_exit_code(records: list[dict]) -> int:
    return max((r["exit_code"] for r in records), default=0)


def all_backends(records: list[dict]) -> list[str]:
    return list(dict.fromkeys(label for r in records for label in r["backends"]))


def summary(records: list[dict], meta: dict) -> dict:
    by_code: dict[str, int] = {}
    for r in records:
        by_code[str(r["exit_code"])] = by_code.get(str(r["exit_code"]), 0) + 1
    return {"schema": SCHEMA, "kind": "simrun-suite", "exit_code": suite_exit_code(records),
            "counts": {"models": len(records), "passed": sum(r["passed"] for r in records),
                       "failed": sum(not r["passed"] for r in records), "by_exit_code": by_code},
            "backends": all_backends(records), "shard": meta.get("shard"),
            "merged_from": meta.get("merged_from"), "jobs": meta.get("jobs"),
            "seconds": round(meta.get("seconds", sum(r.get("seconds", 0.0) for r in records)), 3),
            "baseline": overview(records, meta.get("baseline")), "models": records}


def write_index(out_dir: Path, records: list[dict], meta: dict) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    records = sorted(records, key=lambda r: r["order"])
    data = summary(records, meta)
    paths = {"json": out_dir / "summary.json", "md": out_dir / "summary.md",
             "junit": out_dir / "junit.xml", "html": out_dir / "index.html"}
    _atomic(paths["json"], json.dumps(data, indent=1) + "\n")
    _atomic(paths["md"], markdown(data))
    tree = merged_junit(out_dir, records)
    ET.indent(tree)
    _atomic(paths["junit"], ET.tostring(tree.getroot(), encoding="unicode", xml_declaration=True) + "\n")
    _atomic(paths["html"], html(data, out_dir))
    return paths


def _atomic(path: Path, text: str) -> None:
    """Write beside and rename: a reader (or a crashed run) never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def cell_text(cell: dict | None) -> str:
    if cell is None:
        return "-"
    text = cell["status"]
    first = cell.get("first_divergent")
    if first and cell["status"] not in ("bit-exact", "reference"):
        text += f" @ {first['id']} {first['op']}"
    return text


def _verdict(r: dict) -> str:
    return "PASS" if r["passed"] else f"FAIL (exit {r['exit_code']})"


# --- summary.md ---------------------------------------------------------------------------
def baseline_line(base: dict) -> str:
    """One sentence on the suite against its baseline (summary.md, index.html, the terminal)."""
    counts = ", ".join(f"{len(base[k])} {k}" for k in ("regressed", "improved", "unchanged", "new", "not compared")
                       if base[k])
    return (f"against the baseline {base['path']}: {counts or 'no model compared'}"
            + (f"; no longer in the suite: {', '.join(base['missing'])}" if base["missing"] else ""))


def baseline_changes(data: dict) -> list[tuple[str, str, str]]:
    """(model id, "REGRESSION" | "improved", text) of every model, in suite order."""
    return [(r["id"], what, text) for r in data["models"] if r.get("baseline")
            for what, key in (("REGRESSION", "regressions"), ("improved", "improvements"))
            for text in r["baseline"][key]]


def markdown(data: dict) -> str:
    counts, backends, base = data["counts"], data["backends"], data.get("baseline")
    lines = [f"# simrun suite: {'PASSED' if data['exit_code'] == 0 else 'FAILED'} "
             f"(exit {data['exit_code']})", "",
             f"{counts['models']} model(s): {counts['passed']} passed, {counts['failed']} failed"
             f"; {data['seconds']:.1f} s" + (f"; merged from {len(data['merged_from'])} shard(s)"
                                             if data.get("merged_from") else ""), ""]
    if base:
        lines += [baseline_line(base), ""]
    lines += ["| model | verdict | " + " | ".join(f"`{b}`" for b in backends)
              + (" | vs baseline" if base else "") + " | seconds |",
              "|---|---|" + "---|" * len(backends) + ("---|" if base else "") + "---|"]
    for r in data["models"]:
        cells = [cell_text(r["cells"].get(b)) if b in r["backends"] else "" for b in backends]
        cells += [baseline_cell(r)] if base else []
        lines.append(f"| [{r['id']}]({r['report']}/) | {_verdict(r)} | " + " | ".join(cells)
                     + f" | {r.get('seconds', 0.0):.1f} |")
    changes = baseline_changes(data)
    if changes:
        lines += ["", "## Against the baseline", ""] + [f"- **{i}**: {what}: {t}" for i, what, t in changes]
    failing = [(r["id"], f) for r in data["models"] for f in r["failures"]]
    if failing:
        lines += ["", "## Failures", ""] + [f"- **{i}**: {f}" for i, f in failing]
    return "\n".join(lines) + "\n"


# --- junit.xml ----------------------------------------------------------------------------
def merged_junit(out_dir: Path, records: list[dict]) -> ET.ElementTree:
    root = ET.Element("testsuites", name="simrun suite")
    for r in records:
        path = out_dir / r["report"] / "junit.xml" if r.get("report") else None
        suites = []
        if path is not None and path.is_file() and r.get("error") is None:
            try:
                suites = list(ET.parse(path).getroot().iter("testsuite"))
            except ET.ParseError:
                suites = []
        if not suites:
            suite = ET.Element("testsuite", name=f"{r['id']}: diff")
            case = ET.SubElement(suite, "testcase", classname=f"simrun.{r['id']}", name="diff")
            message = r.get("error") or "; ".join(r["failures"]) or f"exit {r['exit_code']}"
            ET.SubElement(case, "error", message=message, type="DiffError").text = message
            suites = [suite]
        else:
            for suite in suites:
                # A diff's suites already lead with its model ("MODEL: backends"); a model listed
                # under another id gets the id in front. Class names stay `simrun.<id>`: one dot,
                # so Jenkins and GitLab show one package per model.
                name = suite.get("name", "")
                if not name.startswith(f"{r['id']}: "):
                    suite.set("name", f"{r['id']}: {name}")
                for case in suite.iter("testcase"):
                    case.set("classname", f"simrun.{r['id'].replace('.', '_')}")
        for suite in suites:
            _count(suite)
            root.append(suite)
    _count(root)
    return ET.ElementTree(root)


def _count(element: ET.Element) -> None:
    cases = list(element.iter("testcase"))
    element.set("tests", str(len(cases)))
    for tag, attr in (("failure", "failures"), ("error", "errors"), ("skipped", "skipped")):
        element.set(attr, str(sum(1 for c in cases if c.find(tag) is not None)))


# --- index.html ---------------------------------------------------------------------------
_CSS = """body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ccc;padding:.3em .5em;text-align:left}
th{background:#f3f3f3}.bit-exact,.reference{background:#e7f6e7}.pass{background:#f3f9e1}
.fail,.error{background:#fbe3e3}.unjudged,.alone,.error-warn{background:#f5f0dc}
.badge{padding:.1em .5em;border-radius:.3em;color:#fff}.ok{background:#2a7d2a}.ko{background:#b02a2a}
code{font-size:.95em}.meta{color:#555}"""


def html(data: dict, out_dir: Path) -> str:
    backends, counts, base = data["backends"], data["counts"], data.get("baseline")
    ok = data["exit_code"] == 0
    out = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>simrun suite</title>"
           f"<style>{_CSS}</style></head><body>",
           f"<h1>simrun suite <span class='badge {'ok' if ok else 'ko'}'>"
           f"{'PASSED' if ok else 'FAILED'}</span></h1>",
           f"<p class='meta'>{counts['models']} model(s): {counts['passed']} passed, "
           f"{counts['failed']} failed · exit {data['exit_code']} · {data['seconds']:.1f} s"
           + (f" · merged from {len(data['merged_from'])} shard(s)" if data.get("merged_from") else "")
           + "</p>" + (f"<p>{escape(baseline_line(base))}</p>" if base else ""),
           "<p class='meta'>Each cell: the backend against the model's reference (its own cell says "
           "<i>reference</i>) and the first layer where they differ.</p>",
           "<table><tr><th>model</th><th>verdict</th>"
           + "".join(f"<th><code>{escape(b)}</code></th>" for b in backends)
           + ("<th>vs baseline</th>" if base else "") + "<th>s</th><th>peak MiB</th></tr>"]
    for r in data["models"]:
        report = out_dir / r["report"] / "report.html" if r.get("report") else None
        link = (f"{r['report']}/report.html" if report is not None and report.is_file()
                else f"{r['report']}.log.txt" if r.get("report") else None)
        name = escape(r["id"])
        out.append(f"<tr><td>" + (f"<a href='{escape(link)}'>{name}</a>" if link else name)
                   + f"<br><span class='meta'>{escape(Path(r['model']).name)}</span></td>"
                   f"<td class='{'pass' if r['passed'] else 'fail'}'>{escape(_verdict(r))}"
                   + (f"<br><span class='meta'>{escape(r['error'])}</span>" if r.get("error") else "")
                   + "</td>")
        for b in backends:
            cell = r["cells"].get(b) if b in r["backends"] else None
            if cell is None:
                out.append("<td></td>")
                continue
            title = f" title='{escape(cell['message'])}'" if cell.get("message") else ""
            css = cell["status"].replace(" (warn)", "-warn")
            out.append(f"<td class='{escape(css)}'{title}>{escape(cell_text(cell))}</td>")
        if base:
            status = (r.get("baseline") or {}).get("status", "")
            css = {"regressed": "fail", "improved": "bit-exact", "unchanged": "pass"}.get(status, "alone")
            out.append(f"<td class='{css}'>{escape(baseline_cell(r))}</td>")
        out.append(f"<td>{r.get('seconds', 0.0):.1f}</td><td>{r.get('peak_rss_mib', 0.0):.0f}</td></tr>")
    out.append("</table>")
    changes = baseline_changes(data)
    if changes:
        out.append("<h3>Against the baseline</h3><ul>" + "".join(
            f"<li><b>{escape(i)}</b>: {escape(what)}: {escape(t)}</li>" for i, what, t in changes) + "</ul>")
    failing = [(r["id"], f) for r in data["models"] for f in r["failures"]]
    if failing:
        out.append("<h3>Failures</h3><ul>" + "".join(f"<li><b>{escape(i)}</b>: {escape(f)}</li>"
                                                     for i, f in failing) + "</ul>")
    out.append("</body></html>")
    return "\n".join(out)

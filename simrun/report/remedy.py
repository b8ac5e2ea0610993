"""The remedies (run.remedies, simrun.analysis.remedy) as each report shows them, right after
the diagnosis sentences: per backend pair and cause, what to do and what simrun checked.

The terminal and summary.md show one remedy per cause and pair of agreement classes (backends
bit-exact with each other share every remedy: tflm-host vs X repeats tflite-reference vs X),
with how many pairs it stands for; summary.json and report.html have every pair."""
from __future__ import annotations

from html import escape
from pathlib import Path

from .digest import agreement_classes
from .repro import bundle_key

_MARK = {"verified": "verified end to end", "refuted": "checked end to end: NOT enough",
         "per-layer": "checked per layer", "not checked": "not checked"}


def grouped(run) -> list[tuple[object, int]]:
    """(remedy, how many pairs it stands for) over agreement classes, in run order."""
    remedies = list(getattr(run, "remedies", None) or [])
    if not remedies:
        return []
    klass = {b: i for i, c in enumerate(agreement_classes(run)) for b in c}
    out: dict[tuple, list] = {}
    for r in remedies:
        key = (klass.get(r.a, r.a), klass.get(r.b, r.b), r.cause, tuple(r.layers))
        if key in out:
            out[key][1] += 1
        else:
            out[key] = [r, 1]
    return [(r, n) for r, n in out.values()]


def bundles(run, remedy) -> list[str]:
    """The reproducer bundle folders written for the remedy's layers (run.repro)."""
    if not remedy.repro or not getattr(run, "repro", None):
        return []
    wanted = {bundle_key(remedy.a, remedy.b, sg, op, name) for sg, op, name in remedy.repro}
    return [b for b in run.repro if (Path(b).parent.name, Path(b).name) in wanted]


def terminal_lines(run) -> list[str]:
    groups = grouped(run)
    if not groups:
        return []
    lines = ["what to do:"]
    for r, n in groups:
        alike = f" (+{n - 1} pair(s) alike)" if n > 1 else ""
        lines.append(f"  {r.pair}{alike}: {r.cause} at {_layers(r.layers)}: {r.action}")
        lines.append(f"    [{_MARK[r.status]}] {r.check}")
        found = bundles(run, r)
        if found:
            lines.append(f"    reproducer: {found[0]}" + (f" (+{len(found) - 1} more beside it)" if len(found) > 1 else ""))
        elif r.repro:
            lines.append("    reproducer: rerun with --repro DIR (written by default when the policy fails)")
    return lines + [""]


def markdown_lines(run) -> list[str]:
    groups = grouped(run)
    if not groups:
        return []
    lines = ["### What to do", ""]
    for r, n in groups:
        alike = f" (+{n - 1} alike)" if n > 1 else ""
        found = bundles(run, r)
        repro = f" Reproducer: `{found[0]}`" + (f" (+{len(found) - 1})" if len(found) > 1 else "") + "." \
            if found else ""
        lines.append(f"- `{r.a}` vs `{r.b}`{alike}, **{r.cause}** at {_md(_layers(r.layers))}: {_md(r.action)}. "
                     f"*{_MARK[r.status]}*: {_md(r.check)}.{repro}")
    return lines + [""]


def json_section(run) -> list[dict]:
    """summary.json "remedies": [{a, b, cause, layers, action, check, status, variant, repro}]."""
    return [{"a": r.a, "b": r.b, "cause": r.cause, "layers": list(r.layers), "action": r.action,
             "check": r.check, "status": r.status, "variant": r.variant, "repro": bundles(run, r)}
            for r in getattr(run, "remedies", None) or []]


def html_section(run, out_dir) -> str:
    remedies = list(getattr(run, "remedies", None) or [])
    if not remedies:
        return ""
    rows = []
    for r in remedies:
        links = []
        for b in bundles(run, r):
            try:
                href = (Path(b) / "README.md").resolve().relative_to(Path(out_dir).resolve()).as_posix()
            except ValueError:
                href = (Path(b) / "README.md").resolve().as_uri()
            links.append(f"<a href='{escape(href)}'>{escape(Path(b).name)}</a>")
        rows.append(f"<tr><td>{escape(r.pair)}</td><td>{escape(r.cause)}</td>"
                    f"<td>{escape(_layers(r.layers))}</td><td>{escape(r.action)}</td>"
                    f"<td><b>{escape(_MARK[r.status])}</b>: {escape(r.check)}</td>"
                    f"<td>{' '.join(links) or '-'}</td></tr>")
    return ("<h3 id='remedies'>What to do</h3><table><tr><th>pair</th><th>cause</th><th>layers</th>"
            "<th>action</th><th>checked</th><th>reproducer</th></tr>" + "".join(rows) + "</table>")


def _layers(names: list[str]) -> str:
    return names[0] + (f" (+{len(names) - 1} more)" if len(names) > 1 else "")


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;")

"""The baseline comparison (simrun.analysis.baseline) in the reports: terminal lines, the
summary.json "baseline" section and a small HTML section, old and new side by side.

summary.json "baseline" (null without --baseline):

    {"path": str, "schema": int, "simrun": {"old": str|null, "new": str},
     "model_sha256": {"old": str|null, "new": str|null},
     "passed": bool,                                  # no regression
     "regressions": [CHANGE], "improvements": [CHANGE],
     "known": [str],                                  # failures the baseline had too (not failing)
     "notes": [str],                                  # pairs or inputs in one run only, excused backends
     "pairs": [{"input", "a", "b", "old": SIDE|null, "new": SIDE}]}   # the pairs the policy judges
    CHANGE = {"kind", "text", "input", "a", "b", "layer", "old", "new"}
    SIDE = {"verdict", "bit_exact", "max_abs_delta", "layers_diverging", "introducing" (layers
            with own error; null undiagnosed), "output_relative_error", "first_divergent"}
"""
from __future__ import annotations

from html import escape

from ..analysis.compare import finite_or_none

_HEADER = ("input", "pair", "old max |Δ|", "new max |Δ|", "old introducing", "new introducing",
           "old output err", "new output err", "old", "new")


def _side_cells(side: dict | None) -> tuple[str, str, str, str]:
    if side is None:
        return ("-", "-", "-", "(none)")
    out = side["output_relative_error"]
    return (f"{side['max_abs_delta']:g}" if side["max_abs_delta"] is not None else "-",
            "-" if side["introducing"] is None else str(side["introducing"]),
            "-" if out is None else f"{out:.2%}",
            "bit-exact" if side["bit_exact"] else side["verdict"])


def _rows(result) -> list[tuple[str, ...]]:
    rows = []
    for was, now in result.rows:
        o = _side_cells(was.side() if was else None)
        n = _side_cells(now.side())
        rows.append((now.input, now.name, o[0], n[0], o[1], n[1], o[2], n[2], o[3], n[3]))
    return rows


def terminal_lines(verdict) -> list[str]:
    result = getattr(verdict, "baseline", None)
    if result is None:
        return []
    old, new = result.old, result.new
    lines = ["", f"baseline: {old.source} (model {_short(old.model_sha256)} -> {_short(new.model_sha256)}, "
                 f"simrun {old.simrun or '?'} -> {new.simrun or '?'})"]
    rows = [_HEADER] + _rows(result)
    if len(rows) > 1:
        widths = [max(len(r[i]) for r in rows) for i in range(len(_HEADER))]
        for k, row in enumerate(rows):
            lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
            if k == 0:
                lines.append("  " + "  ".join("-" * w for w in widths))
    lines += [f"  REGRESSION: {c.text}" for c in result.regressions]
    lines += [f"  improved: {c.text}" for c in result.improvements]
    lines += [f"  known (in the baseline too): {k}" for k in result.known]
    lines += [f"  note: {n}" for n in result.notes]
    if result.passed:
        lines.append("  no regression against the baseline" +
                     (f"; {len(result.known)} known failure(s)" if result.known else ""))
    return lines


def summary(verdict) -> dict | None:
    result = getattr(verdict, "baseline", None)
    if result is None:
        return None
    old, new = result.old, result.new
    return {
        "path": old.source, "schema": old.schema,
        "simrun": {"old": old.simrun, "new": new.simrun},
        "model_sha256": {"old": old.model_sha256, "new": new.model_sha256},
        "passed": result.passed,
        "regressions": [_change(c) for c in result.regressions],
        "improvements": [_change(c) for c in result.improvements],
        "known": list(result.known), "notes": list(result.notes),
        "pairs": [{"input": now.input, "a": now.a, "b": now.b,
                   "old": _side_json(was.side()) if was else None, "new": _side_json(now.side())}
                  for was, now in result.rows],
    }


def html_section(verdict) -> str:
    result = getattr(verdict, "baseline", None)
    if result is None:
        return ""
    old = result.old
    out = [f"<h2>Against the baseline</h2><p><code>{escape(old.source)}</code> · model "
           f"<code>{_short(old.model_sha256)}</code> → <code>{_short(result.new.model_sha256)}</code> · "
           f"{'no regression' if result.passed else f'{len(result.regressions)} regression(s)'}</p>"]
    for title, items in (("Regressions", [c.text for c in result.regressions]),
                         ("Improved", [c.text for c in result.improvements]),
                         ("Known (in the baseline too)", result.known), ("Notes", result.notes)):
        if items:
            out.append(f"<h3>{title}</h3><ul>" + "".join(f"<li>{escape(t)}</li>" for t in items) + "</ul>")
    rows = _rows(result)
    if rows:
        out.append("<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in _HEADER) + "</tr>" +
                   "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
                   + "</table>")
    return "".join(out)


def _change(c) -> dict:
    return {"kind": c.kind, "text": c.text, "input": c.input, "a": c.a, "b": c.b, "layer": c.layer,
            "old": finite_or_none(c.old) if isinstance(c.old, (int, float)) else c.old,
            "new": finite_or_none(c.new) if isinstance(c.new, (int, float)) else c.new}


def _side_json(side: dict) -> dict:
    return {k: finite_or_none(v) if isinstance(v, float) else v for k, v in side.items()}


def _short(sha: str | None) -> str:
    return f"{sha[:12]}…" if sha else "?"

"""`simrun suite --baseline DIR`: an earlier suite's output folder (one run's or a merge's) as
the baseline, model by model.

Each model is judged against its own earlier diff, DIR/models/<id>/summary.json, exactly as
`simrun diff --baseline` judges (simrun.analysis.baseline): failures that model had then too are
known, regressions fail, so its exit code follows diff's rules and the suite's is the worst of
them. A model the baseline lacks (new, or its diff did not run then) is diffed plainly and
says so. Every record carries a "baseline" section (below); the index and the summaries show
it, and name the baseline's models that this suite no longer has.

    RECORD["baseline"] = {"status": "regressed" | "improved" | "unchanged" | "new" | "not compared",
                          "regressions": [str], "improvements": [str], "known": [str],
                          "notes": [str]}
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import BadInput

STATUSES = ("regressed", "improved", "unchanged", "new", "not compared")


@dataclass(frozen=True)
class SuiteBaseline:
    path: Path
    summaries: dict[str, Path]      # model id -> its diff's summary.json in the baseline
    absent: dict[str, str]          # model id -> why the baseline has no diff of it
    ids: tuple[str, ...]            # every model of the baseline, in its order


def load(path: Path) -> SuiteBaseline:
    """The suite output folder at `path`; BadInput naming what is wrong with it."""
    path = Path(path)
    summary = path / "summary.json"
    try:
        doc = json.loads(summary.read_text())
    except (OSError, ValueError) as err:
        raise BadInput(f"--baseline {path}: no readable suite summary.json ({err}); give the --out "
                       f"folder of an earlier `simrun suite` (or of `simrun merge`)") from None
    if not isinstance(doc, dict) or doc.get("kind") != "simrun-suite" or not isinstance(doc.get("models"), list):
        raise BadInput(f"--baseline {summary}: not a simrun suite summary (a `simrun diff` report? "
                       f"`simrun diff --baseline` takes that); give the --out folder of an earlier `simrun suite`")
    summaries, absent, ids = {}, {}, []
    for record in doc["models"]:
        ident = record.get("id")
        ids.append(ident)
        found = path / record.get("report", f"models/{ident}") / "summary.json"
        if record.get("error") is None and found.is_file():
            summaries[ident] = found
        else:
            absent[ident] = (f"its diff did not run in the baseline ({record['error']})" if record.get("error")
                             else f"the baseline has no {found.relative_to(path)}")
    return SuiteBaseline(path, summaries, absent, tuple(ids))


def for_model(base: SuiteBaseline | None, ident: str) -> str | None:
    """The summary.json the model's diff takes as its baseline, or None."""
    if base is None or ident not in base.summaries:
        return None
    return str(base.summaries[ident].resolve())


def unmatched(base: SuiteBaseline, ident: str) -> dict:
    """The section of a model diffed without a baseline of its own."""
    note = base.absent.get(ident, "not in the baseline (a new model)")
    return section("new", notes=[note])


def from_verdict(verdict) -> dict:
    """The section of a model diffed against its baseline (verdict.baseline: BaselineResult)."""
    result = verdict.baseline
    status = ("regressed" if result.regressions else "improved" if result.improvements else "unchanged")
    return section(status, [c.text for c in result.regressions], [c.text for c in result.improvements],
                   list(result.known), list(result.notes))


def section(status: str, regressions=(), improvements=(), known=(), notes=()) -> dict:
    return {"status": status, "regressions": list(regressions), "improvements": list(improvements),
            "known": list(known), "notes": list(notes)}


def meta(base: SuiteBaseline, suite_ids: list[str]) -> dict:
    """What the summary says of the baseline as a whole: its folder and its models this suite
    (all of it, every shard) no longer has."""
    mine = set(suite_ids)
    return {"path": str(base.path), "missing": [i for i in base.ids if i not in mine]}


def overview(records: list[dict], baseline_meta: dict | None) -> dict | None:
    """summary.json "baseline": {"path", "missing": [id], STATUS: [id] for each of STATUSES}."""
    if baseline_meta is None:
        return None
    out = {"path": baseline_meta["path"], "missing": list(baseline_meta.get("missing", []))}
    for status in STATUSES:
        out[status] = [r["id"] for r in records if (r.get("baseline") or {}).get("status") == status]
    return out


def cell(record: dict) -> str:
    """The index's "vs baseline" cell of one model."""
    b = record.get("baseline")
    if not b:
        return "-"
    if b["status"] == "regressed":
        return f"regressed ({len(b['regressions'])})"
    if b["status"] == "improved":
        return f"improved ({len(b['improvements'])})"
    return b["status"] + (f", {len(b['known'])} known" if b["known"] else "")

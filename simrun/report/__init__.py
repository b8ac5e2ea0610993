"""Reports of a diff (simrun.analysis.result.DiffResult: the DiffRun and its verdict):
terminal table, summary.json, junit.xml, report.html (+ plot SVGs)."""
from __future__ import annotations

from pathlib import Path

from ..analysis.result import DiffResult
from . import terminal

# terminal is imported for callers: report.terminal.render is part of the API.
__all__ = ["terminal", "write_reports"]


def write_reports(result: DiffResult, out_dir) -> dict[str, Path]:
    """Write every file report of `result` into out_dir (created if needed).

    Returns {"json": summary.json, "junit": junit.xml, "html": report.html,
    "plots": the plots/ directory (one SVG per input and reference class that another
    backend differs from; absent when every pair agrees bit for bit),
    "model_explorer": [the Model Explorer node-data files in model-explorer/]}.
    """
    from . import html, json_report, junit, model_explorer
    run, verdict = result.run, result.verdict
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path, _ = html.write(run, verdict, out_dir)
    return {
        "json": json_report.write(run, verdict, out_dir / "summary.json"),
        "junit": junit.write(run, verdict, out_dir / "junit.xml"),
        "html": html_path,
        "plots": out_dir / "plots",
        "model_explorer": model_explorer.write(run, verdict, out_dir / model_explorer.FOLDER),
    }

"""Reports of a diff (simrun.analysis.result.DiffResult: the DiffRun, its verdict and exit code):
terminal table, summary.json, junit.xml, summary.md, report.html (+ plot SVGs).

Every report folder is written whole into a temporary folder beside it and moved into place
at the end (simrun.report.folder), so it never mixes two runs; a run that stops before its
verdict leaves a folder that says so (simrun.report.outcome).
"""
from __future__ import annotations

from pathlib import Path

from ..analysis.result import DiffResult
from . import terminal

# terminal is imported for callers: report.terminal.render is part of the API.
__all__ = ["terminal", "write_reports", "write_into"]


def write_reports(result: DiffResult, out_dir, *, record=None, junit_layers: bool = False) -> dict[str, Path]:
    """Write every file report of `result` into out_dir, replacing what an earlier run left there.

    Returns {"json": summary.json, "junit": junit.xml, "markdown": summary.md, "html": report.html,
    "plots": the plots/ directory (one SVG per input and reference class that another
    backend differs from; absent when every pair agrees bit for bit),
    "model_explorer": [the Model Explorer node-data files in model-explorer/]}.
    `record`: the command's RunRecord (simrun.report.provenance) for summary.json's provenance;
    `junit_layers`: one junit testcase per layer instead of one per input and pair.
    """
    from .folder import ReportFolder
    folder = ReportFolder(out_dir)
    try:
        written = write_into(folder.path, result, record=record, junit_layers=junit_layers)
        target = folder.commit()
    finally:
        folder.discard()
    return {key: moved(path, folder.path, target) for key, path in written.items()}


def moved(written, old: Path, new: Path):
    """Where a written path (or each of a list of them) is once its folder moved from old to new."""
    if isinstance(written, list):
        return [moved(p, old, new) for p in written]
    return new / Path(written).relative_to(old)


def write_into(directory: Path, result: DiffResult, *, record=None, junit_layers: bool = False,
               title: str | None = None) -> dict[str, Path]:
    """The report files, written straight into `directory` (a fresh folder: a ReportFolder's).
    junit.xml and summary.json carry `result.exit_code`, the one the CLI exits with."""
    from . import html, json_report, junit, markdown, model_explorer
    run, verdict, code = result.run, result.verdict, result.exit_code
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    html_path, _ = html.write(run, verdict, directory)
    md = directory / "summary.md"
    md.write_text(markdown.render(run, verdict, code, title=title))
    return {
        "json": json_report.write(run, verdict, directory / "summary.json", record, exit_code=code),
        "junit": junit.write(run, verdict, directory / "junit.xml", exit_code=code, layers=junit_layers,
                             backend_seconds=run.seconds,
                             seconds=record.seconds if record is not None else None),
        "markdown": md,
        "html": html_path,
        "plots": directory / "plots",
        "model_explorer": model_explorer.write(run, verdict, directory / model_explorer.FOLDER),
    }

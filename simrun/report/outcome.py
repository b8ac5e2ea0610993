"""How a command's run ends in its report folder, whatever the ending.

    with reporting_stops(folder, record, "simrun diff"):
        ...                      # any error or Ctrl-C in here leaves folder's target with a
                                 # summary.json, junit.xml and summary.md that say the run
                                 # stopped, with its exit code and message, then re-raises

and `publish` hands summary.md and the failure reasons to GitHub Actions when the
run is inside one ($GITHUB_STEP_SUMMARY, ::error annotations when GITHUB_ACTIONS=true).
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path

from ..errors import EXIT_INTERRUPTED, exit_code_of
from . import json_report, junit, markdown
from .folder import ReportFolder


@contextmanager
def reporting_stops(folder: ReportFolder, record, kind: str, env=None):
    try:
        yield
    except BaseException as exc:
        code = exit_code_of(exc)
        if code is None or folder.done:  # SystemExit and the like: not a run's outcome; or the
            folder.discard()             # complete report is already in place (it stands)
            raise
        record.end(code, _message(exc, code))
        try:
            write_stopped(folder.path, record, kind)
            folder.commit()
            publish(folder.target / "summary.md",
                    [markdown.stopped_annotation(record.command, record.model_path, code, record.message)],
                    env)
        except OSError as err:
            print(f"{kind}: could not write the report folder {folder.target}: {err}", file=sys.stderr)
        raise
    finally:
        folder.discard()


def _message(exc: BaseException, code: int) -> str:
    if code == EXIT_INTERRUPTED:
        return "interrupted (Ctrl-C)"
    if isinstance(exc, OSError):
        where = f" {exc.filename}" if exc.filename else ""
        return f"error:{where}: {exc.strerror or exc}"
    text = str(exc)
    from ..errors import SimrunError
    return f"error: {text}" if isinstance(exc, SimrunError) else f"internal error: {type(exc).__name__}: {text}"


def write_stopped(directory: Path, record, kind: str) -> None:
    directory = Path(directory)
    json_report.write_json(json_report.stopped(kind, record), directory / "summary.json")
    junit.write_tree(junit.stopped(record.command, record.model_path, record.exit_code, record.message,
                                   record.seconds), directory / "junit.xml")
    (directory / "summary.md").write_text(markdown.render_stopped(record.command, record.model_path,
                                                                  record.exit_code, record.message))


def publish(summary_md: Path, annotations: list[str], env=None) -> None:
    """Append summary.md to $GITHUB_STEP_SUMMARY when set; print the annotations when
    GITHUB_ACTIONS=true (they mean nothing elsewhere)."""
    env = os.environ if env is None else env
    step_summary = env.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        try:
            with open(step_summary, "a", encoding="utf-8") as out:
                out.write(Path(summary_md).read_text() + "\n")
        except OSError as err:
            print(f"simrun: cannot append to GITHUB_STEP_SUMMARY {step_summary}: {err.strerror or err}",
                  file=sys.stderr)
    if env.get("GITHUB_ACTIONS") == "true":
        for line in annotations:
            print(line, flush=True)

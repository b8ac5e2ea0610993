"""summary.md: the verdict as a pull request or CI job page shows it (GitHub's
$GITHUB_STEP_SUMMARY, GitLab and Jenkins Markdown), and GitHub's ::error annotations.

    ## simrun diff kws_ref_model.tflite: FAILED (exit 1)
    ### Task detect over 6 inputs   with a task: the decisions per pair, first
    - the diagnosis sentences every report opens with
    ### What to do                  per pair and cause: the action and what simrun checked
    ### Backend agreement           the matrix: = bit-exact, Δn from #d, ✗ fails the policy
    ### Failing pairs               input, pair, first failing layer, cause, reasons
    ### Backend errors
"""
from __future__ import annotations

from pathlib import Path

from ..analysis.diffrun import DiffRun
from ..errors import EXIT_CODES
from .digest import agreement_classes, cell_between, cells, headline
from .remedy import markdown_lines as remedy_markdown
from .task import markdown_lines as task_markdown

_MARK = {"fail": " ✗", "pass": "", "unjudged": " (not judged)"}


def render(run: DiffRun, verdict, exit_code: int | None = None, title: str | None = None) -> str:
    model = _model_name(run.model)
    state = "PASSED" if verdict.passed else "FAILED"
    code = f" (exit {exit_code})" if exit_code is not None else ""
    lines = [f"## {title or 'simrun diff'} {model}: {state}{code}", ""]
    # The answer first: the decisions (with a task), then the tensor diagnosis and what to do.
    lines += task_markdown(run, verdict)
    lines += [f"- {_md(s)}" for s in headline(run, verdict)] + [""]
    lines += remedy_markdown(run)
    lines += _matrix(run, verdict)
    failing = _failing_rows(run, verdict)
    if failing:
        lines += ["### Failing pairs", "",
                  "| input | pair | first failing layer | cause | why |", "|---|---|---|---|---|"]
        lines += failing + [""]
    if run.backend_errors:
        lines += ["### Backend errors", ""]
        for label, message in run.backend_errors.items():
            action = verdict.backend_errors.get(label, "fail")
            lines.append(f"- `{label}` ({'fails the run' if action == 'fail' else 'warning'}): "
                         f"{_md(_first_line(message))}")
        lines.append("")
    return "\n".join(lines)


def render_stopped(command: str, model_path: str | None, exit_code: int, message: str) -> str:
    model = f" {Path(model_path).name}" if model_path else ""
    meaning = EXIT_CODES.get(exit_code, "")
    return (f"## simrun {command}{model}: STOPPED (exit {exit_code})\n\n"
            f"The run stopped before a verdict ({meaning}):\n\n```\n{message}\n```\n")


def _matrix(run: DiffRun, verdict) -> list[str]:
    table = cells(run, verdict)
    ran = [b for c in agreement_classes(run, table) for b in c]
    if len(ran) < 2:
        return []
    out = ["### Backend agreement", "",
           "| | " + " | ".join(f"{i + 1}" for i in range(len(ran))) + " |",
           "|---|" + "---|" * len(ran)]
    for i, x in enumerate(ran):
        row = []
        for y in ran:
            cell = cell_between(table, x, y)
            if x == y or cell is None:
                row.append("·")
            elif cell.bit_exact:
                row.append("=")
            else:
                row.append(f"Δ{cell.size} from {cell.where}{_MARK.get(cell.status, '')}")
        out.append(f"| {i + 1} `{x}` | " + " | ".join(row) + " |")
    out += ["", "= bit-exact on every layer of every input · Δ*n* from #*d*: largest difference and the "
                "first layer (execution order) that differs · ✗ fails the policy", ""]
    return out


def _failing_rows(run: DiffRun, verdict) -> list[str]:
    rows = []
    by_key = {(pv.input_name, pv.a, pv.b): pv for pv in verdict.pairs}
    for n, (input_name, cmp) in enumerate(zip(run.input_names, run.comparisons)):
        for pair in cmp.pairs:
            pv = by_key[(input_name, pair.a, pair.b)]
            first = pv.first_failing
            if not pv.failing or first is None:
                continue
            cause = run.layer_cause(n, pair, first) or "-"
            label = f"{first.id} {first.op_name} {first.tensor_name.split(';', 1)[0]}".rstrip()
            more = f" (+{len(pv.failing) - 1} more layers)" if len(pv.failing) > 1 else ""
            rows.append(f"| {_cell(input_name)} | `{pair.a}` vs `{pair.b}` | {_cell(label)}{more} | {cause} | "
                        f"{_cell('; '.join(pv.failing[first.id]))} |")
    return rows


def annotations(run: DiffRun, verdict) -> list[str]:
    """GitHub workflow commands, one ::error per reason the run fails."""
    title = f"simrun diff {_model_name(run.model)}"
    return [f"::error title={_escape_property(title)}::{_escape_data(f)}" for f in verdict.failures]


def stopped_annotation(command: str, model_path: str | None, exit_code: int, message: str) -> str:
    model = f" {Path(model_path).name}" if model_path else ""
    return (f"::error title={_escape_property(f'simrun {command}{model}')}::"
            f"{_escape_data(f'stopped (exit {exit_code}): {message}')}")


def _escape_data(text: str) -> str:
    # GitHub's workflow-command encoding: %, CR and LF in the message.
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _model_name(model) -> str:
    path = getattr(model, "path", None)
    return Path(str(path)).name if path else "model"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;")


def _cell(text: str) -> str:
    return _md(text).replace("\n", " ")


def _first_line(message: str) -> str:
    text = message.strip()
    return text.splitlines()[0] if text else "(no message)"

"""junit.xml: what CI systems show as a test tree, always agreeing with the exit code.

A run that exits non-zero has at least one <failure> or <error>; a pass has none.
Layout (default; `layers=True` makes one testcase per layer instead of per pair):

    <testsuites name="simrun diff MODEL">
      <testsuite name="MODEL: backends">         one testcase per backend, time = its worker's
                                                 wall time; <error> for a backend error the
                                                 policy fails on, <skipped> for one it warns on
      <testsuite name="MODEL: INPUT">            one per input: a testcase per backend pair,
                                                 "INPUT: A vs B"; a judged pair out of tolerance
                                                 has a <failure> whose message names its worst
                                                 layer and cause and whose text lists every
                                                 failing layer; a pair the policy does not
                                                 judge is <skipped> with its diagnosis
      <testsuite name="MODEL: verdict">          only for what fails the run beyond pairs and
                                                 backends (nothing compared, ...)

Every testcase has classname "simrun.MODEL" (the model file's stem, dots replaced): Jenkins,
GitLab and GitHub reporters split a classname at its dots into packages, so the backend
labels and input names, which have dots and colons, go into the testcase name. time= is on
every testcase and suite: a pair's is the time spent comparing it (the backends' run time is
on their own testcases), a layer's an even share of its pair's.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from ..analysis.compare import LayerStats
from ..analysis.diffrun import DiffRun
from ..errors import EXIT_CODES, EXIT_OK
from .json_report import layer_verdict


def model_stem(model) -> str:
    """"kws_ref_model" for a Model (or path) of kws_ref_model.tflite: a classname part without dots."""
    path = model if isinstance(model, (str, Path)) else getattr(model, "path", None)
    stem = Path(str(path)).stem if path else "model"
    return stem.replace(".", "_") or "model"


def build(run: DiffRun, verdict, *, exit_code: int | None = None, layers: bool = False,
          backend_seconds: dict[str, float] | None = None, seconds: float | None = None,
          prefix: str = "") -> ET.ElementTree:
    """`exit_code`: the run's (None: taken from the verdict alone). `prefix` starts every
    suite and testcase name (the A/B's scheme)."""
    stem = model_stem(run.model)
    root = ET.Element("testsuites", name=f"simrun diff {stem}")
    add_run(root, run, verdict, exit_code=exit_code, layers=layers, backend_seconds=backend_seconds,
            prefix=prefix)
    finish(root, seconds)
    return ET.ElementTree(root)


def add_run(root: ET.Element, run: DiffRun, verdict, *, exit_code: int | None = None,
            layers: bool = False, backend_seconds: dict[str, float] | None = None, prefix: str = "",
            classname: str | None = None) -> None:
    """The testsuites of one DiffRun, appended to `root`."""
    stem = model_stem(run.model)
    cls = classname or f"simrun.{stem}"
    head = f"{prefix}{stem}"
    seconds = backend_seconds or {}
    covered = set()                                 # verdict failures a testcase below shows

    backends = _suite(root, f"{head}: backends")
    for label in run.backends:
        case = _case(backends, cls, f"{prefix}backend {label}", seconds.get(label, 0.0))
        if label in run.backend_errors:
            message = run.backend_errors[label]
            if verdict.backend_errors.get(label, "fail") == "fail":
                _child(case, "error", _first_line(message), "BackendError", message)
                covered.add(f"backend {label} failed: {message}")
            else:
                _child(case, "skipped", f"backend error (the policy warns): {_first_line(message)}")
        versions = run.versions.get(label)
        if versions:
            ET.SubElement(case, "system-out").text = "\n".join(f"{k} {v}" for k, v in versions.items())

    verdicts = {(pv.input_name, pv.a, pv.b): pv for pv in verdict.pairs}
    for n, (input_name, cmp) in enumerate(zip(run.input_names, run.comparisons)):
        suite = _suite(root, f"{head}: {input_name}")
        for pair in cmp.pairs:
            pv = verdicts[(input_name, pair.a, pair.b)]
            name = f"{prefix}{input_name}: {pair.name}"
            if pv.failing:
                covered.update(f for f in verdict.failures if f.startswith(f"{input_name}: {pair.name}: "))
            if layers:
                _layer_cases(root, run, n, pair, pv, cls, f"{head}: {input_name}: {pair.name}", name)
            else:
                _pair_case(suite, run, n, pair, pv, cls, name)
        if not len(suite):                  # per-layer suites instead, or no pair for this input
            root.remove(suite)

    # What fails the run beyond pairs and backends (nothing compared, later checks): a testcase each,
    # and one more if the exit code says failure where no testcase does.
    rest = [f for f in verdict.failures if f not in covered]
    failed = (exit_code if exit_code is not None else (EXIT_OK if verdict.passed else 1)) != EXIT_OK
    if rest or (failed and not _has_failure(root)):
        suite = _suite(root, f"{head}: verdict")
        for f in rest:
            case = _case(suite, cls, f"{prefix}verdict: {_title(f)}", 0.0)
            _child(case, "failure", f, "VerdictFailed", f)
        if failed and not _has_failure(root):
            meaning = EXIT_CODES.get(exit_code, f"exit code {exit_code}")
            case = _case(suite, cls, f"{prefix}verdict", 0.0)
            _child(case, "failure", f"exit code {exit_code}: {meaning}", "VerdictFailed",
                   "\n".join(verdict.failures) or meaning)


def _pair_case(suite, run, n, pair, pv, cls, name) -> None:
    case = _case(suite, cls, name, pair.seconds)
    pd = run.pair_diagnosis(n, pair)
    if pv.failing:
        failing = [s for s in pair.layers + pair.outputs if s.id in pv.failing]
        worst = max(failing, key=LayerStats.severity)
        d = run.layer_diagnosis(n, pair, worst)
        first = pv.first_failing
        message = (f"{len(failing)} of {len(pair.layers) + len(pair.outputs)} layers out of tolerance; "
                   f"worst {_short(worst)}: {'; '.join(pv.failing[worst.id])}"
                   + (f"; cause: {d.cause}" if d is not None else "")
                   + (f" (first failing {_short(first)})" if first is not None and first is not worst else ""))
        lines = [_failing_line(run, n, pair, pv, s) for s in failing]
        if pd is not None and pd.summary:
            lines.append(f"diagnosis: {pd.summary}")
        _child(case, "failure", message, "OutOfTolerance", "\n".join(lines))
    elif not pv.judged:
        _child(case, "skipped", f"not judged by the policy: {_pair_sentence(pair, pd)}")
    else:
        ET.SubElement(case, "system-out").text = _pair_sentence(pair, pd)


def _layer_cases(root, run, n, pair, pv, cls, suite_name, name) -> None:
    suite = _suite(root, suite_name)
    stats = pair.layers + pair.outputs
    share = pair.seconds / len(stats) if stats else 0.0
    for s in stats:
        case = _case(suite, cls, f"{name}: {s.label}", share)
        outcome = layer_verdict(s, pv)      # the verdict summary.json and the HTML show
        d = run.layer_diagnosis(n, pair, s)
        why = _why(d)
        if outcome == "fail":
            reasons = "; ".join(pv.failing[s.id])
            message = reasons + (f"; cause: {d.cause}" if d is not None else "")
            _child(case, "failure", message, "OutOfTolerance", _failing_line(run, n, pair, pv, s))
        elif outcome == "unjudged":
            detail = f"max |Δ| {s.max_abs_delta:g}, mismatched {s.mismatched}/{s.count}" if s.compared \
                else s.status.replace("_", " ")
            _child(case, "skipped", f"pair not judged by the policy: {detail}" + (f"; {why}" if why else ""))
        elif outcome == "not compared":
            side = pair.a if s.status == "only_a" else pair.b
            _child(case, "skipped", f"captured by {side} only")
        elif why and d.cause != "none":
            ET.SubElement(case, "system-out").text = why


def _failing_line(run, n, pair, pv, s: LayerStats) -> str:
    line = f"{_short(s)}: {'; '.join(pv.failing[s.id])}"
    if s.compared:
        line += f" (mismatched {s.mismatched}/{s.count}, max |Δ| {s.max_abs_delta:g}, histogram {s.histogram})"
    why = _why(run.layer_diagnosis(n, pair, s))
    return line + (f"; {why}" if why else "")


def _pair_sentence(pair, pd) -> str:
    """The pair in one sentence: its diagnosis when one ran, else where and how much it differs."""
    if pd is not None and pd.summary:
        return pd.summary
    first = pair.first_divergent
    if first is None and not any(s.diverges for s in pair.outputs):
        return f"{pair.name}: bit-exact on all {len(pair.layers)} layers"
    where = "only in the final outputs" if first is None else f"from {_short(first)} on"
    return (f"{pair.name}: differs {where}, max |Δ| {pair.max_abs_delta:g}, "
            f"{pair.mismatch_ratio:.2%} of values")


def _why(d) -> str | None:
    """The diagnosis of a layer in words, for the CI log; None when none ran."""
    if d is None:
        return None
    own = "not isolated" if d.own is None else f"own max |Δ| {d.own.max_abs_delta:g}"
    kernel = f"; kernel {d.kernel}" if d.kernel else ""
    return f"cause: {d.cause} ({own}{kernel}): {d.evidence}"


def _short(s: LayerStats) -> str:
    # Converter names join every fused op's name with ';': the first one says enough.
    return f"{s.id} {s.op_name} {s.tensor_name.split(';', 1)[0]}".rstrip()


def _title(failure: str) -> str:
    return failure.split(":", 1)[0] if len(failure) > 60 else failure


def _first_line(message: str) -> str:
    text = message.strip()
    return text.splitlines()[0] if text else "(no message)"


def _suite(root: ET.Element, name: str) -> ET.Element:
    return ET.SubElement(root, "testsuite", name=name)


def _case(suite: ET.Element, cls: str, name: str, seconds: float) -> ET.Element:
    return ET.SubElement(suite, "testcase", classname=cls, name=name, time=f"{max(seconds, 0.0):.3f}")


def _child(case: ET.Element, tag: str, message: str, kind: str | None = None, text: str | None = None):
    el = ET.SubElement(case, tag, message=message)
    if kind:
        el.set("type", kind)
    if text:
        el.text = text
    return el


def _has_failure(root: ET.Element) -> bool:
    # (not any(...): an Element without children is false)
    return any(True for tag in ("failure", "error") for _ in root.iter(tag))


def finish(root: ET.Element, seconds: float | None = None) -> None:
    """Counts and times on every suite and on the root (`seconds`: the run's wall time)."""
    for suite in root.iter("testsuite"):
        _count(suite)
        suite.set("time", f"{sum(float(c.get('time', 0)) for c in suite.iter('testcase')):.3f}")
    _count(root)
    total = seconds if seconds is not None else sum(float(c.get("time", 0)) for c in root.iter("testcase"))
    root.set("time", f"{total:.3f}")


def _count(element: ET.Element) -> None:
    cases = list(element.iter("testcase"))
    element.set("tests", str(len(cases)))
    for tag, attr in (("failure", "failures"), ("error", "errors"), ("skipped", "skipped")):
        element.set(attr, str(sum(1 for c in cases if c.find(tag) is not None)))


def stopped(command: str, model, exit_code: int, message: str, seconds: float) -> ET.ElementTree:
    """The junit.xml of a run that stopped before a verdict: one testcase with an <error>."""
    stem = model_stem(model) if model is not None else "model"
    root = ET.Element("testsuites", name=f"simrun {command} {stem}")
    suite = _suite(root, f"{stem}: simrun {command}")
    case = _case(suite, f"simrun.{stem}", f"simrun {command}", seconds)
    kind = "Interrupted" if exit_code == 130 else "SimrunError"
    _child(case, "error", f"exit code {exit_code}: {_first_line(message)}", kind,
           f"{message}\n({EXIT_CODES.get(exit_code, 'exit code')})")
    finish(root, seconds)
    return ET.ElementTree(root)


def write_tree(tree: ET.ElementTree, path: Path) -> Path:
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)
    return path


def write(run: DiffRun, verdict, path: Path, **options) -> Path:
    return write_tree(build(run, verdict, **options), path)

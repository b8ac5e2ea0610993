"""Baseline gating: judge what changed since an earlier run, not only where a run stands.

`simrun diff ... --baseline OLD/summary.json` reads the earlier run's summary.json (any simrun
version writing a summary schema in `SCHEMAS`) and compares it with this run, input by input
and backend pair by pair (matched by input name, backend labels and layer id). In the pairs the
policy judges, a *regression* is:

- a layer that newly introduces error: its own error (the layer run on the reference's inputs)
  was zero and is not; or own error that grew by more than `[baseline] own_margin` integer steps
  (`float_own_margin`: share of the tensor's range, float tensors), where the policy judges
  own error (`own_max_abs_delta` set and finite);
- a final output whose error, as a share of its range, grew by more than `output_margin`
  (where the policy judges outputs: `output_max_range_error` set);
- without a diagnosis on either side, a pair that now diverges from an earlier layer;
- a pair that was bit-exact and no longer is (`bit_exact = false` turns this off);
- a pair that newly fails the policy, a backend that newly fails (and the policy fails on).

A failure that the baseline had too (same pair failing, same backend failing) is *known*: it
is reported and does not fail the run; with a baseline the verdict rests on what changed.
Improvements (error gone, backend back) are reported. Pure functions over summaries and runs.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

from .diffrun import DiffRun
from .policy import Verdict
from ..errors import BadInput

SCHEMAS = (1, 2)        # summary.json schemas this version can read as a baseline (2 adds provenance)
MARGIN_DEFAULTS = {"own_margin": 0, "float_own_margin": 0.0, "output_margin": 0.0, "bit_exact": True}


@dataclass
class LayerRecord:
    id: str
    label: str                          # "0:3/25 CONV_2D name" as failures name layers
    depth: int | None
    integer: bool
    diverges: bool
    own_max: float | None = None        # own error: max |Δ| (steps / float units); None: not isolated
    own_share: float | None = None      # own error as a share of the tensor's range
    output_share: float | None = None   # final outputs: max error as a share of the range


@dataclass
class PairRecord:
    input: str
    a: str
    b: str
    verdict: str                        # pass | fail | unjudged
    bit_exact: bool
    max_abs_delta: float | None
    layers: dict[str, LayerRecord]
    outputs: dict[str, LayerRecord]
    first_divergent: LayerRecord | None
    diagnosed: bool

    @property
    def name(self) -> str:
        return f"{self.a} vs {self.b}"

    @property
    def introducing(self) -> int | None:
        if not self.diagnosed:
            return None
        return sum(1 for s in self.layers.values() if s.own_max)

    @property
    def output_share(self) -> float | None:
        shares = [s.output_share for s in self.outputs.values() if s.output_share is not None]
        return max(shares) if shares else None

    def side(self) -> dict:
        """What the side-by-side report shows of this pair."""
        return {"verdict": self.verdict, "bit_exact": self.bit_exact,
                "max_abs_delta": self.max_abs_delta,
                "layers_diverging": sum(s.diverges for s in self.layers.values()),
                "introducing": self.introducing, "output_relative_error": self.output_share,
                "first_divergent": self.first_divergent.label if self.first_divergent else None}


@dataclass
class Snapshot:
    """The parts of one run that a baseline comparison reads."""
    source: str
    schema: int | None
    simrun: str | None
    model_sha256: str | None
    ran: set[str]                       # backends that produced results
    failed: dict[str, str]              # label -> message
    pairs: dict[tuple[str, str, str], PairRecord]


@dataclass
class Change:
    kind: str           # introduces | own-grew | output-grew | diverges-earlier | not-bit-exact |
    #                     fails-policy | backend-fails | improved | backend-back
    text: str
    input: str | None = None
    a: str | None = None
    b: str | None = None
    layer: str | None = None
    old: object = None
    new: object = None


@dataclass
class BaselineResult:
    old: Snapshot
    new: Snapshot
    regressions: list[Change] = field(default_factory=list)
    improvements: list[Change] = field(default_factory=list)
    known: list[str] = field(default_factory=list)          # failures the baseline had too
    notes: list[str] = field(default_factory=list)          # inputs / pairs in one run only
    rows: list[tuple[PairRecord | None, PairRecord]] = field(default_factory=list)  # judged pairs

    @property
    def passed(self) -> bool:
        return not self.regressions


# --- reading ---------------------------------------------------------------------------------

def load(path: str | Path) -> Snapshot:
    """A baseline summary.json; BadInput naming what is wrong with it."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except OSError as err:
        raise BadInput(f"--baseline {path}: cannot read it ({err.strerror}): give the summary.json "
                       f"of an earlier `simrun diff --report DIR`") from None
    except ValueError as err:
        raise BadInput(f"--baseline {path}: not JSON ({err}): give the summary.json of an earlier "
                       f"`simrun diff --report DIR`") from None
    return from_summary(doc, str(path))


def from_summary(doc, source: str) -> Snapshot:
    if isinstance(doc, dict) and doc.get("complete") is False:
        raise BadInput(f"--baseline {source}: that run stopped before its verdict (exit "
                       f"{doc.get('exit_code')}: {doc.get('error')}): give the summary.json of a run that completed")
    if not isinstance(doc, dict) or not isinstance(doc.get("comparisons"), list):
        raise BadInput(f"--baseline {source}: not the summary.json of `simrun diff` (no comparisons)")
    schema = doc.get("schema_version", doc.get("schema"))
    if schema not in SCHEMAS:
        raise BadInput(f"--baseline {source}: summary schema {schema!r}; this simrun reads schema "
                       f"{', '.join(map(str, SCHEMAS))}: run the baseline again with this simrun")
    try:
        pairs = {}
        for cmp in doc["comparisons"]:
            for p in cmp["pairs"]:
                rec = _pair_from_json(cmp["input"], p)
                pairs[(rec.input, rec.a, rec.b)] = rec
        ran = {b for cmp in doc["comparisons"] for b in cmp["backends"]}
        failed = {label: (e.get("message", "") if isinstance(e, dict) else str(e))
                  for label, e in (doc.get("backend_errors") or {}).items()}
    except (KeyError, TypeError, AttributeError) as err:
        raise BadInput(f"--baseline {source}: summary.json lacks a field simrun needs ({err}); "
                       f"was it edited or cut short?") from None
    provenance = doc.get("run") if isinstance(doc.get("run"), dict) else {}    # schema 2's provenance
    return Snapshot(source, schema, provenance.get("simrun"),
                    (doc.get("model") or {}).get("sha256"), ran, failed, pairs)


def _pair_from_json(input_name: str, p: dict) -> PairRecord:
    def layer(d: dict) -> LayerRecord:
        own = d.get("own")
        label = f"{d['id']} {d['op_name']} {(d.get('tensor_name') or '').split(';', 1)[0]}".rstrip()
        return LayerRecord(d["id"], label, d.get("depth"), bool(d.get("integer")),
                           bool(d.get("mismatched")) or d.get("status") in ("shape_mismatch", "dtype_mismatch"),
                           own.get("max_abs_delta") if own else None,
                           own.get("relative_error") if own else None,
                           d.get("relative_error") if d.get("op_index") is None else None)
    layers = {d["id"]: layer(d) for d in p["layers"]}
    outputs = {d["id"]: layer(d) for d in p.get("outputs", [])}
    first = p.get("first_divergent")
    return PairRecord(input_name, p["a"], p["b"], p["verdict"],
                      not any(s.diverges for s in [*layers.values(), *outputs.values()]),
                      p.get("max_abs_delta"), layers, outputs,
                      layers.get(first["id"]) if first else None,
                      any(d.get("own") is not None for d in p["layers"]))


def from_run(run: DiffRun, verdict: Verdict) -> Snapshot:
    """The same records, from this run's objects (analysis cannot read the report it writes)."""
    pairs = {}
    pvs = {(pv.input_name, pv.a, pv.b): pv for pv in verdict.pairs}
    for n, (input_name, cmp) in enumerate(zip(run.input_names, run.comparisons)):
        for pair in cmp.pairs:
            layers = {}
            for s in pair.layers + pair.outputs:
                own = run.own_stats(n, pair, s) if s.op_index is not None else None
                layers[s.id] = LayerRecord(
                    s.id, f"{s.id} {s.op_name} {s.tensor_name.split(';', 1)[0]}".rstrip(), s.depth,
                    s.integer, s.diverges,
                    _finite(own.max_abs_delta) if own is not None and own.compared else None,
                    _finite(own.relative_error) if own is not None and own.compared else None,
                    _finite(s.relative_error) if s.op_index is None else None)
            inner = {k: v for k, v in layers.items() if not k.startswith("output/")}
            outs = {k: v for k, v in layers.items() if k.startswith("output/")}
            first = pair.first_divergent
            pairs[(input_name, pair.a, pair.b)] = PairRecord(
                input_name, pair.a, pair.b, pvs[(input_name, pair.a, pair.b)].status,
                not any(s.diverges for s in pair.layers + pair.outputs), _finite(pair.max_abs_delta),
                inner, outs, inner.get(first.id) if first else None,
                any(s.own_max is not None for s in inner.values()))
    ran = {b for c in run.comparisons for b in c.backends}
    return Snapshot("this run", SCHEMAS[-1], _version(), getattr(run.model, "sha256", None), ran,
                    dict(run.backend_errors), pairs)


def _version() -> str | None:
    """This simrun's version as installed (the package root is an interface: not imported here)."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("simrun")
    except PackageNotFoundError:
        return None                     # run from a checkout without an install: shown as "?"


def _finite(x):
    return x if x is None or not isinstance(x, float) or math.isfinite(x) else None


# --- judging ---------------------------------------------------------------------------------

def gate(old: Snapshot, run: DiffRun, verdict: Verdict, policy) -> Verdict:
    """This run's verdict judged against the baseline `old`: failures the baseline had too become
    known, regressions fail. The result is on `verdict.baseline`."""
    new = from_run(run, verdict)
    margins = {**MARGIN_DEFAULTS, **getattr(policy, "baseline", {})}
    result = BaselineResult(old, new)
    for key, now in new.pairs.items():
        was = old.pairs.get(key)
        if now.verdict == "unjudged":
            continue
        result.rows.append((was, now))
        if was is None:
            result.notes.append(f"{now.input}: {now.name}: not in the baseline")
            continue
        _compare_pair(result, was, now, policy, margins, run, key)
    for key, was in old.pairs.items():
        if key not in new.pairs and was.verdict != "unjudged":
            result.notes.append(f"{was.input}: {was.name}: in the baseline, not in this run")

    failures, known = [], []
    messages = {pv.message: pv for pv in verdict.pairs if pv.message}
    actions = dict(verdict.backend_errors)
    for text in verdict.failures:
        pv = messages.get(text)
        label = next((b for b in run.backend_errors if text.startswith(f"backend {b} failed")), None)
        if pv is not None:
            was = old.pairs.get((pv.input_name, pv.a, pv.b))
            if was is not None and was.verdict == "fail":
                known.append(text)
                continue
            if was is not None:
                result.regressions.append(Change("fails-policy", f"{pv.input_name}: {pv.a} vs {pv.b}: "
                                                 f"newly fails the policy (baseline: {was.verdict})",
                                                 pv.input_name, pv.a, pv.b))
        elif label is not None:
            if label in old.failed:
                known.append(text)
                actions[label] = "known"
                continue
            if label in old.ran:
                result.regressions.append(Change("backend-fails", f"backend {label} newly fails",
                                                 new=run.backend_errors[label]))
        failures.append(text)           # nothing compared, or a failure with nothing to match
    for label in run.backend_errors:
        if actions.get(label) != "fail" and label in old.ran and label not in old.failed:
            result.notes.append(f"backend {label} newly fails (excused by the policy)")
    for label in old.failed:
        if label in new.ran:
            result.improvements.append(Change("backend-back", f"backend {label} runs again "
                                                              f"(failed in the baseline)"))
    result.known = known
    # The policy's own text already says why a pair or backend fails; the rest is said here.
    failures += [f"baseline: {c.text}" for c in result.regressions
                 if c.kind not in ("fails-policy", "backend-fails")]
    return replace(verdict, passed=not failures, failures=failures, backend_errors=actions,
                   baseline=result, known=known)


def _compare_pair(result: BaselineResult, was: PairRecord, now: PairRecord, policy, margins: dict,
                  run: DiffRun, key) -> None:
    where = f"{now.input}: {now.name}"
    tol_of = _tolerances(policy, run, key)
    for lid, layer in now.layers.items():
        before = was.layers.get(lid)
        tol = tol_of.get(lid)
        if before is None or tol is None or tol.skip:
            continue
        judged_own = tol.own_max_abs_delta is not None and math.isfinite(tol.own_max_abs_delta)
        if not judged_own or layer.own_max is None or before.own_max is None:
            continue
        if layer.own_max and not before.own_max:
            result.regressions.append(Change(
                "introduces", f"{where}: {layer.label} now introduces error (own max |Δ| "
                              f"{before.own_max:g} -> {layer.own_max:g})", now.input, now.a, now.b, lid,
                before.own_max, layer.own_max))
        elif layer.integer and layer.own_max > before.own_max + margins["own_margin"]:
            result.regressions.append(Change(
                "own-grew", f"{where}: {layer.label} own error grew: max |Δ| {before.own_max:g} -> "
                            f"{layer.own_max:g} (margin {margins['own_margin']:g})",
                now.input, now.a, now.b, lid, before.own_max, layer.own_max))
        elif not layer.integer and (layer.own_share or 0) > (before.own_share or 0) + margins["float_own_margin"]:
            result.regressions.append(Change(
                "own-grew", f"{where}: {layer.label} own error grew: {before.own_share or 0:.3g} -> "
                            f"{layer.own_share:.3g} of its range (margin {margins['float_own_margin']:g})",
                now.input, now.a, now.b, lid, before.own_share, layer.own_share))
        elif before.own_max and not layer.own_max:
            result.improvements.append(Change("improved", f"{where}: {layer.label} no longer introduces "
                                                          f"error (own max |Δ| {before.own_max:g} -> 0)",
                                              now.input, now.a, now.b, lid, before.own_max, 0))
    for lid, out in now.outputs.items():
        before = was.outputs.get(lid)
        tol = tol_of.get(lid)
        if before is None or tol is None or tol.skip or tol.output_max_range_error is None:
            continue
        if out.output_share is not None and out.output_share > (before.output_share or 0) + margins["output_margin"]:
            result.regressions.append(Change(
                "output-grew", f"{where}: output {lid} error grew: {before.output_share or 0:.2%} -> "
                               f"{out.output_share:.2%} of its range (margin {margins['output_margin']:.2%})",
                now.input, now.a, now.b, lid, before.output_share, out.output_share))
    if not now.diagnosed and not was.diagnosed and now.first_divergent is not None and (
            was.first_divergent is None or (now.first_divergent.depth or 0) < (was.first_divergent.depth or 0)):
        old_first = was.first_divergent.label if was.first_divergent else "none"
        result.regressions.append(Change(
            "diverges-earlier", f"{where}: now diverges from {now.first_divergent.label} (baseline: "
                                f"{old_first}); run with diagnosis to see which layer introduces it",
            now.input, now.a, now.b, now.first_divergent.id))
    if was.bit_exact and not now.bit_exact:
        change = Change("not-bit-exact", f"{where}: was bit-exact, now differs (max |Δ| "
                                         f"{now.max_abs_delta:g})", now.input, now.a, now.b)
        if margins["bit_exact"]:
            result.regressions.append(change)
        else:
            result.notes.append(change.text)
    elif now.bit_exact and not was.bit_exact:
        result.improvements.append(Change("improved", f"{where}: bit-exact now (baseline max |Δ| "
                                                      f"{was.max_abs_delta:g})", now.input, now.a, now.b))


def _tolerances(policy, run: DiffRun, key) -> dict:
    input_name, a, b = key
    n = run.input_names.index(input_name)
    pair = run.comparisons[n].pair(a, b)
    return {s.id: policy.tolerance(a, b, s) for s in pair.layers + pair.outputs}

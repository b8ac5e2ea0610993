"""Globs of a policy file that match nothing in a run, with the closest name that exists.

A typo in a policy (`[op.CONV2D]`, `[pair."tflm-host vs tflite-optimised"]`) otherwise
changes nothing and says nothing: the layer it meant to loosen is judged by the general
rule and the user never learns why. Only the globs the file itself writes are checked
(`Policy.own_globs`): the built-in default names target pairs that a host-only run lacks.
"""
from __future__ import annotations

import difflib
from fnmatch import fnmatchcase

from .diffrun import DiffRun

_WHAT = {"pairs": "backend pair", "pair": "backend pair", "op": "operator type",
         "layer": "layer (tensor name or id)", "backend_errors": "backend"}


def unmatched_globs(policy, run: DiffRun) -> list[str]:
    """One warning per glob of the policy file that matches nothing of this kind in `run`."""
    names = _names(run)
    warnings = []
    for kind, pattern in getattr(policy, "own_globs", ()):
        candidates = names[kind]
        if not candidates:               # nothing of this kind ran (e.g. every backend failed)
            continue
        if any(fnmatchcase(c, pattern) for c in candidates):
            continue
        if kind == "pairs":
            where = f'[defaults] pairs entry "{pattern}"'
        elif kind == "backend_errors":
            where = f'[backend_errors] "{pattern}"'
        else:
            where = f'[{kind}."{pattern}"]'
        guess = _closest_pair(pattern, run.backends, candidates) if kind in ("pairs", "pair") else None
        guess = guess or closest(pattern, candidates)
        hint = f"; did you mean {guess}?" if guess else ""
        warnings.append(f"policy {policy.source}: {where} matches no {_WHAT[kind]} of this run{hint}")
    return warnings


def closest(pattern: str, candidates) -> str | None:
    """The candidate most like `pattern` (difflib, ignoring case), or None when none is close."""
    by_lower: dict[str, str] = {}
    for c in sorted(candidates):
        by_lower.setdefault(c.lower(), c)
    hit = difflib.get_close_matches(pattern.lower(), list(by_lower), n=1, cutoff=0.6)
    return by_lower[hit[0]] if hit else None


def _closest_pair(pattern: str, labels, pairs) -> str | None:
    """"tflm-hots vs *" -> "tflm-host vs *": each side of a pair glob mended on its own, so the
    suggestion keeps the user's wildcards."""
    sides = pattern.split(" vs ")
    if len(sides) != 2:
        return None
    mended = []
    for side in sides:
        if any(fnmatchcase(label, side) for label in labels):
            mended.append(side)
        else:
            mended.append(closest(side, labels))
    if None in mended or mended == sides:
        return None
    guess = " vs ".join(mended)
    return guess if any(fnmatchcase(p, guess) for p in pairs) else None


def _names(run: DiffRun) -> dict[str, set[str]]:
    pairs, ops, layers = set(), set(), set()
    for cmp in run.comparisons:
        for pair in cmp.pairs:
            pairs |= {f"{pair.a} vs {pair.b}", f"{pair.b} vs {pair.a}"}   # globs match either order
            for s in pair.layers + pair.outputs:
                ops.add(s.op_name)
                layers.add(s.id)
                if s.tensor_name:
                    layers.add(s.tensor_name)
    return {"pairs": pairs, "pair": pairs, "op": ops, "layer": layers,
            "backend_errors": set(run.backends)}

"""Reading a tolerance policy file (TOML) into a `Policy`, layered on the built-in default.

A file says what it changes: unless it sets `extends = "none"`, it starts from the packaged
default (simrun/data/policy-default.toml), so `[defaults] max_abs_delta = 1` alone keeps the
default's judged pairs, output and own-error checks. Layering, key by key:

- `[defaults]`: the keys the file sets replace the base's; `pairs` replaces the base's list.
- `[pair.*]`, `[op.*]`, `[layer.*]`: the file's tables come after the base's, so where both
  match a layer the file's keys win (settings apply in table order, later wins).
- `[backend_errors]`: the file's globs are tried before the base's (first match wins).
- `[baseline]`: the keys the file sets replace the base's margins.
- `[task]` (simrun.analysis.task_policy): the keys the file sets replace the base's.

`extends = "none"` starts from nothing: every pair judged (`pairs = ["*"]`), the built-in
values of `Tolerance`, no rule tables, every backend error failing. The globs the file itself
writes are kept (`Policy.own_globs`) so a run can name those that match nothing.
"""
from __future__ import annotations

import tomllib
from dataclasses import replace
from importlib import resources
from pathlib import Path

from ..errors import BadInput

TOLERANCE_KEYS = ("max_abs_delta", "max_mismatch_ratio", "float_max_abs_delta", "float_max_rel_delta",
                  "judge_layers", "output_max_range_error", "own_max_abs_delta", "skip")
BASELINE_KEYS = ("own_margin", "float_own_margin", "output_margin", "bit_exact")
_BOOL_KEYS = ("skip", "judge_layers", "bit_exact")
_SHARE_KEYS = ("max_mismatch_ratio", "output_max_range_error", "float_own_margin", "output_margin")
_TABLES = ("extends", "defaults", "pair", "op", "layer", "backend_errors", "baseline", "task")
EXTENDS = ("default", "none")
DEFAULT_SOURCE = "default policy (simrun/data/policy-default.toml)"


def default_text() -> str:
    return resources.files("simrun").joinpath("data/policy-default.toml").read_text()


# `cls` is simrun.analysis.policy.Policy, which calls these (passed in: no import cycle).

def load(cls, path: str | Path | None):
    if path is None:
        return parse(cls, default_text(), DEFAULT_SOURCE, base=None)
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise BadInput(f"cannot read policy {path}: {err.strerror}") from None
    return parse(cls, text, str(path))


def parse(cls, text: str, source: str = "policy", base="default"):
    """The Policy `text` describes. `base`: "default" (the packaged policy, unless the text says
    `extends = "none"`) or None (start from nothing: how the packaged default itself is read)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise BadInput(f"policy {source}: not valid TOML ({err})") from None
    _check_keys(doc, _TABLES, source, "the top level")
    extends = doc.get("extends", "default")
    if extends not in EXTENDS:
        raise BadInput(f"policy {source}: extends must be \"default\" (layer on the built-in policy) "
                       f"or \"none\" (start from nothing), got {extends!r}")
    start = cls(source=source) if extends == "none" or base is None else load(cls, None)

    defaults = dict(doc.get("defaults", {}))
    _check_table(defaults, "defaults", source)
    own_globs: list[tuple[str, str]] = []
    pairs = defaults.pop("pairs", None)
    if pairs is not None:
        if not isinstance(pairs, list) or not all(isinstance(p, str) for p in pairs):
            raise BadInput(f"policy {source}: [defaults] pairs must be a list of strings, got {pairs!r}")
        own_globs += [("pairs", p) for p in pairs]
    settings = _validated(defaults, "defaults", source)
    policy = cls(defaults=replace(start.defaults, **settings),
                    pairs_judged=tuple(pairs) if pairs is not None else start.pairs_judged,
                    pair_rules=list(start.pair_rules), op_rules=list(start.op_rules),
                    layer_rules=list(start.layer_rules), baseline=dict(start.baseline),
                    source=source,
                    extends=None if base is None or extends == "none" else start.describe)
    for kind, rules in (("pair", policy.pair_rules), ("op", policy.op_rules),
                        ("layer", policy.layer_rules)):
        table = doc.get(kind, {})
        if not isinstance(table, dict):
            raise BadInput(f"policy {source}: `{kind}` must be a table of tables like [{kind}.\"NAME\"]")
        for pattern, values in table.items():
            where = f'{kind}."{pattern}"'
            if not isinstance(values, dict):
                raise BadInput(f"policy {source}: [{where}] must be a table, got {values!r}")
            _check_keys(values, TOLERANCE_KEYS, source, f"[{where}]")
            rules.append((pattern, _validated(values, where, source)))
            own_globs.append((kind, pattern))
    errors = doc.get("backend_errors", {})
    if not isinstance(errors, dict):
        raise BadInput(f"policy {source}: [backend_errors] must be a table of \"glob\" = \"fail\"|\"warn\"")
    own_errors = []
    for pattern, action in errors.items():
        if action not in ("fail", "warn"):
            raise BadInput(f"policy {source}: [backend_errors] \"{pattern}\" must be \"fail\" or "
                           f"\"warn\", got {action!r}")
        own_errors.append((pattern, action))
        own_globs.append(("backend_errors", pattern))
    # First match wins: the file's own globs go before those it inherits.
    policy.backend_error_rules = own_errors + list(start.backend_error_rules)
    margins = doc.get("baseline", {})
    if not isinstance(margins, dict):
        raise BadInput(f"policy {source}: [baseline] must be a table")
    _check_keys(margins, BASELINE_KEYS, source, "[baseline]")
    policy.baseline.update(_validated(margins, "baseline", source))
    from .task_policy import TaskPolicy
    policy.task = TaskPolicy.parse(doc.get("task", {}), source, base=start.task)
    policy.own_globs = own_globs if base is not None else []   # the default's globs name
    # target pairs a host-only run lacks: only what a user writes is checked
    return policy


def _check_keys(table: dict, allowed, source: str, where: str) -> None:
    for key in table:
        if key not in allowed:
            raise BadInput(f"policy {source}: unknown key {key!r} in {where} "
                           f"(allowed: {', '.join(allowed)})")


def _check_table(table, where: str, source: str) -> None:
    if not isinstance(table, dict):
        raise BadInput(f"policy {source}: [{where}] must be a table")
    _check_keys(table, TOLERANCE_KEYS + ("pairs",), source, f"[{where}]")


def _validated(settings: dict, where: str, source: str) -> dict:
    out = {}
    for key, value in settings.items():
        if key in _BOOL_KEYS:
            if not isinstance(value, bool):
                raise BadInput(f"policy {source}: [{where}] {key} must be true or false, got {value!r}")
        else:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise BadInput(f"policy {source}: [{where}] {key} must be a non-negative number, "
                               f"got {value!r}")
            if key in _SHARE_KEYS and value > 1:
                raise BadInput(f"policy {source}: [{where}] {key} is a share in [0, 1], got {value!r}")
        out[key] = value
    return out

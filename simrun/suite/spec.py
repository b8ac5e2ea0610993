"""What a suite runs: one SuiteEntry (model, inputs, backends, policy, ...) per model.

Sources are .tflite files, folders (every .tflite below them, sorted) and TOML suite files:

    [defaults]                      # optional; every key below is optional too
    backends = ["tflite-reference", "tflm-host"]    # or "a,b"; "target" expands to the cpu variants
    cpu = ["cortex-m4"]             # adds target:<cpu>:<kernels> per kernels (as diff --cpu)
    kernels = ["reference", "cmsis-nn"]
    rounding = "double"             # and fp_contract = "fast": as diff --rounding, --fp-contract
    inputs = ["random:0"]           # as diff --input; paths relative to the suite file
    count = 1
    policy = "policy.toml"          # relative to the suite file
    diagnose = true
    timeout = 300                   # default: 300 times the emulator's slowdown (QEMU 1, Renode 6)
    reference = "tflite-reference"

    [[models]]
    path = "models/kws_ref_model.tflite"    # relative to the suite file (or a folder)
    name = "kws"                    # optional: the model's id in the index (default: file stem)
    inputs = ["data/yes.npy"]       # any [defaults] key, for this model only

Precedence, lowest first: built-in defaults, the command line, the suite's [defaults], the
model's own keys. Every entry is checked here (files exist, labels parse, the policy loads),
so a typo is one usage error before any diff runs.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..errors import BadInput

KEYS = ("backends", "cpu", "kernels", "rounding", "fp_contract", "inputs", "count", "policy",
        "diagnose", "timeout", "reference")
_PATH_KEYS = ("path", "name")


@dataclass(frozen=True)
class SuiteEntry:
    """One diff of the suite, everything resolved: what `simrun diff` would be given."""
    id: str                         # unique in the suite: the report folder models/<id>/
    order: int                      # position in the whole suite (before sharding)
    model: Path
    backends: tuple[str, ...]       # backend labels, target variants expanded
    inputs: tuple[str, ...]         # input specs (absolute paths or random[:SEED])
    count: int
    policy: Path | None
    diagnose: bool
    timeout: float | None
    reference: str | None

    def job(self) -> dict:
        """The JSON a job process is given (simrun.suite.job)."""
        return {"id": self.id, "model": str(self.model), "backends": list(self.backends),
                "inputs": list(self.inputs), "count": self.count,
                "policy": None if self.policy is None else str(self.policy),
                "diagnose": self.diagnose, "timeout": self.timeout, "reference": self.reference}

    @property
    def targets(self) -> list[str]:
        return [b for b in self.backends if b.startswith("target:")]


def load_suite(sources: list[Path], defaults: dict) -> list[SuiteEntry]:
    """Entries of every source in order; `defaults` holds the command line's values of KEYS
    (None: not given). Raises BadInput naming the source and what is wrong."""
    raw: list[tuple[Path, dict]] = []       # (model path, merged options)
    given = {k: v for k, v in defaults.items() if v is not None}
    for source in sources:
        source = Path(source)
        if source.suffix == ".toml":
            raw += _read_toml(source, given)
        elif source.is_dir():
            found = sorted(source.rglob("*.tflite"))
            if not found:
                raise BadInput(f"{source}: no .tflite model in this folder")
            raw += [(p, dict(given)) for p in found]
        elif source.is_file():
            raw.append((source, dict(given)))
        else:
            raise BadInput(f"{source}: no such model, folder or suite file; give .tflite files, "
                           f"folders of them or a .toml suite file")
    if not raw:
        raise BadInput("no models to run: give .tflite files, folders or a .toml suite file")
    ids = _ids(raw)
    return [_entry(n, ident, path, options) for n, (ident, (path, options)) in enumerate(zip(ids, raw))]


def _read_toml(path: Path, given: dict) -> list[tuple[Path, dict]]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise BadInput(f"suite file {path}: {err}") from None
    unknown = set(data) - {"defaults", "models"}
    if unknown:
        raise BadInput(f"suite file {path}: unknown table(s) {', '.join(sorted(unknown))}; "
                       f"expected [defaults] and [[models]]")
    base = path.resolve().parent
    suite_defaults = _checked(data.get("defaults", {}), f"suite file {path} [defaults]", KEYS, base)
    models = data.get("models")
    if not isinstance(models, list) or not models:
        raise BadInput(f"suite file {path}: no [[models]] entries; add one per model "
                       f"(path = \"model.tflite\")")
    out = []
    for k, model in enumerate(models):
        where = f"suite file {path} [[models]] #{k + 1}"
        own = _checked(model, where, KEYS + _PATH_KEYS, base)
        if "path" not in own:
            raise BadInput(f"{where}: no path; give path = \"model.tflite\" (or a folder)")
        target = base / own.pop("path")
        options = {**given, **suite_defaults, **own}
        if target.is_dir():
            found = sorted(target.rglob("*.tflite"))
            if not found:
                raise BadInput(f"{where}: {target}: no .tflite model in this folder")
            if "name" in options and len(found) > 1:
                raise BadInput(f"{where}: name given for a folder of {len(found)} models; drop it")
            out += [(p, dict(options)) for p in found]
        elif target.is_file():
            out.append((target, options))
        else:
            raise BadInput(f"{where}: {target}: no such model file or folder")
    return out


def _checked(table, where: str, allowed: tuple[str, ...], base: Path) -> dict:
    if not isinstance(table, dict):
        raise BadInput(f"{where}: expected a table of keys")
    unknown = set(table) - set(allowed)
    if unknown:
        raise BadInput(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(allowed)}")
    out = dict(table)
    for key in ("backends", "cpu", "kernels", "rounding", "fp_contract", "inputs"):
        if key in out:
            value = out[key]
            if isinstance(value, str):
                value = [v for v in value.split(",") if v]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise BadInput(f"{where}: {key} must be a string or a list of strings")
            out[key] = value
    if "inputs" in out:
        out["inputs"] = [v if _is_random(v) else str(base / v) for v in out["inputs"]]
    if "policy" in out:
        if not isinstance(out["policy"], str):
            raise BadInput(f"{where}: policy must be a file name")
        out["policy"] = str(base / out["policy"])
    for key, kind in (("count", int), ("timeout", (int, float)), ("diagnose", bool),
                      ("reference", str), ("name", str), ("path", str)):
        if key in out and (not isinstance(out[key], kind) or (kind is int and isinstance(out[key], bool))):
            raise BadInput(f"{where}: {key} = {out[key]!r} has the wrong type")
    return out


def _is_random(spec: str) -> bool:
    return spec == "random" or spec.startswith("random:")


def _ids(raw: list[tuple[Path, dict]]) -> list[str]:
    """The model's name, else its file stem; stems that repeat get their folder's name in
    front, then a number: the same suite gives the same ids on every machine and shard."""
    def clean(text: str) -> str:
        return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "model"
    first = [clean(o["name"]) if "name" in o else clean(p.stem) for p, o in raw]
    ids = [f if first.count(f) == 1 or "name" in o else clean(f"{p.resolve().parent.name}_{p.stem}")
           for f, (p, o) in zip(first, raw)]
    seen: dict[str, int] = {}
    out = []
    for ident in ids:
        seen[ident] = seen.get(ident, 0) + 1
        out.append(ident if ids.count(ident) == 1 else f"{ident}-{seen[ident]}")
    return out


def _entry(order: int, ident: str, path: Path, options: dict) -> SuiteEntry:
    from ..analysis.policy import Policy
    from ..commands.diff import backend_labels
    from ..device.targets import DEFAULT_FP_CONTRACT, DEFAULT_ROUNDING, KERNEL_VARIANTS

    where = f"model {ident} ({path})"
    try:
        labels = backend_labels(_joined(options.get("backends")), options.get("cpu") or [],
                                _joined(options.get("kernels")) or ",".join(KERNEL_VARIANTS),
                                _joined(options.get("rounding")) or DEFAULT_ROUNDING,
                                _joined(options.get("fp_contract")) or DEFAULT_FP_CONTRACT)
        policy = options.get("policy")
        if policy is not None:
            Policy.load(Path(policy))           # a bad policy is a usage error now, not per job
    except BadInput as err:
        raise BadInput(f"{where}: {err}") from None
    reference = options.get("reference")
    if reference is not None and reference not in labels:
        raise BadInput(f"{where}: reference {reference}: not among its backends ({', '.join(labels)})")
    # No timeout: the backends' own default (DEFAULT_TIMEOUT times the emulator's slowdown).
    count, timeout = options.get("count", 1), options.get("timeout")
    timeout = float(timeout) if timeout is not None else None
    if count < 1 or (timeout is not None and timeout <= 0):
        raise BadInput(f"{where}: count must be at least 1 and timeout positive")
    inputs = tuple(str(Path(v).resolve()) if not _is_random(v) else v for v in options.get("inputs") or [])
    return SuiteEntry(ident, order, path.resolve(), tuple(labels), inputs, count,
                      None if policy is None else Path(policy).resolve(),
                      bool(options.get("diagnose", True)), timeout, reference)


def _joined(value) -> str | None:
    return value if value is None or isinstance(value, str) else ",".join(value)

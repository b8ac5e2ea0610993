"""`simrun merge DIR...`: shard outputs (or any suite outputs) into one index.

Reads every DIR's summary.json, checks that the shards fit together (one suite split n
ways: every shard i/n present once, no model twice), copies each model's report folder
into OUT/models/ and writes the index from the records, with the writer one run uses, so
the result equals an unsharded run's (timings aside).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..errors import BadInput


def read_outputs(dirs: list[Path]) -> list[tuple[Path, dict]]:
    out = []
    for d in dirs:
        path = Path(d) / "summary.json"
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise BadInput(f"{d}: no readable suite summary.json ({err}); give folders that "
                           f"`simrun suite --out` wrote") from None
        if not isinstance(data, dict) or data.get("kind") != "simrun-suite":
            raise BadInput(f"{path}: not a simrun suite summary (a `simrun diff` report folder?); "
                           f"give folders that `simrun suite --out` wrote")
        out.append((Path(d), data))
    return out


def check_shards(outputs: list[tuple[Path, dict]]) -> None:
    """Shards of one split must all be there, once each; unsharded outputs merge freely."""
    shards = [(d, data["shard"]) for d, data in outputs if data.get("shard")]
    if not shards:
        return
    counts = {s["count"] for _, s in shards}
    if len(counts) > 1 or len(shards) != len(outputs):
        raise BadInput("the folders come from different splits (" + ", ".join(
            f"{d}: {'shard ' + str(s['index']) + '/' + str(s['count']) if s else 'unsharded'}"
            for d, s in ((d, data.get("shard")) for d, data in outputs)) + "); merge one split's shards")
    count = counts.pop()
    seen: dict[int, Path] = {}
    for d, s in shards:
        if s["index"] in seen:
            raise BadInput(f"shard {s['index']}/{count} given twice: {seen[s['index']]} and {d}")
        seen[s["index"]] = d
    missing = [f"{i}/{count}" for i in range(1, count + 1) if i not in seen]
    if missing:
        raise BadInput(f"shard(s) {', '.join(missing)} missing: give every shard's folder "
                       f"(the merge would pass models it never ran)")
    totals = {s.get("total_models") for _, s in shards}
    found = sum(len(data["models"]) for _, data in outputs)
    if len(totals) == 1 and None not in totals and found != totals.pop():
        raise BadInput(f"the shards hold {found} model(s), their suite had "
                       f"{shards[0][1]['total_models']}: a shard did not finish; re-run it")


def merge(dirs: list[Path], out_dir: Path) -> tuple[list[dict], dict]:
    """(records, meta) of the merged run; copies the model folders into out_dir/models/."""
    outputs = read_outputs(dirs)
    check_shards(outputs)
    records, owner = [], {}
    for d, data in outputs:
        for r in data["models"]:
            if r["id"] in owner:
                raise BadInput(f"model {r['id']} is in both {owner[r['id']]} and {d}; merge "
                               f"outputs of different models (or one split's shards)")
            owner[r["id"]] = d
            records.append(r)
    out_dir.mkdir(parents=True, exist_ok=True)
    for r in records:
        if not r.get("report"):
            continue
        src, dst = owner[r["id"]] / r["report"], out_dir / r["report"]
        if src.resolve() == dst.resolve() or not src.is_dir():
            continue
        if dst.exists():
            shutil.rmtree(dst)
        shutil.copytree(src, dst)
        log = src.with_name(src.name + ".log.txt")      # the model's log, beside its folder
        if log.is_file():
            shutil.copy2(log, dst.with_name(dst.name + ".log.txt"))
    # Shards run --baseline against the whole suite, so any of them names the baseline's folder
    # and the models it has that the suite no longer has.
    against = next((data["baseline"] for _, data in outputs if data.get("baseline")), None)
    meta = {"merged_from": [str(d) for d, _ in outputs], "shard": None,
            "jobs": None, "seconds": sum(data.get("seconds", 0.0) for _, data in outputs),
            "baseline": None if against is None else {"path": against["path"], "missing": against["missing"]}}
    return records, meta

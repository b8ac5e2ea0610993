"""`--shard i/n`: which entries of a suite one machine of n runs.

Stable: the assignment depends only on the suite's entries (their ids and order) and the
durations file, never on the machine, the time or the order shards start in, so n CI jobs
given the same suite split it without talking to each other, and every entry lands in
exactly one shard.

- Without durations: round robin over the suite order (entry k goes to shard k mod n + 1):
  shard sizes differ by at most one.
- With durations (a previous suite's or merge's summary.json): longest first onto the shard
  with the least total so far (ties: the lower shard), the greedy schedule that keeps the
  slowest shard within 4/3 of the best; an entry the file does not know counts as the
  median of those it does.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from statistics import median

from ..errors import BadInput
from .spec import SuiteEntry


@dataclass(frozen=True)
class Shard:
    index: int                      # 1-based, as CI matrices count
    count: int

    @classmethod
    def parse(cls, text: str) -> "Shard":
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
        if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
            raise BadInput(f"--shard {text}: expected i/n with 1 <= i <= n (e.g. 1/4)")
        return cls(int(m.group(1)), int(m.group(2)))

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def load_durations(path: Path) -> dict[str, float]:
    """model id -> seconds from a suite summary.json."""
    try:
        data = json.loads(Path(path).read_text())
        models = data["models"]
        return {m["id"]: float(m["seconds"]) for m in models if m.get("seconds") is not None}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise BadInput(f"--durations {path}: not a simrun suite summary.json ({err}); give the "
                       f"summary.json a previous `simrun suite` or `simrun merge` wrote") from None


def assign(entries: list[SuiteEntry], count: int,
           durations: dict[str, float] | None = None) -> list[int]:
    """The shard (1-based) of every entry, in entry order."""
    if not durations:
        return [k % count + 1 for k in range(len(entries))]
    known = [durations[e.id] for e in entries if e.id in durations]
    guess = median(known) if known else 1.0
    cost = [durations.get(e.id, guess) for e in entries]
    load = [0.0] * count
    shard = [0] * len(entries)
    for k in sorted(range(len(entries)), key=lambda k: (-cost[k], entries[k].order)):
        target = min(range(count), key=lambda s: (load[s], s))
        load[target] += cost[k]
        shard[k] = target + 1
    return shard


def select_shard(entries: list[SuiteEntry], shard: Shard | None,
                 durations: dict[str, float] | None = None) -> list[SuiteEntry]:
    if shard is None:
        return list(entries)
    owners = assign(entries, shard.count, durations)
    return [e for e, s in zip(entries, owners) if s == shard.index]

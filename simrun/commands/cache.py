"""`simrun cache`: what the firmware cache holds, pruning it, and its key for CI caches.

    simrun cache                        # firmware entries and CMake trees, with sizes and ages
    simrun cache prune --older-than 30  # remove what was not used for 30 days (not what a build holds)
    simrun cache key --cpu cortex-m55 --kernels reference,cmsis-nn   # a stable string for actions/cache

The key names the simrun version and the CPUs, then a digest of the firmware
cache keys of every variant named (which hash the compiler, the source pins or
local trees, the CPU flags and simrun's firmware files): equal keys mean the
restored cache holds exactly the firmware these variants need.
"""
from __future__ import annotations

import time

from .variants import add_variant_args, key_for, variants

DEFAULT_DAYS = 30.0


def register(sub) -> None:
    p = sub.add_parser("cache", help="list the firmware cache, prune old entries, print a CI cache key")
    p.add_argument("--cache-dir", metavar="DIR", default=None,
                   help="firmware cache (default: $SIMRUN_CACHE_DIR or ~/.cache/simrun)")
    p.set_defaults(func=run_list)
    verbs = p.add_subparsers(dest="verb")
    prune = verbs.add_parser("prune", help="remove entries and CMake trees not used for a while")
    prune.add_argument("--older-than", metavar="DAYS", type=float, default=DEFAULT_DAYS,
                       help=f"remove what was last used more than DAYS ago (default {DEFAULT_DAYS:g}; 0: all "
                            f"that no build holds)")
    prune.add_argument("--keep-trees", action="store_true",
                       help="keep the CMake trees (they make the next build of a new variant incremental)")
    prune.add_argument("--cache-dir", metavar="DIR", default=None, help="firmware cache")
    prune.set_defaults(func=run_prune)
    key = verbs.add_parser("key", help="print a stable cache key for these variants (for CI caches)")
    add_variant_args(key, "key")
    key.set_defaults(func=run_key)


def human_size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def human_age(stamp: float | None, now: float) -> str:
    if stamp is None:
        return "?"
    seconds = max(0.0, now - stamp)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit} ago"
    return "just now"


def _cache(args):
    from ..device.build import default_cache_dir
    from pathlib import Path
    return Path(args.cache_dir).expanduser() if args.cache_dir else default_cache_dir()


def run_list(args) -> int:
    from ..device.cache_store import list_cache
    cache = _cache(args)
    listing = list_cache(cache)
    now = time.time()
    print(f"firmware cache {cache}")
    print(f"firmware entries ({len(listing.entries)}):")
    if listing.entries:
        print(f"  {'cpu':<14}{'kernels':<11}{'rounding':<10}{'fp-contract':<13}{'size':>10}  "
              f"{'built':<13}{'last used':<13}sources")
    for e in listing.entries:
        print(f"  {e.cpu or '?':<14}{e.kernels or '?':<11}{e.rounding:<10}{e.fp_contract:<13}"
              f"{human_size(e.size):>10}  {human_age(e.built, now):<13}{human_age(e.last_used, now):<13}"
              f"{e.sources}  ({e.path.name})")
    print(f"CMake trees ({len(listing.trees)}):")
    for t in listing.trees:
        print(f"  {t.path.name:<44}{human_size(t.size):>10}  last built {human_age(t.last_used, now)}")
    if listing.other:
        print("other: " + ", ".join(f"{name}/ {human_size(size)}" for name, size in listing.other.items()))
    total = (sum(e.size for e in listing.entries) + sum(t.size for t in listing.trees)
             + sum(listing.other.values()))
    print(f"total {human_size(total)}")
    return 0


def run_prune(args) -> int:
    from ..device.cache_store import prune
    from ..errors import BadInput
    if args.older_than < 0:
        raise BadInput(f"--older-than {args.older_than:g}: DAYS must be 0 or more")
    cache = _cache(args)
    result = prune(cache, args.older_than, keep_trees=args.keep_trees)
    for path, size in result.removed:
        print(f"removed {path} ({human_size(size)})")
    for path, why in result.skipped:
        print(f"kept {path}: {why}")
    print(f"freed {human_size(result.freed)}; {len(result.removed)} removed, {len(result.skipped)} in use")
    return 0


def run_key(args) -> int:
    from ..device.build import plan_firmware
    requests = [plan_firmware(v.cpu, v.kernels, rounding=v.rounding, fp_contract=v.fp_contract,
                              sources_dir=args.sources, cache_dir=args.cache_dir) for v in variants(args)]
    print(key_for(requests))
    return 0

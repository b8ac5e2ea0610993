"""`simrun suite`: many models, one diff each, over several processes; and `simrun merge`.

    entries = load_suite(["zoo.toml", "models/"], defaults)    # spec: SuiteEntry per model
    mine = select_shard(entries, Shard(1, 4), durations)       # shard: stable, balanced
    records = run_suite(mine, out_dir, jobs=2, display=...)    # scheduler: one subprocess per diff
    write_index(out_dir, records, meta)                        # index: html, junit, json, md

Each diff runs in its own process (`python -m simrun.suite.job`), which writes that model's
report folder (out/models/<id>/) and hands the parent one record (verdicts per backend,
exit code, seconds, peak memory): a job holds one model's Captures at a time and a crash
ends only its own model. The index is written from the records alone, so `simrun merge`
rebuilds the same index from shard outputs.
"""
from .spec import SuiteEntry, load_suite  # noqa: F401
from .shard import Shard, select_shard  # noqa: F401

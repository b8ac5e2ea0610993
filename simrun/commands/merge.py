"""`simrun merge DIR...`: join `simrun suite --shard` outputs into the index one run writes."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import BadInput, require_writable_dir


def register(sub) -> None:
    p = sub.add_parser(
        "merge", help="combine the output folders of `simrun suite --shard i/n` into one index",
        description="Read each DIR's summary.json (written by `simrun suite`), check that every "
                    "shard of the split is there once, copy the models' report folders into OUT "
                    "and write index.html, junit.xml, summary.json and summary.md as one "
                    "unsharded run would. Exits by the suite's rules (the worst model).")
    p.add_argument("dirs", nargs="+", type=Path, metavar="DIR", help="suite output folders")
    p.add_argument("--out", type=Path, default=Path("simrun-suite"), metavar="DIR",
                   help="merged output folder (default ./simrun-suite)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..suite.merge import merge
    from .suite import _report

    require_writable_dir(args.out, BadInput, "--out directory", "give --out a directory you can write")
    records, meta = merge(args.dirs, args.out)
    return _report(args.out, records, meta)

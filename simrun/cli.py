"""The `simrun` command: one subcommand per module in simrun.commands.

Each command module defines `register(subparsers)` (adds its parser and sets
`func`) and the function it points at, which returns an exit code. A
SimrunError becomes its message on stderr and exit code 2; Ctrl-C exits 130
after the context managers below it have stopped any emulator.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from .errors import SimrunError

COMMANDS = ("targets", "build", "run", "diff", "example", "quantize", "ab")


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="simrun", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"simrun.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SimrunError as err:
        print(f"simrun {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("simrun: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

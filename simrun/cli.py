"""The `simrun` command: one subcommand per module in simrun.commands.

Each command module defines `register(subparsers)` (adds its parser and sets
`func`) and the function it points at, which returns an exit code. A
SimrunError becomes its message on stderr and its `exit_code` (the table in
simrun.errors, the same for every command); Ctrl-C exits 130 after the context
managers below it have stopped any emulator.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from .version import __version__
from .errors import EXIT_CODES, EXIT_ENVIRONMENT, EXIT_INTERRUPTED, SimrunError

COMMANDS = ("targets", "doctor", "build", "cache", "run", "diff", "view", "suite", "merge", "example", "quantize", "ab")


def exit_code_help() -> str:
    return "exit codes:\n" + "\n".join(f"  {code:<4} {text}" for code, text in EXIT_CODES.items())


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="simrun", description=__doc__.splitlines()[0],
                                     epilog=exit_code_help(),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"simrun {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"simrun.commands.{name}").register(sub)
    for command in sub.choices.values():     # every verb documents the same codes
        command.epilog = exit_code_help()
        command.formatter_class = argparse.RawDescriptionHelpFormatter
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    # The command line as typed, for the provenance in report folders.
    args.argv = ["simrun", *(sys.argv[1:] if argv is None else argv)]
    try:
        return int(args.func(args) or 0)
    except SimrunError as err:
        print(f"simrun {args.command}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"simrun {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as err:
        # A file the environment refuses (permissions, a full disk, /proc): name it, no traceback.
        where = f" {err.filename}" if err.filename else ""
        print(f"simrun {args.command}: error:{where}: {err.strerror or err}; check that the path exists "
              f"and is writable", file=sys.stderr)
        return EXIT_ENVIRONMENT


if __name__ == "__main__":
    sys.exit(main())

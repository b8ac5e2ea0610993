"""`simrun view REPORT`: open a diff report's model in Model Explorer with its error overlays."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import EXIT_USAGE, BadInput, SimrunError

INSTALL = 'pip install "simrun[view]"   (or: pip install ai-edge-model-explorer)'
HOST = "127.0.0.1"                          # loopback only: the server reads local files on request


class ViewerMissing(SimrunError):
    """Model Explorer is an optional extra."""
    exit_code = EXIT_USAGE


def register(sub) -> None:
    p = sub.add_parser(
        "view", help="open a diff report's model in Model Explorer with the error overlays",
        description="Start Google's Model Explorer (the optional [view] extra) on this machine's "
                    f"loopback ({HOST}) with the report's model and the node-data files of its "
                    "model-explorer/ folder: propagated and own error, cause, impact and instruction "
                    "counts per operator. Choose an overlay in the UI's node data panel.")
    p.add_argument("report", type=Path, help="a `simrun diff` report directory")
    p.add_argument("--model", type=Path, help="the .tflite model (default: the one summary.json names)")
    p.add_argument("--overlay", action="append", metavar="PATTERN", default=[],
                   help="only overlays whose file name matches this glob (repeatable; default all), "
                        "e.g. '*.own.json'")
    p.add_argument("--port", type=int, default=8080, help="port on 127.0.0.1 (default 8080)")
    p.add_argument("--no-browser", action="store_true", help="print the address instead of opening a browser")
    p.set_defaults(func=run)


def view_plan(report: Path, model: Path | None, patterns: list[str]) -> tuple[Path, list[Path]]:
    """The model and the overlay files to open; BadInput naming what is missing."""
    summary = report / "summary.json"
    if not summary.is_file():
        raise BadInput(f"{report}: no summary.json there; give the directory `simrun diff --report` wrote")
    if model is None:
        try:
            named = json.loads(summary.read_text())["model"]["path"]
        except (ValueError, KeyError, TypeError) as e:
            raise BadInput(f"{summary}: not a simrun summary ({e}); give the model with --model") from None
        if not named:
            raise BadInput(f"{summary} names no model file; give it with --model MODEL.tflite")
        model = Path(named)
        if not model.is_absolute() and not model.is_file():
            model = report / named
    if not model.is_file():
        raise BadInput(f"model {model} not found (moved since the diff?); give it with --model MODEL.tflite")
    folder = report / "model-explorer"
    files = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if patterns:
        files = [f for f in files if any(f.match(p) for p in patterns)]
    if not files:
        which = f" matching {', '.join(patterns)}" if patterns else ""
        raise BadInput(f"{folder}: no overlay files{which} (written by simrun diff for a .tflite model)")
    return model, files


def run(args: argparse.Namespace) -> int:
    model, files = view_plan(args.report, args.model, args.overlay)
    try:
        import model_explorer
    except ImportError:
        raise ViewerMissing(f"Model Explorer is not installed; install it with:\n  {INSTALL}\n"
                            f"or open the overlays in any Model Explorer:\n  model-explorer {model} "
                            f"--node_data_paths={','.join(map(str, files))}") from None
    print(f"[view] {model} with {len(files)} overlay(s): " + ", ".join(f.name for f in files),
          file=sys.stderr, flush=True)
    config = model_explorer.config().add_model_from_path(str(model.resolve()))
    for f in files:
        config.add_node_data_from_path(str(f.resolve()))
    model_explorer.visualize_from_config(config, host=HOST, port=args.port,
                                         no_open_in_browser=args.no_browser)
    return 0

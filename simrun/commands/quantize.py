"""`simrun quantize`: convert a float Keras model or SavedModel to TFLite under named schemes."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import BadInput

SCHEMES_HELP = ("comma-separated quantization schemes: per-channel, per-tensor, int16x8 "
                "(default per-channel,per-tensor)")
DATASET_HELP = (".npy/.npz of float samples, a folder of images, or random[:SEED] (a smoke "
                "test: calibrating on noise says nothing about accuracy; default random:0)")


def register(sub) -> None:
    p = sub.add_parser(
        "quantize", help="convert a Keras model / SavedModel to int8 (and int16x8) TFLite per scheme",
        description="Convert MODEL (.keras, .h5 or a SavedModel directory) once per scheme, "
                    "calibrated on the representative dataset, deterministically: the same model, "
                    "dataset and TensorFlow version give the same bytes. Each model's converter "
                    "settings are written beside it as JSON. Exit 0: written; 2: bad model, "
                    "scheme or dataset.")
    p.add_argument("model", type=Path, help=".keras / .h5 file or SavedModel directory")
    add_conversion_options(p)
    p.add_argument("--out", type=Path, default=Path("simrun-quant"), metavar="DIR",
                   help="output directory (default ./simrun-quant)")
    p.add_argument("--float", action="store_true", dest="with_float",
                   help="also write the unquantized float .tflite")
    p.set_defaults(func=run)


def add_conversion_options(p) -> None:
    """The options `simrun quantize` and `simrun ab` share."""
    p.add_argument("--schemes", metavar="LIST", help=SCHEMES_HELP)
    p.add_argument("--dataset", default="random:0", metavar="SPEC", help=DATASET_HELP)
    p.add_argument("--samples", type=int, default=16, metavar="N",
                   help="samples a random dataset draws (default 16)")
    p.add_argument("--range", default="0,1", metavar="LO,HI", dest="value_range",
                   help="real values that image pixels 0..255 map onto, and the interval random "
                        "samples are drawn from (default 0,1)")


def parse_range(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(x) for x in text.split(","))
    except ValueError:
        raise BadInput(f"--range {text!r}: expected LO,HI such as 0,1 or -1,1") from None
    if not lo < hi:
        raise BadInput(f"--range {text!r}: LO must be below HI")
    return lo, hi


def check_model_path(path: Path) -> None:
    """Before TensorFlow loads (seconds): a missing model is an instant error."""
    if not path.exists():
        raise BadInput(f"model {path}: no such file or directory")
    if path.is_file() and path.suffix.lower() == ".tflite":
        raise BadInput(f"model {path}: already a .tflite model; quantize and ab start from the "
                       f"float Keras model (.keras, .h5) or SavedModel (for a .tflite use simrun diff)")


def progress(message: str, command: str = "quantize") -> None:
    print(f"[{command}] {message}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from ..quant.convert import FLOAT, convert_all, load_source, parse_schemes, tensorflow
    from ..quant.dataset import load_dataset

    schemes = parse_schemes(args.schemes)
    value_range = parse_range(args.value_range)
    check_model_path(args.model)
    if args.samples < 1:
        raise BadInput(f"--samples must be at least 1, got {args.samples}")
    progress("loading TensorFlow")
    tf = tensorflow()
    progress(f"loading {args.model}")
    source = load_source(tf, args.model)
    dataset = load_dataset(args.dataset, source.inputs, count=args.samples, value_range=value_range)
    if dataset.spec.startswith("random"):
        progress(f"dataset {dataset.spec}: random samples calibrate a smoke test only; give real "
                 f"data for real accuracy")
    progress(f"dataset {dataset.spec}: {len(dataset.samples)} samples, sha256 {dataset.sha256[:12]}")
    done = convert_all(tf, source, ([FLOAT] if args.with_float else []) + schemes, dataset,
                       args.out, progress)
    for c in done:
        notes = "; ".join(c.settings.get("notes", []))
        print(f"{c.path}  {c.scheme:<12} {c.settings['bytes']:>8} bytes  sha256 "
              f"{c.settings['sha256'][:16]}  settings {c.settings_path.name}"
              + (f"  note: {notes}" if notes else ""))
    return 0

"""`simrun example`: write small int8 models that show what simrun is for, with no files needed."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser(
        "example", help="write example int8 models (a YOLO-style detector, a keyword spotter)",
        description="Write, with TensorFlow, a small YOLO-style detector quantized per-channel "
                    "and per-tensor (plus its float model) and a keyword-spotting model, each "
                    "with its converter settings as JSON, its float Keras model and its "
                    "calibration data. The .tflite files are the same bytes on every run with "
                    "the same TensorFlow version. Then try: simrun diff DIR/detector_per_channel.tflite")
    p.add_argument("dir", type=Path, nargs="?", default=Path("simrun-example"),
                   help="output directory (default ./simrun-example)")
    p.set_defaults(func=run)


def _progress(message: str) -> None:
    print(f"[example] {message}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from ..quant.convert import tensorflow
    from ..quant.examples import write_examples

    _progress("loading TensorFlow")
    tf = tensorflow()
    converted = write_examples(tf, args.dir, _progress)
    for c in converted:
        print(f"{c.path}  {c.settings['scheme']:<12} {c.settings['bytes']:>7} bytes  "
              f"sha256 {c.settings['sha256'][:16]}")
    main = next(c.path for c in converted if c.scheme == "per-channel")
    print(f"\nnext: simrun diff {main} --input random:1 --count 3"
          f"\n      simrun ab {args.dir / 'detector.keras'} --dataset "
          f"{args.dir / 'detector_calibration.npy'}")
    return 0

"""`simrun ab`: per-channel vs per-tensor (vs int16x8) against the float model and across backends."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import BadInput
from ..device.targets import DEFAULT_ROUNDING, EMULATORS, KERNEL_VARIANTS, TARGETS
from ..run_options import DEFAULT_TIMEOUT, RunOptions
from .diff import add_task_options, backend_labels, task_spec
from .quantize import add_conversion_options, check_model_path, parse_range


def register(sub) -> None:
    p = sub.add_parser(
        "ab", help="quantize per scheme, then quantization error vs float and implementation "
                   "error between backends, side by side",
        description="Quantize MODEL (.keras, .h5, SavedModel) under each scheme, run every "
                    "quantized model on the backend matrix (desktop TFLite, host TFLM, emulated "
                    "targets with --cpu) with the same inputs, and compare each with the float "
                    "model on those inputs. Reports: a terminal table, DIR/summary.json, "
                    "DIR/report.html, and each scheme's full differential report in DIR/<scheme>/. "
                    "Exit 0: every scheme passed the policy; 1: one did not; 2: usage or input error.")
    p.add_argument("model", type=Path, help=".keras / .h5 file or SavedModel directory")
    add_conversion_options(p)
    p.add_argument("--input", metavar="SPEC", dest="inputs",
                   help="inputs to compare on (float .npy/.npz, image folder, random[:SEED]); "
                        "default: the first --count samples of the dataset")
    p.add_argument("--count", type=int, default=2, help="inputs to compare on (default 2)")
    p.add_argument("--cpu", action="append", metavar="CPU", dest="cpus", default=[],
                   help=f"add target backends for this CPU (known: {', '.join(TARGETS)})")
    p.add_argument("--kernels", default=",".join(KERNEL_VARIANTS),
                   help="kernel variants for target backends (default reference,cmsis-nn)")
    p.add_argument("--rounding", default=DEFAULT_ROUNDING, metavar="LIST",
                   help="requantization rounding of the target firmware (double, single)")
    p.add_argument("--backends", metavar="LIST", help="comma-separated backends (as simrun diff)")
    p.add_argument("--policy", type=Path, help="tolerance policy TOML (default: built-in)")
    p.add_argument("--report", type=Path, default=Path("simrun-ab"), metavar="DIR",
                   help="report directory, also holding the models (default ./simrun-ab)")
    p.add_argument("--sources", type=Path, metavar="DIR", help="local TFLM/CMSIS source trees")
    p.add_argument("--emulator", default="qemu", choices=EMULATORS)
    p.add_argument("--reference", metavar="LABEL",
                   help="backend whose values feed the diagnosis' isolated runs (default "
                        "tflite-reference, else tflm-host)")
    p.add_argument("--diagnose", action=argparse.BooleanOptionalAction, default=True,
                   help="own-vs-inherited error per layer from isolated runs (default on; "
                        "--no-diagnose halves the runs)")
    add_task_options(p)
    p.add_argument("--timeout", type=float, default=None, metavar="S",
                   help=f"per-backend time limit in seconds (default: {DEFAULT_TIMEOUT:g} times the emulator's "
                        f"slowdown: QEMU 1, Renode 6; host backends {DEFAULT_TIMEOUT:g})")
    p.set_defaults(func=run)


def _progress(stage: str, message: str) -> None:
    print(f"[ab] {stage}: {message}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from ..report.folder import ReportFolder
    from ..report.outcome import reporting_stops
    from ..report.provenance import RunRecord

    # As `simrun diff`: the folder is this run's whatever happens (simrun.report.folder).
    record = RunRecord.begin("ab", getattr(args, "argv", None), args)
    folder = ReportFolder(args.report)
    with reporting_stops(folder, record, "simrun ab"):
        return _run(args, record, folder)


def _run(args: argparse.Namespace, record, folder) -> int:
    from ..analysis.policy import Policy
    from ..quant.ab import run_ab
    from ..quant.convert import parse_schemes
    from ..report import ab as ab_report
    from ..report.ab_ci import annotations
    from ..report.outcome import publish

    # Everything the user typed is checked before TensorFlow loads and models convert.
    schemes = parse_schemes(args.schemes)
    value_range = parse_range(args.value_range)
    labels = backend_labels(args.backends, args.cpus, args.kernels, args.rounding)
    record.labels = labels
    check_model_path(args.model)
    if args.count < 1 or args.samples < 1:
        raise BadInput("--count and --samples must be at least 1")
    if args.timeout is not None and args.timeout <= 0:
        raise BadInput("--timeout must be positive")
    if args.sources is not None and not args.sources.is_dir():
        raise BadInput(f"--sources {args.sources}: not a directory")
    if args.reference is not None and args.reference not in labels:
        raise BadInput(f"--reference {args.reference}: not among the backends ({', '.join(labels)})")
    policy = Policy.load(args.policy)
    # Checked against each scheme's model once it is converted (simrun.quant.ab).
    task = task_spec(args.task, args.task_options, policy)
    if task is not None and task.needs_sequences:
        raise BadInput(f"task {task.name} follows a streaming model over sequences, which simrun ab "
                       f"does not run: use simrun diff --sequence on each quantized model")
    # The models go into the temporary folder with the reports, and move with them.
    ab = run_ab(args.model, schemes, labels, folder.path, dataset=args.dataset,
                dataset_count=args.samples, value_range=value_range, inputs=args.inputs,
                count=args.count, policy=policy, progress=_progress,
                options=RunOptions(timeout=args.timeout, emulator=args.emulator, sources_dir=args.sources),
                reference=args.reference, diagnose=args.diagnose, task=task)
    print(ab_report.render(ab))
    code = 0 if ab_report.passed(ab) else 1
    record.end(code)
    ab_report.relocate(ab, folder.path, folder.target)
    written = ab_report.write_reports(ab, folder.path, record)
    target = folder.commit()
    publish(target / written["markdown"].name, annotations(ab))
    print(f"[ab] report: {target / written['html'].name}", file=sys.stderr)
    return code

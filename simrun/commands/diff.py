"""`simrun diff`: run one model on a matrix of backends and compare them layer by layer."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..backend_id import FirmwareVariant, check_fp_contract, check_rounding
from ..backends import HOST_BACKENDS, parse_backend
from ..backends.parallel import default_jobs
from ..errors import BadInput, require_writable_dir
from ..device.targets import (DEFAULT_FP_CONTRACT, DEFAULT_ROUNDING, EMULATORS, FP_CONTRACT_MODES, KERNEL_VARIANTS, ROUNDING_MODES, TARGETS,
                              check_variant, get_target)
from ..run_options import DEFAULT_TIMEOUT, RunOptions


def register(sub) -> None:
    p = sub.add_parser(
        "diff", help="compare a model across desktop TFLite, host TFLM and emulated targets",
        description="Run MODEL on every backend for every input, compare all operator outputs "
                    "pair by pair, judge them with a tolerance policy and write reports.")
    p.add_argument("model", type=Path, help=".tflite model")
    p.add_argument("--input", action="append", metavar="SPEC", dest="inputs",
                   help=".npy, .npz, an image, a folder of them (file-name order), or random[:SEED] "
                        "(repeatable; default random:0)")
    p.add_argument("--count", type=int, default=None, metavar="N",
                   help="samples per random input spec (default 1); the first N samples of a folder "
                        "(default all)")
    add_task_options(p)
    p.add_argument("--sequence", action="store_true",
                   help="each --input is a sequence for a stateful (streaming) model: the leading "
                        "axis of an .npy/.npz is time; each sequence runs on a fresh interpreter, "
                        "step by step, and reports show per-step results and the first divergent "
                        "step and layer")
    p.add_argument("--steps", type=int, metavar="N",
                   help="steps of a random[:SEED] sequence (implies --sequence)")
    p.add_argument("--cpu", action="append", metavar="CPU", dest="cpus", default=[],
                   help=f"add target backends for this CPU (repeatable or comma-separated; "
                        f"known: {', '.join(TARGETS)})")
    p.add_argument("--kernels", default=",".join(KERNEL_VARIANTS),
                   help="kernel variants for target backends (default reference,cmsis-nn)")
    p.add_argument("--rounding", default=DEFAULT_ROUNDING, metavar="LIST",
                   help="requantization rounding of the target firmware, comma-separated "
                        f"({', '.join(ROUNDING_MODES)}; default {DEFAULT_ROUNDING}); single adds "
                        "target:<cpu>:<kernels>:single-rounding backends")
    p.add_argument("--fp-contract", default=DEFAULT_FP_CONTRACT, metavar="LIST",
                   help=f"floating-point contraction of the target firmware, comma-separated "
                        f"({', '.join(FP_CONTRACT_MODES)}; default {DEFAULT_FP_CONTRACT}); off adds "
                        "target:<cpu>:<kernels>[:single-rounding]:no-fp-contract backends")
    p.add_argument("--backends", metavar="LIST",
                   help=f"comma-separated backends (default: {','.join(HOST_BACKENDS)}, plus "
                        f"target:<cpu>:<kernels>[:single-rounding] per --cpu); 'target' expands to "
                        f"the --cpu variants")
    p.add_argument("--policy", type=Path, help="tolerance policy TOML (default: built-in)")
    p.add_argument("--baseline", type=Path, metavar="SUMMARY",
                   help="summary.json of an earlier diff: judge what changed since (new own, output "
                        "or bit-exactness errors, newly failing backends; margins in the policy's "
                        "[baseline]); failures it had too are reported as known")
    p.add_argument("--repro", type=Path, metavar="DIR",
                   help="write a reproducer bundle for every layer that introduces error between two "
                        "backends (the single-operator model, its input values, both outputs, versions "
                        "and the one simrun diff command that shows the difference); default: "
                        "REPORT/repro when the policy fails")
    p.add_argument("--report", type=Path, default=Path("simrun-report"), metavar="DIR",
                   help="report directory (default ./simrun-report)")
    p.add_argument("--junit-layers", action="store_true",
                   help="junit.xml: one testcase per layer of every pair (default: one per input and pair)")
    p.add_argument("--sources", type=Path, metavar="DIR",
                   help="local TFLM/CMSIS source trees for target builds (else SIMRUN_SOURCES_DIR "
                        "or pinned downloads)")
    p.add_argument("--emulator", default="qemu", choices=EMULATORS,
                   help="emulator for target backends (default qemu)")
    p.add_argument("--reference", metavar="LABEL",
                   help="backend whose values feed every operator in the isolated runs of the "
                        "diagnosis (default: tflite-reference when it runs, else tflm-host)")
    p.add_argument("--gdb", metavar="HOST:PORT",
                   help="run the target backend on an emulator you started (halted at reset, the firmware "
                        "`simrun build` gives loaded, its GDB server on this machine) instead of starting one; "
                        "one target backend, with --no-diagnose")
    p.add_argument("--diagnose", action=argparse.BooleanOptionalAction, default=True,
                   help="explain each differing layer: isolated runs against the reference give its "
                        "own error, extra firmware variants (other rounding, no FMA contraction) its "
                        "cause; built and run automatically (default: on)")
    p.add_argument("--timeout", type=float, default=None, metavar="S",
                   help=f"per-backend time limit in seconds (default: {DEFAULT_TIMEOUT:g} times the emulator's "
                        f"slowdown: QEMU 1, Renode 6; host backends {DEFAULT_TIMEOUT:g})")
    p.add_argument("--jobs", type=int, metavar="N",
                   help="backends (and isolated runs of the diagnosis) run at once, each in its own "
                        "process; the reports and exit code are the same for any N "
                        "(default: the machine's cores)")
    p.add_argument("--instructions", action="store_true",
                   help="count the instructions every operator executes on the target backends "
                        "(exact; reported per layer, per operator type and per variant)")
    p.set_defaults(func=run)


def backend_labels(backends: str | None, cpus: list[str], kernels: str,
                   rounding: str = DEFAULT_ROUNDING, fp_contract: str = DEFAULT_FP_CONTRACT) -> list[str]:
    cpu_list = [c for arg in cpus for c in arg.split(",") if c]
    kernel_list = [k for k in kernels.split(",") if k]
    rounding_list = [r for r in rounding.split(",") if r]
    contract_list = [f for f in fp_contract.split(",") if f]
    # The checks `simrun build` makes, so both commands word a bad option alike.
    for r in rounding_list:
        check_rounding(r)
    for f in contract_list:
        check_fp_contract(f)
    try:
        for cpu in cpu_list:
            get_target(cpu)
        for k in kernel_list:
            check_variant(k)
    except ValueError as err:
        raise BadInput(str(err)) from None
    targets = [FirmwareVariant(c, k, r, f).label for c in cpu_list for k in kernel_list
               for r in rounding_list for f in contract_list]
    if backends is None:
        labels = list(HOST_BACKENDS) + targets
    else:
        labels = []
        for name in (b.strip() for b in backends.split(",")):
            if name == "target":
                if not targets:
                    raise BadInput("backend 'target' needs --cpu")
                labels += targets
            elif name:
                labels.append(name)
    for label in labels:
        parse_backend(label)                # a typo is a usage error before anything runs
    labels = list(dict.fromkeys(labels))
    if not labels:
        raise BadInput("no backends to run")
    return labels


def _progress(label: str, event: str, seconds: float, message: str) -> None:
    if event == "started":
        print(f"[diff] {label}: started" + (f" ({message})" if message else ""), file=sys.stderr, flush=True)
    elif event == "note":
        print(f"[diff] {label}: {message}", file=sys.stderr, flush=True)
    elif event == "progress":
        print(f"[diff] {label}: {message}", file=sys.stderr, flush=True)
    elif event == "finished":
        print(f"[diff] {label}: finished in {seconds:.1f} s", file=sys.stderr, flush=True)
    else:
        print(f"[diff] {label}: FAILED after {seconds:.1f} s: {message}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from ..report.folder import ReportFolder
    from ..report.outcome import reporting_stops
    from ..report.provenance import RunRecord

    # The report folder first: whatever happens next (a bad input, Ctrl-C, a verdict) it is
    # replaced by this run's files, never left holding an earlier run's.
    record = RunRecord.begin("diff", getattr(args, "argv", None), args)
    folder = ReportFolder(args.report)
    with reporting_stops(folder, record, "simrun diff"):
        return _run(args, record, folder)


def _run(args: argparse.Namespace, record, folder) -> int:
    # Heavy modules load after argument checks so usage errors stay instant.
    from ..model import Model
    from ..inputs import load_named_inputs, load_sequences, preprocessing
    from ..analysis.policy import Policy
    from ..pipeline import diff_run

    labels = backend_labels(args.backends, args.cpus, args.kernels, args.rounding, args.fp_contract)
    record.labels = labels
    if args.timeout is not None and args.timeout <= 0:
        raise BadInput("--timeout must be positive")
    if args.jobs is not None and args.jobs < 1:
        raise BadInput(f"--jobs {args.jobs}: give at least 1 (backends run at once)")
    if args.sources is not None and not args.sources.is_dir():
        raise BadInput(f"--sources {args.sources}: not a directory")
    # Every input the user gave is checked before minutes of backends run.
    policy = Policy.load(args.policy)
    baseline = None
    if args.baseline is not None:
        from ..analysis import baseline as baseline_mod
        baseline = baseline_mod.load(args.baseline)
    model = Model.from_file(args.model)
    sequences = None
    if args.sequence or args.steps is not None:
        if args.count is not None:
            raise BadInput("--count does not apply to sequences; give their length with --steps N")
        seqs = load_sequences(model, args.inputs, steps=args.steps)
        named = [step for _, steps in seqs for step in steps]
        sequences = {name: len(steps) for name, steps in seqs}
        if args.gdb is not None and len(sequences) > 1:
            raise BadInput(f"--gdb {args.gdb}: every sequence starts on a rebooted target, and an "
                           f"attached emulator starts once: give one sequence (one --input)")
    else:
        named = load_named_inputs(model, args.inputs, count=args.count)
    task = task_spec(args.task, args.task_options, policy, model)
    if args.gdb is not None:
        _check_attach(args, labels)
    if args.reference is not None and args.reference not in labels:
        raise BadInput(f"--reference {args.reference}: not among the backends ({', '.join(labels)})")
    if args.instructions:
        require_instruction_counter(labels, args.emulator, args.gdb)
    if args.repro is not None:
        if not args.diagnose:
            raise BadInput("--repro needs the diagnosis (its isolated runs find the layers that "
                           "introduce error): drop --no-diagnose")
        require_writable_dir(args.repro, BadInput, "--repro directory", "give --repro a directory you can write")
    options = RunOptions(timeout=args.timeout, emulator=args.emulator, gdb=args.gdb,
                         count_instructions=args.instructions, sources_dir=args.sources)
    result = diff_run(model, [n for n, _ in named], [s for _, s in named], labels, options,
                      reference=args.reference, diagnose=args.diagnose, policy=policy,
                      sequences=sequences, task=task, progress=_progress, baseline=baseline,
                      jobs=args.jobs or default_jobs())
    result.run.preprocessing = preprocessing(model, args.inputs)
    show_and_report(result, folder, record=record, junit_layers=args.junit_layers,
                    samples=[s for _, s in named], repro_dir=args.repro)
    return result.exit_code


def task_spec(name: str | None, options: list[str], policy, model=None):
    """The task to decode, from --task/--task-option over the policy's [task] table, checked
    against the model (when given) before any backend runs (None: no task)."""
    from ..analysis.tasks import parse_task
    kind = name or policy.task.kind
    if kind is None:
        if options:
            raise BadInput("--task-option needs a task: give --task (or kind in the policy's [task])")
        return None
    settings = dict(policy.task.settings) if policy.task.kind in (None, kind) else {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or not key.strip():
            raise BadInput(f"--task-option {option!r}: write KEY=VALUE, e.g. score_threshold=0.3")
        settings[key.strip()] = value.strip()
    return parse_task(kind, settings, model)


def add_task_options(p) -> None:
    """--task and --task-option, as `simrun diff` and `simrun ab` take them."""
    p.add_argument("--task", metavar="TASK",
                   help="decode the outputs and compare the decisions: classify, detect, wakeword or "
                        "python:FILE.py:FUNCTION; the policy then judges the decisions and reports "
                        "tensor drift (default: the policy's [task] kind, else none)")
    p.add_argument("--task-option", action="append", default=[], metavar="KEY=VALUE",
                   dest="task_options",
                   help="a setting of the task's decoder, e.g. score_threshold=0.3 (repeatable; "
                        "overrides the policy's [task] table)")


def _check_attach(args: argparse.Namespace, labels: list[str]) -> None:
    """--gdb drives one emulator start: one target backend, run once."""
    from ..device.emulators.attach import parse_gdb_address
    parse_gdb_address(args.gdb)
    targets = [label for label in labels if parse_backend(label).is_target]
    if len(targets) != 1:
        raise BadInput(f"--gdb {args.gdb} attaches to one emulator, so it runs exactly one target backend; "
                       f"got {len(targets)} ({', '.join(targets) or 'none'}): give one --cpu and one --kernels")
    if args.diagnose:
        raise BadInput(f"--gdb {args.gdb}: diagnosis re-runs the target with isolated inputs, which needs an "
                       f"emulator simrun can restart; add --no-diagnose, or drop --gdb")


def require_instruction_counter(labels, emulator: str, gdb: str | None = None) -> None:
    """Build the QEMU counting plugin now: a missing QEMU header fails before any backend runs.
    (Renode and attached emulators are counted with their own counter, at stops.)"""
    if not any(parse_backend(label).is_target for label in labels):
        raise BadInput("--instructions counts on target backends: add --cpu (or target:... backends)")
    if emulator == "qemu" and not gdb:
        from ..device.qemu_plugin import ensure_plugin
        ensure_plugin()


def show_and_report(result, report_dir, *, record=None, junit_layers: bool = False, samples=None,
                    repro_dir: Path | None = None) -> None:
    """Print the terminal report of a DiffResult and write its report folder: `report_dir`
    a directory (replaced as a whole) or an open ReportFolder (committed here); then hand
    summary.md and the failures to GitHub Actions when inside one. Reproducer bundles (given
    the samples) go to `repro_dir`, else into the report folder's repro/ when the policy fails."""
    from .. import report
    from ..report import markdown, sequences
    from ..report.folder import ReportFolder
    from ..report.outcome import publish
    from ..report.provenance import RunRecord
    from ..report.repro import write_bundles

    record = record or RunRecord("diff", list(sys.argv))
    record.end(result.exit_code)
    owned = not isinstance(report_dir, ReportFolder)
    folder = ReportFolder(report_dir) if owned else report_dir
    shown = False
    try:
        if samples is not None and (repro_dir is not None or not result.passed):
            # Inside the temporary folder, so they move with it; summary.json names where they end up.
            where = Path(repro_dir) if repro_dir is not None else folder.path / "repro"
            bundles = write_bundles(result.run, samples, where)
            final = where if repro_dir is not None else folder.target / "repro"
            result.run.repro = [str(final / Path(b).relative_to(where)) for b in bundles]
            if bundles:
                print(f"[diff] reproducers: {len(bundles)} bundle(s) in {final} (each: README.md, and "
                      f"one simrun diff command in repro.json)", file=sys.stderr)
        # After the bundles, so that the remedies name them.
        print(report.terminal.render(result.run, result.verdict))
        shown = True
        written = report.write_into(folder.path, result, record=record, junit_layers=junit_layers)
        target = folder.commit()
    finally:
        if not shown:              # writing the bundles failed: the answer is still shown
            print(report.terminal.render(result.run, result.verdict))
        if owned:                  # else its owner (reporting_stops) reports a failure to write
            folder.discard()
    if result.run.sequences:
        print(sequences.render(result.run))
    publish(target / written["markdown"].name, markdown.annotations(result.run, result.verdict))
    print(f"[diff] report: {target / written['html'].name}", file=sys.stderr)

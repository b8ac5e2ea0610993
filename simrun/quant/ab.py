"""The quantization A/B: one float model, several schemes, two kinds of error side by side.

For every scheme (per-channel, per-tensor, int16x8):
- *quantization error*: the quantized model against the float model on the same real
  inputs, at every model output and per layer (simrun.quant.accuracy), measured on the
  most reference-like backend of the matrix (tflite-reference by default);
- *implementation error*: the differential matrix (desktop TFLite, host TFLM, emulated
  targets) on the quantized model, compared pair by pair as `simrun diff` does and judged
  with the same policy, through the one pipeline `simrun diff` runs (simrun.pipeline), so
  each pair's layers carry the own-vs-inherited diagnosis unless diagnose=False.

Inputs: real-valued samples (the first `count` of the representative dataset, or an
`--input` spec loaded like a dataset). Each scheme's model gets them quantized with its
own input parameters; the float model gets exactly those values back, dequantized, so
neither side of the float comparison sees a different input. Model inputs are matched
to the float model's inputs by position.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..backends import run_backend
from ..errors import BackendError, BadInput
from ..inputs import convert_dtype
from ..model import Model
from ..analysis.diffrun import DiffRun
from ..analysis.policy import Policy, Verdict
from ..analysis.result import DiffResult
from ..analysis.tasks import PairOutcome, TaskSpec, check_model, evaluate_outputs
from ..analysis.tasks.base import real_outputs
from ..pipeline import diff_run
from ..run_options import RunOptions
from .accuracy import ErrorStats, layer_errors, output_errors
from .convert import FLOAT, Scheme, convert_all, load_source, tensorflow
from .dataset import DEFAULT_COUNT, load_dataset

FLOAT_BACKEND = "tflite-reference"      # runs the float model: every intermediate tensor kept


@dataclass
class SchemeResult:
    scheme: str
    model_path: Path
    settings: dict
    result: DiffResult | None = None        # the differential run on this model, judged by the policy
    measured_on: str | None = None          # backend whose capture was compared with float
    outputs: list[ErrorStats] = field(default_factory=list)
    layers: list[ErrorStats] = field(default_factory=list)
    error: str | None = None                # why the float comparison is missing
    # With a task: the decisions of the quantized model (on `measured_on`) against the float
    # model's on the same inputs; the decisions between backends are in run.task.
    task_vs_float: PairOutcome | None = None

    @property
    def run(self) -> DiffRun | None:
        return self.result.run if self.result is not None else None

    @property
    def verdict(self) -> Verdict | None:
        return self.result.verdict if self.result is not None else None


@dataclass
class ABRun:
    source: dict                            # FloatSource.describe()
    float_model: Path
    dataset: dict                           # Dataset.describe()
    input_names: list[str]
    labels: list[str]                       # the backend matrix every scheme ran on
    schemes: list[SchemeResult]
    tensorflow: str = ""


def run_ab(model_path: Path, schemes: list[Scheme], labels: list[str], out_dir: Path, *,
           dataset: str = "random:0", dataset_count: int = DEFAULT_COUNT,
           value_range: tuple[float, float] = (0.0, 1.0), inputs: str | None = None,
           count: int = 2, policy: Policy | None = None, progress=None, options: RunOptions | None = None,
           reference: str | None = None, diagnose: bool = True, task: TaskSpec | None = None) -> ABRun:
    """Quantize `model_path` under `schemes` into out_dir/models and measure both errors;
    `policy` (None: the built-in one) judges each scheme's differential run. `options`: how
    every backend runs (RunOptions). `progress(stage, message)` hears every step.
    `task` (simrun.analysis.tasks.TaskSpec): also decode the outputs and compare the decisions,
    quantized vs float and between backends, per scheme."""
    options = options or RunOptions()
    say = progress or (lambda stage, msg: None)
    if count < 1:
        raise BadInput(f"--count must be at least 1, got {count}")
    say("quantize", "loading TensorFlow")
    tf = tensorflow()
    say("quantize", f"loading {model_path}")
    source = load_source(tf, model_path)
    data = load_dataset(dataset, source.inputs, count=dataset_count, value_range=value_range)
    if inputs is None:
        real = data.samples[:count]
        names = [f"dataset#{i}" for i in range(len(real))]
    else:
        real = load_dataset(inputs, source.inputs, count=count, value_range=value_range).samples
        names = [f"{inputs}#{i}" for i in range(len(real))] if len(real) > 1 else [inputs]
    say("quantize", f"dataset {dataset}: {len(data.samples)} samples; {len(real)} inputs to compare")
    converted = convert_all(tf, source, schemes, data, Path(out_dir) / "models",
                            progress=lambda m: say("quantize", m), include_float=True)
    float_conv, scheme_convs = converted[0], converted[1:]

    results, quant_inputs, float_inputs = [], [], []
    for conv in scheme_convs:
        model = Model.from_file(conv.path)
        q = [_quantized(sample, model, name) for sample, name in zip(real, names)]
        quant_inputs.append(q)
        float_inputs.append([[_dequantized(a, info) for a, info in zip(sample, model.inputs)]
                             for sample in q])
        results.append(SchemeResult(conv.scheme, conv.path, conv.settings))

    # The float model once, on every scheme's dequantized inputs (one worker process).
    say(FLOAT.name, f"running {FLOAT_BACKEND} on {float_conv.path.name}")
    float_caps, float_error = None, None
    try:
        flat = run_backend(FLOAT_BACKEND, float_conv.path, [s for per in float_inputs for s in per],
                           options)
        float_caps = [flat[i * len(real):(i + 1) * len(real)] for i in range(len(results))]
    except BackendError as err:
        float_error = f"float model on {FLOAT_BACKEND}: {err.message}"
        say(FLOAT.name, f"FAILED: {err.message}")

    for i, res in enumerate(results):
        model = Model.from_file(res.model_path)
        if task is not None:
            check_model(task, model)
        say(res.scheme, f"differential run on {', '.join(labels)}")
        res.result = diff_run(
            model, names, quant_inputs[i], labels, options, reference=reference, diagnose=diagnose,
            policy=policy, task=task,
            progress=lambda label, event, seconds, message, _s=res.scheme:
            say(_s, _event(label, event, seconds, message)))
        if float_caps is None:
            res.error = float_error
            continue
        res.measured_on = _reference_backend(res.run)
        if res.measured_on is None:
            res.error = "no backend ran the quantized model"
            continue
        caps = res.result.captures[res.measured_on]
        res.outputs = output_errors(float_caps[i], caps, model)
        res.layers = layer_errors(float_caps[i], caps, model)
        if task is not None:
            res.task_vs_float = _task_vs_float(task, model, names, float_caps[i], caps, res.measured_on)
    return ABRun(source.describe(), float_conv.path, data.describe(), names, list(labels),
                 results, tf.__version__)


def _task_vs_float(task: TaskSpec, model: Model, names, float_caps, caps, measured_on: str) -> PairOutcome:
    """The float model's decisions against the quantized model's (on `measured_on`): the float
    outputs are taken by name, in the quantized model's output order, for its decoder."""
    wanted = [info.name for info in model.outputs]
    floats = []
    for name, cap in zip(names, float_caps):
        by_name = {t.name: t.values.astype(np.float64) for t in cap.outputs}
        missing = [n for n in wanted if n not in by_name]
        if missing:
            raise BadInput(f"task {task.name}: the float model has no output named {missing[0]!r} "
                           f"(the quantized model's outputs: {', '.join(wanted)})")
        floats.append([by_name[n] for n in wanted])
    quantized = [real_outputs(model, cap) for cap in caps]
    result = evaluate_outputs(task, model, names, {FLOAT.name: floats, measured_on: quantized},
                              pairs=[(FLOAT.name, measured_on)])
    return result.pairs[0]


def _event(label: str, event: str, seconds: float, message: str) -> str:
    if event == "finished":
        return f"{label}: finished in {seconds:.1f} s"
    if event == "failed":
        return f"{label}: FAILED after {seconds:.1f} s: {message}"
    return f"{label}: {message or event}"


def _quantized(sample: list[np.ndarray], model: Model, name: str) -> list[np.ndarray]:
    if len(sample) != len(model.inputs):
        raise BadInput(f"input {name}: {len(sample)} arrays for a model with {len(model.inputs)} inputs")
    return [convert_dtype(a.reshape(info.shape), info, name) for a, info in zip(sample, model.inputs)]


def _dequantized(values: np.ndarray, info) -> np.ndarray:
    q = info.quantization
    if values.dtype.kind == "f" or not q.scale:
        return values.astype(np.float32)
    return ((values.astype(np.float64) - q.zero_point[0]) * q.scale[0]).astype(np.float32)


def _reference_backend(run) -> str | None:
    """The most reference-like backend that ran every input."""
    ran = [b for b in run.backends if b not in run.backend_errors]
    return ran[0] if ran else None


# --- implementation error, pooled over the inputs -------------------------------------------
@dataclass
class PairFigures:
    """One backend pair on one scheme's model, over every input."""
    a: str
    b: str
    count: int                              # values compared, every layer of every input
    mismatched: int
    max_abs_delta: float                    # integer steps for integer tensors
    output_max_abs_delta: float             # at the model outputs only
    first_divergent: object | None          # analysis.compare.LayerStats, earliest over inputs
    diverging_inputs: int                   # inputs on which any layer differs
    own_layers: int | None = None           # layers introducing error themselves (on any input);
                                            # None: no diagnosis, or a differing side not isolated
    inherited_layers: int | None = None     # layers only carrying it on (on every input)
    causes: dict[str, int] = field(default_factory=dict)   # cause -> layer-input count
    summary: str = ""                       # the diagnosis' sentence (first input that differs)

    @property
    def name(self) -> str:
        return f"{self.a} vs {self.b}"

    @property
    def mismatch_ratio(self) -> float:
        return self.mismatched / self.count if self.count else 0.0


def implementation_figures(run) -> list[PairFigures]:
    """Per pair of `run` (a DiffRun), its figures pooled over inputs, with the
    own-vs-inherited diagnosis where the run carries one."""
    figures: dict[tuple[str, str], PairFigures] = {}
    own_ids: dict[tuple[str, str], set] = {}            # layers introducing error on any input
    inherited_ids: dict[tuple[str, str], set] = {}      # layers only carrying it on
    unknown: set[tuple[str, str]] = set()               # pairs differing where nothing was isolated
    diagnosis = getattr(run, "diagnosis", None)
    for n, cmp in enumerate(run.comparisons):
        for pair in cmp.pairs:
            key = (pair.a, pair.b)
            f = figures.setdefault(key, PairFigures(pair.a, pair.b, 0, 0, 0, 0, None, 0))
            f.count += sum(s.count for s in pair.layers)
            f.mismatched += sum(s.mismatched for s in pair.layers)
            f.max_abs_delta = max(f.max_abs_delta, pair.max_abs_delta)
            f.output_max_abs_delta = max([f.output_max_abs_delta] + [s.max_abs_delta for s in pair.outputs])
            first = pair.first_divergent
            if first is not None:
                f.diverging_inputs += 1
                if f.first_divergent is None or first.depth < f.first_divergent.depth:
                    f.first_divergent = first
            if diagnosis is None:
                continue
            try:
                d = diagnosis.pair(n, pair.a, pair.b)
            except (KeyError, IndexError):
                continue
            if not f.summary or (first is not None and f.diverging_inputs == 1):
                f.summary = d.summary
            own, inherited = own_ids.setdefault(key, set()), inherited_ids.setdefault(key, set())
            if first is not None and all(layer.own is None for layer in d.layers):
                unknown.add(key)    # a side had no isolated run: own error unknown, not zero
            own.update(layer.id for layer in d.introducing)
            inherited.update(layer.id for layer in d.layers if layer.cause == "inherited")
            f.own_layers, f.inherited_layers = len(own), len(inherited - own)
            for layer in d.layers:
                if layer.cause != "none":
                    f.causes[layer.cause] = f.causes.get(layer.cause, 0) + 1
    for key in unknown:
        figures[key].own_layers = figures[key].inherited_layers = None
    return list(figures.values())

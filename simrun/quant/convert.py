"""The one converter: a float model (Keras or SavedModel) to .tflite under a named scheme.

`simrun example`, `simrun quantize` and `simrun ab` all convert through
`convert()`, so a model the example writes and one `simrun quantize` writes from
the same Keras model and dataset are the same bytes.

Schemes (SCHEMES):
- per-channel: full-integer int8, weights of convolutions and Dense layers with one
  scale per output channel (TFLite's default);
- per-tensor: the same with one scale per weight tensor. TFLite's converter has two
  private switches for it: `_experimental_disable_per_channel` (convolutions,
  depthwise convolutions) and `_experimental_disable_per_channel_quantization_for_dense_layers`
  (FULLY_CONNECTED). Which ones the installed TensorFlow has is checked, and the
  result of the conversion is checked too: the settings JSON counts the weight
  tensors that still have per-channel scales;
- int16x8: int16 activations, int8 weights (EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8);
- float (FLOAT): no quantization, the reference an A/B compares against.

Determinism: TensorFlow runs single-threaded with fixed seeds, the representative
data is given (seeded or read from files), and nothing time- or path-dependent goes
into the model: the same float model, dataset and TensorFlow version give the same
bytes. Each model gets `<model>.json` beside it with every converter setting used.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import BadInput, ToolMissing
from ..model import Model
from .dataset import Dataset, InputSpec


@dataclass(frozen=True)
class Scheme:
    name: str
    summary: str
    ops_set: str | None             # tf.lite.OpsSet member; None: not quantized
    io_type: str | None             # model input/output type ("int8", "int16"); None: float
    per_tensor: bool = False


SCHEMES = {s.name: s for s in (
    Scheme("per-channel", "int8; conv and Dense weights one scale per output channel",
           "TFLITE_BUILTINS_INT8", "int8"),
    Scheme("per-tensor", "int8; conv and Dense weights one scale per tensor",
           "TFLITE_BUILTINS_INT8", "int8", per_tensor=True),
    Scheme("int16x8", "int16 activations, int8 weights (per channel)",
           "EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8", "int16"),
)}
FLOAT = Scheme("float", "float32, not quantized (the A/B's reference)", None, None)
DEFAULT_SCHEMES = ("per-channel", "per-tensor")

# Converter attributes per-tensor sets: convolutions, then Dense layers.
CONV_FLAG = "_experimental_disable_per_channel"
DENSE_FLAG = "_experimental_disable_per_channel_quantization_for_dense_layers"


def parse_schemes(text: str | None) -> list[Scheme]:
    names = [n.strip() for n in (text or ",".join(DEFAULT_SCHEMES)).split(",") if n.strip()]
    if not names:
        raise BadInput("--schemes is empty; known schemes: " + ", ".join(SCHEMES))
    unknown = [n for n in names if n not in SCHEMES]
    if unknown:
        raise BadInput(f"unknown scheme {unknown[0]!r}; known: {', '.join(SCHEMES)}")
    return [SCHEMES[n] for n in dict.fromkeys(names)]


# --- TensorFlow, quietly ------------------------------------------------------------
@contextlib.contextmanager
def quiet():
    """Keep what TensorFlow prints out of our output: Python's streams and warnings and
    the C++ file descriptors alike (a host such as Robot may have replaced sys.stderr,
    so both levels are redirected). Yields a list that holds the text afterwards."""
    sys.stdout.flush()
    sys.stderr.flush()
    held = []
    python_text = io.StringIO()
    with tempfile.TemporaryFile() as log, warnings.catch_warnings(record=True) as caught, \
            contextlib.redirect_stdout(python_text), contextlib.redirect_stderr(python_text):
        warnings.simplefilter("always")
        saved = os.dup(1), os.dup(2)
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield held
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            log.seek(0)
            held.append(log.read().decode(errors="replace") + python_text.getvalue()
                        + "".join(f"{w.category.__name__}: {w.message}\n" for w in caught))


def tensorflow():
    """TensorFlow, imported quietly, single-threaded and seeded."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with quiet():
        try:
            import tensorflow as tf
        except ImportError:
            tf = None
        else:
            try:   # only possible before TensorFlow's runtime starts; later calls keep the first
                tf.config.threading.set_intra_op_parallelism_threads(1)
                tf.config.threading.set_inter_op_parallelism_threads(1)
            except RuntimeError:
                pass
            tf.keras.utils.set_random_seed(0)
            tf.config.list_physical_devices()   # device probing logs (no GPU, ...) go here too
    if tf is None:
        raise ToolMissing("TensorFlow is needed to convert models: pip install tensorflow "
                          "(or pip install 'simrun[convert]')")
    return tf


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines()
             if ln.strip() and not ln.lstrip().startswith(("W0000", "I0000", "WARNING"))]
    return lines[-1] if lines else ""


# --- the float model ------------------------------------------------------------------
@dataclass
class FloatSource:
    """A float model to convert: a Keras model (in memory or loaded) or a SavedModel."""
    kind: str                                    # "keras" | "savedmodel"
    inputs: list[InputSpec]
    path: Path | None = None
    keras_model: object = None
    sha256: str | None = None
    name: str = "model"

    def describe(self) -> dict:
        return {"kind": self.kind, "path": str(self.path) if self.path else None,
                "sha256": self.sha256}


def keras_source(model, path: Path | None = None, sha256: str | None = None) -> FloatSource:
    inputs = [InputSpec(t.name, tuple(1 if d is None else int(d) for d in t.shape))
              for t in model.inputs]
    return FloatSource("keras", inputs, path, model, sha256,
                       path.stem if path else (model.name or "model"))


def load_source(tf, path: Path) -> FloatSource:
    """A .keras / .h5 file or a SavedModel directory."""
    path = Path(path)
    if path.is_dir():
        if not (path / "saved_model.pb").is_file():
            raise BadInput(f"model {path}: a directory but not a SavedModel (no saved_model.pb)")
        with quiet():
            try:
                loaded = tf.saved_model.load(str(path))
                sig = loaded.signatures["serving_default"]
            except Exception as err:  # TensorFlow raises many kinds for a bad SavedModel
                raise BadInput(f"model {path}: cannot load SavedModel ({_first(err)})") from None
        specs = sig.structured_input_signature[1]
        inputs = [InputSpec(name, tuple(1 if d is None else int(d) for d in specs[name].shape))
                  for name in sorted(specs)]
        return FloatSource("savedmodel", inputs, path, None, _tree_sha256(path), path.name)
    if not path.is_file():
        raise BadInput(f"model {path}: no such file or directory")
    if path.suffix.lower() not in (".keras", ".h5", ".hdf5"):
        raise BadInput(f"model {path}: expected a Keras model (.keras, .h5) or a SavedModel "
                       f"directory; for a .tflite model use `simrun diff`")
    with quiet():
        try:
            model = tf.keras.models.load_model(str(path), compile=False)
        except Exception as err:
            raise BadInput(f"model {path}: cannot load Keras model ({_first(err)})") from None
    return keras_source(model, path, hashlib.sha256(path.read_bytes()).hexdigest())


def _first(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0][:300] if text else type(err).__name__


def _tree_sha256(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


# --- converting -------------------------------------------------------------------------
@dataclass
class Converted:
    scheme: str
    path: Path
    settings_path: Path
    settings: dict = field(default_factory=dict)
    seconds: float = 0.0


def convert(tf, source: FloatSource, scheme: Scheme, dataset: Dataset | None,
            out_path: Path) -> Converted:
    """Convert `source` under `scheme` to `out_path` (.tflite) and write its settings
    beside it (`out_path` with .json)."""
    start = time.perf_counter()
    if source.kind == "keras":
        conv = tf.lite.TFLiteConverter.from_keras_model(source.keras_model)
    else:
        conv = tf.lite.TFLiteConverter.from_saved_model(str(source.path), ["serving_default"])
    used: dict[str, object] = {}
    notes: list[str] = []
    if scheme.ops_set is not None:
        if dataset is None:
            raise BadInput(f"scheme {scheme.name} needs a representative dataset")
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = _representative(source, dataset)
        conv.target_spec.supported_ops = [getattr(tf.lite.OpsSet, scheme.ops_set)]
        conv.inference_input_type = conv.inference_output_type = getattr(tf, scheme.io_type)
        used.update(optimizations=["DEFAULT"], supported_ops=[scheme.ops_set],
                    inference_input_type=scheme.io_type, inference_output_type=scheme.io_type)
    if scheme.per_tensor:
        if not hasattr(conv, CONV_FLAG):
            raise ToolMissing(f"TensorFlow {tf.__version__} has no converter setting {CONV_FLAG}: "
                              f"per-tensor quantization needs TensorFlow >= 2.7")
        for flag in (CONV_FLAG, DENSE_FLAG):
            if hasattr(conv, flag):
                setattr(conv, flag, True)
                used[flag] = True
            else:
                notes.append(f"TensorFlow {tf.__version__} lacks {flag}: Dense layers keep "
                             f"per-channel weights")
    with quiet() as log:
        try:
            data = conv.convert()
        except Exception as err:  # the converter raises ConverterError, ValueError, RuntimeError, ...
            failure = _first(err)
        else:
            failure = None
    if failure is not None:
        detail = _last_line(log[0]) if log else ""
        raise BadInput(f"converting {source.path or source.name} ({scheme.name}) failed: {failure}"
                       + (f" [{detail}]" if detail and detail not in failure else ""))
    out_path = Path(out_path)
    _write_atomic(out_path, data)
    settings = {
        "scheme": scheme.name, "summary": scheme.summary,
        "model": out_path.name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
        "source": source.describe(),
        "tensorflow": tf.__version__, "keras": _keras_version(tf),
        "converter": used,
        "representative_dataset": dataset.describe() if dataset is not None else None,
        "result": _inspect(Model(data, out_path)),
        "notes": notes,
    }
    if scheme.per_tensor and settings["result"]["per_channel_weight_tensors"]:
        settings["notes"].append(f"{settings['result']['per_channel_weight_tensors']} weight "
                                 f"tensors still have per-channel scales")
    settings_path = out_path.with_suffix(".json")
    _write_atomic(settings_path, (json.dumps(settings, indent=1) + "\n").encode())
    return Converted(scheme.name, out_path, settings_path, settings, time.perf_counter() - start)


def _representative(source: FloatSource, dataset: Dataset):
    # A SavedModel's signature takes inputs by name; a Keras model in input order.
    names = [i.name for i in source.inputs]

    def gen():
        for sample in dataset.samples:
            yield dict(zip(names, sample)) if source.kind == "savedmodel" else list(sample)
    return gen


def _inspect(model: Model) -> dict:
    """What the converter produced: weight quantization and the I/O parameters."""
    per_channel = per_tensor = 0
    for sg in model.subgraphs:
        for op in sg.operators:
            if op.op_name not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED",
                                  "TRANSPOSE_CONV", "CONV_3D"):
                continue
            for index in op.inputs[1:2]:                # the weights
                t = sg.tensors[index]
                if t.quantization.scale:
                    per_channel += len(t.quantization.scale) > 1
                    per_tensor += len(t.quantization.scale) == 1

    def io(t):
        return {"name": t.name, "dtype": str(t.dtype), "shape": list(t.shape),
                "scale": list(t.quantization.scale), "zero_point": list(t.quantization.zero_point)}
    return {"per_channel_weight_tensors": per_channel, "per_tensor_weight_tensors": per_tensor,
            "operators": len(model.main.operators),
            "inputs": [io(t) for t in model.inputs], "outputs": [io(t) for t in model.outputs]}


def _keras_version(tf) -> str | None:
    try:
        return tf.keras.__version__
    except AttributeError:
        return None


def _write_atomic(path: Path, data: bytes) -> None:
    """An interrupted run leaves no half-written model behind."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    except OSError as err:
        raise BadInput(f"cannot write {path}: {err.strerror}") from None


def convert_all(tf, source: FloatSource, schemes: list[Scheme], dataset: Dataset | None,
                out_dir: Path, progress=None, include_float: bool = False) -> list[Converted]:
    """Convert under every scheme (and the float model first if asked) into out_dir as
    <name>_<scheme>.tflite; `progress(message)` hears each step."""
    done = []
    for scheme in ([FLOAT] if include_float else []) + list(schemes):
        path = Path(out_dir) / f"{source.name}_{scheme.name.replace('-', '_')}.tflite"
        if progress:
            progress(f"{source.name} {scheme.name}: converting")
        c = convert(tf, source, scheme, dataset, path)
        if progress:
            progress(f"{source.name} {scheme.name}: wrote {path} ({c.settings['bytes']} bytes) in {c.seconds:.1f} s")
        done.append(c)
    return done

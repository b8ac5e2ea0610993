"""Model inputs from files or seeded random data.

`load_inputs(model, specs, count=1)` returns a list of samples; a sample is one
array per model input, with that input's dtype and shape. Specs:

- `FILE.npy`: one array for a single-input model (a leading batch of N samples
  gives N samples);
- `FILE.npz`: one array per model input, named like the input tensor or
  positional (`arr_0`, `arr_1`, ...), each possibly with a leading batch of N;
- `FILE.png|jpg|jpeg|bmp`: an image for a single NHWC input with 1 or 3 channels,
  converted to grayscale/RGB, resized (bilinear) to H x W, and mapped onto the
  input's range: pixel 0..255 -> the whole quantized range (int8: pixel - 128, as
  TFLM's person-detection example feeds its camera), float inputs -> 0.0..1.0;
- `random` or `random:SEED`: `count` samples (default 1), uniformly over the dtype's
  whole range for integer inputs and over [-1, 1) for float inputs;
- `DIR`: a folder of the files above (.npy, .npz, images; other files are ignored),
  in file-name order (a stable order on every machine); `count` takes the first N
  samples, without reading the rest; each sample is named after its file.

Float arrays given for a quantized integer input are quantized with the input's
scale and zero point.

`load_sequences(model, specs, steps)` reads every spec as one *sequence* for
stateful (streaming) models: the leading axis of an .npy/.npz array is time, and
`random:SEED` gives `steps` steps. Each sequence runs on a fresh interpreter, its
steps in order, so state carries over from step to step but not between sequences.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .errors import BadInput
from .model import Model, TensorInfo

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
Sample = list[np.ndarray]


def load_inputs(model: Model, specs: list[str] | None, count: int | None = None) -> list[Sample]:
    return [sample for _, sample in load_named_inputs(model, specs, count)]


def load_named_inputs(model: Model, specs: list[str] | None,
                      count: int | None = None) -> list[tuple[str, Sample]]:
    """Like load_inputs, each sample with a name for reports ("random:0#1", "cat.png").
    `count`: samples per random spec (default 1), the first N samples of a folder (default all)."""
    if count is not None and count < 1:
        raise BadInput(f"--count must be at least 1, got {count}")
    _check_feedable(model)
    named: list[tuple[str, Sample]] = []
    for spec in specs or ["random:0"]:
        if Path(spec).is_dir():
            named.extend(_load_folder(model, Path(spec), count))
            continue
        samples = _load_spec(model, spec, count or 1)
        label = spec if re.fullmatch(r"random(:\d+)?", spec) else Path(spec).name
        if len(samples) == 1:
            named.append((label, samples[0]))
        else:
            named.extend((f"{label}#{i}", s) for i, s in enumerate(samples))
    # Reports key results by input name: the same file given twice gets a suffix.
    seen: dict[str, int] = {}
    unique = []
    for name, sample in named:
        seen[name] = seen.get(name, 0) + 1
        unique.append((name if seen[name] == 1 else f"{name}({seen[name]})", sample))
    return unique


def array_samples(model: Model, array: np.ndarray, where: str) -> list[Sample]:
    """An in-memory array read as a `.npy` file of it would be (a single-input model:
    one sample of the input's shape, or a leading batch of N)."""
    _check_feedable(model)
    return [[a] for a in _split_samples(_single_input(model, where), np.asarray(array), where)]


def load_sequences(model: Model, specs: list[str] | None,
                   steps: int | None = None) -> list[tuple[str, list[tuple[str, Sample]]]]:
    """[(sequence name, [(step name "walk.npy@3", sample), ...]), ...], one per spec."""
    if steps is not None and steps < 1:
        raise BadInput(f"--steps must be at least 1, got {steps}")
    _check_feedable(model)
    sequences = []
    specs = [str(f) for spec in specs or ["random:0"]
             for f in (folder_files(Path(spec)) if Path(spec).is_dir() else [spec])]
    for spec in specs:
        is_random = re.fullmatch(r"random(:\d+)?", spec) is not None
        if is_random and steps is None:
            raise BadInput(f"input {spec!r}: a random sequence needs --steps N (how many steps)")
        samples = _load_spec(model, spec, steps or 1)
        name = spec if is_random else Path(spec).name
        sequences.append((name, samples))
    # Reports key results by name: the same spec given twice gets a suffix.
    seen: dict[str, int] = {}
    named = []
    for name, samples in sequences:
        seen[name] = seen.get(name, 0) + 1
        name = name if seen[name] == 1 else f"{name}({seen[name]})"
        named.append((name, [(f"{name}@{k}", s) for k, s in enumerate(samples)]))
    return named


INPUT_SUFFIXES = (".npy", ".npz") + IMAGE_SUFFIXES


def folder_files(folder: Path) -> list[Path]:
    """The input files of a folder, sorted by name; a folder with none is an error."""
    try:
        files = sorted((f for f in folder.iterdir()
                        if f.is_file() and f.suffix.lower() in INPUT_SUFFIXES), key=lambda f: f.name)
    except OSError as err:
        raise BadInput(f"input {folder}: cannot list the folder ({err.strerror})") from None
    if not files:
        raise BadInput(f"input {folder}: the folder holds no input files "
                       f"({', '.join(INPUT_SUFFIXES)})")
    return files


def _load_folder(model: Model, folder: Path, count: int | None) -> list[tuple[str, Sample]]:
    named: list[tuple[str, Sample]] = []
    for path in folder_files(folder):
        samples = _load_spec(model, str(path), 1)
        if len(samples) == 1:
            named.append((path.name, samples[0]))
        else:
            named.extend((f"{path.name}#{i}", s) for i, s in enumerate(samples))
        if count is not None and len(named) >= count:
            return named[:count]
    return named


def preprocessing(model: Model, specs: list[str] | None) -> str | None:
    """How image files are turned into model inputs, in one sentence for the reports
    (None when no image is among the inputs: arrays are fed as given)."""
    files = [p for spec in specs or [] for p in
             (folder_files(Path(spec)) if Path(spec).is_dir() else [Path(spec)])]
    if not any(p.suffix.lower() in IMAGE_SUFFIXES for p in files) or len(model.inputs) != 1:
        return None
    info = model.inputs[0]
    if len(info.shape) != 4:
        return None
    _, height, width, channels = info.shape
    colour = "grayscale (ITU-R BT.601 luma)" if channels == 1 else "RGB"
    text = f"images: converted to {colour}, resized bilinearly (pixel centres) to {width}x{height}, "
    if info.dtype.kind == "f":
        return text + f"pixel 0..255 -> {info.dtype} 0.0..1.0"
    lim = np.iinfo(info.dtype)
    if info.quantization.scale:
        return text + (f"pixel 0..255 -> the whole {info.dtype} range {lim.min}..{lim.max} "
                       f"(input scale {info.quantization.scale[0]:.6g}, zero point "
                       f"{info.quantization.zero_point[0]})")
    return text + f"pixel 0..255 fed as {info.dtype}"


def _check_feedable(model: Model) -> None:
    if not model.inputs:
        raise BadInput("model has no inputs")
    for info in model.inputs:
        if info.dtype is None:
            raise BadInput(f"model input {info.name!r} has a type simrun cannot feed")


def _load_spec(model: Model, spec: str, count: int) -> list[Sample]:
    match = re.fullmatch(r"random(?::(\d+))?", spec)
    if match:
        seed = int(match.group(1) or 0)
        return random_samples(model.inputs, seed, count)
    path = Path(spec)
    if not path.is_file():
        raise BadInput(f"input {spec!r}: no such file or folder (or use random[:SEED])")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        info = _single_input(model, spec)
        return [[a] for a in _split_samples(info, _read_npy(path), spec)]
    if suffix == ".npz":
        return _load_npz(model, path)
    if suffix in IMAGE_SUFFIXES:
        info = _single_input(model, spec)
        return [[image_to_input(read_image(path), info, spec)]]
    raise BadInput(f"input {spec!r}: unknown kind; use .npy, .npz, an image "
                   f"({', '.join(IMAGE_SUFFIXES)}) or random[:SEED]")


# --- random -------------------------------------------------------------------
def random_samples(infos: list[TensorInfo], seed: int, count: int) -> list[Sample]:
    rng = np.random.default_rng(seed)
    return [[_random_array(rng, info) for info in infos] for _ in range(count)]


def _random_array(rng: np.random.Generator, info: TensorInfo) -> np.ndarray:
    shape = tuple(max(d, 1) for d in info.shape)  # -1 (dynamic) dims get 1
    dtype = info.dtype
    if dtype == np.bool_:
        return rng.integers(0, 2, shape).astype(np.bool_)
    if dtype.kind in "iu":
        lo, hi = np.iinfo(dtype).min, np.iinfo(dtype).max
        if dtype.itemsize > 2 and not info.quantization.scale:
            lo, hi = -128, 127       # an int32 index/shape input: keep values small
        return rng.integers(lo, hi, shape, endpoint=True).astype(dtype)
    return rng.uniform(-1.0, 1.0, shape).astype(dtype)


# --- arrays from files ----------------------------------------------------------
def _read_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise BadInput(f"input {path}: cannot read .npy ({err})") from None


def _load_npz(model: Model, path: Path) -> list[Sample]:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as err:
        raise BadInput(f"input {path}: cannot read .npz ({err})") from None
    per_input, used = [], []
    for pos, info in enumerate(model.inputs):
        for key in (info.name, f"arr_{pos}", str(pos)):
            if key and key in arrays:
                per_input.append(_split_samples(info, arrays[key], f"{path}[{key}]"))
                used.append(key)
                break
        else:
            raise BadInput(f"input {path}: no array for model input {pos} ({info.name!r}); "
                           f"arrays present: {', '.join(arrays) or 'none'}; name them after the "
                           f"input tensors or arr_0, arr_1, ...")
    unused = sorted(set(arrays) - set(used))
    if unused:
        # An array the model has no input for is a mistake (wrong file or names), not extra data.
        raise BadInput(f"input {path}: arrays {', '.join(unused)} match no model input; the model's "
                       f"inputs are {', '.join(repr(i.name) for i in model.inputs)} "
                       f"(or arr_0 .. arr_{len(model.inputs) - 1})")
    counts = {len(s) for s in per_input}
    if len(counts) != 1:
        raise BadInput(f"input {path}: arrays hold different numbers of samples {sorted(counts)}")
    return [list(sample) for sample in zip(*per_input)]


def _split_samples(info: TensorInfo, array: np.ndarray, where: str) -> list[np.ndarray]:
    """One sample of the input's shape, or a leading batch of N of them."""
    shape = tuple(info.shape)
    if array.shape == shape:
        batch = [array]
    elif shape and shape[0] == 1 and array.shape == shape[1:]:
        batch = [array.reshape(shape)]
    elif array.ndim == len(shape) + 1 and array.shape[1:] == shape:
        batch = list(array)
    elif shape and shape[0] == 1 and array.ndim == len(shape) and array.shape[1:] == shape[1:]:
        batch = [a.reshape(shape) for a in array]
    else:
        raise BadInput(f"input {where}: shape {array.shape} does not fit model input "
                       f"{info.name!r} of shape {shape} (or N samples of it)")
    if not batch:
        raise BadInput(f"input {where}: holds no samples")
    return [convert_dtype(a, info, where) for a in batch]


def convert_dtype(array: np.ndarray, info: TensorInfo, where: str) -> np.ndarray:
    dtype = info.dtype
    if array.dtype == dtype:
        return np.ascontiguousarray(array)
    if dtype.kind == "f":
        if array.dtype.kind not in "fiub":
            raise BadInput(f"input {where}: dtype {array.dtype} cannot feed a {dtype} input")
        return array.astype(dtype)
    if dtype.kind in "iu" and array.dtype.kind == "f":
        if not info.quantization.scale:
            raise BadInput(f"input {where}: float data for unquantized {dtype} input "
                           f"{info.name!r}; give {dtype} values")
        return quantize(array, info)
    if dtype.kind in "iu" and array.dtype.kind in "iub":
        lim = np.iinfo(dtype)
        if array.size and (array.min() < lim.min or array.max() > lim.max):
            raise BadInput(f"input {where}: values {array.min()}..{array.max()} do not fit "
                           f"input {info.name!r} of type {dtype}")
        return array.astype(dtype)
    raise BadInput(f"input {where}: dtype {array.dtype} cannot feed a {dtype} input")


def quantize(real: np.ndarray, info: TensorInfo) -> np.ndarray:
    q = info.quantization
    if len(q.scale) != 1:
        raise BadInput(f"input {info.name!r}: per-channel quantized inputs are not supported")
    lim = np.iinfo(info.dtype)
    values = np.round(real.astype(np.float64) / q.scale[0]) + q.zero_point[0]
    return np.clip(values, lim.min, lim.max).astype(info.dtype)


# --- images -------------------------------------------------------------------
def read_image(path: Path) -> np.ndarray:
    """H x W x C uint8 (C = 1, 3 or 4)."""
    try:
        from PIL import Image
        try:
            with Image.open(path) as im:
                im = im.convert("RGBA" if im.mode in ("RGBA", "LA", "P") else
                                "L" if im.mode in ("L", "I", "I;16", "1") else "RGB")
                pixels = np.asarray(im)
        except OSError as err:
            raise BadInput(f"input {path}: cannot read image ({err})") from None
    except ImportError:
        import matplotlib.image as mpimg
        try:
            pixels = mpimg.imread(path)
        except (OSError, ValueError, SyntaxError) as err:
            raise BadInput(f"input {path}: cannot read image ({err})") from None
        if pixels.dtype.kind == "f":    # matplotlib gives PNGs as 0..1 floats
            pixels = np.round(pixels * 255.0).astype(np.uint8)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    return pixels.astype(np.uint8)


def image_to_input(pixels: np.ndarray, info: TensorInfo, where: str) -> np.ndarray:
    shape = tuple(info.shape)
    if len(shape) != 4 or shape[0] != 1 or shape[3] not in (1, 3):
        raise BadInput(f"input {where}: an image needs a 1 x H x W x C input with C = 1 or 3; "
                       f"model input {info.name!r} has shape {shape}")
    _, height, width, channels = shape
    rgb = pixels[:, :, :3].astype(np.float64)
    if rgb.shape[2] == 1:
        rgb = np.repeat(rgb, 3, axis=2)
    if channels == 1:
        # ITU-R BT.601 luma, what PIL's convert("L") uses.
        image = (rgb @ np.array([0.299, 0.587, 0.114]))[:, :, None]
    else:
        image = rgb
    image = resize_bilinear(image, height, width)
    if info.dtype.kind == "f":
        return (image / 255.0).reshape(shape).astype(info.dtype)
    lim = np.iinfo(info.dtype)
    if info.quantization.scale:
        # Pixel 0..255 spans the whole quantized range; quantize that real range
        # with the input's own parameters (so scale/zero point are honoured).
        scale, zp = info.quantization.scale[0], info.quantization.zero_point[0]
        lo, hi = (lim.min - zp) * scale, (lim.max - zp) * scale
        real = lo + image / 255.0 * (hi - lo)
        return quantize(real, info).reshape(shape)
    if info.dtype == np.uint8:
        return np.round(image).astype(np.uint8).reshape(shape)
    raise BadInput(f"input {where}: cannot map image pixels onto unquantized {info.dtype} input")


def resize_bilinear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """H x W x C float -> height x width x C, sampling at pixel centres."""
    src_h, src_w = image.shape[:2]
    if (src_h, src_w) == (height, width):
        return image

    def axis(n_out: int, n_in: int):
        pos = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, pos - lo

    y0, y1, fy = axis(height, src_h)
    x0, x1, fx = axis(width, src_w)
    fy, fx = fy[:, None, None], fx[None, :, None]
    top = image[y0][:, x0] * (1 - fx) + image[y0][:, x1] * fx
    bottom = image[y1][:, x0] * (1 - fx) + image[y1][:, x1] * fx
    return top * (1 - fy) + bottom * fy


def _single_input(model: Model, spec: str) -> TensorInfo:
    if len(model.inputs) != 1:
        raise BadInput(f"input {spec!r}: the model has {len(model.inputs)} inputs; "
                       f"give an .npz with one array per input")
    return model.inputs[0]

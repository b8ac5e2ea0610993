"""Representative datasets: the float samples a converter calibrates activation ranges on.

`load_dataset(spec, inputs)` returns a Dataset: float32 samples, one array per
model input, each shaped like the input (batch 1). Specs:

- `FILE.npy`: a single-input model; the input's shape, or a leading batch of N;
- `FILE.npz`: one array per input, named like the input or `arr_0`, `arr_1`, ...;
- `DIR`: every image in it (.png/.jpg/.jpeg/.bmp, sorted by name) for a single
  N x H x W x C input (C = 1 or 3), resized bilinearly, pixels 0..255 mapped onto
  `value_range` (default 0..1: say what the model was trained on);
- `random` / `random:SEED`: `count` samples uniform over `value_range`, a smoke
  test only: calibration on noise says nothing about real accuracy.

The dataset's sha256 (over every sample's bytes) is recorded with each model
converted from it, so two conversions can be told to have used the same data.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import BadInput
from ..inputs import IMAGE_SUFFIXES, read_image, resize_bilinear

DEFAULT_COUNT = 16           # random samples: enough for stable min/max on small models


@dataclass(frozen=True)
class InputSpec:
    """One float input of the model to convert."""
    name: str
    shape: tuple[int, ...]   # batch dimension 1 (None / -1 dimensions become 1)


@dataclass
class Dataset:
    spec: str
    samples: list[list[np.ndarray]]

    @property
    def sha256(self) -> str:
        h = hashlib.sha256()
        for sample in self.samples:
            for a in sample:
                h.update(np.ascontiguousarray(a, dtype=np.float32).tobytes())
        return h.hexdigest()

    def describe(self) -> dict:
        return {"spec": self.spec, "samples": len(self.samples), "sha256": self.sha256}


def load_dataset(spec: str, inputs: list[InputSpec], *, count: int = DEFAULT_COUNT,
                 value_range: tuple[float, float] = (0.0, 1.0)) -> Dataset:
    if count < 1:
        raise BadInput(f"dataset sample count must be at least 1, got {count}")
    lo, hi = value_range
    if not lo < hi:
        raise BadInput(f"value range {lo},{hi}: the low end must be below the high end")
    match = re.fullmatch(r"random(?::(\d+))?", spec)
    if match:
        rng = np.random.default_rng(int(match.group(1) or 0))
        samples = [[rng.uniform(lo, hi, i.shape).astype(np.float32) for i in inputs]
                   for _ in range(count)]
        return Dataset(spec, samples)
    path = Path(spec)
    if path.is_dir():
        return Dataset(spec, _images(path, _single(inputs, spec), value_range))
    if not path.is_file():
        raise BadInput(f"dataset {spec!r}: no such file or directory (give .npy, .npz, a folder "
                       f"of images, or random[:SEED])")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        info = _single(inputs, spec)
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise BadInput(f"dataset {spec}: cannot read .npy ({err})") from None
        return Dataset(spec, [[a] for a in _split(array, info, spec)])
    if suffix == ".npz":
        return Dataset(spec, _npz(path, inputs))
    raise BadInput(f"dataset {spec!r}: unknown kind; give .npy, .npz, a folder of images or "
                   f"random[:SEED]")


def _single(inputs: list[InputSpec], spec: str) -> InputSpec:
    if len(inputs) != 1:
        raise BadInput(f"dataset {spec!r}: the model has {len(inputs)} inputs; give an .npz with "
                       f"one array per input ({', '.join(i.name for i in inputs)})")
    return inputs[0]


def _split(array: np.ndarray, info: InputSpec, where: str) -> list[np.ndarray]:
    """Samples of the input's shape from one sample or a leading batch of N."""
    if array.dtype.kind not in "fiub":
        raise BadInput(f"dataset {where}: dtype {array.dtype} is not numeric")
    shape = info.shape
    if array.shape == shape:
        batch = [array]
    elif array.shape == shape[1:]:
        batch = [array.reshape(shape)]
    elif array.ndim == len(shape) and array.shape[1:] == shape[1:]:
        batch = [a.reshape(shape) for a in array]
    elif array.ndim == len(shape) + 1 and array.shape[1:] == shape:
        batch = list(array)
    else:
        raise BadInput(f"dataset {where}: shape {array.shape} does not fit input {info.name!r} "
                       f"of shape {shape} (or N samples of {shape[1:]})")
    if not batch:
        raise BadInput(f"dataset {where}: holds no samples")
    return [np.ascontiguousarray(a, dtype=np.float32) for a in batch]


def _npz(path: Path, inputs: list[InputSpec]) -> list[list[np.ndarray]]:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as err:
        raise BadInput(f"dataset {path}: cannot read .npz ({err})") from None
    per_input = []
    for pos, info in enumerate(inputs):
        key = next((k for k in (info.name, f"arr_{pos}") if k in arrays), None)
        if key is None:
            raise BadInput(f"dataset {path}: no array for input {pos} ({info.name!r}); arrays "
                           f"present: {', '.join(arrays) or 'none'}")
        per_input.append(_split(arrays[key], info, f"{path}[{key}]"))
    if len({len(s) for s in per_input}) != 1:
        raise BadInput(f"dataset {path}: arrays hold different numbers of samples")
    return [list(s) for s in zip(*per_input)]


def _images(folder: Path, info: InputSpec, value_range) -> list[list[np.ndarray]]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise BadInput(f"dataset {folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in it")
    shape = info.shape
    if len(shape) != 4 or shape[3] not in (1, 3):
        raise BadInput(f"dataset {folder}: images need an N x H x W x C input with C = 1 or 3; "
                       f"input {info.name!r} has shape {shape}")
    lo, hi = value_range
    samples = []
    for f in files:
        rgb = read_image(f)[:, :, :3].astype(np.float64)
        if rgb.shape[2] == 1:
            rgb = np.repeat(rgb, 3, axis=2)
        if shape[3] == 1:   # ITU-R BT.601 luma, as simrun.inputs does for image inputs
            rgb = (rgb @ np.array([0.299, 0.587, 0.114]))[:, :, None]
        image = resize_bilinear(rgb, shape[1], shape[2])
        samples.append([(lo + image / 255.0 * (hi - lo)).reshape(shape).astype(np.float32)])
    return samples

"""The models `simrun example` writes: small, deterministic, and built to show the problem.

- detector: a YOLO-style detector on a 32x32 RGB image: a stride-2 convolution
  stack, a coarse 4x4 head, a nearest-neighbour upsample concatenated with the 8x8
  features into a fine 8x8 head (3 anchors x (4 box + 1 objectness + 1 class) = 18
  channels per cell, LOGISTIC on both heads), and a global-pool + Dense + LOGISTIC
  class head. Its weights are drawn with per-output-channel magnitudes spread over
  a factor of 40 (as folded batch norm leaves them): per-channel quantization keeps
  the small channels, per-tensor quantization loses them, and the wide
  accumulations put many requantized values near a rounding boundary, where
  implementations that round differently disagree.
- kws: a keyword-spotting-sized DS-CNN on 49 frames x 10 MFCCs (convolution, two
  depthwise-separable blocks, average pool, Dense, SOFTMAX over 12 classes).

Weights come from a seeded numpy generator (not Keras initializers), the
calibration data too; Keras' name counters are reset before each build so that
tensor names, and with them the model bytes, do not depend on what ran before.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .convert import FLOAT, SCHEMES, convert_all, keras_source, quiet
from .dataset import Dataset

DETECTOR_INPUT = (1, 32, 32, 3)
KWS_INPUT = (1, 49, 10, 1)
CALIBRATION_SAMPLES = 16


def build_detector(tf, seed: int = 0):
    L = tf.keras.layers
    tf.keras.backend.clear_session()
    image = tf.keras.Input(DETECTOR_INPUT[1:], batch_size=1, name="image")
    c1 = L.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="stem")(image)
    c2 = L.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="c2")(c1)
    c3 = L.Conv2D(32, 3, strides=2, padding="same", activation="relu", name="c3")(c2)
    coarse = L.Conv2D(18, 1, activation="sigmoid", name="head_coarse")(c3)
    up = L.Resizing(8, 8, interpolation="nearest", name="upsample")(c3)
    merged = L.Concatenate(name="concat")([up, c2])
    c4 = L.Conv2D(16, 3, padding="same", activation="relu", name="c4")(merged)
    fine = L.Conv2D(18, 1, activation="sigmoid", name="head_fine")(c4)
    pooled = L.GlobalAveragePooling2D(name="pool")(c3)
    classes = L.Dense(4, activation="sigmoid", name="classes")(pooled)
    model = tf.keras.Model(image, [fine, coarse, classes], name="detector")
    _seeded_weights(model, seed)
    return model


def build_kws(tf, seed: int = 0):
    L = tf.keras.layers
    tf.keras.backend.clear_session()
    x = features = tf.keras.Input(KWS_INPUT[1:], batch_size=1, name="mfcc")
    x = L.Conv2D(24, (10, 4), strides=2, padding="same", activation="relu", name="conv")(x)
    for i in (1, 2):
        x = L.DepthwiseConv2D(3, padding="same", activation="relu", name=f"dw{i}")(x)
        x = L.Conv2D(24, 1, activation="relu", name=f"pw{i}")(x)
    x = L.AveragePooling2D((25, 5), name="pool")(x)
    x = L.Reshape((24,), name="flatten")(x)     # static shape: one RESHAPE, no SHAPE/PACK
    x = L.Dense(12, name="logits")(x)
    scores = L.Softmax(name="scores")(x)
    model = tf.keras.Model(features, scores, name="kws")
    _seeded_weights(model, seed)
    return model


def _seeded_weights(model, seed: int) -> None:
    """He-style weights whose per-output-channel scale spans 0.05..2 (log-uniform)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        new = []
        for w in weights:
            if w.ndim > 1:
                # Depthwise kernels are (h, w, channels, 1): their channels are axis 2.
                depthwise = w.ndim == 4 and w.shape[-1] == 1 and w.shape[2] > 1
                fan_in = np.prod(w.shape[:2]) if depthwise else np.prod(w.shape[:-1])
                channels = w.shape[2] if depthwise else w.shape[-1]
                spread = np.exp(rng.uniform(np.log(0.05), np.log(2.0), channels))
                spread = spread.reshape((1, 1, channels, 1) if depthwise else (1,) * (w.ndim - 1) + (-1,))
                new.append((rng.standard_normal(w.shape) * np.sqrt(2.0 / fan_in) * spread)
                           .astype(np.float32))
            else:
                new.append((rng.standard_normal(w.shape) * 0.1).astype(np.float32))
        layer.set_weights(new)


def detector_dataset(seed: int = 1, count: int = CALIBRATION_SAMPLES) -> Dataset:
    """Smooth random images in 0..1 (a blurred noise field plus a bright square),
    closer to what a camera delivers than white noise."""
    rng = np.random.default_rng(seed)
    samples = []
    _, h, w, c = DETECTOR_INPUT
    for _ in range(count):
        coarse = rng.uniform(0.0, 1.0, (h // 4, w // 4, c))
        image = np.kron(coarse, np.ones((4, 4, 1))) * 0.6
        y, x, size = rng.integers(0, h - 8), rng.integers(0, w - 8), rng.integers(4, 9)
        image[y:y + size, x:x + size, :] = rng.uniform(0.7, 1.0, c)
        image += rng.normal(0.0, 0.03, image.shape)
        samples.append([np.clip(image, 0.0, 1.0).reshape(DETECTOR_INPUT).astype(np.float32)])
    return Dataset(f"detector calibration (seed {seed})", samples)


def kws_dataset(seed: int = 2, count: int = CALIBRATION_SAMPLES) -> Dataset:
    """MFCC-like features: per-coefficient offsets and scales, smooth over time."""
    rng = np.random.default_rng(seed)
    _, frames, coeffs, _ = KWS_INPUT
    samples = []
    for _ in range(count):
        base = rng.normal(0.0, 1.0, (1, coeffs)) * np.linspace(3.0, 0.5, coeffs)
        drift = np.cumsum(rng.normal(0.0, 0.3, (frames, coeffs)), axis=0)
        samples.append([(base + drift).reshape(KWS_INPUT).astype(np.float32)])
    return Dataset(f"kws calibration (seed {seed})", samples)


def dataset_array(dataset: Dataset) -> np.ndarray:
    """The samples of a single-input dataset as one N x ... array (what `simrun quantize`
    takes back as a .npy)."""
    return np.concatenate([s[0] for s in dataset.samples], axis=0)


def write_examples(tf, out_dir, progress=None) -> list:
    """Write the example models into out_dir; returns the Converted models.

    Also writes each float model as .keras and its calibration data as .npy, so
    `simrun quantize` / `simrun ab` can start from them (the .keras files hold
    a save date and are not byte-reproducible; the .tflite files are)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    converted = []
    jobs = (("detector", build_detector, detector_dataset, [FLOAT, SCHEMES["per-channel"], SCHEMES["per-tensor"]]),
            ("kws", build_kws, kws_dataset, [SCHEMES["per-channel"]]))
    for name, build, data, schemes in jobs:
        model = build(tf)
        dataset = data()
        np.save(out_dir / f"{name}_calibration.npy", dataset_array(dataset))
        with quiet():
            model.save(out_dir / f"{name}.keras")
        converted += convert_all(tf, keras_source(model), schemes, dataset, out_dir, progress)
    return converted

"""Small models of our own, built with TensorFlow at test time (never committed as files).

`logistic_only_int8`: one int8 LOGISTIC, to compare LOGISTIC implementations alone.

`conv_logistic_int8`: three Conv2D, a DepthwiseConv2D, a Dense + sigmoid
(LOGISTIC) head, int8 full-integer quantization from a representative dataset,
so weights are quantized per channel.

What makes `tflite-optimized` differ from `tflite-reference` here: the BUILTIN
resolver applies LiteRT's default XNNPACK delegate, whose int8 requantization
rounds once (fp32 multiplier), while the reference kernels (and TFLM's) round
twice (gemmlowp-style fixed point): CONV_2D / DEPTHWISE_CONV_2D /
FULLY_CONNECTED outputs differ by 1-2 steps. LiteRT's own optimized kernels
(BUILTIN_WITHOUT_DEFAULT_DELEGATES) matched the reference exactly on this model
(ai-edge-litert 2.3). A 64-wide sigmoid head made TFLM's output differ from
LiteRT's reference in 1 of 192 values, so the head stays 1 wide. The LOGISTIC
itself is not the cause (`logistic_only_int8`: equal on every int8 code); in a
1024-wide Dense + sigmoid, TFLM's FULLY_CONNECTED was one step off in 1 value
and the sigmoid's steep middle turned that into 3-4 steps.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

INPUT_SHAPE = (24, 24, 3)


def conv_logistic_int8(out_dir: Path, seed: int = 7) -> Path:
    """Build (once per directory) and return the .tflite path."""
    path = Path(out_dir) / f"conv_logistic_int8_s{seed}.tflite"
    if path.exists():
        return path
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf  # slow (~7 s): only here, only when a test needs the model

    tf.keras.utils.set_random_seed(seed)
    layers = tf.keras.layers
    # Wide layers with large random weights make many requantized values land
    # near a rounding boundary.
    init = tf.keras.initializers.RandomNormal(stddev=0.6, seed=seed)
    model = tf.keras.Sequential([
        tf.keras.Input(shape=INPUT_SHAPE),
        layers.Conv2D(16, 3, padding="same", activation="relu", kernel_initializer=init),
        layers.Conv2D(32, 3, strides=2, padding="same", activation="relu", kernel_initializer=init),
        layers.DepthwiseConv2D(3, padding="same", activation="relu", depthwise_initializer=init),
        layers.Conv2D(32, 1, activation="relu", kernel_initializer=init),
        layers.Flatten(),
        layers.Dense(1, activation="sigmoid", kernel_initializer=init),
    ])
    rng = np.random.default_rng(seed)

    def representative():
        for _ in range(32):
            yield [rng.uniform(-1.0, 1.0, (1, *INPUT_SHAPE)).astype(np.float32)]

    return _save_int8(tf, model, representative, path)


def logistic_only_int8(out_dir: Path, width: int = 1024, seed: int = 3) -> Path:
    """A single int8 LOGISTIC over `width` values: random int8 input covers every input
    code, so any disagreement between two LOGISTIC implementations shows."""
    path = Path(out_dir) / f"logistic_only_int8_w{width}_s{seed}.tflite"
    if path.exists():
        return path
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    model = tf.keras.Sequential([tf.keras.Input(shape=(width,)),
                                 tf.keras.layers.Activation("sigmoid")])
    rng = np.random.default_rng(seed)

    def representative():
        for _ in range(32):
            yield [rng.uniform(-8.0, 8.0, (1, width)).astype(np.float32)]

    return _save_int8(tf, model, representative, path)


def large_int8(out_dir: Path, seed: int = 5) -> Path:
    """A model that fits only a board with a large bulk region (issue 10): an int8 Dense
    2048 -> 4096 (8 MiB of weights) on one input, and two element-wise operators on a
    16 MiB second input, so the arena needs at least 32 MiB (an operator's 16 MiB input
    and output are live together)."""
    path = Path(out_dir) / f"large_int8_s{seed}.tflite"
    if path.exists():
        return path
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    layers = tf.keras.layers
    small = tf.keras.Input(shape=(2048,))
    big = tf.keras.Input(shape=(4096, 4096))
    hidden = layers.Dense(4096, activation="relu")(small)
    head = layers.Dense(16)(hidden)
    scaled = layers.Rescaling(0.5, offset=0.25)(big)
    wide = layers.ReLU()(scaled)
    model = tf.keras.Model([small, big], [head, wide])
    rng = np.random.default_rng(seed)

    def representative():
        for _ in range(2):
            yield [rng.uniform(-1.0, 1.0, (1, 2048)).astype(np.float32),
                   rng.uniform(-1.0, 1.0, (1, 4096, 4096)).astype(np.float32)]

    return _save_int8(tf, model, representative, path)


def two_conv_int8(out_dir: Path, seed: int = 3) -> Path:
    """Two int8 CONV_2D (8x8x4 -> 8 channels -> 8 channels, 3x3): small enough that a test can
    rewrite the first one's weights (`with_constant`) and check the result in milliseconds."""
    path = Path(out_dir) / f"two_conv_int8_s{seed}.tflite"
    if path.exists():
        return path
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    layers = tf.keras.layers
    model = tf.keras.Sequential([tf.keras.Input(shape=(8, 8, 4)),
                                 layers.Conv2D(8, 3, padding="same"),
                                 layers.Conv2D(8, 3, padding="same", activation="relu")])
    rng = np.random.default_rng(seed)

    def representative():
        for _ in range(16):
            yield [rng.uniform(-1.0, 1.0, (1, 8, 8, 4)).astype(np.float32)]

    return _save_int8(tf, model, representative, path)


def constant_span(data: bytes, subgraph: int, tensor: int) -> tuple[int, int]:
    """(offset, length) in the .tflite bytes of a constant tensor's buffer (weights, bias)."""
    from ai_edge_litert import schema_py_generated as schema
    m = schema.Model.GetRootAs(data, 0)
    buf = m.Buffers(m.Subgraphs(subgraph).Tensors(tensor).Buffer())
    if not buf.DataLength():
        raise ValueError(f"tensor {subgraph}:{tensor} has no data in the flatbuffer")
    return buf._tab.Vector(buf._tab.Offset(4)), buf.DataLength()


def with_constant(data: bytes, subgraph: int, tensor: int, values: np.ndarray) -> bytes:
    """The model bytes with a constant tensor's buffer rewritten in place (same dtype and size)."""
    start, length = constant_span(data, subgraph, tensor)
    raw = np.ascontiguousarray(values).tobytes()
    if len(raw) != length:
        raise ValueError(f"tensor {subgraph}:{tensor} holds {length} bytes, got {len(raw)}")
    out = bytearray(data)
    out[start:start + length] = raw
    return bytes(out)


def _save_int8(tf, model, representative, path: Path) -> Path:
    """Full-integer int8 conversion (int8 input and output)."""
    # A Keras model, or a converter already set up (the streaming model's).
    conv = model if hasattr(model, "convert") else tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return _write(path, conv.convert())


STREAM_FRAMES, STREAM_FEATURES, STREAM_HISTORY = 3, 40, 6


def streaming_int8(out_dir: Path, seed: int = 1) -> Path:
    """A streaming keyword-spotting-like model that keeps state in a resource variable:
    each invoke takes [1, 3, 40] new frames, convolves them with the 6 frames before
    (a tf.Variable ring buffer) and stores the newest 6 back. Converted with resource
    variables enabled and variable quantization, so the int8 model has two subgraphs:
    CALL_ONCE initialises the variable (subgraph 1: VAR_HANDLE, ASSIGN_VARIABLE), and
    the main subgraph runs VAR_HANDLE / READ_VARIABLE / ... / ASSIGN_VARIABLE."""
    path = Path(out_dir) / f"streaming_int8_s{seed}.tflite"
    if path.exists():
        return path
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    frames, features, history = STREAM_FRAMES, STREAM_FEATURES, STREAM_HISTORY
    rng = np.random.default_rng(seed)

    class Streaming(tf.Module):
        def __init__(self):
            super().__init__()
            self.state = tf.Variable(tf.zeros((1, history, features)), trainable=False)
            self.conv = tf.constant(rng.normal(0, 0.3, (3, features, 16)).astype(np.float32))
            self.bias = tf.constant(rng.normal(0, 0.1, (16,)).astype(np.float32))
            self.dense = tf.constant(rng.normal(0, 0.3, (16 * (history + frames - 2), 4))
                                     .astype(np.float32))

        @tf.function(input_signature=[tf.TensorSpec((1, frames, features), tf.float32)])
        def __call__(self, x):
            window = tf.concat([self.state, x], axis=1)
            self.state.assign(window[:, frames:, :])
            h = tf.nn.relu(tf.nn.conv1d(window, self.conv, 1, "VALID") + self.bias)
            return tf.matmul(tf.reshape(h, (1, -1)), self.dense)

    module = Streaming()
    conv = tf.lite.TFLiteConverter.from_concrete_functions(
        [module.__call__.get_concrete_function()], module)
    conv.experimental_enable_resource_variables = True
    conv._experimental_variable_quantization = True     # int8 state, as streaming KWS models keep it

    def representative():
        for _ in range(32):
            yield [rng.uniform(-1.0, 1.0, (1, frames, features)).astype(np.float32)]

    return _save_int8(tf, conv, representative, path)


def streaming_state_int8(out_dir: Path, seed: int = 2) -> Path:
    """A streaming model shaped like microWakeWord's: its state holds computed activations,
    not input frames. Each invoke takes [1, 3, 40] new frames; a pointwise layer makes 16
    features per frame, which a first ring buffer (4 frames) keeps for a conv over 7 frames;
    that conv's 5 outputs feed a second ring buffer (2 frames) and a second conv, then a dense
    head. Backends that requantize differently (tflite-optimized rounds once) store different
    values, which the next step's READ_VARIABLE returns: error carried by state."""
    path = Path(out_dir) / f"streaming_state_int8_s{seed}.tflite"
    if path.exists():
        return path
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    frames, features, width = STREAM_FRAMES, STREAM_FEATURES, 16
    rng = np.random.default_rng(seed)

    def weights(*shape, scale=0.3):
        return tf.constant(rng.normal(0, scale, shape).astype(np.float32))

    class Streaming(tf.Module):
        def __init__(self):
            super().__init__()
            self.state1 = tf.Variable(tf.zeros((1, 4, width)), trainable=False)
            self.state2 = tf.Variable(tf.zeros((1, 2, width)), trainable=False)
            self.pw = weights(features, width)
            self.c1, self.c1_b = weights(3, width, width), weights(width, scale=0.1)
            self.c2, self.c2_b = weights(3, width, width), weights(width, scale=0.1)
            self.dense = weights(width * 5, 4)

        @tf.function(input_signature=[tf.TensorSpec((1, frames, features), tf.float32)])
        def __call__(self, x):
            # Per frame a dense layer without bias (FULLY_CONNECTED): host TFLM and TFLite round it apart.
            h = tf.nn.relu(tf.reshape(tf.matmul(tf.reshape(x, (frames, features)), self.pw),
                                      (1, frames, width)))                                # [1, 3, 16]
            w1 = tf.concat([self.state1, h], axis=1)                                     # [1, 7, 16]
            self.state1.assign(w1[:, frames:, :])
            h = tf.nn.relu(tf.nn.conv1d(w1, self.c1, 1, "VALID") + self.c1_b)           # [1, 5, 16]
            w2 = tf.concat([self.state2, h], axis=1)                                     # [1, 7, 16]
            self.state2.assign(w2[:, 5:, :])
            h = tf.nn.relu(tf.nn.conv1d(w2, self.c2, 1, "VALID") + self.c2_b)           # [1, 5, 16]
            return tf.matmul(tf.reshape(h, (1, -1)), self.dense)

    module = Streaming()
    conv = tf.lite.TFLiteConverter.from_concrete_functions(
        [module.__call__.get_concrete_function()], module)
    conv.experimental_enable_resource_variables = True
    conv._experimental_variable_quantization = True

    def representative():
        for _ in range(32):
            yield [rng.uniform(-1.0, 1.0, (1, frames, features)).astype(np.float32)]

    return _save_int8(tf, conv, representative, path)


def float_mix(out_dir: Path, seed: int = 3) -> Path:
    """A small float32 model with the operators LiteRT's optimized built-in kernels compute
    apart from its reference ones (FULLY_CONNECTED, TANH, LOGISTIC, SOFTMAX) and XNNPACK
    apart from both (CONV_2D, DEPTHWISE_CONV_2D, AVERAGE_POOL_2D)."""
    path = Path(out_dir) / f"float_mix_s{seed}.tflite"
    if path.exists():
        return path
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    layers = tf.keras.layers
    image = tf.keras.Input(shape=(16, 16, 3), batch_size=1)
    x = layers.Conv2D(8, 3, padding="same", activation="relu")(image)
    x = layers.Activation("tanh")(layers.DepthwiseConv2D(3, padding="same")(x))
    x = layers.Activation("sigmoid")(layers.Conv2D(16, 3, strides=2, padding="same")(x))
    x = layers.Flatten()(layers.AveragePooling2D(2)(x))
    x = layers.Dense(10)(layers.Activation("relu")(layers.Dense(32)(x)))
    model = tf.keras.Model(image, layers.Softmax()(x))
    return _write(path, tf.lite.TFLiteConverter.from_keras_model(model).convert())


DETECT_SIZE, DETECT_GRID, DETECT_CLASSES = 32, 8, 3


def yolo_detector_int8(out_dir: Path, seed: int = 4) -> Path:
    """A YOLOv8-shaped int8 detector on a 32x32x3 image: Conv2D stem with SiLU (LOGISTIC x MUL),
    a stride-4 8x8 grid, and a head whose one output is [1, 4+nc, N] (N = 64 anchors, nc = 3):
    per anchor a box centre (grid cell + sigmoid offset) and size (2-12 px), normalized to
    0..1, then the class scores (sigmoid). Outputs in 0..1 share one int8 scale, as an
    exported YOLOv8 head's do after normalization. Under tflite-optimized (XNNPACK) boxes move
    by 1 output step (0.125 px) and a score near 0.6 can cross that cutoff."""
    path = Path(out_dir) / f"yolo_detector_int8_s{seed}.tflite"
    if path.exists():
        return path
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    layers = tf.keras.layers
    g, nc = DETECT_GRID, DETECT_CLASSES
    init = tf.keras.initializers.RandomNormal(stddev=0.5, seed=seed)
    image = tf.keras.Input(shape=(DETECT_SIZE, DETECT_SIZE, 3), batch_size=1)
    x = layers.Conv2D(16, 3, strides=2, padding="same", kernel_initializer=init)(image)
    x = layers.Multiply()([x, layers.Activation("sigmoid")(x)])          # SiLU as the converter keeps it
    x = layers.Conv2D(24, 3, strides=2, padding="same", kernel_initializer=init)(x)
    x = layers.Multiply()([x, layers.Activation("sigmoid")(x)])
    head_init = tf.keras.initializers.RandomNormal(stddev=0.15, seed=seed)
    head = layers.Conv2D(4 + nc, 1, kernel_initializer=head_init,
                         bias_initializer=tf.keras.initializers.Constant(-1.0))(x)   # [1, 8, 8, 4+nc]
    head = layers.Reshape((g * g, 4 + nc))(head)
    ys, xs = np.meshgrid(np.arange(g), np.arange(g), indexing="ij")
    cells = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32)[None]   # [1, N, 2]
    centre = layers.Lambda(lambda t: (t + cells) / g)(layers.Activation("sigmoid")(head[:, :, 0:2]))
    # Sizes from 2 to 12 px: never a zero-area box after int8 quantization.
    size = layers.Lambda(lambda t: 0.06 + t * 0.3)(layers.Activation("sigmoid")(head[:, :, 2:4]))
    scores = layers.Activation("sigmoid")(layers.Lambda(lambda t: t - 1.0)(head[:, :, 4:]))
    out = layers.Permute((2, 1))(layers.Concatenate(axis=2)([centre, size, scores]))   # [1, 4+nc, N]
    model = tf.keras.Model(image, out)
    rng = np.random.default_rng(seed)

    def representative():
        for _ in range(32):
            yield [rng.uniform(-1.0, 1.0, (1, DETECT_SIZE, DETECT_SIZE, 3)).astype(np.float32)]

    return _save_int8(tf, model, representative, path)


def hybrid_conv(out_dir: Path, seed: int = 5) -> Path:
    """Float activations, int8 weights (TensorFlow's dynamic-range quantization), as in
    MLPerf Tiny's hybrid submissions: a CONV_2D whose filter (16x3x3x8 = 1152 values)
    is large enough for the converter to quantize. TFLM refuses such models in Prepare."""
    path = Path(out_dir) / f"hybrid_conv_s{seed}.tflite"
    if path.exists():
        return path
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    model = tf.keras.Sequential([tf.keras.Input(shape=(12, 12, 8)),
                                 tf.keras.layers.Conv2D(16, 3, activation="relu")])
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]     # no representative data: hybrid
    return _write(path, conv.convert())


def _write(path: Path, data: bytes) -> Path:
    """Atomically, so an interrupted run never leaves a half-written file that
    `path.exists()` takes as built."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path

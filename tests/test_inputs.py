"""simrun.inputs: files, images and seeded random data become model inputs of the right
dtype and shape, and unusable inputs give a BadInput that says why."""
from __future__ import annotations

import numpy as np
import pytest

from simrun.capture import Quantization
from simrun.errors import BadInput
from simrun.inputs import (image_to_input, load_inputs, load_named_inputs, load_sequences, preprocessing,
                           resize_bilinear)
from simrun.model import Model, TensorInfo


@pytest.fixture(scope="module")
def person(models_dir) -> Model:
    return Model.from_file(models_dir / "person_detect.tflite")    # int8 1x96x96x1, zp -1


@pytest.fixture(scope="module")
def keyword(models_dir) -> Model:
    return Model.from_file(models_dir / "keyword_scrambled_8bit.tflite")   # int16 1x96


@pytest.fixture(scope="module")
def hello_float(models_dir) -> Model:
    return Model.from_file(models_dir / "hello_world_float.tflite")   # float32 1x1


def test_random_is_seeded_and_spans_the_int8_range(person):
    a = load_inputs(person, ["random:3"], count=2)
    b = load_inputs(person, ["random:3"], count=2)
    c = load_inputs(person, ["random:4"], count=1)
    assert len(a) == 2 and all(len(s) == 1 for s in a)
    x = a[0][0]
    assert x.dtype == np.int8 and x.shape == (1, 96, 96, 1)
    assert x.min() == -128 and x.max() == 127
    assert np.array_equal(a[0][0], b[0][0]) and np.array_equal(a[1][0], b[1][0])
    assert not np.array_equal(a[0][0], a[1][0])
    assert not np.array_equal(a[0][0], c[0][0])


def test_random_int16_and_float_ranges(keyword, hello_float):
    k = load_inputs(keyword, ["random"], count=1)[0][0]
    assert k.dtype == np.int16 and k.shape == (1, 96)
    assert k.min() < -20000 and k.max() > 20000
    f = load_inputs(hello_float, ["random:1"], count=50)
    values = np.concatenate([s[0].ravel() for s in f])
    assert f[0][0].dtype == np.float32 and values.min() >= -1.0 and values.max() < 1.0


def test_default_is_one_random_sample_and_names(person):
    assert len(load_inputs(person, None)) == 1
    names = [n for n, _ in load_named_inputs(person, ["random:1", "random:1"], count=2)]
    assert names == ["random:1#0", "random:1#1", "random:1#0(2)", "random:1#1(2)"]


def test_npy_exact_unbatched_and_batched(person, tmp_path):
    one = np.arange(96 * 96, dtype=np.int64).reshape(1, 96, 96, 1) % 200 - 100
    np.save(tmp_path / "one.npy", one)
    np.save(tmp_path / "nobatch.npy", one[0])
    np.save(tmp_path / "batch.npy", np.concatenate([one, -one]))
    got = load_inputs(person, [str(tmp_path / "one.npy"), str(tmp_path / "nobatch.npy"),
                               str(tmp_path / "batch.npy")])
    assert len(got) == 4
    assert all(s[0].dtype == np.int8 and s[0].shape == (1, 96, 96, 1) for s in got)
    assert np.array_equal(got[0][0], one) and np.array_equal(got[1][0], one)
    assert np.array_equal(got[3][0], -one)


def test_npy_float_data_is_quantized_with_the_input_parameters(person, tmp_path):
    real = np.full((1, 96, 96, 1), 0.5, dtype=np.float32)
    real[0, 0, 0, 0] = 5.0                                   # beyond the range: clipped
    np.save(tmp_path / "real.npy", real)
    x = load_inputs(person, [str(tmp_path / "real.npy")])[0][0]
    scale, zp = person.inputs[0].quantization.scale[0], person.inputs[0].quantization.zero_point[0]
    assert x[0, 1, 1, 0] == round(0.5 / scale) + zp
    assert x[0, 0, 0, 0] == 127


def test_npy_errors_say_what_is_wrong(person, tmp_path):
    np.save(tmp_path / "shape.npy", np.zeros((1, 32, 32, 1), np.int8))
    with pytest.raises(BadInput, match=r"shape \(1, 32, 32, 1\) does not fit .*\(1, 96, 96, 1\)"):
        load_inputs(person, [str(tmp_path / "shape.npy")])
    np.save(tmp_path / "big.npy", np.full((1, 96, 96, 1), 300, np.int32))
    with pytest.raises(BadInput, match=r"values 300\.\.300 do not fit .*int8"):
        load_inputs(person, [str(tmp_path / "big.npy")])
    with pytest.raises(BadInput, match="no such file"):
        load_inputs(person, [str(tmp_path / "missing.npy")])
    (tmp_path / "x.txt").write_text("1 2 3")
    with pytest.raises(BadInput, match="unknown kind"):
        load_inputs(person, [str(tmp_path / "x.txt")])
    (tmp_path / "broken.npy").write_bytes(b"not numpy")
    with pytest.raises(BadInput, match="cannot read .npy"):
        load_inputs(person, [str(tmp_path / "broken.npy")])
    with pytest.raises(BadInput, match="--count"):
        load_inputs(person, ["random"], count=0)


def test_npz_by_name_position_and_missing(person, tmp_path):
    name = person.inputs[0].name
    data = np.ones((3, 1, 96, 96, 1), np.int8)
    np.savez(tmp_path / "named.npz", **{name: data})
    np.savez(tmp_path / "positional.npz", data[:2])          # arr_0
    np.savez(tmp_path / "other.npz", something=data)
    assert len(load_inputs(person, [str(tmp_path / "named.npz")])) == 3
    assert len(load_inputs(person, [str(tmp_path / "positional.npz")])) == 2
    with pytest.raises(BadInput, match="no array for model input 0 .*arrays present: something"):
        load_inputs(person, [str(tmp_path / "other.npz")])


def _png(path, pixels):
    from PIL import Image
    Image.fromarray(pixels).save(path)
    return str(path)


def test_image_grayscale_resized_and_quantized(person, tmp_path):
    pytest.importorskip("PIL")
    black = _png(tmp_path / "black.png", np.zeros((120, 160), np.uint8))
    white = _png(tmp_path / "white.png", np.full((50, 40, 3), 255, np.uint8))
    mid = _png(tmp_path / "mid.png", np.full((96, 96, 3), 200, np.uint8))
    got = load_inputs(person, [black, white, mid])
    assert all(s[0].shape == (1, 96, 96, 1) and s[0].dtype == np.int8 for s in got)
    # int8 with the whole range: pixel p -> p - 128 (what TFLM's person detection feeds).
    assert (got[0][0] == -128).all() and (got[1][0] == 127).all() and (got[2][0] == 72).all()


def test_a_folder_gives_its_files_in_name_order_and_count_takes_the_first(person, tmp_path):
    pytest.importorskip("PIL")
    folder = tmp_path / "images"
    folder.mkdir()
    for name, value in (("b.png", 10), ("a.png", 200), ("c.png", 30)):
        _png(folder / name, np.full((40, 30), value, np.uint8))
    np.save(folder / "d.npy", np.zeros((2, 1, 96, 96, 1), np.int8))    # a batch of two samples
    (folder / "notes.txt").write_text("not an input")
    named = load_named_inputs(person, [str(folder)])
    assert [n for n, _ in named] == ["a.png", "b.png", "c.png", "d.npy#0", "d.npy#1"]
    assert named[0][1][0].flat[0] == 200 - 128 and named[1][1][0].flat[0] == 10 - 128
    assert [n for n, _ in load_named_inputs(person, [str(folder)], count=2)] == ["a.png", "b.png"]
    assert len(load_inputs(person, ["random:1"])) == 1          # random still defaults to one
    text = preprocessing(person, [str(folder)])
    assert "grayscale" in text and "96x96" in text and "-128..127" in text
    assert preprocessing(person, ["random:1"]) is None
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BadInput, match="holds no input files"):
        load_inputs(person, [str(empty)])


def test_a_folder_of_sequences_gives_one_sequence_per_file(keyword, tmp_path):
    folder = tmp_path / "utterances"
    folder.mkdir()
    for name, steps in (("b.npy", 3), ("a.npy", 2)):
        np.save(folder / name, np.zeros((steps, 1, 96), np.int16))
    seqs = load_sequences(keyword, [str(folder)])
    assert [(name, len(steps)) for name, steps in seqs] == [("a.npy", 2), ("b.npy", 3)]


def test_image_rgb_input_and_float_input():
    info = TensorInfo(0, "rgb", np.dtype(np.float32), (1, 4, 4, 3), Quantization(), False)
    pixels = np.zeros((8, 8, 3), np.uint8)
    pixels[:, :, 0] = 255
    x = image_to_input(pixels, info, "test")
    assert x.shape == (1, 4, 4, 3) and x.dtype == np.float32
    assert np.allclose(x[..., 0], 1.0) and np.allclose(x[..., 1:], 0.0)


def test_image_for_a_non_image_input_is_refused(keyword, tmp_path):
    pytest.importorskip("PIL")
    img = _png(tmp_path / "a.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(BadInput, match="an image needs a 1 x H x W x C input"):
        load_inputs(keyword, [img])


def test_resize_bilinear_keeps_constants_and_interpolates():
    const = np.full((7, 5, 1), 3.0)
    assert np.allclose(resize_bilinear(const, 11, 13), 3.0)
    ramp = np.arange(4, dtype=float).reshape(1, 4, 1).repeat(2, axis=0)   # 0 1 2 3
    down = resize_bilinear(ramp, 2, 2)[0, :, 0]
    assert np.allclose(down, [0.5, 2.5])

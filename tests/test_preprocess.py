"""models.preprocess: RGB coercion, resize+scale, batching, the model view and the centre crop."""

from __future__ import annotations

import numpy as np
import pytest

from models.data.faces import center_square, crop
from models.data.intake import as_rgb_uint8
from models.data.preprocess import batch_to_model_input, model_view, resize_and_scale


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# --- as_rgb_uint8 -------------------------------------------------------------------------------


def test_as_rgb_uint8_grayscale_2d(rng):
    gray = rng.integers(0, 256, size=(5, 7), dtype=np.uint8)
    out = as_rgb_uint8(gray)
    assert out.shape == (5, 7, 3) and out.dtype == np.uint8
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], gray)


def test_as_rgb_uint8_single_channel(rng):
    gray = rng.integers(0, 256, size=(4, 6, 1), dtype=np.uint8)
    out = as_rgb_uint8(gray)
    assert out.shape == (4, 6, 3)
    np.testing.assert_array_equal(out, np.repeat(gray, 3, axis=-1))


def test_as_rgb_uint8_rgba_drops_alpha(rng):
    rgba = rng.integers(0, 256, size=(3, 3, 4), dtype=np.uint8)
    out = as_rgb_uint8(rgba)
    assert out.shape == (3, 3, 3)
    np.testing.assert_array_equal(out, rgba[..., :3])


def test_as_rgb_uint8_float_unit_range_is_scaled():
    img = np.array([[[0.0, 0.5, 1.0]]], dtype=np.float32)
    np.testing.assert_array_equal(as_rgb_uint8(img), [[[0, 128, 255]]])


def test_as_rgb_uint8_float_0_255_range_is_rounded_and_clipped():
    img = np.array([[[2.4, 128.6, 300.0]]], dtype=np.float64)
    np.testing.assert_array_equal(as_rgb_uint8(img), [[[2, 129, 255]]])


def test_as_rgb_uint8_uint8_rgb_unchanged(rng):
    img = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
    np.testing.assert_array_equal(as_rgb_uint8(img), img)


@pytest.mark.parametrize("shape", [(4, 4, 2), (4,), (2, 4, 4, 3)])
def test_as_rgb_uint8_rejects_bad_shapes(shape):
    with pytest.raises(ValueError, match="HxWx3"):
        as_rgb_uint8(np.zeros(shape, dtype=np.uint8))


# --- resize_and_scale ---------------------------------------------------------------------------


def test_resize_and_scale_shape_and_range(rng):
    img = rng.integers(0, 256, size=(50, 30, 3), dtype=np.uint8)
    out = resize_and_scale(img, 24).numpy()
    assert out.shape == (24, 24, 3) and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0


def test_resize_and_scale_extremes_and_identity():
    white = np.full((10, 10, 3), 255, dtype=np.uint8)
    black = np.zeros((10, 10, 3), dtype=np.uint8)
    np.testing.assert_allclose(resize_and_scale(white, 37).numpy(), 1.0, atol=1e-6)
    np.testing.assert_allclose(resize_and_scale(black, 37).numpy(), 0.0, atol=1e-6)
    img = np.arange(16 * 16 * 3, dtype=np.int64).reshape(16, 16, 3).astype(np.uint8)
    np.testing.assert_allclose(resize_and_scale(img, 16).numpy(), img / 255.0, atol=1e-5)


# --- batch_to_model_input -----------------------------------------------------------------------


def test_batch_list_of_mixed_sizes_matches_4d_array(rng):
    a = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    b = rng.integers(0, 256, size=(40, 20, 3), dtype=np.uint8)
    c = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    from_list = batch_to_model_input([a, b, c], 16)
    assert from_list.shape == (3, 16, 16, 3) and from_list.dtype == np.float32
    from_array = batch_to_model_input(np.stack([a, c]), 16)
    assert from_array.shape == (2, 16, 16, 3) and from_array.dtype == np.float32
    np.testing.assert_allclose(from_array[0], from_list[0], atol=1e-6)
    np.testing.assert_allclose(from_array[1], from_list[2], atol=1e-6)
    np.testing.assert_allclose(from_list[1], resize_and_scale(b, 16).numpy(), atol=1e-6)


@pytest.mark.parametrize("kind", ["float_unit", "float_255", "rgba", "gray1"])
def test_batch_4d_array_matches_list_for_other_dtypes(rng, kind):
    base = rng.integers(0, 256, size=(2, 20, 30, 3), dtype=np.uint8)
    if kind == "float_unit":
        images = base.astype(np.float32) / 255.0
    elif kind == "float_255":
        images = base.astype(np.float64)
    elif kind == "rgba":
        images = np.concatenate([base, np.full((2, 20, 30, 1), 7, np.uint8)], axis=-1)
    else:
        images = base[..., :1]
    from_array = batch_to_model_input(images, 16)
    from_list = batch_to_model_input(list(images), 16)
    np.testing.assert_allclose(from_array, from_list, atol=1e-6)
    if kind != "gray1":  # the same pixels as the uint8 RGB original
        np.testing.assert_allclose(from_array, batch_to_model_input(base, 16), atol=1e-6)


def test_batch_empty_list():
    out = batch_to_model_input([], 8)
    assert out.shape == (0, 8, 8, 3)


# --- model_view / center_square -----------------------------------------------------------------


def test_model_view_uint8_at_model_size(rng):
    img = rng.integers(0, 256, size=(48, 80, 3), dtype=np.uint8)
    view = model_view(img, 32)
    assert view.shape == (32, 32, 3) and view.dtype == np.uint8
    expected = np.rint(resize_and_scale(img, 32).numpy() * 255.0)
    np.testing.assert_array_equal(view, expected.astype(np.uint8))
    gray = model_view(np.full((10, 10), 200, dtype=np.uint8), 12)
    assert gray.shape == (12, 12, 3)
    assert np.all(np.abs(gray.astype(int) - 200) <= 1)


def test_center_square_landscape():
    # the data's fallback crop when no face is found: the centre square of side min(H, W)
    img = np.arange(30 * 50, dtype=np.uint8).reshape(30, 50)
    x, y, side = center_square(50, 30)
    assert (x, y, side) == (10, 0, 30)
    out = crop(np.stack([img] * 3, axis=-1), (x, y, side), size=30)
    np.testing.assert_array_equal(out[..., 0], img[:, 10:40])


def test_center_square_portrait_and_square():
    assert center_square(20, 51) == (0, 15, 20)  # (51 - 20) // 2 == 15
    assert center_square(9, 9) == (0, 0, 9)

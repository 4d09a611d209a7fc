"""models.augment.Augmenter and models.portable's in-memory batches (seeded, reshuffled per epoch)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import make_dataset_dir

from models.data.augment import Augmenter
from models.data.files import list_files
from models.data.intake import load_image
from models.training.portable import ArrayBatches, load_arrays

NONE = dict(flip=False, shift=0, rescale_p=0, jpeg_p=0, jitter=0)  # every step off


def noisy(n=6, size=16, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


# --- Augmenter ----------------------------------------------------------------------------------


def test_output_dtype_shape_range():
    batch = noisy()
    out = Augmenter()(batch, np.random.default_rng(0))
    assert out.dtype == np.float32 and out.shape == batch.shape
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert out.std() > 0.1  # still an image, not a constant


def test_seeded():
    batch = noisy()
    a = Augmenter()(batch, np.random.default_rng(7))
    b = Augmenter()(batch, np.random.default_rng(7))
    c = Augmenter()(batch, np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_all_steps_off_is_plain_scaling():
    batch = noisy()
    np.testing.assert_array_equal(Augmenter(**NONE)(batch, np.random.default_rng(0)), batch.astype(np.float32) / 255)


def test_flip_only_gives_image_or_exact_mirror():
    batch = noisy(n=32)
    out = Augmenter(**{**NONE, "flip": True})(batch, np.random.default_rng(0))
    flipped = 0
    for img, o in zip(batch, out, strict=True):
        plain, mirror = img.astype(np.float32) / 255, img[:, ::-1].astype(np.float32) / 255
        assert np.array_equal(o, plain) or np.array_equal(o, mirror)
        flipped += np.array_equal(o, mirror)
    assert 0 < flipped < 32  # both happen (p = 0.5 each)


def test_shift_moves_content_within_the_margin():
    batch = noisy(n=8, size=32)
    out = Augmenter(**{**NONE, "shift": 0.1})(batch, np.random.default_rng(0))
    m = round(0.1 * 32)
    assert out.shape == batch.shape
    assert not np.array_equal(out, batch.astype(np.float32) / 255)
    for img, o in zip(batch, out, strict=True):
        # the centre of the original is still inside the output, somewhere within +-m px
        centre = img[m:-m, m:-m].astype(np.float32) / 255
        assert any(np.array_equal(o[dy : dy + 32 - 2 * m, dx : dx + 32 - 2 * m], centre)
                   for dy in range(2 * m + 1) for dx in range(2 * m + 1))


@pytest.mark.parametrize("step", [{"jpeg_p": 1.0}, {"rescale_p": 1.0}])
def test_jpeg_and_rescale_change_pixels_keep_shape(step):
    batch = noisy(size=24)
    out = Augmenter(**{**NONE, **step})(batch, np.random.default_rng(0))
    assert out.shape == batch.shape and out.dtype == np.float32
    assert np.abs(out - batch.astype(np.float32) / 255).mean() > 0.01


def test_jitter_is_mild():
    batch = noisy()
    out = Augmenter(**{**NONE, "jitter": 0.05})(batch, np.random.default_rng(0))
    diff = np.abs(out - batch.astype(np.float32) / 255)
    # change = (x - mean) * (contrast - 1) + brightness, with |x - mean| <= 1 and both terms within 0.05
    assert 0 < diff.mean() and diff.max() <= 0.1 + 1e-6


def test_config_round_trips():
    cfg = Augmenter().config()
    assert Augmenter(**cfg) == Augmenter()
    assert set(cfg) == {"flip", "shift", "rescale_p", "rescale_range", "jpeg_p", "jpeg_quality", "jitter", "chroma_p"}


def test_a_mask_moves_exactly_with_the_image():
    # geometry only (no photometric steps): the mask must land where the image content lands
    aug = Augmenter(flip=True, shift=0.1, rescale_p=0, jpeg_p=0, jitter=0)
    img = np.zeros((32, 32, 3), np.uint8)
    img[4:10, 20:28] = 255
    mask = (img[..., 0] > 0).astype(np.float32)
    for seed in range(12):
        out, moved = aug.one_with_mask(img, mask, np.random.default_rng(seed))
        np.testing.assert_array_equal(out[..., 0] > 0.5, moved > 0.5)
        plain = aug.one(img, np.random.default_rng(seed))  # the same draws without a mask
        np.testing.assert_array_equal(plain, out)


def test_chroma_subsampling_keeps_luma_and_blurs_colour():
    from models.data.augment import subsample_chroma

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    out = subsample_chroma(img)
    assert out.shape == img.shape and out.dtype == np.uint8
    luma = lambda a: a.astype(float) @ [0.299, 0.587, 0.114]  # noqa: E731
    assert np.abs(luma(out) - luma(img)).mean() < 12 < np.abs(out.astype(float) - img).mean() + 12
    assert not np.array_equal(out, img)


# --- ArrayBatches -------------------------------------------------------------------------------


def indexed(n, size=4):
    """Image i is filled with the value i, and its label is i: batches show which items they hold."""
    x = np.repeat(np.arange(n, dtype=np.uint8), size * size * 3).reshape(n, size, size, 3)
    return x, np.arange(n, dtype=np.float32)


def epoch(ds):
    return [ds[i] for i in range(len(ds))]


@pytest.mark.parametrize("n,bs", [(10, 4), (8, 4), (3, 64)])
def test_len(n, bs):
    x, y = indexed(n)
    assert len(ArrayBatches(x, y, bs)) == math.ceil(n / bs)


def test_no_augmenter_no_shuffle_is_scaled_input_in_order():
    x, y = indexed(10)
    batches = epoch(ArrayBatches(x, y, 4))
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    xs, ys = np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])
    assert xs.dtype == np.float32 and ys.dtype == np.float32
    np.testing.assert_array_equal(xs, x.astype(np.float32) / 255)
    np.testing.assert_array_equal(ys, y)


def test_shuffle_covers_every_index_once_and_reshuffles_per_epoch():
    x, y = indexed(20)
    ds = ArrayBatches(x, y, 4, shuffle=True, seed=3)
    seen = []
    for _ in range(3):
        batches = epoch(ds)
        ys = np.concatenate([b[1] for b in batches])
        np.testing.assert_array_equal(np.sort(ys), y)  # each index exactly once
        for xb, yb in batches:  # images stay with their labels
            np.testing.assert_array_equal(np.round(xb[:, 0, 0, 0] * 255), yb)
        seen.append(ys)
        ds.on_epoch_end()
    assert not np.array_equal(seen[0], seen[1]) and not np.array_equal(seen[1], seen[2])
    assert not np.array_equal(seen[0], y)  # shuffled at all


def test_same_seed_same_batches_with_augmentation():
    x, y = noisy(n=10), np.arange(10) % 2
    a = ArrayBatches(x, y, 4, Augmenter(), shuffle=True, seed=5)
    b = ArrayBatches(x, y, 4, Augmenter(), shuffle=True, seed=5)
    c = ArrayBatches(x, y, 4, Augmenter(), shuffle=True, seed=6)
    for _ in range(2):
        for (xa, ya), (xb, yb) in zip(epoch(a), epoch(b), strict=True):
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(ya, yb)
        a.on_epoch_end()
        b.on_epoch_end()
    assert not np.array_equal(epoch(a)[0][0], epoch(c)[0][0])
    # Reading a batch twice gives the same batch (augmentation is seeded per epoch and batch, not stateful).
    np.testing.assert_array_equal(a[1][0], a[1][0])
    # Augmentation differs between epochs.
    first = a[0][0]
    a.on_epoch_end()
    assert not np.array_equal(first, a[0][0])


# --- load_arrays --------------------------------------------------------------------------------


def test_load_arrays(tmp_path):
    root = make_dataset_dir(tmp_path / "d", splits=(None,), n_per_class=2, size=32)
    files = list_files(root)
    x = load_arrays(files, 32, workers=1)
    assert x.shape == (4, 32, 32, 3) and x.dtype == np.uint8
    for img, path in zip(x, files.paths, strict=True):
        np.testing.assert_array_equal(img, load_image(path))
    small = load_arrays(files, 16, workers=1)  # resized when the size differs
    assert small.shape == (4, 16, 16, 3) and small.dtype == np.uint8

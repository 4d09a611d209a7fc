"""models.intake.load_image: formats and modes, EXIF orientation, bytes, and one-line errors."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from models.data import intake
from models.data.intake import ImageLoadError, load_image


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def save(img: Image.Image, path, **kw):
    img.save(path, **kw)
    return path


def test_png_rgb_exact(tmp_path, rng):
    arr = rng.integers(0, 256, size=(12, 9, 3), dtype=np.uint8)
    out = load_image(save(Image.fromarray(arr), tmp_path / "a.png"))
    assert out.dtype == np.uint8 and out.shape == (12, 9, 3)
    np.testing.assert_array_equal(out, arr)


def test_png_rgba_composited_on_white(tmp_path):
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)  # opaque red stays red
    rgba[0, 1] = (255, 0, 0, 0)  # fully transparent -> white
    rgba[1, 0] = (0, 0, 0, 128)  # half-transparent black -> mid grey
    rgba[1, 1] = (0, 0, 255, 255)
    out = load_image(save(Image.fromarray(rgba, "RGBA"), tmp_path / "a.png"))
    assert out.shape == (2, 2, 3)
    assert tuple(out[0, 0]) == (255, 0, 0)
    assert tuple(out[0, 1]) == (255, 255, 255)
    assert all(abs(int(v) - 127) <= 1 for v in out[1, 0])
    assert tuple(out[1, 1]) == (0, 0, 255)


def test_png_palette(tmp_path):
    img = Image.new("P", (4, 3))
    img.putpalette([255, 0, 0, 0, 255, 0] + [0, 0, 0] * 254)
    img.putpixel((0, 0), 1)
    out = load_image(save(img, tmp_path / "p.png"))
    assert out.shape == (3, 4, 3)
    assert tuple(out[0, 0]) == (0, 255, 0)
    assert tuple(out[2, 3]) == (255, 0, 0)


def test_png_palette_with_transparency_composited_on_white(tmp_path):
    img = Image.new("P", (2, 1))
    img.putpalette([10, 20, 30, 0, 0, 0] + [0, 0, 0] * 254)
    img.putpixel((1, 0), 1)
    img.info["transparency"] = 1
    out = load_image(save(img, tmp_path / "pt.png", transparency=1))
    assert tuple(out[0, 0]) == (10, 20, 30)
    assert tuple(out[0, 1]) == (255, 255, 255)


def test_png_16bit_grayscale_scaled(tmp_path):
    values = np.array([[0, 257, 32768, 65535]], dtype=np.uint16)
    img = Image.fromarray(values)
    assert img.mode == "I;16"
    path = save(img, tmp_path / "g16.png")
    assert Image.open(path).mode.startswith("I")
    out = load_image(path)
    assert out.shape == (1, 4, 3) and out.dtype == np.uint8
    # v / 65535 * 255, rounded: 0, 1, 128, 255 (not clipped to 255 as a naive cast would)
    np.testing.assert_array_equal(out[..., 0], [[0, 1, 128, 255]])
    np.testing.assert_array_equal(out[..., 0], out[..., 2])


def test_grayscale_l(tmp_path, rng):
    gray = rng.integers(0, 256, size=(5, 6), dtype=np.uint8)
    out = load_image(save(Image.fromarray(gray, "L"), tmp_path / "l.png"))
    assert out.shape == (5, 6, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], gray)


def test_cmyk_jpeg(tmp_path):
    img = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # pure red in CMYK
    path = save(img, tmp_path / "cmyk.jpg", quality=95)
    assert Image.open(path).mode == "CMYK"
    out = load_image(path)
    assert out.shape == (8, 8, 3) and out.dtype == np.uint8
    r, g, b = out[4, 4].astype(int)
    assert r > 200 and g < 60 and b < 60


def test_exif_rotated_jpeg(tmp_path):
    arr = np.zeros((20, 40, 3), dtype=np.uint8)  # 40 wide, 20 high; left half white
    arr[:, :20] = 255
    img = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display
    path = save(img, tmp_path / "rot.jpg", exif=exif.tobytes(), quality=95)
    out = load_image(path)
    assert out.shape == (40, 20, 3)  # width and height swapped
    # after a 90 degree clockwise rotation the white (left) half is on top
    assert out[:15].mean() > 200 and out[-15:].mean() < 50


def test_bytes_input(tmp_path, rng):
    arr = rng.integers(0, 256, size=(7, 5, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    np.testing.assert_array_equal(load_image(buf.getvalue()), arr)


def test_non_image_bytes_names_the_file(tmp_path):
    with pytest.raises(ImageLoadError, match=r"^upload\.jpg: not an image file"):
        load_image(b"hello, not an image", name="upload.jpg")
    with pytest.raises(ImageLoadError, match=r"^<upload>: "):
        load_image(b"hello")
    path = tmp_path / "fake.png"
    path.write_text("plain text")
    with pytest.raises(ImageLoadError) as info:
        load_image(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(ImageLoadError, match="no such file"):
        load_image(tmp_path / "nope.png")


def test_truncated_file(tmp_path, rng):
    src = save(Image.fromarray(rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)), tmp_path / "x.jpg")
    raw = src.read_bytes()
    for n in (200, len(raw) // 2):
        cut = tmp_path / f"cut{n}.jpg"
        cut.write_bytes(raw[:n])
        with pytest.raises(ImageLoadError) as info:
            load_image(cut)
        assert str(cut) in str(info.value)
    png = save(Image.fromarray(rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)), tmp_path / "x.png")
    with pytest.raises(ImageLoadError):
        load_image(png.read_bytes()[: len(png.read_bytes()) // 2], name="half.png")


def test_huge_dimensions_rejected(tmp_path, monkeypatch):
    path = save(Image.new("RGB", (100, 50)), tmp_path / "big.png")
    monkeypatch.setattr(intake, "MAX_PIXELS", 4_000)
    with pytest.raises(ImageLoadError, match="too large.*100x50"):
        load_image(path)
    monkeypatch.setattr(intake, "MAX_PIXELS", 5_000)  # exactly at the limit is fine
    assert load_image(path).shape == (50, 100, 3)


def test_huge_file_bytes_rejected(monkeypatch):
    monkeypatch.setattr(intake, "MAX_FILE_BYTES", 10)
    with pytest.raises(ImageLoadError, match="file too large"):
        load_image(b"x" * 11)

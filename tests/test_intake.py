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


# Plain words for a person, the decoder's own words in ``detail`` (issue 14, item 5) ----------------------


def encoded(fmt: str, rng, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, size=(48, 48, 3), dtype=np.uint8)).save(buf, format=fmt, **kw)
    return buf.getvalue()


def load_error(data: bytes, name: str) -> ImageLoadError:
    with pytest.raises(ImageLoadError) as info:
        load_image(data, name=name)
    message = str(info.value)
    assert message.startswith(f"{name}: ") and "\n" not in message, message
    return info.value


TECHNICAL = ("decoder object", "bytes not processed", "Truncated File Read", "cannot identify", "OSError", "Error")


@pytest.mark.parametrize("fmt, label", [("WEBP", "WebP"), ("JPEG", "JPEG"), ("PNG", "PNG")])
def test_truncated_image_says_damaged_in_plain_words(fmt, label, rng):
    raw = encoded(fmt, rng)
    for cut in (raw[:40], raw[: len(raw) // 2]):
        exc = load_error(cut, f"face.{fmt.lower()}")
        assert str(exc) == f"face.{fmt.lower()}: this file is damaged or is not a {label} image (cannot decode it)"
        assert not any(t in str(exc) for t in TECHNICAL), str(exc)
        assert exc.detail and "\n" not in exc.detail
    # the decoder's own message is kept, word for word, in the detail
    assert "could not create decoder object" in load_error(encoded("WEBP", rng)[:60], "w.webp").detail
    jpeg = encoded("JPEG", rng)
    assert "image file is truncated" in load_error(jpeg[: len(jpeg) - 40], "j.jpg").detail
    assert "OSError" in load_error(jpeg[:60], "j.jpg").detail


def test_pdf_says_it_is_a_document(rng):
    pdf = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
    exc = load_error(pdf, "scan.jpg")  # the extension is not trusted: the bytes say PDF
    assert str(exc).startswith("scan.jpg: this is a PDF document, not an image")
    assert "cannot identify image file" in exc.detail and "%PDF" in exc.detail and "BytesIO" not in exc.detail


@pytest.mark.parametrize("svg", [
    b'<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><circle r="4"/></svg>',
    b'\xef\xbb\xbf<?xml version="1.0" encoding="UTF-8"?>\n<!-- made by hand -->\n'
    b'<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "x.dtd">\n<SVG viewBox="0 0 8 8"></SVG>\n',
])
def test_svg_says_export_it(svg):
    exc = load_error(svg, "logo.svg")
    assert str(exc) == "logo.svg: this is an SVG drawing; export it as PNG or JPEG"
    assert "cannot identify image file" in exc.detail


def test_empty_and_random_and_text_files(tmp_path, rng):
    exc = load_error(b"", "zero.png")
    assert str(exc) == "zero.png: empty file (0 bytes)" and exc.detail == "0 bytes"
    (tmp_path / "zero.png").write_bytes(b"")
    with pytest.raises(ImageLoadError, match=r"zero\.png: empty file \(0 bytes\)$"):
        load_image(tmp_path / "zero.png")
    noise = bytes(rng.integers(0, 256, size=2000, dtype=np.uint8))
    assert intake.sniff_format(noise) is None
    for blob, name in ((noise, "noise.bin"), (b"just some words\n", "notes.jpg")):
        exc = load_error(blob, name)
        assert str(exc) == f"{name}: {intake.PLAIN_UNKNOWN}"
        assert "cannot identify image file" in exc.detail and f"{len(blob)} bytes" in exc.detail


def test_html_zip_and_video_are_named():
    assert "web page (HTML)" in str(load_error(b"<!DOCTYPE html><html><body>hi</body></html>", "page.png"))
    assert "ZIP archive" in str(load_error(b"PK\x03\x04" + b"\x00" * 40, "faces.jpg"))
    mp4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 32
    assert "this is a video" in str(load_error(mp4, "clip.jpg"))


def test_too_large_gives_the_size_in_plain_words_and_the_limit_in_the_detail(tmp_path, monkeypatch):
    path = save(Image.new("RGB", (100, 50)), tmp_path / "big.png")
    monkeypatch.setattr(intake, "MAX_PIXELS", 4_000)
    with pytest.raises(ImageLoadError) as info:
        load_image(path)
    assert str(info.value) == f"{path}: image too large (100x50 px, limit 0 MP)"
    assert "5000 px > MAX_PIXELS = 4000" in info.value.detail


def test_sniff_format_reads_the_bytes_not_the_name(rng):
    assert intake.sniff_format(encoded("WEBP", rng)) == "WebP"
    assert intake.sniff_format(encoded("JPEG", rng), "x.png") == "JPEG"
    assert intake.sniff_format(encoded("PNG", rng)) == "PNG"
    assert intake.sniff_format(b"%PDF-1.7") == "PDF"
    assert intake.sniff_format(b"\x00\x00\x00\x1cftypheic") == "HEIC"
    assert intake.sniff_format(b"\x00\x00\x00\x1cftypavif") == "AVIF"
    assert intake.sniff_format(b"<html>no svg here</html>") == "HTML"
    assert intake.sniff_format(b"plain text mentioning <svg") is None  # not markup: not an SVG


def test_detail_defaults_to_empty_and_str_is_the_plain_line():
    exc = ImageLoadError("a.png: refused")
    assert str(exc) == "a.png: refused" and exc.detail == ""
    assert ImageLoadError("b.png: x", "line one\nline two").detail == "line one line two"


def test_unreadable_path_is_one_plain_line(tmp_path, monkeypatch):
    path = save(Image.new("RGB", (4, 4)), tmp_path / "locked.png")

    def refuse(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(type(path), "read_bytes", refuse)
    with pytest.raises(ImageLoadError) as info:
        load_image(path)
    assert str(info.value) == f"{path}: cannot read the file"
    assert "PermissionError" in info.value.detail and "Permission denied" in info.value.detail

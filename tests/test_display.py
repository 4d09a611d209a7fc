"""Pictures and captions the pages draw (models.analysis.display), without Streamlit."""

from __future__ import annotations

import base64
import io
from types import SimpleNamespace

import numpy as np
from PIL import Image

from models.analysis import display
from models.scoring.batch import Row


def test_enlarge_repeats_pixels():
    img = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    big = display.enlarge(img, target=8)
    assert big.shape == (8, 8, 3)
    np.testing.assert_array_equal(big[:4, :4], np.broadcast_to(img[0, 0], (4, 4, 3)))
    assert display.enlarge(np.zeros((300, 300, 3), np.uint8)).shape == (300, 300, 3)  # never shrinks


def test_draw_faces_and_shown_photo():
    img = np.zeros((100, 100, 3), np.uint8)
    face = SimpleNamespace(box=(10, 20, 50, 40))
    boxed = display.draw_faces(img, [face])
    assert boxed.shape == img.shape and tuple(boxed[20 + 20, 10]) == (255, 40, 40)  # the box's left edge
    assert not img.any()  # the input is left alone
    np.testing.assert_array_equal(display.shown_photo(img, [(face, None)], "face"), boxed)
    assert display.shown_photo(img, [(None, img)], "center") is img
    assert display.shown_photo(img, [(face, None)], "none") is img


def test_thumbnail_jpeg_and_data_url(tmp_path):
    path = tmp_path / "a.png"
    Image.fromarray(np.full((300, 200, 3), 128, np.uint8)).save(path)
    small = Image.open(io.BytesIO(display.thumbnail_jpeg(path)))
    assert small.format == "JPEG" and max(small.size) == 96
    url = display.data_url(np.zeros((8, 8, 3), np.uint8))
    assert url.startswith("data:image/jpeg;base64,")
    assert Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).size == (8, 8)


def test_row_thumbnails_read_each_image_once_and_skip_errors():
    reads = []

    def read(path):
        reads.append(path)
        if path == "gone.png":
            raise OSError("gone")
        return np.zeros((40, 40, 3), np.uint8)

    thumbs = display.RowThumbnails(read, size=16)
    face1 = Row("a.png", 1, 0, 0, 20, 20, "face", 0.3, "real")
    face2 = Row("a.png", 2, 20, 20, 20, 20, "face", 0.7, "fake")
    assert thumbs(face1).startswith("data:image/jpeg") and thumbs(face2).startswith("data:image/jpeg")
    assert reads == ["a.png"]
    assert thumbs(Row("bad.png", error="bad.png: not an image")) is None
    assert thumbs(Row("gone.png", None, 0, 0, 40, 40, "none", 0.5, "real")) is None
    assert reads == ["a.png", "gone.png"]


def test_shorten():
    assert display.shorten("short") == "short"
    assert display.shorten("a_very_long_source_name", 8) == "a_very_…"
    assert len(display.shorten("x" * 40)) == 14

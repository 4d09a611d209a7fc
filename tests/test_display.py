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


def test_chosen_face_is_drawn_differently():
    img = np.zeros((300, 400, 3), np.uint8)
    faces = [SimpleNamespace(box=(20, 150, 100, 100)), SimpleNamespace(box=(250, 150, 100, 100))]
    boxed = display.draw_faces(img, faces, chosen=1)
    other, picked = tuple(boxed[200, 20]), tuple(boxed[200, 250])  # each box's left edge, below its tag
    assert other == display.FACE_COLOUR and picked == display.CHOSEN_COLOUR and other != picked
    thin = (boxed[200, 20:40] == display.FACE_COLOUR).all(axis=1).sum()
    thick = (boxed[200, 250:270] == display.CHOSEN_COLOUR).all(axis=1).sum()
    assert thick > thin  # the chosen box is also thicker
    np.testing.assert_array_equal(display.shown_photo(img, [(f, None) for f in faces], "face", chosen=1), boxed)


def test_face_numbers_are_readable_at_a_glance():
    side = 600
    img = np.zeros((side, side, 3), np.uint8)
    boxed = display.draw_faces(img, [SimpleNamespace(box=(100, 100, 300, 300))])
    white = (boxed >= 250).all(axis=2)  # the number's glyph (white), nothing else is white
    rows = np.flatnonzero(white.any(axis=1))
    assert rows.size and rows.max() - rows.min() + 1 >= side / 15
    small = display.draw_faces(np.zeros((60, 60, 3), np.uint8), [SimpleNamespace(box=(5, 5, 40, 40))])
    rows = np.flatnonzero((small >= 250).all(axis=2).any(axis=1))
    assert rows.max() - rows.min() + 1 >= 9  # at least the 14 px minimum font on a tiny photo


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


def test_gallery_caption_has_one_length_and_keeps_both_ends():
    long_name = "test/fake/ciplab_real_and_fake_face__easy_00123.jpg"
    short, full = display.gallery_caption(long_name)
    assert full == long_name  # the full name, for the tooltip
    assert len(short) == 12 and "…" in short and "/" not in short
    assert short.startswith("cipl") and short.endswith("123.jpg")  # both ends of the name and its extension
    tiny, _ = display.gallery_caption("a.jpg")
    assert len(tiny) == len(short) and tiny.startswith("a.jpg") and "…" not in tiny  # padded, not cut
    odd, _ = display.gallery_caption("abcdefghijklmnopqrstuvwxyz.extension")  # an extension too long to keep
    assert len(odd) == 12 and odd.startswith("abcde") and odd.endswith("nsion")
    for width in (8, 12, 20):
        lengths = {len(display.gallery_caption(n, 0.5, width=width)[0]) for n in (long_name, "a.jpg", "ab.png")}
        assert lengths == {width + len("0.500 · ")}
    assert display.gallery_caption(long_name, 0.97345)[0] == "0.973 · " + short


def test_batch_display_rows_drop_the_repeated_file_name_and_the_none_crop():
    from models.analysis.display import NO_CROP, batch_display_rows

    table = [{"thumbnail": None, "path": "doc.pdf", "error": "doc.pdf: this is a PDF document, not an image"},
             {"thumbnail": None, "path": "photo.jpg (2)", "error": "photo.jpg: the file is empty (0 bytes)"},
             {"thumbnail": "data:image/jpeg;base64,xx", "path": "a.png", "error": ""},
             {"thumbnail": None, "path": "b.png", "error": "b.png was cut short: the rest is missing"}]
    out = batch_display_rows(table)
    assert [r["error"] for r in out] == ["this is a PDF document, not an image", "the file is empty (0 bytes)", "",
                                         "b.png was cut short: the rest is missing"]
    assert [r["thumbnail"] for r in out] == [NO_CROP, NO_CROP, "data:image/jpeg;base64,xx", NO_CROP]
    assert table[0]["error"].startswith("doc.pdf: ")  # the rows given are not changed

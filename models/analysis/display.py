"""Pictures and captions for display, without Streamlit: what the pages draw, computed here.

* :func:`enlarge`: a nearest-neighbour upscale, so a model's low-resolution input is visible pixel for pixel.
* :func:`draw_faces` / :func:`shown_photo`: the photo with every detected face boxed and numbered.
* :func:`thumbnail_jpeg`: a small JPEG thumbnail of an image file (made at run time, never stored).
* :class:`RowThumbnails`: the crop a batch row scored, as a small inline JPEG (a ``data:`` URL).
* :func:`shorten`: a caption cut to one line.
* :func:`gallery_caption`: a thumbnail caption of fixed length (a file name cut in the middle) and the full name.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Callable, Sequence

import numpy as np

from models.analysis.explore import THUMB_SIZE, jpeg_bytes, thumbnail
from models.scoring.batch import Row, row_thumbnail

FACE_COLOUR = (255, 40, 40)  # every found face's box
CHOSEN_COLOUR = (255, 220, 0)  # the chosen face's box


def enlarge(image: np.ndarray, target: int = 256) -> np.ndarray:
    """Nearest-neighbour upscale so the model's low-resolution input is visible pixel for pixel."""
    factor = max(1, target // max(image.shape[:2]))
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def draw_faces(image: np.ndarray, faces: Sequence, chosen: int | None = None) -> np.ndarray:
    """The photo with every detected face (objects with a ``box`` (x, y, w, h)) boxed and numbered (1 = largest).

    Digits are about 1/12 of the photo's shorter side tall (font at least 14 px), white on a dark tag with a white
    outline, so they read on any photo. Face ``chosen`` (0-based) is drawn thicker and in yellow, the others red.
    """
    from PIL import Image, ImageDraw, ImageFont

    img = Image.fromarray(image)
    draw = ImageDraw.Draw(img)
    width = max(2, round(max(image.shape[:2]) / 300))
    font = ImageFont.load_default(size=max(14, round(min(image.shape[:2]) / 9)))  # digits ~1/12 of the side
    for i, face in enumerate(faces):
        x, y, w, h = (int(v) for v in face.box)
        picked = i == chosen
        colour = CHOSEN_COLOUR if picked else FACE_COLOUR
        draw.rectangle([x, y, x + w, y + h], outline=colour, width=width * 2 if picked else width)
        _, t0, _, b0 = draw.textbbox((0, 0), str(i + 1), font=font)
        pad = max(2, (b0 - t0) // 6)
        tag = (b0 - t0) + 2 * pad
        above, below = y - tag + pad - t0, y + h + pad - t0  # off the face: above the box, else below it
        anchor = (x, above if above + t0 - pad >= 0 else below if y + h + tag <= image.shape[0] else y)
        left, top, right, bottom = draw.textbbox(anchor, str(i + 1), font=font)
        draw.rectangle([left - pad, top - pad, right + pad, bottom + pad], fill=(20, 20, 20),
                       outline=colour, width=max(1, pad // 2))  # numbered tag on the box's corner
        draw.text(anchor, str(i + 1), fill=(255, 255, 255), font=font, stroke_width=max(1, pad // 3),
                  stroke_fill=(0, 0, 0))
    return np.asarray(img)


def shown_photo(image: np.ndarray, crops: Sequence[tuple], kind: str, chosen: int | None = None) -> np.ndarray:
    """The photo to show next to ``crops`` ((face or None, crop) pairs from models.scoring.stream.analyse):
    boxed and numbered when faces were found (``kind`` "face"), face ``chosen`` highlighted; else ``image``."""
    faces = [f for f, _ in crops if f is not None]
    return draw_faces(image, faces, chosen) if faces and kind == "face" else image


def thumbnail_jpeg(path: str | os.PathLike, size: int = THUMB_SIZE) -> bytes:
    """A small JPEG thumbnail of the image file at ``path`` (ImageLoadError when it cannot be decoded)."""
    return jpeg_bytes(thumbnail(path, size))


def data_url(image: np.ndarray) -> str:
    """``image`` as an inline JPEG ``data:`` URL (for an image column of a table)."""
    return "data:image/jpeg;base64," + base64.b64encode(jpeg_bytes(image)).decode()


class RowThumbnails:
    """The crop each batch :class:`Row` scored, as a ``size`` px inline JPEG, for rows in input order.

    ``read(path)`` decodes a row's image (e.g. models.scoring.archive.read_upload); only the last image is
    kept, so memory stays flat. A row that cannot be shown (an error, no box, an image that no longer decodes)
    gives None.
    """

    def __init__(self, read: Callable[[str], np.ndarray], size: int = 64,
                 errors: tuple[type[BaseException], ...] = (OSError, ValueError, KeyError)):
        self.read, self.size, self.errors = read, size, errors
        self._cache: dict[str, np.ndarray] = {}

    def __call__(self, row: Row) -> str | None:
        if row.error or row.box is None:
            return None
        if row.path not in self._cache:
            self._cache.clear()  # one image at a time: memory stays flat
            try:
                self._cache[row.path] = self.read(row.path)
            except self.errors:
                return None
        small = row_thumbnail(self._cache[row.path], row, size=self.size)
        return None if small is None else data_url(small)


def shorten(text: str, width: int = 14) -> str:
    """``text`` cut to ``width`` characters (with an ellipsis), so captions under thumbnails stay one line."""
    return text if len(text) <= width else text[: width - 1] + "…"


def gallery_caption(name: str, p_fake: float | None = None, width: int = 12) -> tuple[str, str]:
    """A one-line thumbnail caption of fixed length, and the full name for its tooltip: ``(short, full)``.

    The file name (its folders dropped) is cut in the middle with an ellipsis, keeping both ends and the
    extension, or padded with no-break spaces, to exactly ``width`` characters; ``p_fake`` (when given)
    goes first, as ``0.973 · <name>``, so every caption in a gallery has the same length and stays on one line.
    """
    full = os.path.basename(str(name)) or str(name)
    stem, ext = os.path.splitext(full)
    if len(full) <= width:
        short = full + "\u00a0" * (width - len(full))
    elif len(ext) + 3 > width:  # an extension too long to keep: cut the whole name
        head = (width - 1) // 2
        short = full[:head] + "…" + full[len(full) - (width - 1 - head):]
    else:
        room = width - 1 - len(ext)  # characters of the stem around the ellipsis
        head = (room + 1) // 2
        short = stem[:head] + "…" + stem[len(stem) - (room - head):] + ext
    return (short if p_fake is None else f"{p_fake:.3f} · {short}"), str(name)


def _no_crop(size: int = 48) -> str:
    """A light grey square with a thin cross, as a ``data:`` URL: the crop cell of a row where nothing was cropped
    (an empty cell would read "None")."""
    from PIL import Image, ImageDraw

    im = Image.new("RGB", (size, size), (242, 242, 242))
    draw = ImageDraw.Draw(im)
    m = size // 3
    draw.line((m, m, size - m, size - m), fill=(170, 170, 170), width=2)
    draw.line((m, size - m, size - m, m), fill=(170, 170, 170), width=2)
    return "data:image/jpeg;base64," + base64.b64encode(jpeg_bytes(np.asarray(im))).decode()


NO_CROP = _no_crop()


def batch_display_rows(table: list[dict]) -> list[dict]:
    """Batch table rows as the page shows them: an error without the file name it repeats (the file column is
    beside it: ``"a.pdf: this is a PDF…"`` -> ``"this is a PDF…"``), and an empty crop cell where nothing was
    cropped."""
    out = []
    for row in table:
        row = dict(row)
        error, path = row.get("error") or "", str(row.get("path") or "")
        for name in {path, re.sub(r" \(\d+\)$", "", path)} - {""}:  # "photo.jpg (2)" was read as "photo.jpg"
            if error.startswith(name + ": "):
                row["error"] = error[len(name) + 2:]
                break
        if row.get("thumbnail") is None and "thumbnail" in row:
            row["thumbnail"] = NO_CROP
        out.append(row)
    return out

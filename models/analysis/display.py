"""Pictures and captions for display, without Streamlit: what the pages draw, computed here.

* :func:`enlarge`: a nearest-neighbour upscale, so a model's low-resolution input is visible pixel for pixel.
* :func:`draw_faces` / :func:`shown_photo`: the photo with every detected face boxed and numbered.
* :func:`thumbnail_jpeg`: a small JPEG thumbnail of an image file (made at run time, never stored).
* :class:`RowThumbnails`: the crop a batch row scored, as a small inline JPEG (a ``data:`` URL).
* :func:`shorten`: a caption cut to one line.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Sequence

import numpy as np

from models.analysis.explore import THUMB_SIZE, jpeg_bytes, thumbnail
from models.scoring.batch import Row, row_thumbnail


def enlarge(image: np.ndarray, target: int = 256) -> np.ndarray:
    """Nearest-neighbour upscale so the model's low-resolution input is visible pixel for pixel."""
    factor = max(1, target // max(image.shape[:2]))
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def draw_faces(image: np.ndarray, faces: Sequence) -> np.ndarray:
    """The photo with every detected face (objects with a ``box`` (x, y, w, h)) boxed and numbered (1 = largest)."""
    from PIL import Image, ImageDraw

    img = Image.fromarray(image)
    draw = ImageDraw.Draw(img)
    width = max(2, round(max(image.shape[:2]) / 300))
    size = max(14, 6 * width)
    for i, face in enumerate(faces, start=1):
        x, y, w, h = face.box
        draw.rectangle([x, y, x + w, y + h], outline=(255, 40, 40), width=width)
        draw.rectangle([x, y, x + size, y + size + 2], fill=(255, 40, 40))  # numbered tag, inside the box
        draw.text((x + size // 4, y), str(i), fill=(255, 255, 255), font_size=size)
    return np.asarray(img)


def shown_photo(image: np.ndarray, crops: Sequence[tuple], kind: str) -> np.ndarray:
    """The photo to show next to ``crops`` ((face or None, crop) pairs from models.scoring.stream.analyse):
    boxed and numbered when faces were found (``kind`` "face"), else ``image`` as it is."""
    faces = [f for f, _ in crops if f is not None]
    return draw_faces(image, faces) if faces and kind == "face" else image


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

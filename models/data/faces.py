"""Find faces in any photo and cut them out the way the training crops were made.

The recipe (see the faces128 data README, "How the crops were made"): mtcnn on a downscaled copy,
faces with confidence >= 0.9, a square of side 1.3 x max(w, h) centred on the box, capped at the
image's shorter side and shifted inside the image (no padding), resized with Lanczos. Photos that are
already face crops (the square would cover nearly the whole image) use the centre square, as the
training data did when a face filled the frame.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

from models.data.intake import as_rgb_uint8

MIN_CONFIDENCE = 0.9
MAX_SIDE = 1024
CROP_SCALE = 1.3
ALREADY_CROPPED = 0.9  # recipe square >= 90% of the shorter side: the image is already a face crop
MAX_UPSCALE = 2.0
CROP_MODES = ("auto", "face", "none")
NO_FACE_WARNING = "no face found: analysing the centre square"

_detector = None
_lock = threading.RLock()  # re-entrant: detect_faces holds it while _mtcnn() builds the detector


class NoFaceError(ValueError):
    """No face was found where one was required; the message is one line for the user."""


@dataclass(frozen=True)
class Face:
    box: tuple[int, int, int, int]  # x, y, w, h in original image pixels
    confidence: float
    crop_box: tuple[int, int, int, int]  # the square actually cut: x, y, side, side
    upscale: float  # output size / crop side (> 2: the crop is upscaled more than 2x)

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


def _mtcnn():
    global _detector
    with _lock:
        if _detector is None:
            from mtcnn import MTCNN

            import models  # noqa: F401  (quiet TensorFlow import)

            _detector = MTCNN()
    return _detector


def shared_mtcnn():
    """The process's one MTCNN detector (built on first use); hold :func:`mtcnn_lock` while calling it."""
    return _mtcnn()


def mtcnn_lock() -> threading.RLock:
    """The lock that serialises calls into the shared MTCNN (it is not thread-safe)."""
    return _lock


def _rgb(image) -> np.ndarray:
    arr = as_rgb_uint8(image)
    if min(arr.shape[:2]) < 1:
        raise ValueError(f"expected an HxWx3 RGB image, got shape {arr.shape}")
    return np.ascontiguousarray(arr)


def square_box(box, width: int, height: int, scale: float = CROP_SCALE) -> tuple[int, int, int]:
    """The recipe's square (x, y, side) for a face ``box`` (x, y, w, h) in a ``width`` x ``height`` image.

    Centred on the box centre, side = ``scale`` x max(w, h) capped at the shorter side, shifted to stay
    inside the image (no padding). Integer pixel coordinates.
    """
    x, y, w, h = (float(v) for v in box)
    side = int(round(scale * max(w, h)))
    side = max(1, min(side, int(width), int(height)))
    cx, cy = x + w / 2.0, y + h / 2.0
    left = int(round(cx - side / 2.0))
    top = int(round(cy - side / 2.0))
    left = min(max(left, 0), int(width) - side)
    top = min(max(top, 0), int(height) - side)
    return left, top, side


def center_square(width: int, height: int) -> tuple[int, int, int]:
    """The centre square (x, y, side) of side min(width, height)."""
    side = min(int(width), int(height))
    return (int(width) - side) // 2, (int(height) - side) // 2, side


def crop(image, square, size: int = 128) -> np.ndarray:
    """Cut ``square`` ((x, y, side) or (x, y, side, side)) from ``image``; resize to size x size with Lanczos."""
    arr = _rgb(image)
    x, y, side = (int(v) for v in tuple(square)[:3])
    patch = arr[y:y + side, x:x + side]
    if patch.shape[:2] != (side, side):
        raise ValueError(f"square {tuple(square)} does not fit inside a {arr.shape[1]}x{arr.shape[0]} image")
    if side == size:
        return patch.copy()  # Lanczos at the same size is the identity
    return np.asarray(Image.fromarray(patch).resize((size, size), Image.LANCZOS), dtype=np.uint8)


def is_already_cropped(face: Face, width: int, height: int) -> bool:
    """True when the recipe's square for ``face`` covers >= 90% of the image's shorter side."""
    side = square_box(face.box, width, height)[2]
    return side >= ALREADY_CROPPED * min(int(width), int(height))


def _face(box, confidence: float, square, size: int) -> Face:
    x, y, side = square
    return Face(box=tuple(int(v) for v in box), confidence=float(confidence),
                crop_box=(int(x), int(y), int(side), int(side)), upscale=float(size) / float(side))


def detect_faces(image, *, max_side: int = MAX_SIDE, min_confidence: float = MIN_CONFIDENCE,
                 size: int = 128) -> list[Face]:
    """Faces in ``image`` (largest box first), boxes in original pixels.

    mtcnn runs on a copy whose longer side is at most ``max_side`` (never upscaled); faces below
    ``min_confidence`` are dropped. Each Face carries the recipe's square for a ``size`` px crop.
    """
    arr = _rgb(image)
    height, width = arr.shape[:2]
    factor = min(1.0, float(max_side) / max(width, height))
    small = arr
    if factor < 1.0:
        sw, sh = max(1, int(round(width * factor))), max(1, int(round(height * factor)))
        small = np.asarray(Image.fromarray(arr).resize((sw, sh), Image.BILINEAR), dtype=np.uint8)
    sx, sy = width / small.shape[1], height / small.shape[0]
    with _lock:
        found = _mtcnn().detect_faces(small)
    faces = []
    for f in found or []:
        conf = float(f.get("confidence", 0.0))
        if conf < min_confidence:
            continue
        bx, by, bw, bh = (float(v) for v in f["box"])
        x0, y0 = max(0.0, bx * sx), max(0.0, by * sy)
        x1, y1 = min(float(width), (bx + bw) * sx), min(float(height), (by + bh) * sy)
        x, y = int(round(x0)), int(round(y0))
        w, h = int(round(x1)) - x, int(round(y1)) - y
        if w < 1 or h < 1:
            continue
        box = (x, y, w, h)
        faces.append(_face(box, conf, square_box(box, width, height), size))
    faces.sort(key=lambda f: f.box[2] * f.box[3], reverse=True)
    return faces


def face_crops(image, *, mode: str = "auto", size: int = 128, max_side: int = MAX_SIDE
               ) -> tuple[list[tuple[Face | None, np.ndarray]], str, list[str]]:
    """The crops to analyse: (crops, crop_kind, warnings).

    ``mode`` "none": the image as is ([(None, image)], kind "none"). "auto": one ``size`` px crop per
    face, largest first (kind "face"); an image that already is a face crop uses its centre square;
    no face gives the centre square (kind "center") and a warning. "face": like auto, but no face
    raises :class:`NoFaceError`.
    """
    if mode not in CROP_MODES:
        raise ValueError(f"unknown crop mode {mode!r} (choose from {', '.join(CROP_MODES)})")
    arr = _rgb(image)
    if mode == "none":
        return [(None, arr)], "none", []
    height, width = arr.shape[:2]
    faces = detect_faces(arr, max_side=max_side, size=size)
    if not faces:
        if mode == "face":
            raise NoFaceError(f"no face found in the {width}x{height} image (use crop mode auto or none)")
        return [(None, crop(arr, center_square(width, height), size))], "center", [NO_FACE_WARNING]
    if is_already_cropped(faces[0], width, height):
        faces[0] = _face(faces[0].box, faces[0].confidence, center_square(width, height), size)
    crops, warnings = [], []
    for i, face in enumerate(faces, start=1):
        crops.append((face, crop(arr, face.crop_box, size)))
        if face.upscale > MAX_UPSCALE:
            warnings.append(f"face {i} is small ({face.box[2]}x{face.box[3]} px): "
                            f"its crop is upscaled {face.upscale:.1f}x")
    return crops, "face", warnings

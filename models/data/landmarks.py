"""Facial landmarks and facial regions of a face crop: mtcnn's five keypoints, the ellipse regions built on
them (left eye, right eye, nose, mouth, rest of face, outside the face), and a cache of landmarks per crop.

"Left eye" is the eye on the image's left (the viewer's left, smaller x), matching the ciplab file-name
convention and mtcnn's ``left_eye``. Regions are ellipses scaled by the inter-ocular distance; each pixel
belongs to exactly one region (eyes, then nose, then mouth, then face, then outside). Used to summarise
explanations per region (:mod:`explain.regions`) and to draw the masks of self-blended training images
(:mod:`models.data.blend`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from models.data import faces

REGIONS = ("left_eye", "right_eye", "nose", "mouth", "rest_of_face", "outside_face")
INNER = REGIONS[:4]
MIN_CONFIDENCE = 0.9
CACHE_VERSION = 1

_detector = None  # tests may put a stand-in mtcnn here; otherwise models.data.faces' shared detector is used


@dataclass(frozen=True)
class Landmarks:
    box: tuple[float, float, float, float]  # x, y, w, h in image pixels
    left_eye: tuple[float, float]  # (x, y), the eye with the smaller x
    right_eye: tuple[float, float]
    nose: tuple[float, float]
    mouth_left: tuple[float, float]
    mouth_right: tuple[float, float]
    confidence: float = 1.0

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


def _mtcnn():
    """The one MTCNN instance shared with models.data.faces (loaded once per process)."""
    return _detector if _detector is not None else faces.shared_mtcnn()


def detect_landmarks(image: np.ndarray, min_confidence: float = MIN_CONFIDENCE) -> Landmarks | None:
    """The largest confident face's landmarks in ``image`` (a face crop), or None when no face is found."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be an HxWx3 uint8 RGB array, got {image.shape} {image.dtype}")
    with faces.mtcnn_lock():
        found = _mtcnn().detect_faces(image)
    found = [f for f in found if f.get("confidence", 0) >= min_confidence and f.get("keypoints")]
    if not found:
        return None
    face = max(found, key=lambda f: f["box"][2] * f["box"][3])
    k = {name: (float(x), float(y)) for name, (x, y) in face["keypoints"].items()}
    eyes = sorted([k["left_eye"], k["right_eye"]])  # viewer's left first
    mouth = sorted([k["mouth_left"], k["mouth_right"]])
    return Landmarks(box=tuple(float(v) for v in face["box"]), left_eye=eyes[0], right_eye=eyes[1], nose=k["nose"],
                     mouth_left=mouth[0], mouth_right=mouth[1], confidence=float(face["confidence"]))


def _ellipse(shape, center, rx, ry) -> np.ndarray:
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    return ((xx + 0.5 - center[0]) / max(rx, 1e-6)) ** 2 + ((yy + 0.5 - center[1]) / max(ry, 1e-6)) ** 2 <= 1.0


def region_map(shape: tuple[int, int], lm: Landmarks) -> np.ndarray:
    """HxW int map: index into REGIONS for every pixel."""
    le, re, nose = np.array(lm.left_eye), np.array(lm.right_eye), np.array(lm.nose)
    ml, mr = np.array(lm.mouth_left), np.array(lm.mouth_right)
    iod = max(float(np.linalg.norm(re - le)), 4.0)
    out = np.full(shape, REGIONS.index("outside_face"), dtype=np.int8)
    x, y, w, h = lm.box
    face = _ellipse(shape, (x + w / 2, y + h / 2), w / 2 * 1.05, h / 2 * 1.05)
    out[face] = REGIONS.index("rest_of_face")
    mouth_c = (ml + mr) / 2
    mouth_w = float(np.linalg.norm(mr - ml))
    nose_c = nose - np.array([0.0, 0.15 * iod])
    # Painted from the outermost inward, so eyes win over the nose, and the nose over the mouth.
    out[_ellipse(shape, mouth_c, mouth_w / 2 + 0.15 * iod, 0.28 * iod)] = REGIONS.index("mouth")
    out[_ellipse(shape, nose_c, 0.25 * iod, 0.38 * iod)] = REGIONS.index("nose")
    out[_ellipse(shape, le, 0.36 * iod, 0.24 * iod)] = REGIONS.index("left_eye")
    out[_ellipse(shape, re, 0.36 * iod, 0.24 * iod)] = REGIONS.index("right_eye")
    return out


def part_mask(shape: tuple[int, int], lm: Landmarks, parts: Sequence[str]) -> np.ndarray:
    """HxW bool: the pixels of the named inner regions (any of :data:`INNER`) on the region map."""
    unknown = set(parts) - set(INNER)
    if unknown:
        raise ValueError(f"unknown facial part(s) {sorted(unknown)}; choose from {', '.join(INNER)}")
    rmap = region_map(shape, lm)
    return np.isin(rmap, [REGIONS.index(p) for p in parts])


def inner_face_mask(shape: tuple[int, int], lm: Landmarks) -> np.ndarray:
    """HxW bool: the inner face, from the eyebrows to below the mouth (what a face swap replaces): an ellipse
    through the five landmarks' span, tilted with the line between the eyes and grown by a third of the
    inter-ocular distance."""
    from skimage.draw import ellipse

    le, re = np.array(lm.left_eye), np.array(lm.right_eye)
    mouth = (np.array(lm.mouth_left) + np.array(lm.mouth_right)) / 2
    eyes = (le + re) / 2
    iod = max(float(np.linalg.norm(re - le)), 4.0)
    centre = (eyes + mouth) / 2 - [0.0, 0.1 * iod]
    half_height = float(np.linalg.norm(mouth - eyes)) / 2 + 0.55 * iod
    half_width = 0.5 * iod + 0.45 * iod
    angle = float(np.arctan2(re[1] - le[1], re[0] - le[0]))
    out = np.zeros(shape, bool)
    rr, cc = ellipse(centre[1], centre[0], half_height, half_width, shape=shape, rotation=-angle)
    out[rr, cc] = True
    return out


# --- a cache of landmarks per crop, outside git --------------------------------------------------------------

def cache_dir(explicit: str | os.PathLike | None = None) -> Path:
    """Where computed landmarks are kept: ``explicit``, else ``$DEEPFAKE_CACHE``, else ~/.cache/deepfake-lens."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("DEEPFAKE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "deepfake-lens"


def file_md5(path: str | os.PathLike) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def _from_list(v) -> Landmarks | None:
    if v is None:
        return None
    return Landmarks(box=tuple(v["box"]), left_eye=tuple(v["left_eye"]), right_eye=tuple(v["right_eye"]),
                     nose=tuple(v["nose"]), mouth_left=tuple(v["mouth_left"]), mouth_right=tuple(v["mouth_right"]),
                     confidence=float(v["confidence"]))


def cached_landmarks(paths: Sequence[str | os.PathLike], cache: str | os.PathLike | None = None,
                     progress: Callable[[int, int], None] | None = None,
                     detect: Callable[[np.ndarray], Landmarks | None] | None = None) -> list[Landmarks | None]:
    """The landmarks of each crop file (None where no face is found), computed once per crop and kept in
    ``<cache>/landmarks-v1.json`` keyed by the crop's md5 (so a renamed or moved crop is not recomputed, and an
    edited one is). ``detect`` replaces mtcnn (tests). ``progress(done, total)`` while computing."""
    from models.data.intake import load_image

    detect = detect or detect_landmarks
    store_path = cache_dir(cache) / f"landmarks-v{CACHE_VERSION}.json"
    store = json.loads(store_path.read_text()) if store_path.is_file() else {}
    keys = [file_md5(p) for p in paths]
    todo = [(k, p) for k, p in dict(zip(keys, paths)).items() if k not in store]
    for i, (k, p) in enumerate(todo, start=1):
        lm = detect(load_image(p))
        store[k] = None if lm is None else lm.to_dict()
        if progress is not None:
            progress(i, len(todo))
        if i % 500 == 0 or i == len(todo):
            _save(store_path, store)
    return [_from_list(store[k]) for k in keys]


def _save(path: Path, store: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(store))
    os.replace(tmp, path)

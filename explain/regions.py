"""Facial-region attribution: which of left eye, right eye, nose, mouth, rest of face or background drives
a verdict, for any :class:`~explain.base.Explanation`.

Landmarks come from mtcnn (it ships its weights and works offline). "Left eye" is the eye on the image's
left (the viewer's left, smaller x), matching the ciplab file-name convention and mtcnn's ``left_eye``.
Regions are ellipses scaled by the inter-ocular distance, built on the explanation's own pixel grid (the
input image); each pixel belongs to exactly one region (eyes, then nose, then mouth, then face, then outside).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from explain.base import Explanation, check_image
from models.data import faces

REGIONS = ("left_eye", "right_eye", "nose", "mouth", "rest_of_face", "outside_face")
INNER = REGIONS[:4]
REGION_NAMES = {  # display name of each region
    "left_eye": "left eye", "right_eye": "right eye", "nose": "nose", "mouth": "mouth",
    "rest_of_face": "rest of face", "outside_face": "outside the face",
}
MIN_CONFIDENCE = 0.9

_detector = None  # tests may put a stand-in mtcnn here; otherwise models.faces' shared detector is used


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
    """The one MTCNN instance shared with models.faces (loaded once per process)."""
    return _detector if _detector is not None else faces._mtcnn()


def detect_landmarks(image: np.ndarray, min_confidence: float = MIN_CONFIDENCE) -> Landmarks | None:
    """The largest confident face's landmarks in ``image`` (a face crop), or None when no face is found."""
    image = check_image(image)
    with faces._lock:
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


@dataclass
class RegionSummary:
    """Evidence for the explanation's target per region; ``ranking`` is by mean evidence per pixel."""

    method: str
    target: str
    face_found: bool
    regions: dict[str, dict]  # name -> {"mean", "share", "pixels"}
    ranking: list[str]
    landmarks: Landmarks | None
    region_map: np.ndarray | None
    seconds: float = 0.0

    def top(self, among=INNER) -> str | None:
        ranked = [r for r in self.ranking if r in among]
        return ranked[0] if ranked else None

    def to_dict(self) -> dict:
        return {
            "method": self.method, "target": self.target, "face_found": self.face_found,
            "regions": self.regions, "ranking": self.ranking,
            "landmarks": None if self.landmarks is None else self.landmarks.to_dict(),
            "seconds": round(self.seconds, 4),
        }


def summarize(explanation: Explanation, image: np.ndarray | None = None, landmarks: Landmarks | None = None
              ) -> RegionSummary:
    """Aggregate an explanation's attribution per facial region.

    ``mean``: mean attribution per pixel of the region (evidence density, comparable across sizes);
    ``share``: the region's part of all positive evidence in the image. Pass ``landmarks`` to skip mtcnn.
    """
    started = time.perf_counter()
    attribution = np.asarray(explanation.attribution, dtype=np.float64)
    if landmarks is None:
        if image is None:
            raise ValueError("pass the image (to find landmarks) or landmarks")
        landmarks = detect_landmarks(image)
    if landmarks is None:
        return RegionSummary(explanation.method, explanation.target, False, {}, [], None, None,
                             time.perf_counter() - started)
    rmap = region_map(attribution.shape, landmarks)
    positive_total = float(np.clip(attribution, 0, None).sum()) or 1.0
    regions = {}
    for i, name in enumerate(REGIONS):
        mask = rmap == i
        n = int(mask.sum())
        vals = attribution[mask]
        regions[name] = {
            "mean": float(vals.mean()) if n else 0.0,
            "share": float(np.clip(vals, 0, None).sum() / positive_total) if n else 0.0,
            "pixels": n,
        }
    ranking = sorted((r for r in REGIONS if regions[r]["pixels"]), key=lambda r: -regions[r]["mean"])
    return RegionSummary(explanation.method, explanation.target, True, regions, ranking, landmarks, rmap,
                         time.perf_counter() - started)

"""Facial-region attribution: which of left eye, right eye, nose, mouth, rest of face or background drives
a verdict, for any :class:`~explain.base.Explanation`.

Landmarks come from mtcnn (it ships its weights and works offline). "Left eye" is the eye on the image's
left (the viewer's left, smaller x), matching the ciplab file-name convention and mtcnn's ``left_eye``.
Regions are ellipses scaled by the inter-ocular distance, built on the explanation's own pixel grid (the
input image); each pixel belongs to exactly one region (eyes, then nose, then mouth, then face, then outside).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from explain.base import Explanation
from models.data.landmarks import INNER, MIN_CONFIDENCE, REGIONS, Landmarks, detect_landmarks, region_map

__all__ = ["INNER", "MIN_CONFIDENCE", "REGIONS", "REGION_NAMES", "Landmarks", "RegionSummary", "detect_landmarks", "region_map",
           "summarize"]

REGION_NAMES = {  # display name of each region: left and right as the viewer sees the image
    "left_eye": "left eye (viewer's left)", "right_eye": "right eye (viewer's right)", "nose": "nose", "mouth": "mouth",
    "rest_of_face": "rest of face", "outside_face": "outside the face",
}


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

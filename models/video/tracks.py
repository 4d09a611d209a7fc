"""Faces over time: the faces found in sampled frames linked into tracks by box overlap (IoU), so that each
person in a clip gets one track. A track needs :data:`MIN_FRAMES` frames with a face; its P(fake) is the mean
over its frames and its spread their standard deviation (the spread across frames, used for "unsure" in place of
the spread across views, see models.detectors.base)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

MIN_FRAMES = 4  # frames with a face a track needs
MIN_IOU = 0.3  # box overlap that links a face to a track
MAX_GAP = 2  # sampled frames a track may miss (the face not found) and still continue


@dataclass
class Sighting:
    """One face in one sampled frame: ``box`` [x, y, w, h] in upright frame pixels, its P(fake), mtcnn's
    confidence; ``crop``: the model's input (the finished crop) when kept, else None."""

    time_s: float
    box: tuple[int, int, int, int]
    p_fake: float
    confidence: float = 1.0
    crop: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        return {"time_s": round(float(self.time_s), 3), "box": [int(v) for v in self.box],
                "p_fake": float(self.p_fake)}


@dataclass
class Track:
    """One person over time: ``track`` numbers start at 1 (in order of first appearance); ``frames`` in time
    order; ``p_fake`` the mean and ``spread`` the standard deviation of their P(fake); ``unsure`` by the
    detector's rule on (p_fake, spread); ``verdict`` "fake"/"real" at the detector's threshold."""

    track: int
    frames: list[Sighting]
    p_fake: float = 0.0
    spread: float = 0.0
    verdict: str = ""
    unsure: bool = False

    def to_dict(self) -> dict:
        return {"track": self.track, "p_fake": float(self.p_fake), "spread": round(float(self.spread), 6),
                "verdict": self.verdict, "unsure": bool(self.unsure), "frames": [f.to_dict() for f in self.frames]}

    @property
    def times(self) -> list[float]:
        return [f.time_s for f in self.frames]


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two boxes (x, y, w, h); 0 when they do not overlap."""
    ax, ay, aw, ah = (float(v) for v in a)
    bx, by, bw, bh = (float(v) for v in b)
    ix = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def link(frames: Sequence[Sequence[Sighting]], min_iou: float = MIN_IOU, max_gap: int = MAX_GAP
         ) -> list[list[Sighting]]:
    """Link the faces of successive sampled frames (``frames[i]``: the faces of sample i) into chains, greedily by
    IoU with each open chain's last box (highest overlap first, at least ``min_iou``). A chain that finds no face
    for more than ``max_gap`` samples is closed; a face that links to none starts a new chain. Chains come back
    in order of first appearance; short ones are kept (see :func:`build_tracks`)."""
    chains: list[list[Sighting]] = []
    open_: list[tuple[int, int]] = []  # (chain index, sample index of its last face)
    for i, faces in enumerate(frames):
        open_ = [(c, last) for c, last in open_ if i - last - 1 <= max_gap]
        pairs = sorted(((iou(chains[c][-1].box, f.box), c, j) for c, _ in open_ for j, f in enumerate(faces)),
                       reverse=True)
        used_c, used_f = set(), set()
        for score, c, j in pairs:
            if score < min_iou or c in used_c or j in used_f:
                continue
            chains[c].append(faces[j])
            used_c.add(c)
            used_f.add(j)
        open_ = [(c, i if c in used_c else last) for c, last in open_]
        for j, face in enumerate(faces):
            if j not in used_f:
                chains.append([face])
                open_.append((len(chains) - 1, i))
    return chains


def build_tracks(frames: Sequence[Sequence[Sighting]], detector, min_frames: int = MIN_FRAMES,
                 min_iou: float = MIN_IOU, max_gap: int = MAX_GAP) -> tuple[list[Track], int]:
    """(tracks of at least ``min_frames`` faces, numbered from 1 in order of first appearance; how many shorter
    chains were dropped). ``detector`` gives the threshold and the unsure rule (``detector.unsure(p, spread)``)."""
    chains = link(frames, min_iou, max_gap)
    kept = [c for c in chains if len(c) >= min_frames]
    tracks = []
    for number, chain in enumerate(kept, start=1):
        p = np.asarray([s.p_fake for s in chain], dtype=np.float64)
        mean, spread = float(p.mean()), float(p.std())
        tracks.append(Track(number, list(chain), mean, spread, detector.verdict(mean),
                            bool(np.asarray(detector.unsure(mean, spread)).reshape(-1)[0])))
    return tracks, len(chains) - len(kept)


def clip_verdict(tracks: Sequence[Track]) -> str:
    """"fake" if any track is confidently fake (verdict fake, not unsure); "real" if every track is confidently
    real; "no face" when there is no track; otherwise "unsure"."""
    if not tracks:
        return "no face"
    if any(t.verdict == "fake" and not t.unsure for t in tracks):
        return "fake"
    if all(t.verdict == "real" and not t.unsure for t in tracks):
        return "real"
    return "unsure"

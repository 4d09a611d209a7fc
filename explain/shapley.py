"""Exact Shapley values over facial regions: how much of P(fake) each region is responsible for.

The players are the six regions of :mod:`explain.regions` (left eye, right eye, nose, mouth, rest of face,
outside the face), built on mtcnn's five landmarks. With six players there are 2^6 = 64 coalitions, so the
values are **exact**, not sampled: one batch of 64 forward passes. ``v(S)`` is the detector's displayed
(calibrated) probability of the target class on the image with the regions *outside* ``S`` replaced by a fill:

- ``blur`` (default): a Gaussian blur of the image (sigma = side / 25 px): it removes the fine artefacts a
  detector reads and keeps the face's shape and colours, so a "removed" region still looks like a face;
- ``mean``: the image's mean colour;
- ``hide``: LIME's ``hide_color`` (a scalar, an RGB triple, or None for each region's own mean colour).

For target ``real`` v is 1 - P(fake), so every value's sign flips. The values add up exactly (efficiency):
Σφ = v(all regions) - v(no region) = the score minus the score of the fully filled image. ``attribution`` is
each region's φ painted on its pixels (positive = evidence for the target, in units of probability).
"""

from __future__ import annotations

import time
from math import factorial

import numpy as np

from explain.base import Explanation, check_image, resolve_target
from explain.params import DEFAULTS
from models.data.landmarks import REGIONS, Landmarks, detect_landmarks, region_map

METHOD = "shapley"
FILLS = ("blur", "mean", "hide")


class NoFaceError(ValueError):
    """No facial landmarks: Shapley values over facial regions do not apply."""


NO_FACE = "No face found (no facial landmarks), so region Shapley values do not apply to this image."


def fill_image(image: np.ndarray, fill: str = "blur", *, hide_color=DEFAULTS.hide_color,
               rmap: np.ndarray | None = None) -> np.ndarray:
    """The image a removed region is replaced by (HxWx3 float32 in 0..255)."""
    img = image.astype(np.float32)
    if fill == "blur":
        from skimage.filters import gaussian

        sigma = max(1.0, min(image.shape[:2]) / 25.0)
        return gaussian(img, sigma=sigma, channel_axis=-1, preserve_range=True).astype(np.float32)
    if fill == "mean":
        return np.broadcast_to(img.reshape(-1, 3).mean(axis=0), img.shape).astype(np.float32)
    if fill == "hide":
        if hide_color is not None:
            return np.broadcast_to(np.asarray(hide_color, np.float32), img.shape).astype(np.float32)
        if rmap is None:
            raise ValueError("fill 'hide' with hide_color None needs the region map")
        out = np.empty_like(img)
        for r in np.unique(rmap):
            out[rmap == r] = img[rmap == r].mean(axis=0)
        return out
    raise ValueError(f"fill must be one of {', '.join(FILLS)}, not {fill!r}")


def coalitions(n: int = len(REGIONS)) -> np.ndarray:
    """All 2^n coalitions as a (2^n, n) bool array; row i has player j iff bit j of i is set."""
    return np.array([[(i >> j) & 1 for j in range(n)] for i in range(2 ** n)], dtype=bool)


def shapley_values(values: np.ndarray, n: int) -> np.ndarray:
    """Exact Shapley values from v of all 2^n coalitions (indexed as in :func:`coalitions`)."""
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (2 ** n,):
        raise ValueError(f"need {2 ** n} coalition values, got {values.shape}")
    weight = [factorial(s) * factorial(n - s - 1) / factorial(n) for s in range(n)]
    phi = np.zeros(n)
    for i in range(n):
        bit = 1 << i
        for s in range(2 ** n):
            if not s & bit:
                phi[i] += weight[bin(s).count("1")] * (values[s | bit] - values[s])
    return phi


def composites(image: np.ndarray, rmap: np.ndarray, filled: np.ndarray) -> np.ndarray:
    """The 2^6 images, one per coalition: pixels of regions in the coalition kept, the rest filled."""
    players = coalitions(len(REGIONS))
    keep = players[:, rmap]  # (64, H, W): region of each pixel in the coalition
    out = np.where(keep[..., None], image.astype(np.float32)[None], filled[None])
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def explain(detector, image, *, target: str = "verdict", fill: str = "blur", hide_color=DEFAULTS.hide_color,
            landmarks: Landmarks | None = None) -> Explanation:
    """Exact region Shapley values of ``detector``'s P(target) on ``image`` (see the module doc).

    Pass ``landmarks`` to skip mtcnn. Raises :class:`NoFaceError` (one line) when there is no face. extras:
    ``values`` (region -> φ), ``base`` (v of no region), ``full`` (v of all regions), ``fill``, ``landmarks``.
    """
    start = time.perf_counter()
    image = check_image(image)
    resolve_target(target, 0.0)
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {', '.join(FILLS)}, not {fill!r}")
    if landmarks is None:
        landmarks = detect_landmarks(image)
    if landmarks is None:
        raise NoFaceError(NO_FACE)
    rmap = region_map(image.shape[:2], landmarks)
    filled = fill_image(image, fill, hide_color=hide_color, rmap=rmap)
    p = np.asarray(detector.predict(composites(image, rmap, filled)), dtype=np.float64)
    p_fake = float(p[-1])  # the last coalition keeps every region: the image itself
    resolved = resolve_target(target, p_fake, detector.threshold)
    v = p if resolved == "fake" else 1.0 - p
    phi = shapley_values(v, len(REGIONS))
    attribution = phi[rmap.astype(np.int64)].astype(np.float32)
    values = {r: float(x) for r, x in zip(REGIONS, phi)}
    return Explanation(
        method=METHOD, target=resolved, p_fake=p_fake, attribution=attribution,
        segments=rmap.astype(np.int32),
        params={"fill": fill, "hide_color": hide_color if fill == "hide" else None},
        seconds=time.perf_counter() - start,
        extras={"values": values, "base": float(v[0]), "full": float(v[-1]), "fill": fill,
                "coalition_values": v.astype(np.float32), "landmarks": landmarks.to_dict(),
                "pixels": {r: int((rmap == i).sum()) for i, r in enumerate(REGIONS)}},
    )


def ranking(values: dict[str, float], among=REGIONS) -> list[str]:
    """Regions by φ, largest evidence for the target first."""
    return sorted((r for r in among if r in values), key=lambda r: -values[r])


__all__ = ["FILLS", "METHOD", "NO_FACE", "NoFaceError", "coalitions", "composites", "explain", "fill_image",
           "ranking", "shapley_values"]

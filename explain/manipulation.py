"""The manipulation map: a detector's own per-pixel answer to "where was this face edited?".

Only detectors with a map head have one (``detector.supports_manipulation_map``: a Keras model with a
``mask`` output next to ``p_fake``, see :mod:`models.detectors.base`). ``explain(detector, image)`` reads
``detector.manipulation_map`` (P(manipulated) per pixel, resized bilinearly from the head's m x m grid to
the image's size). ``attribution`` follows the shared convention (positive = evidence for the target): the
map itself for target "fake", the negated map for "real". ``extras["map"]`` is the map in [0, 1] as the
model gave it.
"""

from __future__ import annotations

import time

import numpy as np

from explain.base import Explanation, check_image, resolve_target

METHOD = "manipulation"


def applies(detector) -> bool:
    """Whether ``detector`` has a manipulation-map head."""
    return bool(getattr(detector, "supports_manipulation_map", False))


def not_applicable_line(detector) -> str:
    """The one line shown where the map does not apply."""
    return f"The manipulation map does not apply to {getattr(detector, 'name', detector)} (it has no map head)."


def explain(detector, image, *, target: str = "verdict") -> Explanation:
    """The manipulation map of ``image`` (HxWx3 uint8) as an Explanation (see the module doc).

    Raises ValueError (one line) for a detector without a map head. extras: ``map`` (HxW float32 in
    [0, 1]), ``mean`` and ``max`` of the map, ``share_over_half`` (share of pixels with P(manipulated) >= 0.5).
    """
    start = time.perf_counter()
    image = check_image(image)
    resolve_target(target, 0.0)  # reject a bad target before any work
    if not applies(detector):
        raise ValueError(not_applicable_line(detector))
    p_fake = float(detector.predict([image])[0])
    resolved = resolve_target(target, p_fake, detector.threshold)
    heat = np.asarray(detector.manipulation_map([image])[0], dtype=np.float32)
    attribution = heat if resolved == "fake" else -heat
    return Explanation(
        method=METHOD,
        target=resolved,
        p_fake=p_fake,
        attribution=attribution.astype(np.float32),
        params={},
        seconds=time.perf_counter() - start,
        extras={"map": heat, "mean": float(heat.mean()), "max": float(heat.max()),
                "share_over_half": float((heat >= 0.5).mean())},
    )

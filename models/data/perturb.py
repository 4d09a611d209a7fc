"""Perturbations for robustness checks: ``jpeg:Q`` (re-encode at quality Q) and ``resize:F`` (downscale by F,
then back up to the original size), as social media and messengers do to shared images."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image

Perturbation = Callable[[np.ndarray], np.ndarray]


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """Encode as JPEG at ``quality`` and decode again (uint8 RGB)."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="JPEG", quality=int(quality))
    return np.asarray(Image.open(buf).convert("RGB"))


def resize(image: np.ndarray, factor: float) -> np.ndarray:
    """Downscale by ``factor`` and back up to the original size (bilinear), uint8 RGB."""
    h, w = image.shape[:2]
    small = Image.fromarray(np.ascontiguousarray(image)).resize(
        (max(1, round(w * factor)), max(1, round(h * factor))), Image.BILINEAR
    )
    return np.asarray(small.resize((w, h), Image.BILINEAR))


def parse(spec: str) -> Perturbation:
    """``"jpeg:70"`` or ``"resize:0.5"`` -> a function on HxWx3 uint8 images. Raises ValueError on a bad spec."""
    kind, _, value = spec.partition(":")
    try:
        if kind == "jpeg":
            q = int(value)
            if not 1 <= q <= 100:
                raise ValueError
            return lambda img: jpeg(img, q)
        if kind == "resize":
            f = float(value)
            if not 0 < f <= 1:
                raise ValueError
            return lambda img: resize(img, f)
    except ValueError:
        pass
    raise ValueError(f"bad --perturb {spec!r}: use jpeg:Q (Q in 1..100) or resize:F (0 < F <= 1)")

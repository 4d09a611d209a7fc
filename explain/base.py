"""The one result type and calling convention shared by every explainer.

Each method module exposes ``explain(detector, image, *, target="verdict", **params) -> Explanation``:
``image`` is an HxWx3 uint8 RGB face crop, ``detector`` what :func:`models.load_model` returns, and
``target`` is ``"verdict"`` (the predicted class), ``"fake"`` or ``"real"``. ``attribution`` is always an
HxW float map at the *input image's* size, where positive values are evidence **for the target class**,
so maps from models of different input sizes compare.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.detectors.labels import THRESHOLD

TARGETS = ("verdict", "fake", "real")


@dataclass
class Explanation:
    method: str
    target: str  # the resolved class: "fake" or "real"
    p_fake: float
    attribution: np.ndarray  # HxW float, at the input image's size; > 0 supports the target
    segments: np.ndarray | None = None  # HxW int ids 0..K-1, or None
    params: dict = field(default_factory=dict)
    seconds: float = 0.0
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def p_target(self) -> float:
        """The model's probability of the target class."""
        return self.p_fake if self.target == "fake" else 1.0 - self.p_fake

    def to_dict(self, arrays: bool = False) -> dict:
        """JSON-ready summary; with ``arrays=True`` the maps and extras' arrays are included as lists."""

        def conv(v):
            if isinstance(v, np.ndarray):
                return v.tolist() if arrays else {"shape": list(v.shape), "dtype": str(v.dtype)}
            if isinstance(v, np.generic):
                return v.item()
            if isinstance(v, dict):
                return {str(k): conv(x) for k, x in v.items()}
            if isinstance(v, (list, tuple)):
                return [conv(x) for x in v]
            return v

        return {
            "method": self.method,
            "target": self.target,
            "p_fake": float(self.p_fake),
            "p_target": float(self.p_target),
            "attribution": conv(self.attribution),
            "segments": None if self.segments is None else conv(self.segments),
            "params": conv(self.params),
            "seconds": round(float(self.seconds), 4),
            "extras": conv(self.extras),
        }


def resolve_target(target: str, p_fake: float, threshold: float = THRESHOLD) -> str:
    """``"verdict"`` -> the predicted class at ``threshold`` (pass ``detector.threshold``, the model's
    operating point); ``"fake"``/``"real"`` unchanged."""
    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}, not {target!r}")
    if target == "verdict":
        return "fake" if p_fake >= threshold else "real"
    return target


def calibrated(detector, p_raw) -> np.ndarray:
    """Calibrated P(fake) for the raw model output an explainer read off the network itself (Grad-CAM and
    activations run the Keras graph directly). Calibration is monotone, so gradients on the raw output
    point the same way; objects without ``calibrate`` are taken as already calibrated."""
    fn = getattr(detector, "calibrate", None)
    return np.asarray(p_raw, np.float32) if fn is None else fn(p_raw)


def check_image(image) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"image must be an HxWx3 uint8 RGB array, got {arr.shape} {arr.dtype}")
    return arr


def to_image_size(attribution: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a model-resolution map to the input image's HxW (bilinear; values are not rescaled)."""
    if attribution.shape[:2] == tuple(shape):
        return attribution.astype(np.float32)
    from skimage.transform import resize

    return resize(attribution.astype(np.float32), shape, order=1, mode="edge", anti_aliasing=False,
                  preserve_range=True).astype(np.float32)

"""The calibration map and operating-point checks a detector applies (numpy only).

``apply`` maps raw scores to calibrated P(fake): ``p = sigmoid(a * logit(p_raw) + b)`` with ``a > 0``
(Platt scaling, fitted by :mod:`models.analysis.calibration`), monotone, so a model's ranking (ROC AUC)
never changes. ``invert`` is its inverse (for moving a threshold between scales).
"""

from __future__ import annotations

import math

import numpy as np

EPS = 1e-7  # raw scores are clipped to [EPS, 1 - EPS] before the logit

METHODS = ("platt", "identity")

def logit(p) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1.0 - EPS)
    return np.log(p) - np.log1p(-p)

def sigmoid(z) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    e = np.exp(z[~pos])
    out[~pos] = e / (1.0 + e)
    return out

def check_calibration(calibration: dict | None) -> None:
    """Raise ValueError unless ``calibration`` is None or a valid monotone map."""
    if calibration is None:
        return
    if not isinstance(calibration, dict):
        raise ValueError(f"calibration must be a dict, not {type(calibration).__name__}")
    method = calibration.get("method")
    if method not in METHODS:
        raise ValueError(f"calibration method must be one of {', '.join(METHODS)}, not {method!r}")
    if method == "platt":
        try:
            a, b = float(calibration["a"]), float(calibration["b"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"platt calibration needs numbers a and b ({exc})") from None
        if not (math.isfinite(a) and math.isfinite(b) and a > 0):
            raise ValueError(f"platt calibration needs a > 0 and finite b, not a={a!r}, b={b!r}")

def apply(p_raw, calibration: dict | None) -> np.ndarray:
    """Calibrated P(fake) (float32) for raw scores; the identity when ``calibration`` is None or empty."""
    p = np.asarray(p_raw)
    if not calibration or calibration.get("method") == "identity":
        return p.astype(np.float32, copy=False)
    check_calibration(calibration)
    if p.size == 0 or (float(calibration["a"]) == 1.0 and float(calibration["b"]) == 0.0):
        return p.astype(np.float32, copy=False)  # an identity fit (a fallback): the scores as they are
    out = sigmoid(float(calibration["a"]) * logit(p) + float(calibration["b"]))
    return out.astype(np.float32)

def invert(p, calibration: dict | None) -> np.ndarray:
    """The raw score that ``apply`` maps to ``p`` (float64; for moving a threshold between scales)."""
    p = np.asarray(p, dtype=np.float64)
    if not calibration or calibration.get("method") == "identity":
        return p
    check_calibration(calibration)
    return sigmoid((logit(p) - float(calibration["b"])) / float(calibration["a"]))

def check_operating_point(op: dict | None) -> None:
    """Raise ValueError unless ``op`` is None or holds a threshold in (0, 1)."""
    if op is None:
        return
    if not isinstance(op, dict):
        raise ValueError(f"operating_point must be a dict, not {type(op).__name__}")
    check_threshold(op.get("threshold"))

def check_threshold(threshold) -> float:
    if isinstance(threshold, bool):
        raise ValueError(f"threshold must be a number in (0, 1), not {threshold!r}")
    try:
        t = float(threshold)
    except (TypeError, ValueError):
        raise ValueError(f"threshold must be a number in (0, 1), not {threshold!r}") from None
    if not (0.0 < t < 1.0):
        raise ValueError(f"threshold must be in (0, 1), not {threshold!r}")
    return t

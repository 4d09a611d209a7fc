"""Spectrum baseline: the azimuthally averaged log power spectrum of the grayscale image, fed to a
scikit-learn logistic regression. GAN upsampling leaves traces in the high frequencies (Durall et al. 2020,
Dzanic et al. 2020); this cheap, fast reference shows how far spectra alone get on each source.

Stored as plain arrays (``<name>.npz``: scaler mean/scale, coefficients, intercept) plus ``<name>.json``:
never a pickle. Loaded by :func:`models.load_model` like the CNNs, with ``keras_model = None``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.data.preprocess import batch_to_model_input
from models.detectors.base import Detector

BINS = 64


def spectrum_features(images, size: int = 128, bins: int = BINS, chunk: int = 256) -> np.ndarray:
    """(N, bins) azimuthal averages of log(|FFT|^2) of each image's grayscale, resized to ``size`` px.

    Works ``chunk`` images at a time, so memory stays flat (a 10k-image FFT at once needs ~10 GB).
    """
    if len(images) > chunk:
        return np.concatenate([_features(images[s : s + chunk], size, bins) for s in range(0, len(images), chunk)])
    return _features(images, size, bins)


def _features(images, size: int, bins: int) -> np.ndarray:
    x = batch_to_model_input(images, size)  # the shared preprocessing path, [0, 1]
    gray = x[..., 0] * 0.299 + x[..., 1] * 0.587 + x[..., 2] * 0.114
    power = np.abs(np.fft.fftshift(np.fft.fft2(gray), axes=(-2, -1))) ** 2
    logp = np.log(power + 1e-8)
    yy, xx = np.indices((size, size))
    r = np.hypot(yy - size // 2, xx - size // 2)
    idx = np.minimum((r / (size / 2) * bins).astype(int), bins)  # radii past the inscribed circle -> bin "bins"
    counts = np.bincount(idx.ravel(), minlength=bins + 1)[:bins]
    out = np.empty((len(gray), bins), np.float32)
    for i, lp in enumerate(logp):
        out[i] = np.bincount(idx.ravel(), weights=lp.ravel(), minlength=bins + 1)[:bins] / np.maximum(counts, 1)
    return out


class SpectrumDetector(Detector):
    """Logistic regression on standardised spectrum features; P(fake) = sigmoid(w . z + b)."""

    keras_model = None
    supports_gradcam = False
    supports_activations = False

    def __init__(self, name: str, mean, scale, coef, intercept, input_size: int = 128, bins: int = BINS,
                 metadata: dict | None = None, path: Path | None = None):
        self.name, self.input_size, self.bins = name, int(input_size), int(bins)
        self.mean, self.scale = np.asarray(mean, np.float64), np.asarray(scale, np.float64)
        self.coef, self.intercept = np.asarray(coef, np.float64).ravel(), float(np.ravel(intercept)[0])
        self.metadata, self.path = metadata or {}, path

    def predict_raw(self, images, batch_size: int = 256) -> np.ndarray:
        """The logistic regression's own P(fake); ``predict`` (the base class's) applies the calibration."""
        out = np.empty((len(images),), np.float32)
        for s in range(0, len(images), batch_size):
            f = spectrum_features(images[s : s + batch_size], self.input_size, self.bins)
            z = (f - self.mean) / self.scale
            out[s : s + len(f)] = 1.0 / (1.0 + np.exp(-(z @ self.coef + self.intercept)))
        return out

    def save(self, path: Path) -> None:
        np.savez(path, mean=self.mean, scale=self.scale, coef=self.coef, intercept=np.array([self.intercept]),
                 input_size=np.array([self.input_size]), bins=np.array([self.bins]))

    @classmethod
    def load(cls, path: Path, metadata: dict | None = None) -> SpectrumDetector:
        with np.load(path, allow_pickle=False) as z:
            return cls(metadata.get("name") if metadata else path.stem, z["mean"], z["scale"], z["coef"],
                       z["intercept"], int(z["input_size"][0]), int(z["bins"][0]), metadata, path)


def fit(features: np.ndarray, labels, c: float = 1.0, seed: int = 0):
    """Standardise and fit a logistic regression; returns (mean, scale, coef, intercept)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(features)
    clf = LogisticRegression(C=c, max_iter=5000, random_state=seed).fit(scaler.transform(features), labels)
    return scaler.mean_, scaler.scale_, clf.coef_.ravel(), clf.intercept_

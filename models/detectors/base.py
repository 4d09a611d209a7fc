"""The Detector API every script, page and explainer relies on.

``predict`` takes RGB uint8 images of any size and returns P(fake) per image, preprocessing them with
the same function training used (:mod:`models.data.preprocess`).

``predict`` is calibrated: subclasses implement ``predict_raw`` (the model's own output) and ``predict``
applies ``metadata["calibration"]`` (:mod:`models.detectors.calibration`, monotone, the identity when
absent). Verdicts use ``Detector.threshold``: the saved operating point
``metadata["operating_point"]["threshold"]``, else ``THRESHOLD``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.data.preprocess import batch_to_model_input
from models.detectors.calibration import apply as apply_calibration
from models.detectors.labels import threshold_of, verdict


class Detector:
    """A face-crop detector: ``predict(images) -> P(fake)`` of shape (N,)."""

    name: str
    input_size: int
    metadata: dict
    keras_model = None
    path: Path | None = None
    supports_gradcam = True  # capability flags the pages and the explain CLI read
    supports_activations = True

    def predict_raw(self, images, batch_size: int = 256) -> np.ndarray:
        """The model's uncalibrated P(fake) per image, shape (N,) float32."""
        raise NotImplementedError

    def predict(self, images, batch_size: int = 256) -> np.ndarray:
        """Calibrated P(fake) per image, shape (N,) float32: what every page, CLI and explainer shows."""
        return self.calibrate(self.predict_raw(images, batch_size=batch_size))

    @property
    def calibration(self) -> dict | None:
        """``metadata["calibration"]`` (a monotone map of raw scores, see models.calibration), or None."""
        return (getattr(self, "metadata", None) or {}).get("calibration")

    def calibrate(self, p_raw) -> np.ndarray:
        """Raw scores (e.g. a Keras model's output) -> calibrated P(fake), float32."""
        return apply_calibration(p_raw, self.calibration)

    @property
    def operating_point(self) -> dict | None:
        return (getattr(self, "metadata", None) or {}).get("operating_point")

    @property
    def threshold(self) -> float:
        """The verdict threshold on P(fake): the saved operating point, else models.labels.THRESHOLD."""
        return threshold_of(getattr(self, "metadata", None))

    def verdict(self, p_fake: float) -> str:
        """The verdict ("fake" or "real") at this detector's threshold."""
        return verdict(float(p_fake), self.threshold)

    def preprocess(self, images) -> np.ndarray:
        """The exact float32 batch the model sees, (N, S, S, 3) in [0, 1]."""
        return batch_to_model_input(images, self.input_size)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, input_size={self.input_size})"

class KerasDetector(Detector):
    """A detector backed by a single-output sigmoid ``keras.Model``."""

    def __init__(self, keras_model, name: str, metadata: dict | None = None, path: Path | None = None):
        self.keras_model = keras_model
        self.name = name
        self.metadata = metadata or {}
        self.path = path
        shape = keras_model.input_shape
        self.input_size = int(self.metadata.get("input_size") or shape[1])
        if shape[1] is not None and int(shape[1]) != self.input_size:
            raise ValueError(f"{name}: metadata input_size {self.input_size} != model input {shape[1]}")

    def _compiled_forward(self):
        """The model's inference call as one traced TensorFlow graph (no per-layer eager overhead)."""
        if getattr(self, "_forward", None) is None:
            import tensorflow as tf

            spec = tf.TensorSpec([None, self.input_size, self.input_size, 3], tf.float32)
            self._forward = tf.function(lambda x: self.keras_model(x, training=False), input_signature=[spec],
                                        autograph=False)
        return self._forward

    def predict_batch_raw(self, x: np.ndarray) -> np.ndarray:
        """The model's uncalibrated output for an already preprocessed float32 batch."""
        if len(x) == 0:
            return np.zeros((0,), dtype=np.float32)
        out = self._compiled_forward()(np.asarray(x, dtype=np.float32))
        return np.asarray(out, dtype=np.float32).reshape(len(x), -1)[:, 0]

    def predict_batch(self, x: np.ndarray) -> np.ndarray:
        """Calibrated P(fake) for an already preprocessed float32 batch."""
        return self.calibrate(self.predict_batch_raw(x))

    def predict_raw(self, images, batch_size: int = 256) -> np.ndarray:
        n = len(images)
        out = np.empty((n,), dtype=np.float32)
        for start in range(0, n, batch_size):
            chunk = images[start : start + batch_size]
            out[start : start + len(chunk)] = self.predict_batch_raw(self.preprocess(chunk))
        return out

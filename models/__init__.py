"""Deepfake Lens detectors: data, architectures, training and the Detector API."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter off the CLIs

from models._quiet import import_tensorflow_quietly  # noqa: E402

import_tensorflow_quietly()

from models.detector import (
    THRESHOLD,
    Detector,
    KerasDetector,
    ModelNotFoundError,
    default_model_name,
    list_models,
    load_model,
    verdict,
)

__all__ = [
    "THRESHOLD",
    "Detector",
    "KerasDetector",
    "ModelNotFoundError",
    "default_model_name",
    "list_models",
    "load_model",
    "verdict",
]

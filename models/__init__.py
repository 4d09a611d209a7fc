"""Deepfake Lens detectors: data, architectures, training and the Detector API (see docs/ARCHITECTURE.md).

The Detector API (``load_model``, ``Detector``...) is exported lazily, so that
``models.architectures`` can be imported without TensorFlow (e.g. to train with
Keras on the JAX backend).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter off the CLIs

if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
    from models._quiet import import_tensorflow_quietly

    import_tensorflow_quietly()

_EXPORTS = {
    "THRESHOLD": "models.detectors.labels",
    "verdict": "models.detectors.labels",
    "Detector": "models.detectors.base",
    "KerasDetector": "models.detectors.base",
    "ModelNotFoundError": "models.detectors.registry",
    "default_model_name": "models.detectors.registry",
    "list_models": "models.detectors.registry",
    "load_model": "models.detectors.registry",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'models' has no attribute {name!r}")

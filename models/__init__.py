"""Deepfake Lens detectors: data, architectures, training and the Detector API.

The Detector API (``load_model``, ``Detector``...) is exported lazily, so that
``models.architectures`` can be imported without TensorFlow (e.g. to train with
Keras on the JAX backend).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter off the CLIs

if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
    from models._quiet import import_tensorflow_quietly

    import_tensorflow_quietly()

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


def __getattr__(name):
    if name in __all__:
        from models import detector

        return getattr(detector, name)
    raise AttributeError(f"module 'models' has no attribute {name!r}")

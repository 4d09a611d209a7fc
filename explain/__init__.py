"""Deepfake Lens explainers: LIME, Grad-CAM, activations, facial regions and faithfulness.

Every method module exposes ``explain(detector, image, *, target="verdict", **params)`` and returns an
:class:`explain.base.Explanation`.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from explain.base import TARGETS, Explanation, resolve_target  # noqa: E402

__all__ = ["TARGETS", "Explanation", "resolve_target"]

"""The Detector API every script, page and explainer relies on.

``load_model(name_or_path)`` returns a :class:`Detector`. ``predict`` takes RGB
uint8 images of any size and returns P(fake) per image, preprocessing them with
the same function training used (:mod:`models.preprocess`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from models.labels import THRESHOLD, verdict  # noqa: F401  (re-exported)
from models.preprocess import batch_to_model_input

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets" / "models"
DEFAULT_FILE = ASSETS_DIR / "DEFAULT"


class ModelNotFoundError(FileNotFoundError):
    """No model of that name or path."""


class Detector:
    """A face-crop detector: ``predict(images) -> P(fake)`` of shape (N,)."""

    name: str
    input_size: int
    metadata: dict
    keras_model = None
    path: Path | None = None
    supports_gradcam = True  # capability flags the pages and the explain CLI read
    supports_activations = True

    def predict(self, images, batch_size: int = 256) -> np.ndarray:
        raise NotImplementedError

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
            self._forward = tf.function(lambda x: self.keras_model(x, training=False), input_signature=[spec])
        return self._forward

    def predict_batch(self, x: np.ndarray) -> np.ndarray:
        """P(fake) for an already preprocessed float32 batch."""
        if len(x) == 0:
            return np.zeros((0,), dtype=np.float32)
        out = self._compiled_forward()(np.asarray(x, dtype=np.float32))
        return np.asarray(out, dtype=np.float32).reshape(len(x), -1)[:, 0]

    def predict(self, images, batch_size: int = 256) -> np.ndarray:
        n = len(images)
        out = np.empty((n,), dtype=np.float32)
        for start in range(0, n, batch_size):
            chunk = images[start : start + batch_size]
            out[start : start + len(chunk)] = self.predict_batch(self.preprocess(chunk))
        return out


def default_model_name() -> str:
    """The shipped default detector, named in one place: ``assets/models/DEFAULT``."""
    env = os.environ.get("DEEPFAKE_MODEL")
    if env:
        return env
    return DEFAULT_FILE.read_text().strip()


MODEL_SUFFIXES = (".keras", ".npz")  # Keras models; spectrum baselines (plain arrays, never pickles)


def list_models(assets_dir: Path | None = None) -> list[str]:
    """Names of the installed models (``<name>.keras`` or ``<name>.npz`` under ``assets/models``)."""
    assets_dir = ASSETS_DIR if assets_dir is None else Path(assets_dir)
    if not assets_dir.is_dir():
        return []
    return sorted(p.stem for p in assets_dir.iterdir() if p.suffix in MODEL_SUFFIXES)


def resolve_model_path(name_or_path: str | os.PathLike | None) -> Path:
    name_or_path = name_or_path or default_model_name()
    candidate = Path(name_or_path)
    candidates = [candidate] + [candidate.with_suffix(s) for s in MODEL_SUFFIXES] + [
        ASSETS_DIR / f"{name_or_path}{s}" for s in MODEL_SUFFIXES]
    for path in candidates:
        if path.is_file() and path.suffix in MODEL_SUFFIXES:
            return path
    available = ", ".join(list_models()) or "none"
    raise ModelNotFoundError(f"no model named {str(name_or_path)!r} (installed: {available})")


def read_metadata(model_path: Path) -> dict:
    meta_path = model_path.with_suffix(".json")
    if meta_path.is_file():
        return json.loads(meta_path.read_text())
    return {}


_CACHE: dict[tuple[str, float], Detector] = {}


def load_model(name_or_path: str | os.PathLike | None = None, *, cache: bool = True) -> Detector:
    """Load a detector by bare name (resolved in ``assets/models/``) or by path; None = the default."""
    path = resolve_model_path(name_or_path).resolve()
    key = (str(path), path.stat().st_mtime)
    if cache and key in _CACHE:
        return _CACHE[key]
    import keras

    metadata = read_metadata(path)
    if path.suffix == ".npz":
        from models.spectrum import SpectrumDetector

        try:
            detector = SpectrumDetector.load(path, metadata)
        except (OSError, ValueError, KeyError) as exc:
            raise ModelNotFoundError(f"cannot load model {path.name}: {type(exc).__name__}: {exc}") from exc
        if cache:
            _CACHE[key] = detector
        return detector
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # corrupt or incompatible file: one clear line
        raise ModelNotFoundError(f"cannot load model {path.name}: {type(exc).__name__}: {exc}") from exc
    detector = KerasDetector(model, name=metadata.get("name") or path.stem, metadata=metadata, path=path)
    if cache:
        _CACHE[key] = detector
    return detector

"""The Detector API every script, page and explainer relies on.

``load_model(name_or_path)`` returns a :class:`Detector`. ``predict`` takes RGB
uint8 images of any size and returns P(fake) per image, preprocessing them with
the same function training used (:mod:`models.preprocess`).

``predict`` is calibrated: subclasses implement ``predict_raw`` (the model's own
output) and ``predict`` applies ``metadata["calibration"]`` (:mod:`models.calibration`,
monotone, the identity when absent). Verdicts use ``Detector.threshold``: the saved
operating point ``metadata["operating_point"]["threshold"]``, else ``THRESHOLD``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import threading
from pathlib import Path

import numpy as np

from models.calibration import apply as apply_calibration
from models.calibration import check_calibration, check_operating_point
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
        op = self.operating_point
        if op and op.get("threshold") is not None:
            return float(op["threshold"])
        return THRESHOLD

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


def _metadata_state(model_path: Path) -> tuple[int | None, bytes | None]:
    """(mtime_ns, raw bytes) of the model's JSON, or (None, None) when there is none."""
    meta_path = model_path.with_suffix(".json")
    try:
        mtime = meta_path.stat().st_mtime_ns
        return mtime, meta_path.read_bytes()
    except FileNotFoundError:
        return None, None


def _check_metadata(path: Path, metadata: dict) -> None:
    """One clear error for a JSON whose calibration or operating point is unusable."""
    try:
        if not isinstance(metadata, dict):
            raise ValueError("the JSON does not hold an object")
        check_calibration(metadata.get("calibration"))
        check_operating_point(metadata.get("operating_point"))
    except ValueError as exc:
        raise ModelNotFoundError(f"cannot load model {path.name}: bad metadata in {path.with_suffix('.json').name}: "
                                 f"{exc}") from exc


# (model path, model mtime_ns, JSON mtime_ns, JSON sha1) -> Detector: saving a calibration or an operating
# point into the JSON gives a new key, so the next load_model sees it without a restart.
_CACHE: dict[tuple, Detector] = {}
_CACHE_LOCK = threading.Lock()  # Streamlit sessions load models from several threads


def load_model(name_or_path: str | os.PathLike | None = None, *, cache: bool = True) -> Detector:
    """Load a detector by bare name (resolved in ``assets/models/``) or by path; None = the default.

    Cached per model file *and* JSON contents: an operating point or calibration saved into the JSON is
    used by the next call.
    """
    path = resolve_model_path(name_or_path).resolve()
    meta_mtime, meta_bytes = _metadata_state(path)
    key = (str(path), path.stat().st_mtime_ns, meta_mtime,
           None if meta_bytes is None else hashlib.sha1(meta_bytes).hexdigest())
    if cache:
        with _CACHE_LOCK:
            if key in _CACHE:
                return _CACHE[key]
    try:
        metadata = json.loads(meta_bytes) if meta_bytes is not None else {}
    except ValueError as exc:
        raise ModelNotFoundError(f"cannot load model {path.name}: {path.with_suffix('.json').name} is not valid "
                                 f"JSON: {exc}") from exc
    _check_metadata(path, metadata)
    detector = None
    if cache:
        with _CACHE_LOCK:
            stale = [k for k in _CACHE if k[0] == key[0]]  # one detector per file: drop stale versions
            olds = [(k, _CACHE.pop(k)) for k in stale]
        for old_key, old in olds:
            if old_key[1] == key[1] and _static(old.metadata) == _static(metadata):
                detector = copy.copy(old)  # only the calibration / operating point changed: same weights
                detector.metadata = metadata
    if detector is None:
        detector = _load_uncached(path, metadata)
    if cache:
        with _CACHE_LOCK:
            _CACHE[key] = detector
    return detector


SETTINGS = ("calibration", "operating_point")  # metadata that can change without reloading the weights


def _static(metadata: dict) -> dict:
    return {k: v for k, v in metadata.items() if k not in SETTINGS}


def _load_uncached(path: Path, metadata: dict) -> Detector:
    if path.suffix == ".npz":
        from models.spectrum import SpectrumDetector

        try:
            detector = SpectrumDetector.load(path, metadata)
        except (OSError, ValueError, KeyError) as exc:
            raise ModelNotFoundError(f"cannot load model {path.name}: {type(exc).__name__}: {exc}") from exc
        return detector
    import keras

    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # corrupt or incompatible file: one clear line
        raise ModelNotFoundError(f"cannot load model {path.name}: {type(exc).__name__}: {exc}") from exc
    return KerasDetector(model, name=metadata.get("name") or path.stem, metadata=metadata, path=path)

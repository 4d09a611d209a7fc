"""The Detector API every script, page and explainer relies on.

``predict`` takes RGB uint8 images of any size and returns P(fake) per image, preprocessing them with
the same function training used (:mod:`models.data.preprocess`).

``predict`` is calibrated: subclasses implement ``predict_raw`` (the model's own output) and ``predict``
applies ``metadata["calibration"]`` (:mod:`models.detectors.calibration`, monotone, the identity when
absent). Verdicts use ``Detector.threshold``: the saved operating point
``metadata["operating_point"]["threshold"]``, else ``THRESHOLD``.

Keras models may have one output (P(fake)) or two named outputs, ``p_fake`` (N, 1) first and ``mask``
(N, m, m, 1): every path reads ``p_fake`` (:func:`select_output`); the mask head feeds
:meth:`Detector.manipulation_map` (``supports_manipulation_map``).

"Unsure", defined once: :meth:`Detector.views_spread` is max - min of the calibrated P(fake) over
:data:`N_VIEWS` views of the model input (the input itself, its horizontal flip, and shifts of
:data:`VIEW_SHIFT` px left, right, up and down with reflect padding); :meth:`Detector.unsure` flags a score
when ``spread > delta`` or ``|p_fake - threshold| < epsilon``, with ``delta``/``epsilon`` from the model
JSON's ``"unsure"`` block (fitted on val by ``python -m models.calibration NAME --unsure``), else
:data:`DEFAULT_UNSURE`. The shown P(fake) stays the single-view score (``predict``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.data.preprocess import batch_to_model_input
from models.detectors.calibration import apply as apply_calibration
from models.detectors.labels import threshold_of, unsure_mask, verdict

P_FAKE, MASK = "p_fake", "mask"  # the output names of a two-output (detector_v2-style) model
VIEW_SHIFT = 2  # px, at the model's input size
N_VIEWS = 6  # original, horizontal flip, shifted right, left, down, up
DEFAULT_UNSURE = {"delta": 0.1, "epsilon": 0.05}  # used when the model JSON has no "unsure" block


class NoManipulationMapError(ValueError):
    """The detector has no manipulation-map head; the message is one line for the user."""


def check_crop_recipe(recipe) -> dict | None:
    """The recipe as ``{"size": int, "jpeg_quality": int | None}``, or None; ValueError (one line) if malformed."""
    if not recipe:
        return None
    if not isinstance(recipe, dict):
        raise ValueError(f"crop_recipe must be an object like {{\"size\": 128, \"jpeg_quality\": 90}}, not {recipe!r}")
    try:
        size = int(recipe.get("size", 128))
        quality = recipe.get("jpeg_quality")
        quality = None if quality is None else int(quality)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"crop_recipe: size and jpeg_quality must be integers ({exc})") from None
    if size < 8:
        raise ValueError(f"crop_recipe: size must be at least 8, not {size}")
    if quality is not None and not 1 <= quality <= 100:
        raise ValueError(f"crop_recipe: jpeg_quality must be in 1..100, not {quality}")
    return {"size": size, "jpeg_quality": quality}


def check_unsure(block) -> None:
    """ValueError (one line) unless ``block`` is None or an object with numeric ``delta`` / ``epsilon`` >= 0."""
    if block is None:
        return
    if not isinstance(block, dict):
        raise ValueError(f"unsure must be an object with delta and epsilon, not {block!r}")
    for key in DEFAULT_UNSURE:
        value = block.get(key, DEFAULT_UNSURE[key])
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise ValueError(f"unsure.{key} must be a number >= 0, not {value!r}")


def output_index(keras_model, name: str) -> int | None:
    """The index of output ``name`` among ``keras_model.output_names``; None when the model has no such
    output (a Sequential model, or a functional one whose outputs are named otherwise)."""
    try:
        names = list(getattr(keras_model, "output_names", None) or ())
    except (AttributeError, ValueError, TypeError):
        return None
    return names.index(name) if name in names else None


def n_outputs(keras_model) -> int:
    """How many outputs the model has (1 for a Sequential model)."""
    outputs = getattr(keras_model, "outputs", None)
    return len(outputs) if isinstance(outputs, (list, tuple)) and outputs else 1


def has_mask_head(keras_model) -> bool:
    """True for a model with several outputs, one of them named ``mask``."""
    return keras_model is not None and n_outputs(keras_model) > 1 and output_index(keras_model, MASK) is not None


def select_output(outputs, keras_model, name: str = P_FAKE):
    """The output ``name`` of a model call's result (a tensor, a list/tuple of tensors, or a dict).

    With one output that output is P(fake). With several, ``p_fake`` is the output of that name, else the
    first one (the convention: P(fake) first); any other name must exist (ValueError otherwise).
    """
    if isinstance(outputs, dict):
        if name in outputs:
            return outputs[name]
        if name == P_FAKE:
            return next(iter(outputs.values()))
    elif isinstance(outputs, (list, tuple)):
        if len(outputs) == 1 and name == P_FAKE:
            return outputs[0]
        i = output_index(keras_model, name)
        if i is not None and i < len(outputs):
            return outputs[i]
        if name == P_FAKE:
            return outputs[0]
    elif name == P_FAKE:
        return outputs
    raise ValueError(f"model {getattr(keras_model, 'name', '?')!r} has no {name!r} output")


def view_batch(x: np.ndarray, shift: int = VIEW_SHIFT, include_original: bool = True) -> np.ndarray:
    """The views of an (N, H, W, C) batch, view-major: [original,] horizontal flip, shifted right, left, down,
    up by ``shift`` px with reflect padding. Shape ((N_VIEWS or N_VIEWS - 1) * N, H, W, C)."""
    x = np.asarray(x)
    s = int(shift)
    px = np.pad(x, ((0, 0), (0, 0), (s, s), (0, 0)), mode="reflect")
    py = np.pad(x, ((0, 0), (s, s), (0, 0), (0, 0)), mode="reflect")
    w, h = x.shape[2], x.shape[1]
    views = [x[:, :, ::-1], px[:, :, : w], px[:, :, 2 * s : 2 * s + w], py[:, : h], py[:, 2 * s : 2 * s + h]]
    return np.concatenate(([x] if include_original else []) + views)


def spread_of(p_views: np.ndarray, n: int) -> np.ndarray:
    """max - min over views of view-major scores (V * n,), shape (n,) float32."""
    p = np.asarray(p_views, dtype=np.float32).reshape(-1, n)
    return (p.max(axis=0) - p.min(axis=0)).astype(np.float32)


class Detector:
    """A face-crop detector: ``predict(images) -> P(fake)`` of shape (N,)."""

    name: str
    input_size: int
    metadata: dict
    keras_model = None
    path: Path | None = None
    supports_gradcam = True  # capability flags the pages and the explain CLI read
    supports_activations = True
    supports_manipulation_map = False  # True for a Keras model with a "mask" output

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

    @property
    def crop_recipe(self) -> dict | None:
        """``metadata["crop_recipe"]`` (``{"size": 128, "jpeg_quality": 90}``): how a crop the product makes
        from a photo is finished (Lanczos to ``size``, JPEG at ``jpeg_quality``, decoded) so that it matches
        the training data; None: crops are used as cut (see models.scoring.recipe)."""
        return check_crop_recipe((getattr(self, "metadata", None) or {}).get("crop_recipe"))

    def manipulation_map(self, images, batch_size: int = 64) -> np.ndarray:
        """Per-pixel P(manipulated), (N, H, W) float32 in [0, 1] at the images' size (all the same size).
        Only for detectors with a map head (``supports_manipulation_map``); else NoManipulationMapError."""
        raise NoManipulationMapError(f"the manipulation map does not apply to {self.name} (it has no map head)")

    # --- "unsure" ----------------------------------------------------------------------------------------

    def predict_inputs(self, x: np.ndarray) -> np.ndarray:
        """Calibrated P(fake) of an already preprocessed float batch (N, S, S, 3) in [0, 1]."""
        return self.predict(np.clip(np.rint(np.asarray(x) * 255.0), 0, 255).astype(np.uint8))

    def spread_inputs(self, x: np.ndarray, p_fake=None) -> np.ndarray:
        """:meth:`views_spread` of an already preprocessed batch; ``p_fake``: its single-view scores, if known."""
        x = np.asarray(x, dtype=np.float32)
        if len(x) == 0:
            return np.zeros((0,), np.float32)
        p0 = self.predict_inputs(x) if p_fake is None else np.asarray(p_fake, np.float32)
        others = self.predict_inputs(view_batch(x, include_original=False))
        return spread_of(np.concatenate([p0, np.asarray(others, np.float32)]), len(x))

    def views_spread(self, images, p_fake=None, batch_size: int = 64) -> np.ndarray:
        """Spread of the calibrated P(fake) over the :data:`N_VIEWS` views of each image's model input,
        (N,) float32 in [0, 1]. ``p_fake``: the images' single-view scores (``predict``), to save a pass."""
        n = len(images)
        out = np.empty((n,), np.float32)
        step = max(1, int(batch_size))
        for s in range(0, n, step):
            p = None if p_fake is None else np.asarray(p_fake, np.float32)[s : s + step]
            out[s : s + step] = self.spread_inputs(self.preprocess(images[s : s + step]), p)
        return out

    @property
    def unsure_settings(self) -> dict:
        """``{"delta", "epsilon"}``: the model JSON's ``"unsure"`` block, else :data:`DEFAULT_UNSURE`."""
        block = (getattr(self, "metadata", None) or {}).get("unsure") or {}
        return {k: float(block.get(k, v)) for k, v in DEFAULT_UNSURE.items()}

    def unsure(self, p_fake, spread) -> np.ndarray:
        """Bool array: spread > delta or |p_fake - threshold| < epsilon (see the module doc)."""
        u = self.unsure_settings
        return unsure_mask(p_fake, spread, self.threshold, u["delta"], u["epsilon"])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, input_size={self.input_size})"

class KerasDetector(Detector):
    """A detector backed by a sigmoid ``keras.Model``: one output (P(fake)), or ``p_fake`` plus a ``mask``."""

    def __init__(self, keras_model, name: str, metadata: dict | None = None, path: Path | None = None):
        self.keras_model = keras_model
        self.name = name
        self.metadata = metadata or {}
        self.path = path
        shape = keras_model.input_shape
        self.input_size = int(self.metadata.get("input_size") or shape[1])
        if shape[1] is not None and int(shape[1]) != self.input_size:
            raise ValueError(f"{name}: metadata input_size {self.input_size} != model input {shape[1]}")
        self.supports_manipulation_map = has_mask_head(keras_model)

    def _compiled_forward(self):
        """The model's inference call as one traced TensorFlow graph (no per-layer eager overhead)."""
        if getattr(self, "_forward", None) is None:
            import tensorflow as tf

            spec = tf.TensorSpec([None, self.input_size, self.input_size, 3], tf.float32)
            model = self.keras_model
            self._forward = tf.function(lambda x: select_output(model(x, training=False), model, P_FAKE),
                                        input_signature=[spec], autograph=False)
        return self._forward

    def _compiled_mask(self):
        """The model's ``mask`` output as one traced graph."""
        if getattr(self, "_mask_forward", None) is None:
            import tensorflow as tf

            spec = tf.TensorSpec([None, self.input_size, self.input_size, 3], tf.float32)
            model = self.keras_model
            self._mask_forward = tf.function(lambda x: select_output(model(x, training=False), model, MASK),
                                             input_signature=[spec], autograph=False)
        return self._mask_forward

    def manipulation_map(self, images, batch_size: int = 64) -> np.ndarray:
        if not self.supports_manipulation_map:
            return super().manipulation_map(images, batch_size)
        shapes = {tuple(np.shape(img)[:2]) for img in images}
        if len(shapes) > 1:
            raise ValueError(f"manipulation_map needs images of one size, got {len(shapes)} sizes")
        n = len(images)
        h, w = shapes.pop() if shapes else (self.input_size, self.input_size)
        out = np.empty((n, h, w), np.float32)
        for s in range(0, n, max(1, int(batch_size))):
            x = self.preprocess(images[s : s + batch_size])
            m = np.asarray(self._compiled_mask()(x), np.float32)
            m = m.reshape(len(x), m.shape[1], m.shape[2], -1)[..., :1]
            out[s : s + len(x)] = _resize_maps(m, h, w)
        return out

    def predict_inputs(self, x: np.ndarray) -> np.ndarray:
        return self.predict_batch(x)

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


def _resize_maps(maps: np.ndarray, h: int, w: int) -> np.ndarray:
    """(N, m, m, 1) maps -> (N, h, w) float32 in [0, 1], bilinear."""
    import tensorflow as tf

    if maps.shape[1:3] != (h, w):
        maps = tf.image.resize(maps, (h, w), method="bilinear").numpy()
    return np.clip(maps[..., 0], 0.0, 1.0).astype(np.float32)

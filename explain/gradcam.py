"""Grad-CAM: which regions of a convolutional layer's feature maps push the score towards the target class.

``explain(detector, image, target=..., layer=None)`` takes the gradient of the target's probability
(P(fake), or 1 - P(fake) for "real") with respect to a conv layer's output A, weights each channel by its
spatially averaged gradient, and sums: ``cam = sum_k w_k A_k`` (ReLU'd by default, so only evidence *for*
the target remains). The map is upsampled to the input image's size and scaled to max |value| = 1.

Written directly on ``tf.GradientTape`` for Keras 3. The layer's output is read while running the
model's own graph (:mod:`explain.layers`), so conv layers inside a nested model (a transfer-learning base)
work too: name them ``"inner_model/layer"`` or by a bare unique name. The default is the last conv layer.

Caveat, inherent to Grad-CAM: a channel's weight is one number for the whole map, so a feature the model
only uses in one place is highlighted wherever it occurs. ``variant="hirescam"`` (HiResCAM, Draelos &
Carin 2020) sums gradient x activation per position instead (``cam = sum_k dS/dA_k * A_k``), which shows
only positions the score actually depends on.
"""

from __future__ import annotations

import time

import numpy as np

from explain.base import Explanation, calibrated, check_image, resolve_target, to_image_size
from explain.layers import CONV_TYPES, compiled, find_layer, forward, list_layers, p_fake_layers, spatial_map

METHOD = "gradcam"
VARIANTS = ("gradcam", "hirescam")


def conv_layers(detector) -> list[str]:
    """The detector's conv layers in model order; nested models' layers as ``"inner_model/layer"``."""
    return list_layers(_keras_model(detector), CONV_TYPES)


def default_layer(detector) -> str:
    """The last conv layer of the model (searching nested models too) that feeds P(fake): with a two-output
    model, the mask head's own convs are skipped (P(fake) does not depend on them).

    For an ensemble, the last conv layer of its first member (the strongest, by convention of
    ``--members``), not of whichever member happens to come last.
    """
    names = p_fake_layers(_keras_model(detector), CONV_TYPES)
    if not names:
        raise ValueError(f"{detector.name}: the model has no conv layers to compute Grad-CAM on")
    members = (getattr(detector, "metadata", None) or {}).get("members") or []
    if members:
        first = [n for n in names if n.split("/", 1)[0] == members[0].get("name")]
        if first:
            return first[-1]
    return names[-1]


def _keras_model(detector):
    model = getattr(detector, "keras_model", None)
    if model is None:
        raise ValueError(f"{getattr(detector, 'name', detector)!r} has no Keras model; Grad-CAM needs one")
    return model


def _gradient_fn(get_model, ref):
    """``x -> (A, P(fake), dP(fake)/dA)`` for the layer ``ref`` (the ``p_fake`` output of a two-output model)."""
    import tensorflow as tf

    def fn(x):
        with tf.GradientTape() as tape:
            acts, out = forward(get_model(), ref, x)
            p_fake = tf.cast(tf.reshape(out, [tf.shape(out)[0], -1])[:, 0], tf.float32)
        grads = tape.gradient(p_fake, acts, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return acts, p_fake, grads

    return fn


def explain(detector, image, *, target: str = "verdict", layer: str | None = None, relu: bool = True,
            variant: str = "gradcam") -> Explanation:
    """Grad-CAM map of ``image`` for ``target`` ("verdict", "fake" or "real") at ``layer`` (default: last conv).

    ``attribution`` is HxW at the image's size, max |value| = 1 (all zeros if the map is zero), > 0 where
    the layer's features support the target. extras: ``layer`` (resolved name), ``cam`` (the map at the
    layer's resolution, after ReLU, not normalised), ``weights`` (per-channel mean gradient, signed for
    the target), ``layer_shape`` ((h, w, channels)).
    """
    start = time.perf_counter()
    image = check_image(image)
    resolve_target(target, 0.0)  # reject a bad target before any work
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, not {variant!r}")
    model = _keras_model(detector)
    ref = find_layer(model, layer or default_layer(detector), CONV_TYPES, "conv", any_spatial=True)
    fn = compiled(model, ref, detector.input_size, "gradcam", _gradient_fn)
    acts, p_fake, grads = fn(detector.preprocess([image]))
    acts = spatial_map(acts, ref.name)
    # the gradient is of the raw output; calibration is monotone increasing (a positive factor per image),
    # so the map, once scaled to max |value| = 1, is the same. p_fake is the calibrated one, as shown.
    p_fake = float(calibrated(detector, np.asarray(p_fake)[:1])[0])
    resolved = resolve_target(target, p_fake, detector.threshold)
    # d(1 - P(fake))/dA = -dP(fake)/dA: one gradient serves both classes.
    grads = spatial_map(grads, ref.name) * (1.0 if resolved == "fake" else -1.0)

    weights = grads.mean(axis=(0, 1))
    cam = (grads * acts).sum(axis=-1) if variant == "hirescam" else acts @ weights
    if relu:
        cam = np.maximum(cam, 0.0)
    cam = cam.astype(np.float32)
    attribution = to_image_size(cam, image.shape[:2])
    peak = float(np.abs(attribution).max()) if attribution.size else 0.0
    if peak > 0:
        attribution = attribution / peak

    return Explanation(
        method=METHOD,
        target=resolved,
        p_fake=p_fake,
        attribution=attribution.astype(np.float32),
        params={"layer": ref.name, "relu": bool(relu), "variant": variant},
        seconds=time.perf_counter() - start,
        extras={
            "layer": ref.name,
            "cam": cam,
            "weights": weights.astype(np.float32),
            "layer_shape": tuple(int(d) for d in acts.shape),
        },
    )

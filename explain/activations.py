"""Activation maps: what one layer's channels respond to in an image, as the study plotted them.

``explain(detector, image, layer=None)`` runs the model once, keeps the chosen layer's feature maps
(any Conv, SeparableConv, DepthwiseConv, BatchNormalization or Max/AveragePooling layer; default the
first conv layer, nested models' layers as ``"inner_model/layer"``) and orders the channels by mean
activation (or by index) for an 8x4 grid of up to 32 maps, with one channel zoomed.

This method is **not target-specific**: the feature maps are the same whichever class is asked about.
``attribution`` is the mean over all channels of the layer's feature map, upsampled to the image's size
(values as the layer produced them, not rescaled); ``target`` is still resolved and ``p_fake`` filled in.
"""

from __future__ import annotations

import time

import numpy as np

from explain.base import Explanation, calibrated, check_image, resolve_target, to_image_size
from explain.layers import CONV_TYPES, FEATURE_TYPES, activations_fn, compiled, find_layer, list_layers, spatial_map

METHOD = "activations"
ORDERS = ("mean", "index")


def _keras_model(detector):
    model = getattr(detector, "keras_model", None)
    if model is None:
        raise ValueError(f"{getattr(detector, 'name', detector)!r} has no Keras model; activation maps need one")
    return model


def layers(detector) -> list[str]:
    """The choosable layers (conv, batch-norm, pooling with 4-D outputs) in model order, nested as "outer/inner"."""
    return list_layers(_keras_model(detector), FEATURE_TYPES)


def default_layer(detector) -> str:
    """The first conv layer (the study plotted the first conv layer's maps)."""
    convs = list_layers(_keras_model(detector), CONV_TYPES)
    if convs:
        return convs[0]
    choices = layers(detector)
    if not choices:
        raise ValueError(f"{detector.name}: the model has no conv, batch-norm or pooling layers")
    return choices[0]


def explain(detector, image, *, target: str = "verdict", layer: str | None = None, order: str = "mean",
            max_channels: int | None = 32, channel: int | None = None) -> Explanation:
    """The feature maps of ``layer`` for ``image`` (one forward pass). Not target-specific (see module doc).

    extras: ``layer`` (resolved name), ``maps`` ((h, w, kept) float32, channels in display order),
    ``channels`` (their original indices), ``means`` (their mean activations), ``n_channels`` (all
    channels of the layer), ``layer_shape`` ((h, w, channels)), ``zoom`` ((h, w), channel ``channel``,
    default the first displayed) and ``zoom_channel``.
    """
    start = time.perf_counter()
    image = check_image(image)
    resolve_target(target, 0.0)  # reject a bad target before any work
    if order not in ORDERS:
        raise ValueError(f"order must be one of {', '.join(ORDERS)}, not {order!r}")
    if max_channels is not None and int(max_channels) < 1:
        raise ValueError(f"max_channels must be at least 1 (or None for all), not {max_channels!r}")
    model = _keras_model(detector)
    ref = find_layer(model, layer or default_layer(detector), FEATURE_TYPES, "feature-map")
    fn = compiled(model, ref, detector.input_size, "activations", activations_fn)
    acts, out = fn(detector.preprocess([image]))
    acts = spatial_map(acts, ref.name)
    p_fake = float(calibrated(detector, np.asarray(out, dtype=np.float32).reshape(len(out), -1)[:1, 0])[0])
    resolved = resolve_target(target, p_fake, detector.threshold)

    n_channels = acts.shape[-1]
    all_means = acts.mean(axis=(0, 1))
    ordered = np.argsort(-all_means, kind="stable") if order == "mean" else np.arange(n_channels)
    kept = ordered[: n_channels if max_channels is None else int(max_channels)]
    if channel is None:
        zoom_channel = int(kept[0])
    else:
        zoom_channel = int(channel)
        if not 0 <= zoom_channel < n_channels:
            raise ValueError(f"channel must be in 0..{n_channels - 1} for layer {ref.name!r}, not {channel!r}")

    attribution = to_image_size(acts.mean(axis=-1), image.shape[:2])
    return Explanation(
        method=METHOD,
        target=resolved,
        p_fake=p_fake,
        attribution=attribution.astype(np.float32),
        params={"layer": ref.name, "order": order, "max_channels": max_channels, "channel": zoom_channel},
        seconds=time.perf_counter() - start,
        extras={
            "layer": ref.name,
            "maps": np.ascontiguousarray(acts[..., kept]),
            "channels": kept.astype(np.int64),
            "means": all_means[kept].astype(np.float32),
            "n_channels": int(n_channels),
            "layer_shape": tuple(int(d) for d in acts.shape),
            "zoom": np.ascontiguousarray(acts[..., zoom_channel]),
            "zoom_channel": zoom_channel,
        },
    )

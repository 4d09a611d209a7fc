"""Forward cost of a Keras model: multiply-accumulates (MACs) per image of its conv and dense layers.

BatchNorm, activations, pooling and additions are not counted (they are a few percent of the total).
"""

from __future__ import annotations

import math

import keras


def _hw(shape) -> int:
    return int(shape[1]) * int(shape[2]) if len(shape) == 4 else 1


def layer_macs(layer) -> int:
    if isinstance(layer, keras.Model):  # nested model
        return model_macs(layer)
    try:
        out = layer.output.shape
        inp = layer.input.shape
    except (AttributeError, ValueError):
        return 0
    if isinstance(layer, keras.layers.SeparableConv2D):
        kh, kw = layer.kernel_size
        cin, dm = int(inp[-1]), layer.depth_multiplier
        return _hw(out) * cin * dm * (kh * kw + int(out[-1]))
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kh, kw = layer.kernel_size
        return _hw(out) * int(inp[-1]) * layer.depth_multiplier * kh * kw
    if isinstance(layer, keras.layers.Conv2D):
        kh, kw = layer.kernel_size
        return _hw(out) * int(out[-1]) * kh * kw * int(inp[-1]) // layer.groups
    if isinstance(layer, keras.layers.Dense):
        return int(math.prod(int(d) for d in inp[1:])) * layer.units
    return 0


def model_macs(model) -> int:
    """MACs for one image through ``model``."""
    return sum(layer_macs(layer) for layer in model.layers)

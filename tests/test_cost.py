"""models.cost: multiply-accumulates per image, checked against hand arithmetic."""

from __future__ import annotations

import keras
from keras import layers

from models.analysis.cost import layer_macs, model_macs
from models.training.architectures import build_tuned, build_v1


def tiny_model():
    inputs = keras.Input((8, 8, 3))
    x = layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    x = layers.SeparableConv2D(6, 3, padding="same", name="sep")(x)
    x = layers.DepthwiseConv2D(3, strides=2, padding="same", name="dw")(x)
    x = layers.Flatten(name="flat")(x)
    outputs = layers.Dense(2, name="dense")(x)
    return keras.Model(inputs, outputs)


# Per image: out_h * out_w * ... for each layer.
CONV = 8 * 8 * 4 * 3 * 3 * 3  # 8x8 out, 4 filters, 3x3 kernel over 3 input channels
SEP = 8 * 8 * 4 * (9 + 6)  # depthwise 3x3 on 4 channels + pointwise 4 -> 6, at 8x8
DW = 4 * 4 * 6 * 9  # stride 2: 4x4 out, 6 channels, 3x3 each
DENSE = 4 * 4 * 6 * 2  # 96 features -> 2 units


def test_tiny_model_layer_by_layer():
    model = tiny_model()
    by_name = {layer.name: layer_macs(layer) for layer in model.layers}
    assert by_name == {model.layers[0].name: 0, "conv": CONV, "sep": SEP, "dw": DW, "flat": 0, "dense": DENSE}
    assert model_macs(model) == CONV + SEP + DW + DENSE == 11808


def test_nested_model_counts_once():
    inner = tiny_model()
    inputs = keras.Input((8, 8, 3))
    outer = keras.Model(inputs, layers.Activation("sigmoid")(inner(inputs)))
    assert model_macs(outer) == model_macs(inner)


def test_v1_at_128_is_about_90m():
    macs = model_macs(build_v1(128))
    assert 60e6 < macs < 120e6
    # Half width: most MACs scale with channels^2, so well under half.
    assert model_macs(build_v1(128, width=0.5)) < macs / 2


def test_tuned_at_64_matches_hand_arithmetic():
    # valid 3x3 convs then 2x2 pools: 64 -> 62 -> 31 -> 29 -> 14 -> 12 -> 6 -> 4 -> 2
    convs = [(62, 3, 128), (29, 128, 64), (12, 64, 32), (4, 32, 16)]  # (out side, c_in, c_out)
    conv_macs = sum(side * side * 9 * cin * cout for side, cin, cout in convs)
    dense_macs = 2 * 2 * 16 * 64 + 64 * 32 + 32 * 1
    assert model_macs(build_tuned(64)) == conv_macs + dense_macs

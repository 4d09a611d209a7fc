"""models.architectures: the study's two CNNs layer by layer, and their training recipes."""

from __future__ import annotations

import keras
import pytest

from models.training.architectures import ARCHITECTURES, build_baseline, build_tuned


def _layers(model):
    return [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


def _act_name(layer) -> str:
    act = keras.activations.serialize(layer.activation)
    return act if isinstance(act, str) else act.get("config", act.get("class_name"))


def test_baseline_layers_as_published():
    model = build_baseline(64)
    layers = _layers(model)
    assert [type(layer).__name__ for layer in layers] == [
        "Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Flatten", "Dense",
    ]
    conv1, pool1, conv2, pool2, _, dense = layers
    assert (conv1.filters, tuple(conv1.kernel_size), _act_name(conv1)) == (32, (3, 3), "relu")
    assert (conv2.filters, tuple(conv2.kernel_size), _act_name(conv2)) == (16, (3, 3), "relu")
    assert conv1.padding == conv2.padding == "valid"
    assert tuple(pool1.pool_size) == tuple(pool2.pool_size) == (2, 2)
    assert (dense.units, _act_name(dense)) == (1, "sigmoid")
    # 64 -> conv 62 -> pool 31 -> conv 29 -> pool 14: 14 * 14 * 16 features into Dense(1)
    assert dense.kernel.shape == (14 * 14 * 16, 1)


def test_tuned_layers_as_published():
    model = build_tuned(64)
    layers = _layers(model)
    expected_types = ["Conv2D", "BatchNormalization", "MaxPooling2D"] * 4 + ["Flatten", "Dense", "Dense", "Dense"]
    assert [type(layer).__name__ for layer in layers] == expected_types
    blocks = [layers[i : i + 3] for i in range(0, 12, 3)]
    for (conv, bn, pool), (filters, act) in zip(blocks, [(128, "relu"), (64, "tanh"), (32, "tanh"), (16, "tanh")], strict=True):
        assert conv.filters == filters
        assert tuple(conv.kernel_size) == (3, 3)
        assert _act_name(conv) == act
        assert bn.momentum == pytest.approx(0.95)
        assert bn.epsilon == pytest.approx(0.005)
        assert tuple(pool.pool_size) == (2, 2)
    d1, d2, d3 = layers[-3:]
    assert [(d.units, _act_name(d)) for d in (d1, d2, d3)] == [(64, "relu"), (32, "relu"), (1, "sigmoid")]


@pytest.mark.parametrize("arch", ["baseline", "tuned"])
@pytest.mark.parametrize("size", [64, 96])
def test_output_shapes(arch, size):
    model = ARCHITECTURES[arch].build(size)
    assert model.input_shape == (None, size, size, 3)
    assert model.output_shape == (None, 1)


def test_default_input_sizes():
    # The study's models default to 64 px, as published; detector_v1 reads the crops at their 128 px.
    assert build_baseline().input_shape == (None, 64, 64, 3)
    assert ARCHITECTURES["baseline"].default_input_size == ARCHITECTURES["tuned"].default_input_size == 64
    assert ARCHITECTURES["v1"].build(ARCHITECTURES["v1"].default_input_size).input_shape == (None, 128, 128, 3)


def test_param_counts_match_layer_arithmetic():
    # baseline at 64: conv1 3*3*3*32+32, conv2 3*3*32*16+16, dense 14*14*16+1
    assert build_baseline(64).count_params() == (896 + 4624 + 3137)


def test_recipes():
    baseline, tuned = ARCHITECTURES["baseline"], ARCHITECTURES["tuned"]
    assert isinstance(baseline.optimizer(), keras.optimizers.RMSprop)
    assert (baseline.batch_size, baseline.min_delta, baseline.default_name) == (64, 0.1, "baseline_cnn")
    assert isinstance(tuned.optimizer(), keras.optimizers.SGD)
    assert (tuned.batch_size, tuned.min_delta, tuned.default_name) == (16, 0.01, "tuned_cnn")
    assert baseline.optimizer() is not baseline.optimizer()  # a fresh optimizer per training run
    assert baseline.build(32).name == "baseline_cnn"
    assert tuned.build(64).name == "tuned_cnn"

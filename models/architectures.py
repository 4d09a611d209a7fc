"""Detector architectures, with the input size as a parameter.

``baseline`` and ``tuned`` are the study's two CNNs exactly as published
(see ``../shared/STUDY.md``), including their training recipes. New
architectures register in :data:`ARCHITECTURES` with their own recipe.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras
from keras import layers


def build_baseline(input_size: int = 64) -> keras.Model:
    """The study's baseline CNN: Conv32 -> Pool -> Conv16 -> Pool -> Flatten -> Dense(1)."""
    inputs = keras.Input((input_size, input_size, 3), name="image")
    x = layers.Conv2D(32, 3, activation="relu", name="conv1")(inputs)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Conv2D(16, 3, activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = layers.Flatten(name="flatten")(x)
    outputs = layers.Dense(1, activation="sigmoid", name="p_fake")(x)
    return keras.Model(inputs, outputs, name="baseline_cnn")


TUNED_BLOCKS = ((128, "relu"), (64, "tanh"), (32, "tanh"), (16, "tanh"))


def build_tuned(input_size: int = 64) -> keras.Model:
    """The study's tuned CNN: 4 x (Conv3x3 -> BN(0.95, 0.005) -> Pool2), Dense 64 -> 32 -> 1."""
    inputs = keras.Input((input_size, input_size, 3), name="image")
    x = inputs
    for i, (filters, activation) in enumerate(TUNED_BLOCKS, start=1):
        x = layers.Conv2D(filters, 3, activation=activation, name=f"conv{i}")(x)
        x = layers.BatchNormalization(momentum=0.95, epsilon=0.005, name=f"bn{i}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(64, activation="relu", name="dense1")(x)
    x = layers.Dense(32, activation="relu", name="dense2")(x)
    outputs = layers.Dense(1, activation="sigmoid", name="p_fake")(x)
    return keras.Model(inputs, outputs, name="tuned_cnn")


def _conv_bn(x, filters, kernel=3, strides=1, name=None):
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _sep_residual(x, filters, name):
    """Two depthwise-separable 3x3 convs with BatchNorm, plus identity: cheap, keeps resolution."""
    shortcut = x
    for i in (1, 2):
        x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_sep{i}")(x)
        x = layers.BatchNormalization(name=f"{name}_bn{i}")(x)
        if i == 1:
            x = layers.ReLU(name=f"{name}_relu{i}")(x)
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return layers.ReLU(name=f"{name}_out")(x)


def build_v1(input_size: int = 128, width: float = 1.0) -> keras.Model:
    """detector_v1: a small residual CNN for 128 px crops.

    A stride-2 3x3 stem (every input pixel is seen, at 64 px resolution), then four stages (64, 32, 16,
    8 px), each a depthwise-separable residual block (after a strided 3x3 conv from stage 2 on), global
    average pooling, dropout and one sigmoid unit. About 90 M multiply-adds per 128 px image at width
    1.0, so LIME's 1000 forward passes stay within a few seconds on a 2-core CPU.
    """
    w = lambda c: max(8, int(round(c * width / 8)) * 8)  # noqa: E731
    inputs = keras.Input((input_size, input_size, 3), name="image")
    x = _conv_bn(inputs, w(32), strides=2, name="stem")
    x = _sep_residual(x, w(32), name="block1")
    for i, filters in enumerate((64, 128, 192), start=2):
        x = _conv_bn(x, w(filters), strides=2, name=f"down{i}")
        x = _sep_residual(x, w(filters), name=f"block{i}")
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(0.3, name="dropout")(x)
    outputs = layers.Dense(1, activation="sigmoid", name="p_fake")(x)
    return keras.Model(inputs, outputs, name="detector_v1")


@dataclass(frozen=True)
class Recipe:
    """An architecture plus the training recipe that goes with it."""

    build: Callable[[int], keras.Model]
    optimizer: Callable[[], keras.optimizers.Optimizer]
    batch_size: int
    min_delta: float
    default_name: str
    description: str
    default_input_size: int = 64
    trainer: str = "study"  # "study": tf.data + early stopping on val accuracy; "portable": models.portable
    patience: int = 3
    learning_rate: float | None = None
    warmup_epochs: int = 0
    weight_decay: float = 0.0
    label_smoothing: float = 0.0


ARCHITECTURES: dict[str, Recipe] = {
    "baseline": Recipe(
        build=build_baseline,
        optimizer=lambda: keras.optimizers.RMSprop(),
        batch_size=64,
        min_delta=0.1,
        default_name="baseline_cnn",
        description="Study baseline CNN (2 conv layers), RMSprop, batch 64",
    ),
    "tuned": Recipe(
        build=build_tuned,
        optimizer=lambda: keras.optimizers.SGD(),
        batch_size=16,
        min_delta=0.01,
        default_name="tuned_cnn",
        description="Study tuned CNN (4 conv+BN blocks, dense 64-32), SGD, batch 16",
    ),
    "v1": Recipe(
        build=build_v1,
        optimizer=lambda: keras.optimizers.AdamW(),
        batch_size=64,
        min_delta=0.0,
        default_name="detector_v1",
        description="Residual separable CNN at 128 px, augmentation, AdamW + warm-up + cosine",
        default_input_size=128,
        trainer="portable",
        patience=12,
        learning_rate=1e-3,
        warmup_epochs=2,
        weight_decay=5e-4,
        label_smoothing=0.0,
    ),
}


def build_model(arch: str, input_size: int | None = None, **options) -> keras.Model:
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose from {', '.join(ARCHITECTURES)}")
    recipe = ARCHITECTURES[arch]
    return recipe.build(input_size or recipe.default_input_size, **options)

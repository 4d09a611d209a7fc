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
}


def build_model(arch: str, input_size: int | None = None) -> keras.Model:
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose from {', '.join(ARCHITECTURES)}")
    recipe = ARCHITECTURES[arch]
    return recipe.build(input_size or recipe.default_input_size)

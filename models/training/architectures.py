"""Detector architectures, with the input size as a parameter.

``baseline`` and ``tuned`` are the study's two CNNs exactly as published
(see ``../shared/STUDY.md``), including their training recipes. New
architectures register in :data:`ARCHITECTURES` with their own recipe.
``xception`` (ImageNet transfer) and ``ensemble`` (frozen members + a small
head) are the study's other two models; see ``docs/TRAINING.md``.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

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


def build_v2(input_size: int = 128, width: float = 1.0) -> keras.Model:
    """detector_v2: detector_v1's backbone with a manipulation-map head, two named outputs.

    ``mask`` (N, S/8, S/8, 1), 16 x 16 at 128 px: where the image was blended, predicted from the 16 px stage fused with the upsampled
    8 px stage (a 1x1 conv to 64 channels, then to one sigmoid unit per cell). ``p_fake`` (N, 1): from the
    globally pooled 8 px features plus the map's strongest cell, so the verdict can lean on where a blend was
    found. ``p_fake`` comes first: every path that needs a single score (predict, Grad-CAM, the ensemble) takes
    it. About 95 M multiply-adds per 128 px image at width 1.0.
    """
    if input_size % 8:
        raise ValueError(f"detector_v2's map is at 1/8 of the input: the input size must be a multiple of 8, "
                         f"not {input_size}")
    w = lambda c: max(8, int(round(c * width / 8)) * 8)  # noqa: E731
    inputs = keras.Input((input_size, input_size, 3), name="image")
    x = _conv_bn(inputs, w(32), strides=2, name="stem")
    x = _sep_residual(x, w(32), name="block1")
    stages = []
    for i, filters in enumerate((64, 128, 192), start=2):
        x = _conv_bn(x, w(filters), strides=2, name=f"down{i}")
        x = _sep_residual(x, w(filters), name=f"block{i}")
        stages.append(x)
    fine = layers.Concatenate(name="map_fuse")([stages[1], layers.UpSampling2D(2, name="map_up")(stages[2])])
    m = layers.Conv2D(64, 1, activation="relu", name="map_conv")(fine)
    mask = layers.Conv2D(1, 1, activation="sigmoid", name="mask")(m)
    pooled = layers.GlobalAveragePooling2D(name="gap")(stages[2])
    peak = layers.GlobalMaxPooling2D(name="map_peak")(mask)
    x = layers.Concatenate(name="head_concat")([layers.Dropout(0.3, name="dropout")(pooled), peak])
    p_fake = layers.Dense(1, activation="sigmoid", name="p_fake")(x)
    return keras.Model(inputs, [p_fake, mask], name="detector_v2")


# --- Xception transfer --------------------------------------------------------------------------------

XCEPTION_MIN_SIZE = 71  # keras.applications.Xception's smallest input without its top
XCEPTION_NOTOP_FILE = "xception_weights_tf_dim_ordering_tf_kernels_notop.h5"
XCEPTION_NOTOP_URL = "https://storage.googleapis.com/tensorflow/keras-applications/xception/" + XCEPTION_NOTOP_FILE
XCEPTION_HEAD = (256, 128, 64, 32, 16)  # the study's dense head, all tanh
WEIGHTS_HOST = ("storage.googleapis.com", 443)
CONNECT_TIMEOUT_S = 3.0


def keras_cache_dirs() -> list[Path]:
    """Where ``keras.utils.get_file`` keeps downloaded application weights (``$KERAS_HOME`` or ~/.keras, else /tmp)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    dirs = [Path(home) / "models", Path("/tmp/.keras/models")]
    return list(dict.fromkeys(dirs))


def cached_imagenet_weights() -> Path | None:
    """A previously downloaded notop Xception weights file, or None."""
    for folder in keras_cache_dirs():
        path = folder / XCEPTION_NOTOP_FILE
        if path.is_file():
            return path
    return None


def can_download(host: tuple[str, int] = WEIGHTS_HOST, timeout: float = CONNECT_TIMEOUT_S) -> bool:
    """Whether the weights server accepts a TCP connection within ``timeout`` seconds."""
    try:
        with socket.create_connection(host, timeout=timeout):
            return True
    except OSError:
        return False


def resolve_xception_weights(weights: str | os.PathLike | None) -> str | None:
    """``"none"``/None -> None (random init); ``"imagenet"`` -> a cached file, else ``"imagenet"`` (download);
    anything else must be a local notop weights file. Offline without a cached file, ``"imagenet"`` fails at
    once (a short connect check) rather than hanging on the download.
    """
    if weights is None or str(weights).lower() == "none":
        return None
    if str(weights).lower() == "imagenet":
        cached = cached_imagenet_weights()
        if cached is not None:
            return str(cached)
        if not can_download():
            raise ValueError(
                f"cannot download ImageNet weights offline ({WEIGHTS_HOST[0]} is unreachable); pass --weights PATH "
                f"to a local {XCEPTION_NOTOP_FILE} (from {XCEPTION_NOTOP_URL}, or copy it into "
                f"{keras_cache_dirs()[0]}), or --weights none to train from random weights"
            )
        return "imagenet"
    path = Path(weights).expanduser()
    if not path.is_file():
        raise ValueError(f"--weights {weights}: no such file; give 'imagenet', 'none' or the path to a local "
                         f"{XCEPTION_NOTOP_FILE}")
    return str(path)


def build_xception(input_size: int = 128, weights: str | os.PathLike | None = None,
                   trainable_base: bool = False) -> keras.Model:
    """The study's Xception transfer model: [0,1] -> [-1,1] -> Xception base -> GAP -> Dense 256..16 tanh -> p_fake.

    The base is built on the model's own input (``input_tensor``), so its layers are the model's layers
    (Grad-CAM and activation maps reach ``block14_sepconv2`` etc. directly). ``weights``: ``"imagenet"``,
    ``"none"`` or a local notop ``.h5`` file (see :func:`resolve_xception_weights`). The base is frozen
    unless ``trainable_base`` (the study found the transfer model only good once the base was retrained).
    The study flattened the base's output; global average pooling keeps the head small at any input size.
    """
    input_size = int(input_size)
    if input_size < XCEPTION_MIN_SIZE:
        raise ValueError(f"Xception needs an input of at least {XCEPTION_MIN_SIZE} px, not {input_size} "
                         f"(--image-size)")
    source = resolve_xception_weights(weights)
    inputs = keras.Input((input_size, input_size, 3), name="image")
    # Our inputs are float32 in [0, 1]; Xception expects [-1, 1] (keras.applications.xception.preprocess_input).
    x = layers.Rescaling(2.0, offset=-1.0, name="to_xception_range")(inputs)
    base = keras.applications.Xception(include_top=False, weights=source, input_tensor=x,
                                       input_shape=(input_size, input_size, 3))
    base.trainable = bool(trainable_base)
    x = layers.GlobalAveragePooling2D(name="gap")(base.output)
    for units in XCEPTION_HEAD:
        x = layers.Dense(units, activation="tanh", name=f"head_dense{units}")(x)
    outputs = layers.Dense(1, activation="sigmoid", name="p_fake")(x)
    return keras.Model(inputs, outputs, name="xception_transfer")


# --- ensemble ----------------------------------------------------------------------------------------

@dataclass
class Member:
    """An ensemble member: a Keras detector model, its name in the ensemble, and its input size."""

    name: str
    model: keras.Model
    input_size: int


def member_layer_name(name: str) -> str:
    """A Keras-safe layer name for a member (letters, digits, ``_``, ``-``, ``.``)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "member"


def build_ensemble(input_size: int | None = None, members: Sequence[Member] = ()) -> keras.Model:
    """The study's ensemble: frozen members' P(fake) concatenated -> Dense 32 relu -> Dense 1 sigmoid.

    One input image (default: the largest member input size); a member of another size resizes it inside
    the model (bilinear, antialiased: what :func:`models.preprocess.resize_and_scale` does to train them).
    Members are frozen (their BatchNorm layers then use their moving statistics) and called in inference
    mode. Only built-in layers: the saved file loads with ``safe_mode=True``.
    """
    members = list(members)
    if len(members) < 2:
        raise ValueError("an ensemble needs at least two members (--members a,b[,c])")
    size = int(input_size or max(m.input_size for m in members))
    names = [member_layer_name(m.name) for m in members]
    if len(set(names)) != len(names):
        raise ValueError(f"ensemble member names must be unique: {', '.join(names)}")
    inputs = keras.Input((size, size, 3), name="image")
    outs = []
    for member, name in zip(members, names, strict=True):
        model = member.model
        model.name = name  # nested models need unique names; Grad-CAM names their layers "name/layer"
        model.trainable = False
        x = inputs
        if member.input_size != size:
            x = layers.Resizing(member.input_size, member.input_size, interpolation="bilinear", antialias=True,
                                name=f"resize_{name}")(inputs)
        out = model(x, training=False)
        if isinstance(out, dict):  # a two-output member (detector_v2): its P(fake) only
            out = out["p_fake"]
        elif isinstance(out, (list, tuple)):
            out = out[list(model.output_names).index("p_fake")]
        outs.append(out)
    x = layers.Concatenate(name="members")(outs)
    x = layers.Dense(32, activation="relu", name="head_dense")(x)
    outputs = layers.Dense(1, activation="sigmoid", name="p_fake")(x)
    return keras.Model(inputs, outputs, name="ensemble")


def build_ensemble_head(n_members: int) -> keras.Model:
    """The ensemble's head alone, on the members' P(fake) (layer names as in :func:`build_ensemble`)."""
    inputs = keras.Input((n_members,), name="member_p_fake")
    x = layers.Dense(32, activation="relu", name="head_dense")(inputs)
    outputs = layers.Dense(1, activation="sigmoid", name="p_fake")(x)
    return keras.Model(inputs, outputs, name="ensemble_head")


ENSEMBLE_HEAD_LAYERS = ("head_dense", "p_fake")


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
    "v2": Recipe(
        build=build_v2,
        optimizer=lambda: keras.optimizers.AdamW(),
        batch_size=64,
        min_delta=0.0,
        default_name="detector_v2",
        description="detector_v1's backbone + a 16x16 manipulation-map head, trained on real fakes mixed with "
                    "self-blended pseudo-fakes (known masks) and ciplab region labels",
        default_input_size=128,
        trainer="selfblend",
        patience=12,
        learning_rate=1e-3,
        warmup_epochs=2,
        weight_decay=5e-4,
        label_smoothing=0.0,
    ),
    "xception": Recipe(
        build=build_xception,
        optimizer=lambda: keras.optimizers.Adam(),
        batch_size=32,
        min_delta=0.0,
        default_name="xception_transfer",
        description="Xception base (ImageNet transfer) -> GAP -> Dense 256-128-64-32-16 tanh, Adam, batch 32",
        default_input_size=128,
        trainer="study",
        patience=3,
    ),
    "ensemble": Recipe(
        build=build_ensemble,
        optimizer=lambda: keras.optimizers.Adam(),
        batch_size=32,
        min_delta=0.0,
        default_name="ensemble",
        description="Frozen members' P(fake) concatenated -> Dense 32 relu -> Dense 1; one input, members resize",
        default_input_size=128,  # in practice the largest member's input size
        trainer="frozen_features",
        patience=10,
    ),
}

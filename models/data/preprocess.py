"""The one preprocessing path shared by training, evaluation, the CLIs and the app.

Every image a detector sees goes through :func:`resize_and_scale`: an RGB uint8
image of any size is resized to ``size x size`` (bilinear, antialiased) and
scaled to float32 in [0, 1]. The tf.data training pipeline maps the same
function over decoded JPEGs, so a model sees identical pixels at train and
predict time.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from models.data.intake import as_rgb_uint8

RESIZE_METHOD = "bilinear"


def resize_and_scale(image, size: int) -> tf.Tensor:
    """Resize one HxWx3 uint8 image (array or tensor) to size x size float32 in [0, 1]."""
    image = tf.cast(tf.convert_to_tensor(image), tf.float32)
    if tuple(image.shape[-3:-1]) != (size, size):  # already at size: resizing is the identity (to ~1e-8)
        image = tf.image.resize(image, (size, size), method=RESIZE_METHOD, antialias=True)
    return tf.clip_by_value(image / 255.0, 0.0, 1.0)


def batch_to_model_input(images, size: int) -> np.ndarray:
    """Preprocess a list (or N-array) of RGB images of any sizes into an (N, size, size, 3) float32 batch."""
    if isinstance(images, np.ndarray) and images.ndim == 4:
        return resize_and_scale(_as_rgb_uint8_batch(images), size).numpy()
    images = [as_rgb_uint8(img) for img in images]
    if images and all(img.shape == images[0].shape for img in images):
        return resize_and_scale(np.stack(images), size).numpy()  # one op for a same-size batch
    out = np.empty((len(images), size, size, 3), dtype=np.float32)
    for i, img in enumerate(images):
        out[i] = resize_and_scale(img, size).numpy()
    return out


def _as_rgb_uint8_batch(images: np.ndarray) -> np.ndarray:
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    if images.shape[-1] == 4:
        images = images[..., :3]
    if images.dtype != np.uint8:
        # Same rule as as_rgb_uint8, image by image: floats in [0, 1] are scaled to [0, 255].
        images = np.stack([as_rgb_uint8(img) for img in images]) if len(images) else images.astype(np.uint8)
    return images


def model_view(image, size: int) -> np.ndarray:
    """The exact input a detector of this size sees, as uint8 RGB for display."""
    x = resize_and_scale(as_rgb_uint8(image), size).numpy()
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)

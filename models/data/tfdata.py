"""Streaming ``tf.data`` pipelines over dataset folders (see :mod:`models.data.files` for the layout).

Files are listed once, then decoded, resized and scaled with
:func:`models.data.preprocess.resize_and_scale`. Nothing is loaded into one big
array. Labels follow the project convention: fake = 1.
"""

from __future__ import annotations

import tensorflow as tf

from models.data.files import DataError, FileList
from models.data.preprocess import resize_and_scale


def decode_image(path: tf.Tensor) -> tf.Tensor:
    """Read and decode one image file to uint8 RGB (JPEG decoded like Pillow: accurate IDCT)."""
    raw = tf.io.read_file(path)
    is_jpeg = tf.strings.regex_full_match(tf.strings.lower(path), r".*\.jpe?g")
    return tf.cond(
        is_jpeg,
        lambda: tf.io.decode_jpeg(raw, channels=3, dct_method="INTEGER_ACCURATE"),
        lambda: tf.ensure_shape(
            tf.io.decode_image(raw, channels=3, expand_animations=False), [None, None, 3]
        ),
    )


def make_dataset(
    files: FileList,
    image_size: int = 64,
    batch_size: int = 32,
    shuffle: bool = False,
    seed: int = 0,
    augment=None,
    repeat: bool = False,
) -> tf.data.Dataset:
    """A streaming ``(images, labels)`` dataset: decode -> resize -> [0,1] (-> augment) -> batch."""
    if len(files) == 0:
        raise DataError("no images found")
    ds = tf.data.Dataset.from_tensor_slices(
        (tf.constant(files.paths), tf.constant(files.labels, dtype=tf.float32))
    )
    if shuffle:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()

    def load(path, label):
        return resize_and_scale(decode_image(path), image_size), label

    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size)
    if augment is not None:
        ds = ds.map(lambda x, y: (augment(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)

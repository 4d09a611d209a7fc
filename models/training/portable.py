"""Backend-portable training on in-memory uint8 arrays (no TensorFlow import).

Used by architectures whose recipe says ``trainer="portable"`` (``detector_v1``). The same code
trains on this machine's CPU with the TensorFlow backend and on a lent GPU with Keras on JAX.
Images are decoded by Pillow exactly as ``models.intake`` does (pixel-identical to the tf.data path)
and must already be at the model's input size, so preprocessing is just ``/ 255``: the same numbers
:func:`models.preprocess.resize_and_scale` gives for a same-size image.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor

import keras
import numpy as np

from models.data.augment import Augmenter
from models.data.files import FileList
from models.data.intake import load_image


def load_arrays(files: FileList, size: int, workers: int = 8) -> np.ndarray:
    """Decode every file to uint8 (N, size, size, 3). Images must already be size x size (the crops are)."""

    def one(path):
        img = load_image(path)
        if img.shape[:2] != (size, size):
            img = np.asarray(
                keras.ops.convert_to_numpy(
                    keras.ops.image.resize(img.astype("float32"), (size, size), interpolation="bilinear",
                                           antialias=True)
                ).round().clip(0, 255),
                dtype=np.uint8,
            )
        return img

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return np.stack(list(pool.map(one, files.paths)))


class ArrayBatches(keras.utils.PyDataset):
    """Batches of (float32 images in [0,1], float32 labels), augmented and reshuffled per epoch, seeded."""

    def __init__(self, x, y, batch_size, augmenter: Augmenter | None = None, shuffle=False, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y = x, np.asarray(y, dtype=np.float32)
        self.batch_size = batch_size
        self.augmenter = augmenter
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        self._order()

    def _order(self):
        n = len(self.x)
        self.order = np.random.default_rng([self.seed, self.epoch]).permutation(n) if self.shuffle else np.arange(n)

    def __len__(self):
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, i):
        idx = np.sort(self.order[i * self.batch_size : (i + 1) * self.batch_size])
        xb = self.x[idx]
        if self.augmenter is not None:
            xb = self.augmenter(xb, np.random.default_rng([self.seed, self.epoch, i]))
        else:
            xb = xb.astype(np.float32) / 255.0
        return xb, self.y[idx]

    def on_epoch_end(self):
        self.epoch += 1
        self._order()


def predict_arrays(model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    out = []
    for s in range(0, len(x), batch_size):
        out.append(np.asarray(keras.ops.convert_to_numpy(model(x[s : s + batch_size].astype(np.float32) / 255.0,
                                                                training=False))).reshape(-1))
    return np.concatenate(out) if out else np.zeros((0,), np.float32)


def adamw(recipe, epochs: int, steps: int, peak: float) -> keras.optimizers.Optimizer:
    """AdamW with the recipe's weight decay: linear warm-up for ``recipe.warmup_epochs`` to ``peak``, then cosine
    decay to 1% of it over the remaining steps."""
    warmup = min(recipe.warmup_epochs * steps, max(0, epochs * steps - 1))
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=peak / 100 if warmup else peak,
        decay_steps=max(1, epochs * steps - warmup),
        alpha=0.01,
        warmup_target=peak if warmup else None,
        warmup_steps=warmup,
    )
    return keras.optimizers.AdamW(learning_rate=schedule, weight_decay=recipe.weight_decay)


def fit(model, recipe, x_train, y_train, x_val, y_val, *, epochs, batch_size, seed, patience,
        learning_rate=None, checkpoint_dir=None, callbacks=(), workers=4):
    """Train with AdamW, linear warm-up then cosine decay, early stopping on validation ROC AUC."""
    peak = learning_rate or recipe.learning_rate
    model.compile(
        optimizer=adamw(recipe, epochs, math.ceil(len(x_train) / batch_size), peak),
        loss=keras.losses.BinaryCrossentropy(label_smoothing=recipe.label_smoothing),
        metrics=["accuracy", keras.metrics.AUC(name="auc")],
    )
    train = ArrayBatches(x_train, y_train, batch_size, Augmenter(), shuffle=True, seed=seed,
                         workers=workers, use_multiprocessing=False)
    val = ArrayBatches(x_val, y_val, 256, workers=workers, use_multiprocessing=False)
    early = keras.callbacks.EarlyStopping(monitor="val_auc", mode="max", patience=patience,
                                          restore_best_weights=True)
    # The backup goes first, so that an epoch is saved before any other callback can stop the run.
    cbs = [keras.callbacks.BackupAndRestore(checkpoint_dir)] if checkpoint_dir else []
    cbs += [early, *callbacks]
    started = time.time()
    history = model.fit(train, validation_data=val, epochs=epochs, callbacks=cbs, verbose=0)
    return history, early, time.time() - started, {"augmentation": Augmenter().config(), "learning_rate": peak,
                                                    "schedule": f"linear warm-up {recipe.warmup_epochs} epochs, cosine",
                                                    "weight_decay": recipe.weight_decay,
                                                    "label_smoothing": recipe.label_smoothing}

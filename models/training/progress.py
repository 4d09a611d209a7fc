"""tqdm progress for Keras training (one bar per epoch, metrics in the postfix)."""

from __future__ import annotations

import keras
from tqdm.auto import tqdm


class TqdmCallback(keras.callbacks.Callback):
    def __init__(self, epochs: int, steps: int | None):
        super().__init__()
        self.epochs = epochs
        self.steps = steps
        self.bar = None

    def on_epoch_begin(self, epoch, logs=None):
        self.bar = tqdm(total=self.steps, desc=f"epoch {epoch + 1}/{self.epochs}", unit="batch", leave=True)

    def on_train_batch_end(self, batch, logs=None):
        if self.bar is not None:
            self.bar.update(1)
            if logs and batch % 20 == 0:
                self.bar.set_postfix({k: f"{float(v):.3f}" for k, v in logs.items()}, refresh=False)

    def on_epoch_end(self, epoch, logs=None):
        if self.bar is not None:
            self.bar.set_postfix({k: f"{float(v):.3f}" for k, v in (logs or {}).items()})
            self.bar.close()
            self.bar = None


class TimeLimit(keras.callbacks.Callback):
    """Stop training at the end of the epoch that passes ``seconds`` (best weights are still restored)."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = seconds
        self.start = None
        self.stopped = False

    def on_train_begin(self, logs=None):
        import time

        self.start = time.time()

    def on_epoch_end(self, epoch, logs=None):
        import time

        if time.time() - self.start > self.seconds:
            self.stopped = True
            self.model.stop_training = True

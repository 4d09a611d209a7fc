"""--checkpoint-dir: an interrupted training run resumes from its last finished epoch."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from models.training import portable
from models.training.architectures import ARCHITECTURES, build_v1


class Interrupt(Exception):
    pass


class StopAfter(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise Interrupt()


def test_interrupted_portable_run_resumes_from_checkpoint(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (32, 32, 32, 3), dtype=np.uint8)
    y = np.array([0, 1] * 16)
    ckpt = tmp_path / "ckpt"
    recipe = ARCHITECTURES["v1"]
    keras.utils.set_random_seed(0)
    with pytest.raises(Interrupt):
        portable.fit(build_v1(32, width=0.25), recipe, x, y, x[:8], y[:8], epochs=3, batch_size=16, seed=0,
                     patience=5, checkpoint_dir=str(ckpt), callbacks=[StopAfter(1)], workers=1)
    assert ckpt.exists() and any(ckpt.iterdir()), "a backup should be left after the interruption"
    keras.utils.set_random_seed(0)
    history, *_ = portable.fit(build_v1(32, width=0.25), recipe, x, y, x[:8], y[:8], epochs=3, batch_size=16,
                               seed=0, patience=5, checkpoint_dir=str(ckpt), workers=1)
    # Epochs 1 and 2 were done before the interruption: only epoch 3 runs now.
    assert len(history.history["loss"]) == 1
    assert not ckpt.exists() or not any(ckpt.iterdir()), "the backup is removed after a completed run"

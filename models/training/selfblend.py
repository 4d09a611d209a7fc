"""Training detector_v2: real fakes mixed with self-blended pseudo-fakes, and a manipulation map learned
against ground truth (backend-portable, like :mod:`models.training.portable`).

Every epoch holds every training image once plus ``pseudo_ratio`` x (the training reals that have landmarks)
pseudo-fakes, each drawn afresh from a random training real (:func:`models.data.blend.self_blend`, seeded per
epoch and batch). The generator only ever sees the training split's reals of the sources being trained on:
``models.train --exclude-source`` removes a source's reals and fakes before anything here runs.

The map head's target (``supervision``):

- reals: an empty map (nothing was blended);
- pseudo-fakes: their exact blending mask, averaged to the map's cells;
- ciplab photoshop fakes: the union of the regions their file name says were edited, on their landmarks;
- every other real fake (GAN, diffusion, face swaps): no target, the map's loss is masked out, because where
  a generator or a swap changed the image is not known pixel by pixel (a GAN face is "fake everywhere", which
  a map cannot localise and would only learn to paint whole).

``supervision`` in {"all", "pseudo", "ciplab", "none"} turns the two sources of map targets on and off (the
ablation); reals keep their empty target whenever any supervision is on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import numpy as np

from models.data.augment import Augmenter
from models.data.blend import BlendConfig, ciplab_parts, pool_mask, self_blend
from models.data.files import FileList
from models.data.landmarks import Landmarks, cached_landmarks, part_mask
from models.training.portable import adamw, load_arrays

SUPERVISION = ("all", "pseudo", "ciplab", "none")
V2_AUGMENTER = Augmenter(jpeg_p=0.5, jpeg_quality=(50, 100), rescale_p=0.3, chroma_p=0.2)


@dataclass(frozen=True)
class SelfBlendConfig:
    pseudo_ratio: float = 0.5  # pseudo-fakes per epoch, as a share of the training reals with landmarks
    map_weight: float = 1.0  # weight of the map's loss next to P(fake)'s
    supervision: str = "all"
    map_size: int = 16


@dataclass
class MapTargets:
    """Per training image: its landmarks (or None) and how its map target is made."""

    landmarks: list[Landmarks | None]
    parts: list[tuple[str, ...] | None]  # ciplab fakes: the edited regions; None: no known target

    def target(self, i: int, label: int, shape: tuple[int, int], supervision: str) -> tuple[np.ndarray, float]:
        """(full-size mask, weight) of row ``i`` for the map's loss."""
        empty = np.zeros(shape, np.float32)
        if supervision == "none":
            return empty, 0.0
        if label == 0:
            return empty, 1.0
        parts, lm = self.parts[i], self.landmarks[i]
        if supervision in ("all", "ciplab") and parts is not None and lm is not None:
            return part_mask(shape, lm, parts).astype(np.float32), 1.0
        return empty, 0.0


def map_targets(files: FileList, progress=None) -> MapTargets:
    """Landmarks of the reals and the ciplab fakes (cached, :func:`models.data.landmarks.cached_landmarks`),
    and each ciplab fake's edited parts from its original file name."""
    parts = [ciplab_parts(name) if y == 1 else None for y, name in zip(files.labels, files.names)]
    need = [i for i, (y, p) in enumerate(zip(files.labels, parts)) if y == 0 or p is not None]
    found = cached_landmarks([files.paths[i] for i in need], progress=progress)
    landmarks: list[Landmarks | None] = [None] * len(files)
    for i, lm in zip(need, found):
        landmarks[i] = lm
    return MapTargets(landmarks, parts)


def masked_map_loss(y_true, y_pred):
    """Binary cross-entropy of the map, per image, weighted by the target's second channel (0 = no target)."""
    target, weight = y_true[..., :1], y_true[..., 1:]
    p = keras.ops.clip(y_pred, 1e-6, 1.0 - 1e-6)
    bce = -(target * keras.ops.log(p) + (1.0 - target) * keras.ops.log(1.0 - p))
    return keras.ops.mean(weight * bce, axis=(1, 2, 3))


class BlendBatches(keras.utils.PyDataset):
    """Batches of (images, {"p_fake": labels, "mask": (m, m, 2) target + weight}) for detector_v2.

    Slot ``j < n`` is training image ``j``; slots ``n..`` are pseudo-fakes, each blended from a random real with
    landmarks (a random other real as donor), drawn with a generator seeded by (seed, epoch, batch)."""

    def __init__(self, x, y, targets: MapTargets, cfg: SelfBlendConfig, batch_size: int, *, augment: bool,
                 seed: int = 0, pseudo: bool = True, blend: BlendConfig | None = None, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y, self.targets, self.cfg = x, np.asarray(y, np.int64), targets, cfg
        self.blend = blend or BlendConfig()
        self.batch_size, self.augment, self.seed, self.epoch = batch_size, augment, seed, 0
        self.donors = np.array([i for i, (lab, lm) in enumerate(zip(self.y, targets.landmarks))
                                if lab == 0 and lm is not None], dtype=np.int64)
        self.n_pseudo = int(round(cfg.pseudo_ratio * len(self.donors))) if pseudo and len(self.donors) >= 2 else 0
        self._order()

    def _order(self):
        n = len(self.x) + self.n_pseudo
        self.order = np.random.default_rng([self.seed, self.epoch]).permutation(n) if self.augment else np.arange(n)

    def __len__(self):
        return math.ceil(len(self.order) / self.batch_size)

    def _pseudo(self, rng: np.random.Generator):
        r, d = rng.choice(self.donors, size=2, replace=False)
        lm = self.targets.landmarks
        fake, mask, _ = self_blend(self.x[r], lm[r], rng, donor=self.x[d], donor_lm=lm[d], config=self.blend)
        return fake, mask, 1, 1.0 if self.cfg.supervision in ("all", "pseudo") else 0.0

    def _item(self, slot: int, rng: np.random.Generator):
        if slot >= len(self.x):
            return self._pseudo(rng)
        label = int(self.y[slot])
        mask, weight = self.targets.target(slot, label, self.x.shape[1:3], self.cfg.supervision)
        return self.x[slot], mask, label, weight

    def __getitem__(self, i):
        rng = np.random.default_rng([self.seed, self.epoch, i, 1])
        slots = np.sort(self.order[i * self.batch_size : (i + 1) * self.batch_size])
        m = self.cfg.map_size
        xb = np.empty((len(slots), *self.x.shape[1:]), np.float32)
        yb = np.empty((len(slots),), np.float32)
        mb = np.empty((len(slots), m, m, 2), np.float32)
        for k, slot in enumerate(slots):
            img, mask, label, weight = self._item(int(slot), rng)
            if self.augment:
                xb[k], mask = V2_AUGMENTER.one_with_mask(img, mask, rng)
            else:
                xb[k] = img.astype(np.float32) / 255.0
            yb[k] = label
            mb[k, ..., 0], mb[k, ..., 1] = pool_mask(mask, m), weight
        return xb, {"p_fake": yb, "mask": mb}

    def on_epoch_end(self):
        self.epoch += 1
        self._order()


def predict_p_fake(model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The model's raw P(fake) (its ``p_fake`` output) for uint8 images at its input size."""
    out = []
    for s in range(0, len(x), batch_size):
        p = model(x[s : s + batch_size].astype(np.float32) / 255.0, training=False)
        p = p["p_fake"] if isinstance(p, dict) else p[0]
        out.append(np.asarray(keras.ops.convert_to_numpy(p)).reshape(-1))
    return np.concatenate(out) if out else np.zeros((0,), np.float32)


def fit(model, recipe, train_files: FileList, val_files: FileList, image_size: int, *, epochs: int,
        batch_size: int, seed: int, patience: int, cfg: SelfBlendConfig, learning_rate: float | None = None,
        checkpoint_dir: str | None = None, callbacks=(), workers: int = 4, progress=None):
    """Train detector_v2; early stopping on the validation ROC AUC of P(fake) (real val images only).
    Returns (history, early_stopping, config for the metadata)."""
    if cfg.supervision not in SUPERVISION:
        raise ValueError(f"map supervision must be one of {', '.join(SUPERVISION)}, not {cfg.supervision!r}")
    x_train, x_val = load_arrays(train_files, image_size), load_arrays(val_files, image_size)
    t_train, t_val = map_targets(train_files, progress), map_targets(val_files, progress)
    train = BlendBatches(x_train, train_files.y, t_train, cfg, batch_size, augment=True, seed=seed,
                         workers=workers, use_multiprocessing=False)
    val = BlendBatches(x_val, val_files.y, t_val, cfg, 256, augment=False, pseudo=False, workers=workers,
                       use_multiprocessing=False)
    peak = learning_rate or recipe.learning_rate
    model.compile(optimizer=adamw(recipe, epochs, len(train), peak),
                  loss={"p_fake": keras.losses.BinaryCrossentropy(), "mask": masked_map_loss},
                  loss_weights={"p_fake": 1.0, "mask": cfg.map_weight},
                  metrics={"p_fake": [keras.metrics.AUC(name="auc")]})
    early = keras.callbacks.EarlyStopping(monitor="val_p_fake_auc", mode="max", patience=patience,
                                          restore_best_weights=True)
    cbs = [keras.callbacks.BackupAndRestore(checkpoint_dir)] if checkpoint_dir else []  # first: see portable.fit
    history = model.fit(train, validation_data=val, epochs=epochs, callbacks=[*cbs, early, *callbacks], verbose=0)
    config = {"optimizer": "AdamW", "learning_rate": peak, "weight_decay": recipe.weight_decay,
              "schedule": f"linear warm-up {recipe.warmup_epochs} epochs, cosine",
              "augmentation": V2_AUGMENTER.config(), "blend": BlendConfig().config(),
              "self_blend": {**cfg.__dict__, "pseudo_fakes_per_epoch": train.n_pseudo,
                             "reals_with_landmarks": int(len(train.donors))},
              "early_stopping": {"monitor": "val_p_fake_auc", "patience": patience, "restore_best_weights": True}}
    return history, early, config

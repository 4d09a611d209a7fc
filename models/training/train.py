"""Training one model from a typed :class:`TrainConfig`: the study's recipe (tf.data), the portable
trainer (detector_v1, any Keras backend), the frozen-members ensemble head and the spectrum baseline. Writes the
model and its metadata JSON (config and command, history, data fingerprint, versions, val/test metrics).
The command line is ``python -m models.train`` (models/train.py).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from models.analysis.metrics import compute_metrics, metrics_by_group, metrics_by_kind
from models.data.files import DataError, FileList, data_root, fingerprint, list_files
from models.detectors.labels import THRESHOLD
from models.detectors.provenance import file_sha256, library_versions
from models.training.architectures import ARCHITECTURES


@dataclass(frozen=True)
class TrainConfig:
    """One training run. ``None`` means the recipe's default (see models.training.architectures.ARCHITECTURES)."""

    arch: str
    data: str | None = None
    out: str = "assets/models"
    name: str | None = None
    image_size: int | None = None
    epochs: int = 25
    batch_size: int | None = None
    patience: int | None = None
    learning_rate: float | None = None
    width: float | None = None  # v1 only
    weights: str | None = None  # xception only: imagenet | PATH | none
    trainable_base: bool = False  # xception only
    members: str | None = None  # ensemble only: "a,b[,c]"
    seed: int = 0
    checkpoint_dir: str | None = None
    time_limit: float | None = None  # minutes
    workers: int = 4
    exclude_source: tuple[str, ...] = ()
    pseudo_ratio: float | None = None  # v2 only: self-blended pseudo-fakes per epoch / training reals
    map_weight: float | None = None  # v2 only: weight of the manipulation map's loss
    map_supervision: str | None = None  # v2 only: all | pseudo | ciplab | none (ablation)
    quiet: bool = False
    argv: tuple[str, ...] = ()  # the command line, recorded in the metadata

    @property
    def command(self) -> str:
        return "python -m models.train " + shlex.join(self.argv)


def training_versions() -> dict:
    """Library versions recorded with a trained model (python, keras and its backend, numpy, scikit-learn, and
    TensorFlow or JAX when loaded)."""
    import keras

    loaded = [lib for lib in ("tensorflow", "jax") if lib in sys.modules]
    return {**library_versions(["keras", "numpy", "scikit-learn", *loaded]), "keras_backend": keras.backend.backend()}


def save_weights_only_model(model, path) -> None:
    """Save architecture and weights without the optimizer state (a third of the size for AdamW)."""
    # Rebuilt from its config, the clone is never compiled: keras.models.clone_model would copy the compile
    # config, optimizer included, and the optimizer's variables would be saved too.
    clone = type(model).from_config(model.get_config())
    clone.set_weights(model.get_weights())
    clone.save(path)


def split_metrics(files: FileList, p, threshold: float | None = None) -> dict:
    """Metrics of scores ``p`` on ``files``: overall, per source and per kind of fake (kinds from the manifest)."""
    t = THRESHOLD if threshold is None else threshold
    y, sources = files.y, files.sources
    return {
        "overall": compute_metrics(y, p, t),
        "by_source": metrics_by_group(y, p, sources, t),
        "by_kind": metrics_by_kind(y, p, sources, files.source_kinds, t),
    }


def _split_files(root, split, exclude=()):
    """The files of one split, or None; ``exclude`` drops whole sources (never applied to test)."""
    try:
        files = list_files(root, split)
    except DataError:
        return None
    if exclude and split != "test":
        files = files.without_sources(exclude)
    return files if len(files) else None


def _compile(model, cfg: TrainConfig, recipe, monitor: str, mode: str, patience: int, callbacks):
    """Compile with the recipe's optimizer and BCE; early stopping on ``monitor`` (best weights restored),
    after the resumable backup when ``--checkpoint-dir`` is given. Returns (early_stopping, callbacks)."""
    import keras

    model.compile(optimizer=_optimizer(cfg, recipe), loss="binary_crossentropy",
                  metrics=["accuracy", keras.metrics.AUC(name="auc")])
    early = keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=patience,
                                          min_delta=recipe.min_delta, restore_best_weights=True)
    cbs = [keras.callbacks.BackupAndRestore(cfg.checkpoint_dir)] if cfg.checkpoint_dir else []
    return early, [*cbs, early, *callbacks]


def _fit_study(cfg: TrainConfig, recipe, model, root, image_size, batch_size, patience, callbacks):
    """The study's recipe: tf.data pipeline, recipe optimizer, early stopping on val accuracy."""
    import keras
    import numpy as np

    from models.data.tfdata import make_dataset

    train_files, val_files = (_split_files(root, s, cfg.exclude_source) for s in ("train", "val"))
    train_ds = make_dataset(train_files, image_size, batch_size, shuffle=True, seed=cfg.seed)
    val_ds = make_dataset(val_files, image_size, batch_size=128)
    early, cbs = _compile(model, cfg, recipe, "val_accuracy", "max", patience, callbacks)
    history = model.fit(train_ds, validation_data=val_ds, epochs=cfg.epochs, callbacks=cbs, verbose=0)

    def predict(files):
        ds = make_dataset(files, image_size=image_size, batch_size=128)
        return np.concatenate([np.asarray(model(x, training=False)).reshape(-1) for x, _ in ds])

    config = {
        "optimizer": keras.optimizers.serialize(model.optimizer)["class_name"],
        "learning_rate": float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)),
        "early_stopping": {"monitor": "val_accuracy", "patience": patience, "min_delta": recipe.min_delta,
                           "restore_best_weights": True},
        "augmentation": None,
    }
    return history, early, predict, config


def _optimizer(cfg: TrainConfig, recipe):
    optimizer = recipe.optimizer()
    if cfg.learning_rate is not None:
        optimizer.learning_rate = cfg.learning_rate
    return optimizer


def _fit_frozen_features(cfg: TrainConfig, recipe, model, root, image_size, batch_size, patience, callbacks):
    """Train only an ensemble's head, on its frozen members' P(fake) for each image, computed once.

    The members are frozen and run in inference mode inside the ensemble, and there is no augmentation, so
    their outputs for an image never change: training the head on them is training the ensemble, at the cost
    of one pass over the data instead of one per epoch. The head's trained weights are then copied into the
    ensemble, and the full model's val predictions are checked against the head's (``feature_check``).
    """
    import keras
    import numpy as np

    from models.data.tfdata import make_dataset
    from models.training.architectures import ENSEMBLE_HEAD_LAYERS, build_ensemble_head

    def images(files):
        return make_dataset(files, image_size, batch_size=128).map(lambda x, y: x)

    train_files, val_files = (_split_files(root, s, cfg.exclude_source) for s in ("train", "val"))
    members = keras.Model(model.inputs, model.get_layer("members").output, name="ensemble_members")
    f_train = members.predict(images(train_files), verbose=0)
    f_val = members.predict(images(val_files), verbose=0)
    head = build_ensemble_head(f_train.shape[1])
    for name in ENSEMBLE_HEAD_LAYERS:  # start from the ensemble's own (seeded) initial head weights
        head.get_layer(name).set_weights(model.get_layer(name).get_weights())
    early, cbs = _compile(head, cfg, recipe, "val_loss", "min", patience, callbacks)
    history = head.fit(f_train, np.asarray(train_files.y, np.float32), batch_size=batch_size, epochs=cfg.epochs,
                       validation_data=(f_val, np.asarray(val_files.y, np.float32)), shuffle=True, callbacks=cbs,
                       verbose=0)
    for name in ENSEMBLE_HEAD_LAYERS:
        model.get_layer(name).set_weights(head.get_layer(name).get_weights())

    cache: dict = {}

    def predict(files):
        key = tuple(files.paths)
        if key not in cache:
            cache[key] = model.predict(images(files), verbose=0).reshape(-1)
        return cache[key]

    p_head = head.predict(f_val, verbose=0).reshape(-1)
    config = {
        "trainer": "frozen_features",
        "optimizer": keras.optimizers.serialize(head.optimizer)["class_name"],
        "learning_rate": float(keras.ops.convert_to_numpy(head.optimizer.learning_rate)),
        "early_stopping": {"monitor": "val_loss", "patience": patience, "min_delta": recipe.min_delta,
                           "restore_best_weights": True},
        "augmentation": None,
        "members_frozen": True,
        "trainable_params": int(sum(int(np.prod(w.shape)) for w in model.trainable_weights)),
        "feature_check": {"split": "val",
                          "max_abs_diff": float(np.max(np.abs(predict(val_files) - p_head)))},
    }
    return history, early, predict, config



def load_members(spec: str):
    """``--members a,b[,c]`` -> (architectures.Member list, metadata records). Members must be Keras models."""
    from models.detectors.registry import load_model, resolve_model_path
    from models.training.architectures import Member, member_layer_name

    names = [s.strip() for s in (spec or "").split(",") if s.strip()]
    if len(names) < 2:
        raise ValueError("--arch ensemble needs --members with at least two models, e.g. --members a,b")
    members, records, seen = [], [], set()
    for given in names:
        path = resolve_model_path(given).resolve()
        if path in seen:
            raise ValueError(f"ensemble member {given!r} is listed twice")
        seen.add(path)
        detector = load_model(path, cache=False)  # a private copy: freezing and renaming it touches no cache
        if detector.keras_model is None:
            raise ValueError(f"ensemble member {given!r} ({path.name}) is not a Keras model; "
                             "ensembles take Keras (.keras) detectors only")
        name = member_layer_name(detector.name)
        if name in {m.name for m in members}:
            name = member_layer_name(path.stem)
        if name in {m.name for m in members}:
            name = f"{name}_{len(members) + 1}"
        members.append(Member(name, detector.keras_model, int(detector.input_size)))
        records.append({"name": name, "model": given, "file": path.name,
                        "architecture": detector.metadata.get("architecture"),
                        "input_size": int(detector.input_size), "params": int(detector.keras_model.count_params()),
                        "sha256": file_sha256(path)})
    return members, records


def _fit_portable(cfg: TrainConfig, recipe, model, root, image_size, batch_size, patience, callbacks):
    """Augmented in-memory training (models.portable); runs on any Keras backend."""
    from models.training import portable

    train_files, val_files = (_split_files(root, s, cfg.exclude_source) for s in ("train", "val"))
    x_train = portable.load_arrays(train_files, image_size)
    x_val = portable.load_arrays(val_files, image_size)
    history, early, _, extra = portable.fit(
        model, recipe, x_train, train_files.y, x_val, val_files.y, epochs=cfg.epochs, batch_size=batch_size,
        seed=cfg.seed, patience=patience, learning_rate=cfg.learning_rate, checkpoint_dir=cfg.checkpoint_dir,
        callbacks=callbacks, workers=cfg.workers)

    def predict(files):
        return portable.predict_arrays(model, portable.load_arrays(files, image_size))

    config = {
        "optimizer": "AdamW",
        **extra,
        "early_stopping": {"monitor": "val_auc", "patience": patience, "restore_best_weights": True},
    }
    return history, early, predict, config


def _fit_selfblend(cfg: TrainConfig, recipe, model, root, image_size, batch_size, patience, callbacks):
    """detector_v2: real fakes plus self-blended pseudo-fakes, with the manipulation map (models.training.selfblend)."""
    from models.training import selfblend
    from models.training.portable import load_arrays

    train_files, val_files = (_split_files(root, s, cfg.exclude_source) for s in ("train", "val"))
    defaults = selfblend.SelfBlendConfig()
    sb = selfblend.SelfBlendConfig(
        pseudo_ratio=defaults.pseudo_ratio if cfg.pseudo_ratio is None else cfg.pseudo_ratio,
        map_weight=defaults.map_weight if cfg.map_weight is None else cfg.map_weight,
        supervision=cfg.map_supervision or defaults.supervision, map_size=model.get_layer("mask").output.shape[1])
    history, early, config = selfblend.fit(
        model, recipe, train_files, val_files, image_size, epochs=cfg.epochs, batch_size=batch_size, seed=cfg.seed,
        patience=patience, cfg=sb, learning_rate=cfg.learning_rate, checkpoint_dir=cfg.checkpoint_dir,
        callbacks=callbacks, workers=cfg.workers)

    def predict(files):
        return selfblend.predict_p_fake(model, load_arrays(files, image_size))

    return history, early, predict, config


def train_spectrum(cfg: TrainConfig) -> dict:
    """The spectrum baseline: log power spectrum features -> standardised logistic regression (scikit-learn)."""
    from models.detectors import spectrum
    from models.training import portable

    root = data_root(cfg.data)
    if not root.is_dir():
        raise FileNotFoundError(f"data folder not found: {root}")
    name = cfg.name or "spectrum"
    size = cfg.image_size or 128
    started = time.time()
    train_files = _split_files(root, "train", cfg.exclude_source)
    if train_files is None:
        raise FileNotFoundError(f"{root} needs a train/ folder with real/ and fake/")
    features = spectrum.spectrum_features(portable.load_arrays(train_files, size), size)
    mean, scale, coef, intercept = spectrum.fit(features, train_files.y, seed=cfg.seed)
    det = spectrum.SpectrumDetector(name, mean, scale, coef, intercept, size)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    det.save(out / f"{name}.npz")
    metadata = {
        "name": name, "architecture": "spectrum",
        "description": "Azimuthal log power spectrum (64 bins) + logistic regression",
        "input_size": size, "labels": {"real": 0, "fake": 1}, "output": "logistic P(fake)",
        "params": int(coef.size + 1),
        "train_config": {"command": cfg.command, "arch": "spectrum",
                         "image_size": size, "excluded_sources": list(cfg.exclude_source),
                         "n_train": len(train_files), "bins": spectrum.BINS, "classifier": "LogisticRegression(C=1)",
                         "seed": cfg.seed, "train_seconds": round(time.time() - started, 1)},
        "history": {}, "data": fingerprint(root), "versions": training_versions(),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "metrics": _metrics(root, lambda files: det.predict(portable.load_arrays(files, size))),
    }
    (out / f"{name}.json").write_text(json.dumps(metadata, indent=2) + "\n")
    return metadata


def _check_options(cfg: TrainConfig) -> None:
    if cfg.arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {cfg.arch!r}; choose from {', '.join([*ARCHITECTURES, 'spectrum'])}")
    if cfg.width is not None and cfg.arch != "v1":
        raise ValueError("--width applies to --arch v1 only")
    if (cfg.weights is not None or cfg.trainable_base) and cfg.arch != "xception":
        raise ValueError("--weights and --trainable-base apply to --arch xception only")
    if cfg.members is not None and cfg.arch != "ensemble":
        raise ValueError("--members applies to --arch ensemble only")
    v2_only = {"--pseudo-ratio": cfg.pseudo_ratio, "--map-weight": cfg.map_weight,
               "--map-supervision": cfg.map_supervision}
    if cfg.arch != "v2" and any(v is not None for v in v2_only.values()):
        raise ValueError(f"{', '.join(k for k, v in v2_only.items() if v is not None)} apply to --arch v2 only")


def _seed(seed: int) -> None:
    """Seeds Python, NumPy and the backend (weights init, dropout, shuffling), plus deterministic TF kernels."""
    import keras

    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def _build(cfg: TrainConfig, recipe, image_size: int):
    """(model, image_size, options, extra metadata) for the recipe and the config's options."""
    options = {"width": cfg.width} if cfg.width is not None else {}
    if cfg.arch == "xception":
        options = {"weights": cfg.weights or "none", "trainable_base": bool(cfg.trainable_base)}
    if cfg.arch == "ensemble":
        members, records = load_members(cfg.members)
        image_size = cfg.image_size or max(m.input_size for m in members)
        return recipe.build(image_size, members=members), image_size, {"members": [m.name for m in members]}, {
            "members": records}
    return recipe.build(image_size, **options), image_size, options, {}


def _callbacks(cfg: TrainConfig, n_train: int, batch_size: int):
    from models.training.progress import TimeLimit, TqdmCallback

    callbacks = [] if cfg.quiet else [TqdmCallback(cfg.epochs, math.ceil(n_train / batch_size))]
    time_limit = TimeLimit(cfg.time_limit * 60) if cfg.time_limit else None
    if time_limit:
        callbacks.append(time_limit)
    return callbacks, time_limit


def train(cfg: TrainConfig) -> dict:
    """Train one model as ``cfg`` says; writes ``<out>/<name>.keras`` (or ``.npz``) and ``<name>.json``, returns
    the metadata."""
    if cfg.arch == "spectrum":
        return train_spectrum(cfg)
    _check_options(cfg)
    recipe = ARCHITECTURES[cfg.arch]
    batch_size = cfg.batch_size or recipe.batch_size
    patience = cfg.patience if cfg.patience is not None else recipe.patience
    root = data_root(cfg.data)
    if not root.is_dir():
        raise FileNotFoundError(f"data folder not found: {root}")
    train_files = _split_files(root, "train", cfg.exclude_source)
    if train_files is None or _split_files(root, "val", cfg.exclude_source) is None:
        raise FileNotFoundError(f"{root} needs train/ and val/ folders, each with real/ and fake/")
    _seed(cfg.seed)
    model, image_size, options, extra = _build(cfg, recipe, cfg.image_size or recipe.default_input_size)
    callbacks, time_limit = _callbacks(cfg, len(train_files), batch_size)
    fit = {"portable": _fit_portable, "frozen_features": _fit_frozen_features,
           "selfblend": _fit_selfblend}.get(recipe.trainer, _fit_study)
    started = time.time()
    history, early, predict, fit_config = fit(cfg, recipe, model, root, image_size, batch_size, patience, callbacks)
    seconds = time.time() - started
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    model_path = out / f"{cfg.name or recipe.default_name}.keras"
    save_weights_only_model(model, model_path)
    hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    run = {"options": options, **({k: options[k] for k in ("weights", "trainable_base")} if cfg.arch == "xception"
                                   else {}),
           "excluded_sources": list(cfg.exclude_source), "n_train": len(train_files), "image_size": image_size,
           "epochs": cfg.epochs, "epochs_run": len(hist.get("loss", [])), "best_epoch": int(early.best_epoch) + 1,
           "batch_size": batch_size, **fit_config, "loss": "binary_crossentropy", "seed": cfg.seed,
           "train_seconds": round(seconds, 1), "stopped_by_time_limit": bool(time_limit and time_limit.stopped)}
    metadata = {"name": model_path.stem, "architecture": cfg.arch, "description": recipe.description,
                "input_size": image_size, "labels": {"real": 0, "fake": 1},
                "output": "sigmoid P(fake)" if len(model.outputs) == 1 else
                "outputs p_fake (sigmoid P(fake)) and mask (sigmoid manipulation map)",
                "params": int(model.count_params()), **extra, **_crop_recipe(cfg.arch, image_size),
                "train_config": {"command": cfg.command, "arch": cfg.arch, **run},
                "history": hist, "data": fingerprint(root), "versions": training_versions(),
                "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "metrics": _metrics(root, predict)}
    model_path.with_suffix(".json").write_text(json.dumps(metadata, indent=2) + "\n")
    return metadata


def _crop_recipe(arch: str, image_size: int) -> dict:
    """detector_v2 is served crops made exactly like its training data (Lanczos to size, JPEG q90; see
    models.scoring.recipe); older models keep taking crops as they were measured."""
    return {"crop_recipe": {"size": image_size, "jpeg_quality": 90}} if arch == "v2" else {}


def _metrics(root: Path, predict) -> dict:
    """val and test metrics (overall, per source, per kind) of ``predict(files) -> P(fake)``, where those splits exist."""
    out = {}
    for split in ("val", "test"):
        files = _split_files(root, split)
        if files is not None:
            out[split] = split_metrics(files, predict(files))
    return out

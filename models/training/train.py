"""Train a detector: ``python -m models.train --arch {baseline,tuned,v1,xception,ensemble,spectrum} --data DIR``.

Writes ``<name>.keras`` and ``<name>.json`` (architecture, input size, label
convention, training config and the exact command, per-epoch history, data
fingerprint, library versions, and val/test metrics overall, per source and
per kind of fake).

``baseline`` and ``tuned`` follow the study's recipe (tf.data, early stopping on
validation accuracy). ``v1`` trains through :mod:`models.portable` (augmentation,
AdamW with warm-up and cosine decay, early stopping on validation ROC AUC), which
also runs with Keras on the JAX backend (``KERAS_BACKEND=jax``) where TensorFlow
is not installed. ``xception`` (ImageNet transfer: ``--weights``, ``--trainable-base``)
uses the study recipe. ``ensemble --members a,b[,c]`` freezes installed models and
trains only its head, on the members' P(fake) computed once (exactly what the frozen
members give inside the model). See ``docs/TRAINING.md``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import platform
import shlex
import sys
from pathlib import Path

from models.training.architectures import ARCHITECTURES


def library_versions() -> dict:
    import keras
    import numpy
    import sklearn

    versions = {
        "python": platform.python_version(),
        "keras": keras.__version__,
        "keras_backend": keras.backend.backend(),
        "numpy": numpy.__version__,
        "scikit-learn": sklearn.__version__,
    }
    for lib in ("tensorflow", "jax"):
        if lib in sys.modules:
            versions[lib] = sys.modules[lib].__version__
    return versions


def save_weights_only_model(model, path) -> None:
    """Save architecture and weights without the optimizer state (a third of the size for AdamW)."""
    # Rebuilt from its config, the clone is never compiled: keras.models.clone_model would copy the compile
    # config, optimizer included, and the optimizer's variables would be saved too.
    clone = type(model).from_config(model.get_config())
    clone.set_weights(model.get_weights())
    clone.save(path)


def split_metrics(y, p, sources, threshold: float | None = None) -> dict:
    from models.analysis.metrics import compute_metrics, metrics_by_group, metrics_by_kind
    from models.data.files import SOURCE_KINDS
    from models.detectors.labels import THRESHOLD

    t = THRESHOLD if threshold is None else threshold
    return {
        "overall": compute_metrics(y, p, t),
        "by_source": metrics_by_group(y, p, sources, t),
        "by_kind": metrics_by_kind(y, p, sources, SOURCE_KINDS, t),
    }


def _split_files(root, split, exclude=()):
    """The files of one split, or None; ``exclude`` drops whole sources (never applied to test)."""
    from models.data.files import DataError, list_files

    try:
        files = list_files(root, split)
    except DataError:
        return None
    if exclude and split != "test":
        files = files.without_sources(exclude)
    return files if len(files) else None


def _compile(model, args, recipe, monitor: str, mode: str, patience: int, callbacks):
    """Compile with the recipe's optimizer and BCE; early stopping on ``monitor`` (best weights restored),
    after the resumable backup when ``--checkpoint-dir`` is given. Returns (early_stopping, callbacks)."""
    import keras

    model.compile(optimizer=_optimizer(args, recipe), loss="binary_crossentropy",
                  metrics=["accuracy", keras.metrics.AUC(name="auc")])
    early = keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=patience,
                                          min_delta=recipe.min_delta, restore_best_weights=True)
    cbs = [keras.callbacks.BackupAndRestore(args.checkpoint_dir)] if args.checkpoint_dir else []
    return early, [*cbs, early, *callbacks]


def _fit_study(args, recipe, model, root, image_size, batch_size, patience, callbacks):
    """The study's recipe: tf.data pipeline, recipe optimizer, early stopping on val accuracy."""
    import keras
    import numpy as np

    from models.data.tfdata import make_dataset

    train_files, val_files = (_split_files(root, s, args.exclude_source) for s in ("train", "val"))
    train_ds = make_dataset(train_files, image_size, batch_size, shuffle=True, seed=args.seed)
    val_ds = make_dataset(val_files, image_size, batch_size=128)
    early, cbs = _compile(model, args, recipe, "val_accuracy", "max", patience, callbacks)
    history = model.fit(train_ds, validation_data=val_ds, epochs=args.epochs, callbacks=cbs, verbose=0)

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


def _optimizer(args, recipe):
    optimizer = recipe.optimizer()
    if args.learning_rate is not None:
        optimizer.learning_rate = args.learning_rate
    return optimizer


def _fit_frozen_features(args, recipe, model, root, image_size, batch_size, patience, callbacks):
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

    train_files, val_files = (_split_files(root, s, args.exclude_source) for s in ("train", "val"))
    members = keras.Model(model.inputs, model.get_layer("members").output, name="ensemble_members")
    f_train = members.predict(images(train_files), verbose=0)
    f_val = members.predict(images(val_files), verbose=0)
    head = build_ensemble_head(f_train.shape[1])
    for name in ENSEMBLE_HEAD_LAYERS:  # start from the ensemble's own (seeded) initial head weights
        head.get_layer(name).set_weights(model.get_layer(name).get_weights())
    early, cbs = _compile(head, args, recipe, "val_loss", "min", patience, callbacks)
    history = head.fit(f_train, np.asarray(train_files.y, np.float32), batch_size=batch_size, epochs=args.epochs,
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


def _sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
                        "sha256": _sha256(path)})
    return members, records


def _fit_portable(args, recipe, model, root, image_size, batch_size, patience, callbacks):
    """Augmented in-memory training (models.portable); runs on any Keras backend."""
    from models.training import portable

    train_files, val_files = (_split_files(root, s, args.exclude_source) for s in ("train", "val"))
    x_train = portable.load_arrays(train_files, image_size)
    x_val = portable.load_arrays(val_files, image_size)
    history, early, _, extra = portable.fit(
        model, recipe, x_train, train_files.y, x_val, val_files.y, epochs=args.epochs, batch_size=batch_size,
        seed=args.seed, patience=patience, learning_rate=args.learning_rate, checkpoint_dir=args.checkpoint_dir,
        callbacks=callbacks, workers=args.workers)

    def predict(files):
        return portable.predict_arrays(model, portable.load_arrays(files, image_size))

    config = {
        "optimizer": "AdamW",
        **extra,
        "early_stopping": {"monitor": "val_auc", "patience": patience, "restore_best_weights": True},
    }
    return history, early, predict, config


def train_spectrum(args) -> dict:
    """The spectrum baseline: log power spectrum features -> standardised logistic regression (scikit-learn)."""
    import time

    from models.data.files import data_root, fingerprint
    from models.detectors import spectrum
    from models.training import portable

    root = data_root(args.data)
    if not root.is_dir():
        raise FileNotFoundError(f"data folder not found: {root}")
    name = args.name or "spectrum"
    size = args.image_size or 128
    started = time.time()
    train_files = _split_files(root, "train", args.exclude_source)
    if train_files is None:
        raise FileNotFoundError(f"{root} needs a train/ folder with real/ and fake/")
    features = spectrum.spectrum_features(portable.load_arrays(train_files, size), size)
    mean, scale, coef, intercept = spectrum.fit(features, train_files.y, seed=args.seed)
    det = spectrum.SpectrumDetector(name, mean, scale, coef, intercept, size)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    det.save(out / f"{name}.npz")
    metadata = {
        "name": name, "architecture": "spectrum",
        "description": "Azimuthal log power spectrum (64 bins) + logistic regression",
        "input_size": size, "labels": {"real": 0, "fake": 1}, "output": "logistic P(fake)",
        "params": int(coef.size + 1),
        "train_config": {"command": "python -m models.train " + shlex.join(args.argv), "arch": "spectrum",
                         "image_size": size, "excluded_sources": list(args.exclude_source),
                         "n_train": len(train_files), "bins": spectrum.BINS, "classifier": "LogisticRegression(C=1)",
                         "seed": args.seed, "train_seconds": round(time.time() - started, 1)},
        "history": {}, "data": fingerprint(root), "versions": library_versions(),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "metrics": {},
    }
    for split in ("val", "test"):
        files = _split_files(root, split)
        if files is not None:
            metadata["metrics"][split] = split_metrics(files.y, det.predict(portable.load_arrays(files, size)),
                                                       files.sources)
    (out / f"{name}.json").write_text(json.dumps(metadata, indent=2) + "\n")
    return metadata


def train(args) -> dict:
    import time

    if args.arch == "spectrum":
        return train_spectrum(args)

    import keras

    from models.data.files import data_root, fingerprint
    from models.training.progress import TimeLimit, TqdmCallback

    recipe = ARCHITECTURES[args.arch]
    name = args.name or recipe.default_name
    image_size = args.image_size or recipe.default_input_size
    batch_size = args.batch_size or recipe.batch_size
    patience = args.patience if args.patience is not None else recipe.patience
    root = data_root(args.data)
    if not root.is_dir():
        raise FileNotFoundError(f"data folder not found: {root}")
    train_files = _split_files(root, "train", args.exclude_source)
    if train_files is None or _split_files(root, "val", args.exclude_source) is None:
        raise FileNotFoundError(f"{root} needs train/ and val/ folders, each with real/ and fake/")

    # Seeds: Python, NumPy and the backend (weights init, dropout, shuffling), plus deterministic TF kernels.
    keras.utils.set_random_seed(args.seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()

    options = {"width": args.width} if args.width is not None else {}
    if options and args.arch != "v1":
        raise ValueError("--width applies to --arch v1 only")
    if (args.weights is not None or args.trainable_base) and args.arch != "xception":
        raise ValueError("--weights and --trainable-base apply to --arch xception only")
    if args.members is not None and args.arch != "ensemble":
        raise ValueError("--members applies to --arch ensemble only")
    extra_metadata = {}
    if args.arch == "xception":
        options = {"weights": args.weights or "none", "trainable_base": bool(args.trainable_base)}
    if args.arch == "ensemble":
        members, extra_metadata["members"] = load_members(args.members)
        image_size = args.image_size or max(m.input_size for m in members)
        model = recipe.build(image_size, members=members)
        options = {"members": [m.name for m in members]}
    else:
        model = recipe.build(image_size, **options)
    callbacks = [] if args.quiet else [TqdmCallback(args.epochs, math.ceil(len(train_files) / batch_size))]
    time_limit = TimeLimit(args.time_limit * 60) if args.time_limit else None
    if time_limit:
        callbacks.append(time_limit)
    fit = {"portable": _fit_portable, "frozen_features": _fit_frozen_features}.get(recipe.trainer, _fit_study)
    started = time.time()
    history, early, predict, fit_config = fit(args, recipe, model, root, image_size, batch_size, patience, callbacks)
    seconds = time.time() - started

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model_path = out / f"{name}.keras"
    save_weights_only_model(model, model_path)

    hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    metadata = {
        "name": name,
        "architecture": args.arch,
        "description": recipe.description,
        "input_size": image_size,
        "labels": {"real": 0, "fake": 1},
        "output": "sigmoid P(fake)",
        "params": int(model.count_params()),
        **extra_metadata,
        "train_config": {
            "command": "python -m models.train " + shlex.join(args.argv),
            "arch": args.arch,
            "options": options,
            **({k: options[k] for k in ("weights", "trainable_base")} if args.arch == "xception" else {}),
            "excluded_sources": list(args.exclude_source),
            "n_train": len(train_files),
            "image_size": image_size,
            "epochs": args.epochs,
            "epochs_run": len(hist.get("loss", [])),
            "best_epoch": int(early.best_epoch) + 1,
            "batch_size": batch_size,
            **fit_config,
            "loss": "binary_crossentropy",
            "seed": args.seed,
            "train_seconds": round(seconds, 1),
            "stopped_by_time_limit": bool(time_limit and time_limit.stopped),
        },
        "history": hist,
        "data": fingerprint(root),
        "versions": library_versions(),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "metrics": {},
    }
    for split in ("val", "test"):
        files = _split_files(root, split)
        if files is not None:
            metadata["metrics"][split] = split_metrics(files.y, predict(files), files.sources)
    model_path.with_suffix(".json").write_text(json.dumps(metadata, indent=2) + "\n")
    return metadata

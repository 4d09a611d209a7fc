"""Train a detector: ``python -m models.train --arch {baseline,tuned,v1} --data DIR --out assets/models``.

Writes ``<name>.keras`` and ``<name>.json`` (architecture, input size, label
convention, training config and the exact command, per-epoch history, data
fingerprint, library versions, and val/test metrics overall, per source and
per kind of fake).

``baseline`` and ``tuned`` follow the study's recipe (tf.data, early stopping on
validation accuracy). ``v1`` trains through :mod:`models.portable` (augmentation,
AdamW with warm-up and cosine decay, early stopping on validation ROC AUC), which
also runs with Keras on the JAX backend (``KERAS_BACKEND=jax``) where TensorFlow
is not installed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import platform
import shlex
import sys
from pathlib import Path

from models.architectures import ARCHITECTURES


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m models.train", description=__doc__.split("\n")[0])
    p.add_argument("--arch", required=True, choices=sorted([*ARCHITECTURES, "spectrum"]))
    p.add_argument("--data", default=None, help="dataset root with train/val[/test]; default $DEEPFAKE_DATA or data/")
    p.add_argument("--out", default="assets/models", help="output folder (default assets/models)")
    p.add_argument("--name", default=None, help="model name (default: the architecture's, e.g. tuned_cnn)")
    p.add_argument("--image-size", type=int, default=None, help="input size in px (default: the recipe's; study 64)")
    p.add_argument("--epochs", type=int, default=25)
    p.add_argument("--batch-size", type=int, default=None, help="default: the recipe's (baseline 64, tuned 16)")
    p.add_argument("--patience", type=int, default=None, help="early-stopping patience (default: the recipe's)")
    p.add_argument("--learning-rate", type=float, default=None, help="peak learning rate (v1 only)")
    p.add_argument("--width", type=float, default=None, help="channel width multiplier (v1 only)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-dir", default=None, help="back up each epoch here and resume from it if interrupted")
    p.add_argument("--time-limit", type=float, default=None, metavar="MIN",
                   help="stop after the epoch that passes MIN minutes (best weights kept and saved)")
    p.add_argument("--workers", type=int, default=4, help="threads decoding/augmenting batches (v1)")
    p.add_argument("--exclude-source", action="append", default=[], metavar="SOURCE",
                   help="leave this source out of train and val (repeatable; test keeps it): cross-source studies")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p.parse_args(argv)


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


def split_metrics(y, p, sources) -> dict:
    from models.files import SOURCE_KINDS
    from models.metrics import compute_metrics, metrics_by_group, metrics_by_kind

    return {
        "overall": compute_metrics(y, p),
        "by_source": metrics_by_group(y, p, sources),
        "by_kind": metrics_by_kind(y, p, sources, SOURCE_KINDS),
    }


def _split_files(root, split, exclude=()):
    """The files of one split, or None; ``exclude`` drops whole sources (never applied to test)."""
    from models.files import DataError, list_files

    try:
        files = list_files(root, split)
    except DataError:
        return None
    if exclude and split != "test":
        files = files.without_sources(exclude)
    return files if len(files) else None


def _fit_study(args, recipe, model, root, image_size, batch_size, patience, callbacks):
    """The study's recipe: tf.data pipeline, recipe optimizer, early stopping on val accuracy."""
    import keras
    import numpy as np

    from models.data import make_dataset

    train_files, val_files = (_split_files(root, s, args.exclude_source) for s in ("train", "val"))
    train_ds = make_dataset(train_files, image_size, batch_size, shuffle=True, seed=args.seed)
    val_ds = make_dataset(val_files, image_size, batch_size=128)
    model.compile(optimizer=recipe.optimizer(), loss="binary_crossentropy",
                  metrics=["accuracy", keras.metrics.AUC(name="auc")])
    early = keras.callbacks.EarlyStopping(monitor="val_accuracy", mode="max", patience=patience,
                                          min_delta=recipe.min_delta, restore_best_weights=True)
    cbs = [keras.callbacks.BackupAndRestore(args.checkpoint_dir)] if args.checkpoint_dir else []
    cbs += [early, *callbacks]
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


def _fit_portable(args, recipe, model, root, image_size, batch_size, patience, callbacks):
    """Augmented in-memory training (models.portable); runs on any Keras backend."""
    from models import portable

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

    from models import portable, spectrum
    from models.files import data_root, fingerprint

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
                         "image_size": size, "excluded_sources": list(args.exclude_source), "bins": spectrum.BINS, "classifier": "LogisticRegression(C=1)",
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

    from models.files import data_root, fingerprint
    from models.progress import TimeLimit, TqdmCallback

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
    model = recipe.build(image_size, **options)
    callbacks = [] if args.quiet else [TqdmCallback(args.epochs, math.ceil(len(train_files) / batch_size))]
    time_limit = TimeLimit(args.time_limit * 60) if args.time_limit else None
    if time_limit:
        callbacks.append(time_limit)
    fit = _fit_portable if recipe.trainer == "portable" else _fit_study
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
        "train_config": {
            "command": "python -m models.train " + shlex.join(args.argv),
            "arch": args.arch,
            "options": options,
            "excluded_sources": list(args.exclude_source),
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


def main(argv=None) -> int:
    args = parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        meta = train(args)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    test = meta["metrics"].get("test", {}).get("overall")
    suffix = ".npz" if meta["architecture"] == "spectrum" else ".keras"
    summary = f"saved {Path(args.out) / meta['name']}{suffix}"
    if test:
        auc = test["roc_auc"]
        summary += f"  test accuracy {test['accuracy']:.3f}  ROC AUC {'n/a' if auc is None else f'{auc:.3f}'}"
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())

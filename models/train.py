"""Train a detector: ``python -m models.train --arch {baseline,tuned} --data DIR --out assets/models``.

Writes ``<name>.keras`` and ``<name>.json`` (architecture, input size, label
convention, training config, per-epoch history, data fingerprint, library
versions, and val/test metrics overall, per source and per kind of fake).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import platform
import shlex
import sys
import time
from pathlib import Path

from models.architectures import ARCHITECTURES


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m models.train", description=__doc__.split("\n")[0])
    p.add_argument("--arch", required=True, choices=sorted(ARCHITECTURES))
    p.add_argument("--data", default=None, help="dataset root with train/val[/test]; default $DEEPFAKE_DATA or data/")
    p.add_argument("--out", default="assets/models", help="output folder (default assets/models)")
    p.add_argument("--name", default=None, help="model name (default: the architecture's, e.g. tuned_cnn)")
    p.add_argument("--image-size", type=int, default=None, help="input size in px (default 64, as in the study)")
    p.add_argument("--epochs", type=int, default=25)
    p.add_argument("--batch-size", type=int, default=None, help="default: the recipe's (baseline 64, tuned 16)")
    p.add_argument("--patience", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-dir", default=None, help="back up each epoch here and resume from it if interrupted")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p.parse_args(argv)


def library_versions() -> dict:
    import keras
    import numpy
    import sklearn
    import tensorflow as tf

    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": numpy.__version__,
        "scikit-learn": sklearn.__version__,
    }


def evaluate_split(model, root, split: str, image_size: int, batch_size: int = 128) -> dict | None:
    """Metrics of a freshly trained model on one split (overall, by source, by kind)."""
    import numpy as np

    from models.data import SOURCE_KINDS, DataError, list_files, make_dataset
    from models.metrics import compute_metrics, kind_groups, metrics_by_group

    try:
        files = list_files(root, split)
    except DataError:
        return None
    if len(files) == 0:
        return None
    ds = make_dataset(files, image_size=image_size, batch_size=batch_size)
    p = np.concatenate([np.asarray(model(x, training=False)).reshape(-1) for x, _ in ds])
    y = files.y
    return {
        "overall": compute_metrics(y, p),
        "by_source": metrics_by_group(y, p, files.sources),
        "by_kind": metrics_by_group(y, p, kind_groups(y, files.sources, SOURCE_KINDS)),
    }


def train(args) -> dict:
    import keras
    import tensorflow as tf

    from models.data import data_root, fingerprint, list_files, make_dataset
    from models.progress import TqdmCallback

    recipe = ARCHITECTURES[args.arch]
    name = args.name or recipe.default_name
    image_size = args.image_size or recipe.default_input_size
    batch_size = args.batch_size or recipe.batch_size
    root = data_root(args.data)

    # Seeds: Python, NumPy and TF (weights init, shuffling) plus deterministic kernels.
    keras.utils.set_random_seed(args.seed)
    tf.config.experimental.enable_op_determinism()

    train_files = list_files(root, "train")
    val_files = list_files(root, "val")
    train_ds = make_dataset(train_files, image_size, batch_size, shuffle=True, seed=args.seed)
    val_ds = make_dataset(val_files, image_size, batch_size=128)

    model = recipe.build(image_size)
    model.compile(
        optimizer=recipe.optimizer(),
        loss="binary_crossentropy",
        metrics=["accuracy", keras.metrics.AUC(name="auc")],
    )
    callbacks = [
        keras.callbacks.EarlyStopping(
            monitor="val_accuracy",
            mode="max",
            patience=args.patience,
            min_delta=recipe.min_delta,
            restore_best_weights=True,
        )
    ]
    if args.checkpoint_dir:
        callbacks.append(keras.callbacks.BackupAndRestore(args.checkpoint_dir))
    if not args.quiet:
        callbacks.append(TqdmCallback(args.epochs, math.ceil(len(train_files) / batch_size)))

    started = time.time()
    history = model.fit(train_ds, validation_data=val_ds, epochs=args.epochs, callbacks=callbacks, verbose=0)
    seconds = time.time() - started
    early = callbacks[0]

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model_path = out / f"{name}.keras"
    model.save(model_path)

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
            "image_size": image_size,
            "epochs": args.epochs,
            "epochs_run": len(hist.get("loss", [])),
            "best_epoch": int(early.best_epoch) + 1,
            "batch_size": batch_size,
            "optimizer": keras.optimizers.serialize(model.optimizer)["class_name"],
            "learning_rate": float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)),
            "loss": "binary_crossentropy",
            "early_stopping": {"monitor": "val_accuracy", "patience": args.patience, "min_delta": recipe.min_delta,
                               "restore_best_weights": True},
            "seed": args.seed,
            "train_seconds": round(seconds, 1),
        },
        "history": hist,
        "data": fingerprint(root),
        "versions": library_versions(),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "metrics": {},
    }
    for split in ("val", "test"):
        result = evaluate_split(model, root, split, image_size)
        if result is not None:
            metadata["metrics"][split] = result
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
    summary = f"saved {Path(args.out) / meta['name']}.keras"
    if test:
        summary += f"  test accuracy {test['accuracy']:.3f}  ROC AUC {test['roc_auc'] or float('nan'):.3f}"
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())

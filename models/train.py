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

import argparse
import dataclasses
import sys
from pathlib import Path

from models.training.architectures import ARCHITECTURES
from models.training.train import TrainConfig, train


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
    p.add_argument("--learning-rate", type=float, default=None,
                   help="peak learning rate (v1); the optimizer's learning rate for the other recipes")
    p.add_argument("--width", type=float, default=None, help="channel width multiplier (v1 only)")
    p.add_argument("--weights", default=None, metavar="imagenet|PATH|none",
                   help="xception base weights: 'imagenet' (download, or the keras cache), a local "
                        "xception_weights_tf_dim_ordering_tf_kernels_notop.h5, or 'none' (random; the default)")
    p.add_argument("--trainable-base", action="store_true",
                   help="xception: train the base too (default: frozen, only the head trains)")
    p.add_argument("--members", default=None, metavar="A,B[,C]",
                   help="ensemble: installed model names or .keras paths, comma-separated (frozen)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-dir", default=None, help="back up each epoch here and resume from it if interrupted")
    p.add_argument("--time-limit", type=float, default=None, metavar="MIN",
                   help="stop after the epoch that passes MIN minutes (best weights kept and saved)")
    p.add_argument("--workers", type=int, default=4, help="threads decoding/augmenting batches (v1)")
    p.add_argument("--exclude-source", action="append", default=[], metavar="SOURCE",
                   help="leave this source out of train and val (repeatable; test keeps it): cross-source studies")
    p.add_argument("--pseudo-ratio", type=float, default=None,
                   help="v2: self-blended pseudo-fakes per epoch, as a share of the training reals (default 0.5; "
                        "0 = none)")
    p.add_argument("--map-weight", type=float, default=None, help="v2: weight of the manipulation map's loss (1.0)")
    p.add_argument("--map-supervision", default=None, choices=("all", "pseudo", "ciplab", "none"),
                   help="v2: where the map's targets come from: pseudo-fake masks, ciplab region labels, both "
                        "(all, the default) or none")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    cfg = TrainConfig(**{k: v for k, v in vars(args).items() if k in fields - {"exclude_source", "argv"}},
                      exclude_source=tuple(args.exclude_source), argv=tuple(sys.argv[1:] if argv is None else argv))
    try:
        meta = train(cfg)
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

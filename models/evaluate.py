"""Evaluate a detector on a labelled folder: ``python -m models.evaluate [--model M] --data DIR [--json]``.

DIR holds ``real/`` and ``fake/`` (or pass a dataset root and ``--split``).
Reports accuracy, precision, recall, F1 (fake is positive), ROC AUC, the
confusion matrix ``[[tn, fp], [fn, tp]]`` and n, and per source / per kind of
fake when sources are known (``manifest.csv`` or ``<source>__`` file names).
"""

from __future__ import annotations

import argparse
import json
import sys

from models.analysis.evaluate import eval_csv_path, evaluate, format_report
from models.data.faces import CROP_MODES


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m models.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("--model", default=None, help="model name or path (default: the shipped default)")
    p.add_argument("--all", action="store_true", help="evaluate every installed model in turn")
    p.add_argument("--data", required=True, help="folder with real/ and fake/ (or a dataset root with --split)")
    p.add_argument("--split", default=None, help="evaluate DIR/SPLIT (e.g. test) when DIR is a dataset root")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threshold", type=float, default=None, help="P(fake) threshold for the verdict (default 0.5)")
    p.add_argument("--crop", default="none", choices=CROP_MODES,
                   help="none (default): the folder holds face crops; auto/face: find faces first")
    p.add_argument("--perturb", default=None, metavar="SPEC",
                   help="degrade every image first: jpeg:Q (re-encode at quality Q) or resize:F (down by F, back up)")
    p.add_argument("--save", action="store_true",
                   help="also write one row per image (path, source, label, p_fake) to the model's evaluation CSV: "
                        "<name>.eval.csv for the test split, <name>.eval-<split>.csv otherwise (see --save-dir)")
    p.add_argument("--save-dir", default=None, help="folder for --save (default assets/models)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from models.data.files import DataError
    from models.detectors.registry import ModelNotFoundError, list_models, load_model

    if args.save and (args.perturb or args.crop != "none"):
        print("error: --save stores the reference scores: use it without --perturb and with --crop none",
              file=sys.stderr)
        return 2
    names = list_models() if args.all else [args.model]
    status = 0
    for name in names:
        try:
            detector = load_model(name)
            save_to = eval_csv_path(detector.name, args.split, args.save_dir) if args.save else None
            result = evaluate(detector, args.data, args.split, args.batch_size, args.threshold,
                              progress=not args.json, perturb=args.perturb, crop=args.crop, save_to=save_to)
        except (ModelNotFoundError, DataError, OSError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            status = 2
            continue
        print(json.dumps(result) if args.json else format_report(result), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())

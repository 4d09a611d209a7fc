"""Score images: ``python -m models.predict [--model M] [--json] IMAGE...``.

One line per image: path, verdict and P(fake) of its largest face (one more line per
further face). P(fake) is calibrated, and the verdict uses the model's saved operating
point (``threshold`` in the --json rows; 0.5 when none is saved). Faces are found with
mtcnn and cropped as the training data was (--crop auto); with no face the centre
square is scored and a warning printed. A file that cannot be read gets a one-line
error and the others go on. Exit status 0 when every file succeeded, 2 when any failed.
"""

from __future__ import annotations

import argparse
import json
import sys


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m models.predict", description=__doc__.split("\n")[0])
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--model", default=None, help="model name or .keras path (default: the shipped default)")
    p.add_argument("--json", action="store_true", help="one JSON object per line: path, verdict, p_fake[, error]")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--crop", default="auto", choices=("auto", "face", "none"),
                   help="auto: find faces, centre square if none (default); face: require a face; "
                        "none: the images are already face crops (no detection)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from models.detector import ModelNotFoundError, load_model
    from models.scoring import score_paths

    try:
        detector = load_model(args.model)
    except ModelNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from models.labels import verdict

    failed = 0
    for score in score_paths(detector, args.images, batch_size=args.batch_size, crop=args.crop):
        failed += score.error is not None
        for warning in score.warnings:
            print(f"warning: {score.path}: {warning}", file=sys.stderr, flush=True)
        if args.json:
            row = score.to_dict()
            row["model"] = detector.name
            print(json.dumps(row), flush=True)
        elif score.error:
            print(f"error: {score.error}", file=sys.stderr, flush=True)
        else:
            print(f"{score.path}\t{score.verdict}\t{score.p_fake:.4f}", flush=True)
            for i, face in enumerate(score.faces[1:], start=2):
                label = verdict(face["p_fake"], score.threshold)
                print(f"{score.path}[face {i}]\t{label}\t{face['p_fake']:.4f}", flush=True)
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Model-randomisation sanity check (Adebayo et al., NeurIPS 2018; issue 13): does each explanation method's map
change when the model's weights are re-initialised?

For each model, a stratified seeded slice of about 50 val faces (``models.data.files.stratified_indices``, seed
0), each explained for target "fake" on the trained model and on a fully re-initialised copy
(:func:`explain.metrics.sanity.randomized_copy`, seed 0) with the pipeline's default parameters (LIME 1000
samples, seed 0). Spearman rho of the absolute-value maps; a method fails at mean rho >= 0.5. Shapley values use
the cached mtcnn landmarks and skip faces without them.

Baseline in the same run: each method's own **repeatability** on the trained model (its map again with seed 1
against seed 0 on the first ``--repeat`` faces, default 10, to save LIME runs on a shared machine: 1 for the
deterministic methods, LIME's seed-to-seed agreement for LIME); the printed ratio is
mean rho / repeatability (the share of what the method can reproduce at all that survives randomising the
model). Two model-free controls bracket the scale: ``edges`` (Sobel magnitude of the image, rho 1: must fail)
and ``noise`` (a fresh seeded random map per call, rho about 0: must pass).

    DEEPFAKE_DATA=../shared/data/faces128 nice -n 5 .venv/bin/python bench/bench_sanity.py [--models detector_v1,detector_v2] [--n 50] [--save]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def val_faces(n: int, seed: int = 0):
    """(images, landmarks, paths) of a stratified seeded slice of about ``n`` val faces."""
    from models.data.files import data_root, list_files, stratified_indices
    from models.data.intake import load_image
    from models.data.landmarks import cached_landmarks

    files = list_files(data_root(), "val")
    paths = [files.paths[i] for i in stratified_indices(files, n, seed=seed)]
    return [load_image(p) for p in paths], cached_landmarks(paths), paths


def controls():
    """Model-free "explainers": Sobel edges of the image (ignores the model) and fresh random noise."""
    from skimage.filters import sobel

    rng = np.random.default_rng(0)
    return {"edges": lambda _det, image: sobel(image.mean(axis=-1) / 255.0),
            "noise": lambda _det, image: rng.random(image.shape[:2])}


def reporter(name: str, start: float):
    def progress(_fraction: float, message: str) -> None:
        print(f"  {name}: {message} ({time.perf_counter() - start:.0f} s)", flush=True)

    return progress


def show(model: str, result: dict, control: bool = False) -> None:
    for method, s in result["methods"].items():
        rep = s.get("repeatability")
        ratio = s["mean_rho"] / rep if rep else float("nan")
        name = f"({method})" if control else method
        print(f"{model:<12} {name:<13} {s['n']:3d} {s['mean_rho']:9.3f} {s['median_rho']:8.3f} "
              f"{s['mean_rho_signed']:8.3f} {s['n_constant']:5d} {rep if rep is not None else float('nan'):7.3f} "
              f"{ratio:7.2f}  {'passed' if s['passed'] else 'FAILS'}", flush=True)
    for method, why in result.get("skipped", {}).items():
        print(f"{model:<12} {method:<13} skipped: {why}")


def main() -> int:
    from explain.metrics import sanity
    from explain.params import DEFAULTS
    from models import load_model

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="detector_v1,detector_v2")
    ap.add_argument("--methods", default=",".join(sanity.METHODS))
    ap.add_argument("--n", type=int, default=50, help="about this many val faces (stratified, seed 0)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the randomised copy")
    ap.add_argument("--repeat", type=int, default=10, help="repeatability (seed 1 vs 0) on the first N faces")
    ap.add_argument("--save", action="store_true", help="store the result in each model's JSON (explanation_checks)")
    ap.add_argument("--out", help="also write every result (with per-image rho) to this JSON file")
    args = ap.parse_args()
    images, landmarks, _ = val_faces(args.n)
    print(f"{len(images)} val faces, {sum(lm is not None for lm in landmarks)} with landmarks; {sanity.RULE}")
    print(f"{'model':<12} {'method':<13} {'n':>3} {'mean rho':>9} {'median':>8} {'signed':>8} {'const':>5} "
          f"{'repeat':>7} {'ratio':>7}")
    everything = {}
    for name in [m for m in args.models.split(",") if m]:
        det = load_model(name)
        start = time.perf_counter()
        randomized = sanity.randomized_copy(det, args.seed)
        result = sanity.check(det, images, [m for m in args.methods.split(",") if m], DEFAULTS, landmarks=landmarks,
                              seed=args.seed, split="val", randomized=randomized, repeat=args.repeat,
                              progress=reporter(name, start))
        result["seconds"] = round(time.perf_counter() - start, 1)
        show(name, result)
        ctrl = sanity.check(det, images, list(controls()), DEFAULTS, landmarks=landmarks, seed=args.seed,
                            split="val", custom=controls(), randomized=randomized, repeat=args.repeat)
        show(name, ctrl, control=True)
        print(f"{name}: {result['seconds']:.0f} s; ratio = mean rho / repeatability (baseline: the method's own "
              "map again with seed 1 on the trained model)", flush=True)
        everything[name] = {"result": result, "controls": ctrl}
        if args.save:
            sanity.save(det.path, result)
            print(f"saved explanation_checks[{sanity.CHECK!r}] in {det.path.with_suffix('.json').name}")
    if args.out:
        Path(args.out).write_text(json.dumps(everything, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

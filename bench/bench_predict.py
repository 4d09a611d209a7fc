"""Prediction throughput: Detector.predict (batched) vs the study's one-image-at-a-time `model.predict`.

Both run in this process on the same dataset crops, already decoded, with the same model.
Prints images/s for each and the ratio. Usage: python bench/bench_predict.py [--model M] [--n 512]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402


def main() -> int:
    from models import load_model
    from models.data.files import data_root, list_files
    from models.data.intake import load_image

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="tuned_cnn")
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--study-n", type=int, default=100, help="images for the slow one-by-one baseline")
    args = ap.parse_args()

    files = list_files(data_root(), "test")
    idx = np.random.default_rng(0).choice(len(files), size=min(args.n, len(files)), replace=False)
    images = [load_image(files.paths[i]) for i in idx]
    det = load_model(args.model)
    det.predict(images[:8])  # warm-up
    det.keras_model.predict(det.preprocess(images[:1]), verbose=0)

    t = time.perf_counter()
    p_batched = det.predict(images)
    batched = len(images) / (time.perf_counter() - t)

    # The study's single-image path: resize, scale, model.predict on a batch of one.
    study_images = images[: args.study_n]
    t = time.perf_counter()
    p_single = [float(det.keras_model.predict(det.preprocess([im]), verbose=0)[0, 0]) for im in study_images]
    single = len(study_images) / (time.perf_counter() - t)

    assert np.allclose(p_batched[: len(p_single)], p_single, atol=1e-5), "paths disagree"
    print(f"model {det.name} ({det.input_size}px), {len(images)} test crops")
    print(f"study one-by-one model.predict: {single:8.1f} img/s")
    print(f"Detector.predict (batched):     {batched:8.1f} img/s")
    print(f"ratio: {batched / single:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

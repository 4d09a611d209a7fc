"""Cost of explaining a detector on this machine: MACs per image, forward latency, and LIME at 1000 samples.

Compares detector_v1 with the study's tuned CNN in one run, on the same face crop. LIME uses lime's
LimeImageExplainer with SLIC (n_segments=100, compactness=1, sigma=1, ids from 0), hide_color=0,
top_labels=2 and a batched classifier (batch 100). Budget: LIME at 1000 samples <= 5 s.

    DEEPFAKE_DATA=../shared/data/faces128 .venv/bin/python bench/bench_cost.py [--models a,b] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np


def lime_seconds(det, image, samples=1000, repeats=3) -> float:
    from lime import lime_image
    from skimage.segmentation import slic

    def classifier(batch):
        p = det.predict(batch.astype(np.uint8))
        return np.stack([1 - p, p], axis=1)

    def segment(img):
        return slic(img, n_segments=100, compactness=1, sigma=1, start_label=0)

    times = []
    for r in range(repeats + 1):
        explainer = lime_image.LimeImageExplainer(random_state=r)
        t = time.perf_counter()
        explainer.explain_instance(image, classifier, top_labels=2, hide_color=0, num_samples=samples,
                                   batch_size=100, segmentation_fn=segment)
        if r:  # the first run is a warm-up
            times.append(time.perf_counter() - t)
    return float(np.median(times))


def forward_ms(det, image, n=200) -> float:
    batch = [image] * n
    det.predict(batch)
    t = time.perf_counter()
    det.predict(batch)
    return (time.perf_counter() - t) / n * 1000


def main() -> int:
    from models import load_model
    from models.analysis.cost import model_macs
    from models.data.files import data_root, list_files
    from models.data.intake import load_image

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="tuned_cnn,detector_v1")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    files = list_files(data_root(), "test")
    image = load_image(files.paths[len(files) // 2])  # a 128 px face crop
    rows = []
    for name in args.models.split(","):
        det = load_model(name)
        rows.append((name, det.input_size, model_macs(det.keras_model), det.keras_model.count_params(),
                     forward_ms(det, image), lime_seconds(det, image, repeats=args.repeats)))
    print(f"{'model':<14} {'input':>5} {'MMACs':>8} {'params':>9} {'fwd ms/img':>10} {'LIME 1000 s':>11}")
    for name, size, macs, params, fwd, lime_s in rows:
        print(f"{name:<14} {size:5d} {macs / 1e6:8.1f} {params:9d} {fwd:10.2f} {lime_s:11.2f}")
    base = rows[0]
    for row in rows[1:]:
        print(f"ratio {row[0]} / {base[0]}: MACs {row[2] / base[2]:.2f}x, forward {row[4] / base[4]:.2f}x, "
              f"LIME {row[5] / base[5]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

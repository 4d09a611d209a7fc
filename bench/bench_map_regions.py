"""Does an attribution point at the edited region? Scored on ciplab's photoshopped test fakes, whose file names
say which of left eye, right eye, nose and mouth were replaced (issue 12's localisation target).

For each fake with landmarks: the attribution's mean over each of the four inner regions
(:func:`models.data.landmarks.part_mask`); a hit when the top region was edited. Chance is k/4 for an image
with k edited regions, so lift = hit rate / mean(k/4), with a bootstrap 95% interval (2,000 resamples of the
images, seed 0). Its ceiling is 1 / mean(k/4). A fake with all four regions edited (chance 1) says nothing, so
the headline subset is "k < 4" (as in bench/bench_regions.py), with "k = 1" (a single edited region) beside it. Baseline in the same run: Grad-CAM of ``--baseline`` (default detector_v1); then the
manipulation map of every ``--models`` entry that has one (and Grad-CAM of those too).

    DEEPFAKE_DATA=../shared/data/faces128 .venv/bin/python bench/bench_map_regions.py [--models detector_v2]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def ciplab_fakes(split: str = "test"):
    """(images, landmarks, edited parts) of the split's ciplab fakes with landmarks and at least one edit."""
    from models.data.blend import ciplab_parts
    from models.data.files import data_root, list_files
    from models.data.intake import load_image
    from models.data.landmarks import cached_landmarks

    files = list_files(data_root(), split)
    rows = [(p, ciplab_parts(n)) for p, y, s, n in zip(files.paths, files.labels, files.sources, files.names)
            if y == 1 and s.startswith("ciplab")]
    rows = [(p, parts) for p, parts in rows if parts]
    lms = cached_landmarks([p for p, _ in rows])
    keep = [(load_image(p), lm, parts) for (p, parts), lm in zip(rows, lms) if lm is not None]
    return [k[0] for k in keep], [k[1] for k in keep], [k[2] for k in keep]


def lift(maps, landmarks, parts, seed: int = 0, n_boot: int = 2000) -> dict:
    from models.data.landmarks import INNER, part_mask

    hits, chance = [], []
    for att, lm, edited in zip(maps, landmarks, parts):
        means = [float(att[part_mask(att.shape, lm, [r])].mean()) if part_mask(att.shape, lm, [r]).any() else -np.inf
                 for r in INNER]
        hits.append(INNER[int(np.argmax(means))] in edited)
        chance.append(len(edited) / 4)
    hits, chance = np.asarray(hits, float), np.asarray(chance, float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(hits), size=(n_boot, len(hits)))
    boot = hits[idx].mean(1) / chance[idx].mean(1)
    return {"n": len(hits), "hit_rate": hits.mean(), "chance": chance.mean(), "lift": hits.mean() / chance.mean(),
            "ci": (float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5)))}


def gradcam_maps(det, images):
    from explain import gradcam

    return [gradcam.explain(det, im, target="fake").attribution for im in images]


def main() -> int:
    from models import load_model

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="detector_v2", help="models whose manipulation map is scored")
    ap.add_argument("--baseline", default="detector_v1")
    args = ap.parse_args()
    images, landmarks, parts = ciplab_fakes()
    print(f"{len(images)} ciplab test fakes with landmarks and at least one edited region")
    subsets = {"k < 4": [i for i, p in enumerate(parts) if len(p) < 4],
               "k = 1": [i for i, p in enumerate(parts) if len(p) == 1]}
    print(", ".join(f"{len(v)} with {k}" for k, v in subsets.items()))
    print(f"{'model':<14} {'attribution':<18} {'subset':<7} {'n':>4} {'hit rate':>8} {'chance':>7} {'lift':>6} "
          f"{'ceiling':>7} {'95% CI':>15}")

    def show(name, method, maps):
        for subset, idx in subsets.items():
            r = lift([maps[i] for i in idx], [landmarks[i] for i in idx], [parts[i] for i in idx])
            print(f"{name:<14} {method:<18} {subset:<7} {r['n']:4d} {r['hit_rate']:8.3f} {r['chance']:7.3f} "
                  f"{r['lift']:6.2f} {1 / r['chance']:7.2f}   [{r['ci'][0]:.2f}, {r['ci'][1]:.2f}]", flush=True)

    base = load_model(args.baseline)
    show(args.baseline, "Grad-CAM (fake)", gradcam_maps(base, images))
    for name in [n for n in args.models.split(",") if n]:
        det = load_model(name)
        if det.supports_manipulation_map:
            show(name, "manipulation map", list(det.manipulation_map(images)))
        if det.supports_gradcam:
            show(name, "Grad-CAM (fake)", gradcam_maps(det, images))
    return 0


if __name__ == "__main__":
    sys.exit(main())

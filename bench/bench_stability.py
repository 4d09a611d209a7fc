"""Stability of P(fake) when the same face comes in another encoding or shifted by 2 px (issue 12's target).

For each model, on a seeded, source-stratified slice of the test crops (taken as-is, ``--crop none``): P(fake)
of the crop, and of the crop re-encoded as JPEG q75, JPEG q95, WebP q80, through 4:2:0 chroma, and shifted by
±2 px in x and y (reflected edges). Reports per variant the mean |ΔP(fake)| and the share of verdicts that flip
at the model's own threshold, then the mean over all variants; the first model is the baseline, and each other
model's mean |ΔP| is printed as a ratio of it (same run, same images).

Then the product path on one photo: scikit-image's astronaut saved as lossless PNG and BMP, JPEG q92, WebP q80 and
a CMYK JPEG, each decoded, its face found and cropped (with the model's crop recipe, if it has one) and scored:
the spread of P(fake) across the five files.

    DEEPFAKE_DATA=../shared/data/faces128 .venv/bin/python bench/bench_stability.py [--models a,b] [--n 600]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def encode(image: np.ndarray, fmt: str, quality: int) -> np.ndarray:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format=fmt, quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


def shift(image: np.ndarray, dx: int, dy: int) -> np.ndarray:
    p = 2
    padded = np.pad(image, ((p, p), (p, p), (0, 0)), mode="reflect")
    h, w = image.shape[:2]
    return padded[p - dy : p - dy + h, p - dx : p - dx + w]


VARIANTS = {
    "jpeg q75": lambda im: encode(im, "JPEG", 75),
    "jpeg q95": lambda im: encode(im, "JPEG", 95),
    "webp q80": lambda im: encode(im, "WEBP", 80),
    "chroma 4:2:0": None,  # filled in main (models.data.augment.subsample_chroma)
    "shift +2x": lambda im: shift(im, 2, 0),
    "shift -2x": lambda im: shift(im, -2, 0),
    "shift +2y": lambda im: shift(im, 0, 2),
    "shift -2y": lambda im: shift(im, 0, -2),
}




def photo_encodings(folder: Path) -> list[Path]:
    from PIL import Image
    from skimage import data

    img = Image.fromarray(data.astronaut())
    out = []
    for name, kw in (("png", {}), ("bmp", {}), ("jpg", {"quality": 92}), ("webp", {"quality": 80})):
        out.append(folder / f"astronaut.{name}")
        img.save(out[-1], **kw)
    out.append(folder / "astronaut_cmyk.jpg")
    img.convert("CMYK").save(out[-1], quality=92)
    return out


def encodings_row(det, paths: list[Path]) -> str:
    from models.scoring.stream import score_paths

    ps = [s.p_fake for s in score_paths(det, [str(p) for p in paths], crop="auto", workers=1)]
    cells = " ".join(f"{p:.3f}" for p in ps)
    return f"{det.name:<14} {cells}   spread {max(ps) - min(ps):.3f}"


def main() -> int:
    from models import load_model
    from models.data.augment import subsample_chroma
    from models.data.files import data_root, list_files, stratified_indices
    from models.data.intake import load_image

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="detector_v1")
    ap.add_argument("--n", type=int, default=600)
    args = ap.parse_args()
    VARIANTS["chroma 4:2:0"] = subsample_chroma
    files = list_files(data_root(), "test")
    images = [load_image(files.paths[i]) for i in stratified_indices(files, args.n)]
    print(f"{len(images)} test crops; P(fake) change against the crop as stored")
    print(f"{'model':<14} {'variant':<14} {'mean |dP|':>9} {'flips':>7}")
    baseline = None
    for name in args.models.split(","):
        det = load_model(name)
        p0 = det.predict(images)
        v0 = p0 >= det.threshold
        deltas, flips = [], []
        for label, fn in VARIANTS.items():
            p = det.predict([fn(im) for im in images])
            deltas.append(float(np.abs(p - p0).mean()))
            flips.append(float(((p >= det.threshold) != v0).mean()))
            print(f"{name:<14} {label:<14} {deltas[-1]:9.4f} {flips[-1]:7.1%}", flush=True)
        mean = float(np.mean(deltas))
        baseline = baseline or mean
        print(f"{name:<14} {'MEAN':<14} {mean:9.4f} {np.mean(flips):7.1%}   ratio to {args.models.split(',')[0]}: "
              f"{mean / baseline:.2f}", flush=True)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        paths = photo_encodings(Path(tmp))
        print(f"\nthe astronaut photo, P(fake) of its face from: {' '.join(p.name for p in paths)}")
        for name in args.models.split(","):
            print(encodings_row(load_model(name), paths), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Region ground truth: does an explanation's top facial region point at what was actually edited?

The ciplab fakes of the test split are photoshopped composites whose original file name
``<level>_<n>_<b1><b2><b3><b4>.jpg`` records which regions were pasted in (left eye, right eye, nose, mouth;
"left" = the viewer's left, our ``left_eye``). Each fake is explained with target="fake" by LIME (seed 0) and
Grad-CAM (default layer) on every model; the four inner regions (explain.regions.INNER) are ranked by mean
evidence per pixel. hit = the top-ranked inner region was edited (a tie at the top counts the edited share of
the tied regions); chance = k/4 for k edited regions; lift = hit rate / mean chance, with a bootstrap 95%
interval over images (2000 resamples, seeded). Images with k = 0 or k = 4 (chance 0 or 1) are excluded, and
counted; so are images where mtcnn finds no face. A seeded random ranking is the sanity line (lift ~ 1).

    DEEPFAKE_DATA=../shared/data/faces128 .venv/bin/python bench/bench_regions.py \
        [--models tuned_cnn,detector_v1] [--num-samples 1000] [--limit N] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

SOURCE = "ciplab_real_and_fake_face"
NAME_RE = re.compile(r"^(easy|mid|hard)_(\d+)_([01]{4})\.\w+$", re.IGNORECASE)
BOOTSTRAP = 2000


def parse_bits(name: str) -> tuple[str, tuple[int, int, int, int]] | None:
    """``mid_12_0010.jpg`` -> ("mid", (0, 0, 1, 0)); None when the name does not follow the convention."""
    m = NAME_RE.match(Path(name).name)
    if not m:
        return None
    return m.group(1).lower(), tuple(int(c) for c in m.group(3))


def hit_of(means: dict[str, float], edited: set[str], inner) -> tuple[float, bool]:
    """(hit, tied): 1/0 if the top inner region was / was not edited; the edited share of the top on a tie."""
    values = np.array([means[r] for r in inner], dtype=np.float64)
    top = [r for r, v in zip(inner, values) if np.isclose(v, values.max(), rtol=0, atol=1e-12)]
    return sum(r in edited for r in top) / len(top), len(top) > 1


def stats(hits, chances, rng, resamples: int = BOOTSTRAP) -> dict:
    """n, hit rate, mean chance and lift with a percentile bootstrap 95% interval (images resampled)."""
    hits, chances = np.asarray(hits, np.float64), np.asarray(chances, np.float64)
    n = len(hits)
    if n == 0:
        return {"n": 0, "hit_rate": None, "chance": None, "lift": None, "lift_lo": None, "lift_hi": None}
    idx = rng.integers(0, n, size=(resamples, n))
    lifts = hits[idx].mean(axis=1) / chances[idx].mean(axis=1)
    lo, hi = np.percentile(lifts, [2.5, 97.5])
    return {"n": n, "hit_rate": float(hits.mean()), "chance": float(chances.mean()),
            "lift": float(hits.mean() / chances.mean()), "lift_lo": float(lo), "lift_hi": float(hi)}


def fmt(v, spec=".3f") -> str:
    return "-" if v is None else format(v, spec)


def main() -> int:
    from tqdm import tqdm

    from explain import gradcam, lime
    from explain.regions import INNER, detect_landmarks, summarize
    from models import load_model
    from models.data.files import data_root, list_files
    from models.data.intake import load_image

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="tuned_cnn,detector_v1")
    ap.add_argument("--num-samples", type=int, default=1000, help="LIME samples per image (default 1000)")
    ap.add_argument("--seed", type=int, default=0, help="LIME seed (default 0)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N usable images (quick checks)")
    ap.add_argument("--bootstrap-seed", type=int, default=0)
    ap.add_argument("--json-out", default=None, help="write every number (and per-image results) here")
    args = ap.parse_args()
    started = time.perf_counter()

    files = list_files(data_root(), "test")
    candidates = [(p, n) for p, n, s, y in zip(files.paths, files.names, files.sources, files.labels)
                  if s == SOURCE and y == 1]
    excluded = {"k0": 0, "k4": 0, "bad_name": 0, "no_face": 0}
    usable = []  # (path, name, level, bits)
    for path, name in candidates:
        parsed = parse_bits(name)
        if parsed is None:
            excluded["bad_name"] += 1
            continue
        level, bits = parsed
        k = sum(bits)
        if k in (0, 4):
            excluded[f"k{k}"] += 1
            continue
        usable.append((path, name, level, bits))
    if args.limit is not None:
        usable = usable[: args.limit]

    # Landmarks once per image, shared by every model and method.
    images = []  # (name, level, bits, image, landmarks)
    for path, name, level, bits in tqdm(usable, desc="landmarks", file=sys.stderr):
        image = load_image(path)
        lm = detect_landmarks(image)
        if lm is None:
            excluded["no_face"] += 1
            continue
        images.append((name, level, bits, image, lm))

    model_names = [m for m in args.models.split(",") if m]
    methods = ("lime", "gradcam")
    per_image: dict[str, dict[str, list[dict]]] = {}
    for model_name in model_names:
        det = load_model(model_name)
        per_image[model_name] = {m: [] for m in methods}
        for name, _level, bits, image, lm in tqdm(images, desc=f"{model_name}", file=sys.stderr):
            edited = {r for r, b in zip(INNER, bits) if b}
            for method in methods:
                if method == "lime":
                    e = lime.explain(det, image, target="fake", num_samples=args.num_samples, seed=args.seed)
                else:
                    e = gradcam.explain(det, image, target="fake")
                s = summarize(e, landmarks=lm)
                means = {r: s.regions[r]["mean"] for r in INNER}
                hit, tied = hit_of(means, edited, INNER)
                per_image[model_name][method].append({
                    "name": name, "bits": "".join(map(str, bits)), "k": sum(bits), "p_fake": e.p_fake,
                    "top": s.top(among=INNER), "hit": hit, "tied": tied, "means": means, "seconds": e.seconds,
                })

    # The sanity line: a seeded random ranking of the four regions per image.
    rand_rng = np.random.default_rng(12345)
    random_rows = []
    for name, _level, bits, _image, _lm in images:
        top = INNER[int(rand_rng.integers(0, len(INNER)))]
        random_rows.append({"name": name, "bits": "".join(map(str, bits)), "k": sum(bits), "top": top,
                            "hit": float(bits[INNER.index(top)]), "tied": False})

    boot_rng = np.random.default_rng(args.bootstrap_seed)
    results = []

    def add(model_name, method, rows):
        hits = [r["hit"] for r in rows]
        chances = [r["k"] / 4 for r in rows]
        single = [r for r in rows if r["k"] == 1]
        tops = {reg: sum(r["top"] == reg for r in rows) for reg in INNER}
        results.append({
            "model": model_name, "method": method, "all": stats(hits, chances, boot_rng),
            "single": stats([r["hit"] for r in single], [0.25] * len(single), boot_rng),
            "ties": int(sum(r["tied"] for r in rows)), "top_counts": tops,
            "mean_p_fake": float(np.mean([r["p_fake"] for r in rows])) if rows and "p_fake" in rows[0] else None,
        })

    for model_name in model_names:
        for method in methods:
            add(model_name, method, per_image[model_name][method])
    add("random ranking", "-", random_rows)

    n_single = sum(sum(b) == 1 for _n, _l, b, _i, _m in images)
    print(f"ciplab test fakes: {len(candidates)}; used {len(images)} (k=1: {n_single}, k=2..3: "
          f"{len(images) - n_single}); excluded k=4: {excluded['k4']}, k=0: {excluded['k0']}, "
          f"no face: {excluded['no_face']}, unparsable name: {excluded['bad_name']}"
          + (f"; --limit {args.limit}" if args.limit is not None else ""))
    print(f"LIME num_samples={args.num_samples} seed={args.seed}; Grad-CAM default layer; target=fake; "
          f"bootstrap {BOOTSTRAP} resamples, seed {args.bootstrap_seed}")
    print()
    print("| model | method | n | hit rate | chance | lift [95% CI] | n (k=1) | hit (k=1) | lift k=1 [95% CI] "
          "| ties | top: L eye / R eye / nose / mouth |")
    print("|---|---|---:|---:|---:|---|---:|---:|---|---:|---|")
    for r in results:
        a, s = r["all"], r["single"]
        tops = " / ".join(str(r["top_counts"][reg]) for reg in INNER)
        print(f"| {r['model']} | {r['method']} | {a['n']} | {fmt(a['hit_rate'])} | {fmt(a['chance'])} | "
              f"{fmt(a['lift'], '.2f')} [{fmt(a['lift_lo'], '.2f')}, {fmt(a['lift_hi'], '.2f')}] | {s['n']} | "
              f"{fmt(s['hit_rate'])} | {fmt(s['lift'], '.2f')} [{fmt(s['lift_lo'], '.2f')}, "
              f"{fmt(s['lift_hi'], '.2f')}] | {r['ties']} | {tops} |")
    # Edited-region base rates, to read the top-region counts against.
    edited_counts = {reg: sum(b[i] for _n, _l, b, _im, _m in images) for i, reg in enumerate(INNER)}
    print()
    print("edited (of used images): " + ", ".join(f"{reg} {edited_counts[reg]}" for reg in INNER))
    elapsed = time.perf_counter() - started
    print(f"total {elapsed:.0f} s")

    if args.json_out:
        payload = {
            "params": {"models": model_names, "num_samples": args.num_samples, "seed": args.seed,
                       "limit": args.limit, "bootstrap": BOOTSTRAP, "bootstrap_seed": args.bootstrap_seed,
                       "inner": list(INNER), "target": "fake"},
            "counts": {"candidates": len(candidates), "used": len(images), "single": n_single, **excluded},
            "edited_counts": edited_counts,
            "results": results,
            "per_image": {**per_image, "random ranking": {"-": random_rows}},
            "seconds": elapsed,
        }
        Path(args.json_out).write_text(json.dumps(payload, indent=1))
        print(f"wrote {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

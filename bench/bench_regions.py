"""Region ground truth: does an explanation's top facial region point at what was actually edited?

The photoshopped fakes (the sources whose manifest ``kind`` is ``photoshop``: ciplab) of one split have original
file names ``<level>_<n>_<b1><b2><b3><b4>.jpg`` that record which regions were pasted in (left eye, right eye,
nose, mouth; "left" = the viewer's left, our ``left_eye``). Each fake is explained with target="fake" by every
asked method that applies to the model, with the pipeline's default parameters (:data:`explain.params.DEFAULTS`):

- ``lime``, ``gradcam``, ``manipulation`` (only models with a map head): the four inner regions
  (explain.regions.INNER) are ranked by mean evidence per pixel;
- ``shapley`` (exact region Shapley values, default fill): the four inner regions are ranked by φ.

hit = the top-ranked inner region was edited (a tie at the top counts the edited share of the tied regions);
chance = k/4 for k edited regions; lift = hit rate / mean chance, with a bootstrap 95% interval over images
(2000 resamples, seeded). Images with k = 0 or k = 4 (chance 0 or 1) are excluded, and counted; so are images
where mtcnn finds no face (landmarks from the crop cache, models.data.landmarks.cached_landmarks). The headline
subset is k < 4, with k = 1 beside it. A seeded random ranking is the in-run baseline (lift ~ 1).

``--select`` (use it on ``--split val``): per model, the method with the highest k < 4 lift; ties go to the
cheaper method (:data:`COST`, model passes per image). Report the selected method's lift on test.

    DEEPFAKE_DATA=../shared/data/faces128 nice -n 5 .venv/bin/python bench/bench_regions.py --split val --select \
        [--models detector_v1,detector_v2] [--methods lime,gradcam,shapley,manipulation] [--limit N] [--json-out F]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from dataclasses import asdict
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

KIND = "photoshop"  # the manifest kind of the sources whose file names say which regions were edited
NAME_RE = re.compile(r"^(easy|mid|hard)_(\d+)_([01]{4})\.\w+$", re.IGNORECASE)
BOOTSTRAP = 2000
INNER = ("left_eye", "right_eye", "nose", "mouth")  # models.data.landmarks.INNER (checked in main)
METHODS = ("lime", "gradcam", "shapley", "manipulation")
# Cost per image in model passes, for ties in --select: the map is one forward pass for P(fake) and one for the
# map; Grad-CAM a forward and a backward pass (~2 forward); Shapley 64 coalitions; LIME num_samples (+1).
COST = {"manipulation": 2.0, "gradcam": 3.0, "shapley": 64.0, "lime": 1001.0}


def parse_bits(name: str) -> tuple[str, tuple[int, int, int, int]] | None:
    """``mid_12_0010.jpg`` -> ("mid", (0, 0, 1, 0)); None when the name does not follow the convention."""
    m = NAME_RE.match(Path(name).name)
    if not m:
        return None
    return m.group(1).lower(), tuple(int(c) for c in m.group(3))


def hit_of(means: dict[str, float], edited: set[str], inner=INNER) -> tuple[float, bool]:
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


def region_scores(explanation, landmarks, inner=INNER) -> dict[str, float]:
    """The score each inner region is ranked by: φ for a Shapley explanation (``extras["values"]``), else the
    mean evidence per pixel of the region (explain.regions.summarize)."""
    if explanation.method == "shapley":
        return {r: float(explanation.extras["values"][r]) for r in inner}
    from explain.regions import summarize

    s = summarize(explanation, landmarks=landmarks)
    return {r: float(s.regions[r]["mean"]) for r in inner}


def select_method(lifts: dict[str, float | None], cost: dict[str, float] = COST) -> str | None:
    """The method with the highest lift (None lifts skipped); a tie (within 1e-9) goes to the cheaper one."""
    scored = [(m, v) for m, v in lifts.items() if v is not None]
    if not scored:
        return None
    best = max(v for _m, v in scored)
    tied = [m for m, v in scored if abs(v - best) <= 1e-9]
    return min(tied, key=lambda m: (cost.get(m, float("inf")), m))


def edited_sources(source_kinds: dict[str, str], kind: str = KIND) -> set[str]:
    """The sources whose fakes have ``kind`` in the manifest (ciplab's photoshopped composites)."""
    return {s for s, k in source_kinds.items() if k == kind}


def candidates(files, kind: str = KIND) -> tuple[list[tuple[str, str, tuple[int, ...]]], dict[str, int]]:
    """([(path, name, bits)] of the usable fakes of ``kind``'s sources, excluded counts by reason)."""
    sources = edited_sources(files.source_kinds, kind)
    excluded = {"k0": 0, "k4": 0, "bad_name": 0, "no_face": 0}
    usable = []
    for path, name, source, label in zip(files.paths, files.names, files.sources, files.labels):
        if label != 1 or source not in sources:
            continue
        parsed = parse_bits(name)
        if parsed is None:
            excluded["bad_name"] += 1
            continue
        k = sum(parsed[1])
        if k in (0, 4):
            excluded[f"k{k}"] += 1
            continue
        usable.append((path, name, parsed[1]))
    return usable, excluded


def random_rows(images, seed: int = 12345) -> list[dict]:
    """The baseline: a seeded random top region per image."""
    rng = np.random.default_rng(seed)
    rows = []
    for name, bits, *_ in images:
        top = INNER[int(rng.integers(0, len(INNER)))]
        rows.append({"name": name, "bits": "".join(map(str, bits)), "k": sum(bits), "top": top,
                     "hit": float(bits[INNER.index(top)]), "tied": False})
    return rows


def summarize_rows(model_name: str, method: str, rows: list[dict], rng) -> dict:
    """One result row: k < 4 and k = 1 statistics, ties, how often each region is on top, mean P(fake)."""
    single = [r for r in rows if r["k"] == 1]
    return {
        "model": model_name, "method": method,
        "all": stats([r["hit"] for r in rows], [r["k"] / 4 for r in rows], rng),
        "single": stats([r["hit"] for r in single], [0.25] * len(single), rng),
        "ties": int(sum(r["tied"] for r in rows)), "top_counts": {g: sum(r["top"] == g for r in rows) for g in INNER},
        "mean_p_fake": float(np.mean([r["p_fake"] for r in rows])) if rows and "p_fake" in rows[0] else None,
        "mean_seconds": float(np.mean([r["seconds"] for r in rows])) if rows and "seconds" in rows[0] else None,
    }


def fmt(v, spec=".3f") -> str:
    return "-" if v is None else format(v, spec)


def explain_one(det, method: str, image, landmarks, params):
    """``method``'s explanation of ``image`` for target "fake" with ``params`` (explain.params.Params)."""
    from explain import gradcam, lime, manipulation, shapley

    if method == "lime":
        return lime.explain(det, image, target="fake", **params.lime_kwargs())
    if method == "gradcam":
        return gradcam.explain(det, image, target="fake", layer=params.layer)
    if method == "shapley":
        return shapley.explain(det, image, target="fake", fill=params.shapley_fill, hide_color=params.hide_color,
                               landmarks=landmarks)
    if method == "manipulation":
        return manipulation.explain(det, image, target="fake")
    raise ValueError(f"unknown method {method!r}")


def run_model(det, methods, images, params, desc: str) -> dict[str, list[dict]]:
    """Per method, one row per image: the top inner region, hit, tie, P(fake), seconds, the region scores."""
    from tqdm import tqdm

    out = {m: [] for m in methods}
    for name, bits, image, lm in tqdm(images, desc=desc, file=sys.stderr):
        edited = {r for r, b in zip(INNER, bits) if b}
        for method in methods:
            e = explain_one(det, method, image, lm, params)
            scores = region_scores(e, lm)
            hit, tied = hit_of(scores, edited)
            out[method].append({"name": name, "bits": "".join(map(str, bits)), "k": sum(bits), "p_fake": e.p_fake,
                                "top": max(INNER, key=lambda r: scores[r]), "hit": hit, "tied": tied,
                                "scores": scores, "seconds": e.seconds})
    return out


def print_table(results: list[dict]) -> None:
    print("| model | method | n | hit rate | chance | lift [95% CI] | n (k=1) | hit (k=1) | lift k=1 [95% CI] "
          "| ties | top: L eye / R eye / nose / mouth | s/image |")
    print("|---|---|---:|---:|---:|---|---:|---:|---|---:|---|---:|")
    for r in results:
        a, s = r["all"], r["single"]
        tops = " / ".join(str(r["top_counts"][g]) for g in INNER)
        print(f"| {r['model']} | {r['method']} | {a['n']} | {fmt(a['hit_rate'])} | {fmt(a['chance'])} | "
              f"{fmt(a['lift'], '.2f')} [{fmt(a['lift_lo'], '.2f')}, {fmt(a['lift_hi'], '.2f')}] | {s['n']} | "
              f"{fmt(s['hit_rate'])} | {fmt(s['lift'], '.2f')} [{fmt(s['lift_lo'], '.2f')}, "
              f"{fmt(s['lift_hi'], '.2f')}] | {r['ties']} | {tops} | {fmt(r.get('mean_seconds'), '.2f')} |")


def print_selection(results: list[dict], model_names, split: str) -> dict[str, str | None]:
    """Per model, the selected method (highest k < 4 lift on this split) against the random ranking."""
    rand = next(r["all"]["lift"] for r in results if r["model"] == "random ranking")
    chosen = {}
    for model_name in model_names:
        lifts = {r["method"]: r["all"]["lift"] for r in results if r["model"] == model_name}
        chosen[model_name] = best = select_method(lifts)
        if best is None:
            print(f"select {model_name}: no method")
            continue
        print(f"select {model_name}: {best} (lift {lifts[best]:.2f} on {split}; random ranking {rand:.2f}, "
              f"ratio {lifts[best] / rand:.2f}; all: " + ", ".join(f"{m} {v:.2f}" for m, v in lifts.items()) + ")")
    return chosen


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--split", default="test", choices=("val", "test"))
    ap.add_argument("--models", default="detector_v1,detector_v2")
    ap.add_argument("--methods", default=",".join(METHODS), help=f"any of {', '.join(METHODS)}")
    ap.add_argument("--select", action="store_true", help="pick per model the method with the highest lift")
    ap.add_argument("--lime-preset", default=None,
                    help="LIME's parameters from explain.params.PRESETS (e.g. study); default: the pipeline's defaults")
    ap.add_argument("--kind", default=KIND, help="manifest kind of the sources with edited-region names")
    ap.add_argument("--limit", type=int, default=None, help="only the first N usable images (quick checks)")
    ap.add_argument("--bootstrap-seed", type=int, default=0)
    ap.add_argument("--json-out", default=None, help="write every number (and per-image results) here")
    args = ap.parse_args()
    bad = [m for m in args.methods.split(",") if m and m not in METHODS]
    if bad:
        ap.error(f"unknown method(s): {', '.join(bad)}")
    return args


def load_images(split: str, kind: str, limit: int | None):
    """(images [(name, bits, image, landmarks)], number of candidates, excluded counts)."""
    from models.data.files import data_root, list_files
    from models.data.intake import load_image
    from models.data.landmarks import cached_landmarks

    usable, excluded = candidates(list_files(data_root(), split), kind)
    n_candidates = len(usable) + sum(excluded.values())
    if limit is not None:
        usable = usable[:limit]
    landmarks = cached_landmarks([p for p, _n, _b in usable])
    images = []
    for (path, name, bits), lm in zip(usable, landmarks):
        if lm is None:
            excluded["no_face"] += 1
            continue
        images.append((name, bits, load_image(path), lm))
    return images, n_candidates, excluded


def main() -> int:
    from explain.params import DEFAULTS
    from explain.pipeline import applies
    from models import load_model
    from models.data.landmarks import INNER as LANDMARK_INNER

    assert tuple(LANDMARK_INNER) == INNER, "region order changed in models.data.landmarks"
    args = parse_args()
    started = time.perf_counter()
    images, n_candidates, excluded = load_images(args.split, args.kind, args.limit)
    model_names = [m for m in args.models.split(",") if m]
    asked = [m for m in args.methods.split(",") if m]
    params = DEFAULTS if args.lime_preset is None else type(DEFAULTS).preset(args.lime_preset)
    preset = getattr(params, "preset_name", None)
    per_image: dict[str, dict[str, list[dict]]] = {}
    for model_name in model_names:
        det = load_model(model_name)
        methods = [m for m in asked if applies(det, m)]
        per_image[model_name] = run_model(det, methods, images, params, model_name)

    boot_rng = np.random.default_rng(args.bootstrap_seed)
    results = [summarize_rows(mn, m, rows, boot_rng) for mn, by in per_image.items() for m, rows in by.items()]
    baseline = random_rows(images)
    results.append(summarize_rows("random ranking", "-", baseline, boot_rng))

    n_single = sum(sum(b) == 1 for _n, b, _i, _m in images)
    print(f"{args.kind} {args.split} fakes: {n_candidates}; used {len(images)} (k=1: {n_single}, k=2..3: "
          f"{len(images) - n_single}); excluded k=4: {excluded['k4']}, k=0: {excluded['k0']}, "
          f"no face: {excluded['no_face']}, unparsable name: {excluded['bad_name']}"
          + (f"; --limit {args.limit}" if args.limit is not None else ""))
    print(f"params: LIME {params.lime_kwargs()} (preset {preset}); Grad-CAM layer {params.layer}; "
          f"Shapley fill {params.shapley_fill}; target=fake; bootstrap {BOOTSTRAP} resamples, seed "
          f"{args.bootstrap_seed}\n")
    print_table(results)
    edited_counts = {g: sum(b[i] for _n, b, _im, _m in images) for i, g in enumerate(INNER)}
    print("\nedited (of used images): " + ", ".join(f"{g} {edited_counts[g]}" for g in INNER))
    chosen = print_selection(results, model_names, args.split) if args.select else None
    elapsed = time.perf_counter() - started
    print(f"total {elapsed:.0f} s")

    if args.json_out:
        payload = {
            "params": {"split": args.split, "kind": args.kind, "models": model_names, "methods": asked,
                       "lime_preset": preset,
                       "explain_params": {k: v for k, v in asdict(params).items()}, "limit": args.limit,
                       "bootstrap": BOOTSTRAP, "bootstrap_seed": args.bootstrap_seed, "inner": list(INNER),
                       "target": "fake", "cost": COST},
            "counts": {"candidates": n_candidates, "used": len(images), "single": n_single, **excluded},
            "edited_counts": edited_counts, "results": results, "selected": chosen,
            "per_image": {**per_image, "random ranking": {"-": baseline}}, "seconds": elapsed,
        }
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps(payload, indent=1, default=str))
        print(f"wrote {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

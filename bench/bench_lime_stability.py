"""LIME's stability across seeds, its cost and its faithfulness, per preset (issue 13: a stable LIME by default).

On a seeded sample of ``--limit`` faces of one split (stratified by source and class,
``models.data.files.stratified_indices``), for each preset: LIME with seeds 0, 1, 2 (a preset with
``consensus`` c uses the member seeds ``explain.lime.member_seeds``, disjoint across the three runs), the mean
top-5 Jaccard of the three positive top-5 sets (``explain.metrics.stability``) per face, its mean over the faces
(with a bootstrap 95% interval) and the share of faces at or above 0.5 (faces run in a seeded random order, so a
run stopped early, which still leaves its JSON, is a random subsample); seconds per explanation and their ratio
to the study preset's, measured in this process with the presets interleaved face by face (the machine is
shared: only ratios from one run compare); the deletion curves (``explain.metrics.faithfulness.deletion_curve``,
5 random orders) of the seed-0 explanation, removing superpixels two ways: filled black (as the pipeline makes
the curve, and as the study's LIME switches them off) and filled with their mean colour (as the stable preset's
LIME does): mean auc_explanation - auc_random (negative: the explanation removes the evidence faster than chance),
the share of faces where it is faster than random, and the paired difference to the study preset (bootstrap 95%
interval).

The study preset always runs, first, as the baseline. Presets are names from ``explain.params.PRESETS`` or
``label=field:value,field:value`` (fields of ``explain.params.Params``, e.g. ``c30=n_segments:30,
compactness:10,hide_color:None``; values are Python literals).

    DEEPFAKE_DATA=../shared/data/faces128 nice -n 5 .venv/bin/python bench/bench_lime_stability.py \\
        --split val --limit 50 --presets study stable [--model detector_v1] [--json-out out.json]
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

SEEDS = (0, 1, 2)
TOP_K = 5
STABLE_AT = 0.5


def parse_preset(spec: str):
    """``name`` (explain.params.PRESETS) or ``label=field:value,...`` -> (label, Params)."""
    from explain.params import Params

    if "=" not in spec:
        return spec, Params.preset(spec)
    label, body = spec.split("=", 1)
    changes = {}
    for item in filter(None, body.split(",")):
        key, value = item.split(":", 1)
        try:
            changes[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            changes[key] = value
    return label, Params.preset("study").with_lime(changes)


def faces(split: str, limit: int, seed: int):
    from models.data.files import data_root, list_files, stratified_indices
    from models.data.intake import load_image

    files = list_files(data_root(), split)
    idx = stratified_indices(files, limit, seed=seed)
    idx = [idx[i] for i in np.random.default_rng(seed).permutation(len(idx))]  # any prefix is a random subsample
    return [(Path(files.paths[i]).name, load_image(files.paths[i])) for i in idx]


def measure(detector, image, params) -> dict:
    from explain.metrics import faithfulness, stability

    s = stability.stability(detector, image, seeds=SEEDS, k=TOP_K, target=params.target, **{
        k: v for k, v in params.lime_kwargs().items() if k != "seed"})
    first = s["explanations"][0]
    black = faithfulness.deletion_curve(detector, image, first, seed=0, n_random=params.deletion_random)
    mean = faithfulness.deletion_curve(detector, image, first, seed=0, n_random=params.deletion_random,
                                       hide_color=None)
    return {"mean_jaccard": s["mean_jaccard"], "sets": s["sets"],
            "seconds": float(np.mean([e.seconds for e in s["explanations"]])),
            "segments": first.extras["n_segments_actual"], "target": first.target,
            "delta_auc": black.auc_explanation - black.auc_random, "useful": black.useful,
            "delta_auc_mean": mean.auc_explanation - mean.auc_random, "useful_mean": mean.useful}


def bootstrap(values, n: int = 2000, seed: int = 0) -> tuple[float, float]:
    values = np.asarray(values, np.float64)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), (n, len(values)))].mean(axis=1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def summarize(rows: dict[str, list[dict]], baseline: str) -> dict[str, dict]:
    base = rows[baseline]
    out = {}
    for label, rs in rows.items():
        jac = [r["mean_jaccard"] for r in rs]
        delta = [r["delta_auc"] for r in rs]
        paired = [r["delta_auc"] - b["delta_auc"] for r, b in zip(rs, base)]
        paired_mean = [r["delta_auc_mean"] - b["delta_auc_mean"] for r, b in zip(rs, base)]
        out[label] = {
            "faces": len(rs), "mean_jaccard": float(np.mean(jac)), "jaccard_ci": bootstrap(jac),
            "share_stable": float(np.mean([j >= STABLE_AT for j in jac])),
            "seconds": float(np.mean([r["seconds"] for r in rs])),
            "time_ratio": float(np.sum([r["seconds"] for r in rs]) / np.sum([b["seconds"] for b in base])),
            "delta_auc": float(np.mean(delta)), "share_useful": float(np.mean([r["useful"] for r in rs])),
            "delta_auc_vs_study": float(np.mean(paired)), "delta_auc_vs_study_ci": bootstrap(paired),
            "delta_auc_mean": float(np.mean([r["delta_auc_mean"] for r in rs])),
            "share_useful_mean": float(np.mean([r["useful_mean"] for r in rs])),
            "delta_auc_mean_vs_study": float(np.mean(paired_mean)),
            "delta_auc_mean_vs_study_ci": bootstrap(paired_mean),
            "segments": float(np.mean([r["segments"] for r in rs])),
        }
    return out


def table(summary: dict[str, dict]) -> str:
    lines = ["| preset | faces | segments (actual) | mean top-5 Jaccard [95% CI] | share >= 0.5 | s / explanation | "
             "time / study | deletion ΔAUC, black fill (faster than random) | - study's [95% CI] | "
             "deletion ΔAUC, mean fill (faster than random) | - study's [95% CI] |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for label, s in summary.items():
        lo, hi = s["jaccard_ci"]
        blo, bhi = s["delta_auc_vs_study_ci"]
        mlo, mhi = s["delta_auc_mean_vs_study_ci"]
        lines.append(f"| {label} | {s['faces']} | {s['segments']:.1f} | {s['mean_jaccard']:.3f} [{lo:.2f}, {hi:.2f}] | "
                     f"{s['share_stable']:.0%} | {s['seconds']:.2f} | {s['time_ratio']:.2f}x | "
                     f"{s['delta_auc']:+.3f} ({s['share_useful']:.0%}) | {s['delta_auc_vs_study']:+.3f} "
                     f"[{blo:+.3f}, {bhi:+.3f}] | {s['delta_auc_mean']:+.3f} ({s['share_useful_mean']:.0%}) | "
                     f"{s['delta_auc_mean_vs_study']:+.3f} [{mlo:+.3f}, {mhi:+.3f}] |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--split", default="val", choices=("train", "val", "test"))
    p.add_argument("--limit", type=int, default=50, help="faces (about: stratified, at least one per group)")
    p.add_argument("--presets", nargs="+", default=["study", "stable"])
    p.add_argument("--model", default="detector_v1")
    p.add_argument("--seed", type=int, default=0, help="seed of the face sample")
    p.add_argument("--json-out", default=None)
    p.add_argument("--merge", nargs="+", default=None, metavar="JSON",
                   help="no new run: the table of these --json-out files together (same presets; a face once)")
    args = p.parse_args(argv)
    if args.merge:
        print(table(summarize(merge(args.merge), "study")))
        return 0

    from models import load_model

    presets = dict(parse_preset(s) for s in args.presets)
    if "study" not in presets:
        presets = {"study": parse_preset("study")[1], **presets}
    presets = {"study": presets.pop("study"), **presets}
    detector = load_model(args.model)
    sample = faces(args.split, args.limit, args.seed)
    print(f"{args.model}, {args.split}: {len(sample)} faces; presets: "
          + "; ".join(f"{k} {dict(v.lime_items())}" for k, v in presets.items()), flush=True)
    measure(detector, sample[0][1], presets["study"].with_lime(num_samples=50))  # warm-up, untimed
    rows: dict[str, list[dict]] = {label: [] for label in presets}
    start = time.perf_counter()
    for i, (name, image) in enumerate(sample):
        for label, params in presets.items():
            rows[label].append({"face": name, **measure(detector, image, params)})
        print(f"[{i + 1}/{len(sample)}] {name}: " + ", ".join(
            f"{label} J={r[-1]['mean_jaccard']:.2f} dAUC={r[-1]['delta_auc']:+.3f} {r[-1]['seconds']:.1f}s"
            for label, r in rows.items()), flush=True)
        if args.json_out:  # after every face: a long run that is stopped still leaves its numbers
            write_json(args, presets, rows, summarize(rows, "study"))
    summary = summarize(rows, "study")
    print(table(summary))
    for label, s in summary.items():
        print(f"{label}: time ratio to the study preset {s['time_ratio']:.2f}x")
    print(f"wall {time.perf_counter() - start:.0f} s")
    return 0


def merge(paths) -> dict[str, list[dict]]:
    """The per-face rows of several runs' JSON files (the same presets), each face once (the first run's)."""
    rows: dict[str, list[dict]] = {}
    seen: set[str] = set()
    for path in paths:
        faces = json.loads(Path(path).read_text())["faces"]
        new = [i for i, r in enumerate(faces["study"]) if r["face"] not in seen]
        for label, rs in faces.items():
            rows.setdefault(label, []).extend(rs[i] for i in new)
        seen.update(faces["study"][i]["face"] for i in new)
    return rows


def write_json(args, presets: dict, rows: dict, summary: dict) -> None:
    Path(args.json_out).write_text(json.dumps({
        "model": args.model, "split": args.split, "limit": args.limit, "seed": args.seed, "seeds": SEEDS,
        "presets": {k: dict(v.lime_items()) for k, v in presets.items()}, "summary": summary, "faces": rows},
        indent=1, default=str))


if __name__ == "__main__":
    raise SystemExit(main())

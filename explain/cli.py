"""``python -m explain IMAGE [--model M] [--method lime|gradcam|activations|manipulation|regions|all] [--preset stable|study] [--out DIR] [--json] [--report OUT.html]``

Explains one face image: writes the figures as PNGs into DIR and prints a summary (verdict at the model's
operating point, calibrated P(fake), the threshold, top regions with their scores, deletion-curve areas,
seconds per method). ``--preset`` picks LIME's parameters: "stable" (the default) or "study" (the study's LIME:
SLIC 100/1/1, 1,000 samples, black fill); --num-samples and --n-segments override the preset's. "all" includes the manipulation map only for a model with a map head. With --json, stdout holds exactly one JSON object. With --report, also a self-contained HTML
report (explain.report: every model's verdict, LIME, Grad-CAM, regions, deletion curves, parameters, model versions),
built from the same explanations (what --method left out is computed for it). Exit status 0 on success, 2 on bad input (one line on stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from explain.params import DEFAULTS, PRESETS, Params

METHODS = ("lime", "gradcam", "activations", "regions", "all", "manipulation", "shapley")
PIPELINE_METHODS = {"lime": ("lime", "regions"), "gradcam": ("gradcam", "regions"), "activations": ("activations",),
                    "manipulation": ("manipulation",), "shapley": ("shapley",),
                    "regions": ("lime", "gradcam", "regions"),
                    "all": ("shapley", "lime", "gradcam", "activations", "regions")}


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m explain", description=__doc__.split("\n")[0])
    p.add_argument("image")
    p.add_argument("--model", default=None, help="model name or .keras path (default: the shipped default)")
    p.add_argument("--method", default="all", choices=METHODS)
    p.add_argument("--target", default=DEFAULTS.target, choices=("verdict", "fake", "real"))
    p.add_argument("--out", default=None, help="folder for the PNGs (default: explain_out/<image stem>)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--preset", default="stable", choices=tuple(PRESETS),
                   help="LIME's parameters: stable (default) or study (SLIC 100/1/1, 1,000 samples, black fill)")
    p.add_argument("--num-samples", type=int, default=None,
                   help=f"LIME samples (default: the preset's; stable {DEFAULTS.num_samples})")
    p.add_argument("--n-segments", type=int, default=None,
                   help=f"SLIC superpixels asked for (default: the preset's; stable {DEFAULTS.n_segments})")
    p.add_argument("--seed", type=int, default=DEFAULTS.seed)
    p.add_argument("--layer", default=DEFAULTS.layer,
                   help="layer for Grad-CAM / activations (default last / first conv)")
    p.add_argument("--no-deletion", action="store_true", help="skip the deletion curves (faithfulness)")
    p.add_argument("--crop", default="auto", choices=("auto", "face", "none"),
                   help="auto: find faces, centre square if none (default); face: require one; none: already a crop")
    p.add_argument("--face", type=int, default=1, help="which face to explain, 1 = the largest (default)")
    p.add_argument("--report", default=None, metavar="OUT.html",
                   help="also write a self-contained HTML report (all models' verdicts, every explanation)")
    return p.parse_args(argv)


def params_of(args) -> Params:
    """The pipeline's parameters from the command line (after checking them)."""
    if args.num_samples is not None and args.num_samples < 1:
        raise ValueError(f"--num-samples must be at least 1, not {args.num_samples}")
    if args.n_segments is not None and args.n_segments < 1:
        raise ValueError(f"--n-segments must be at least 1, not {args.n_segments}")
    if args.report is not None and Path(args.report).is_dir():
        raise ValueError(f"--report {args.report}: is a folder, give a file name such as report.html")
    overrides = {k: v for k, v in (("num_samples", args.num_samples), ("n_segments", args.n_segments)) if v is not None}
    return Params.preset(args.preset, target=args.target, seed=args.seed, layer=args.layer,
                         deletion=not args.no_deletion, **overrides)


def run(args) -> dict:
    """Parse -> :func:`explain.pipeline.run` -> figures (PNGs) and the summary (and the HTML report)."""
    from explain import pipeline
    from models import load_model
    from models.data.intake import load_image
    from models.scoring.stream import analyse

    params = params_of(args)
    detector = load_model(args.model)
    photo = load_image(args.image)
    crops, kind, warnings = analyse(photo, args.crop, recipe=detector.crop_recipe)
    if not 1 <= args.face <= len(crops):
        raise ValueError(f"--face {args.face}: the image has {len(crops)} face(s)")
    for w in warnings:
        print(f"warning: {args.image}: {w}", file=sys.stderr)
    face, image = crops[args.face - 1]
    out = Path(args.out or Path("explain_out") / Path(args.image).stem)
    out.mkdir(parents=True, exist_ok=True)
    cache = pipeline.memory_cache()
    methods = PIPELINE_METHODS[args.method]
    if args.method == "all" and pipeline.applies(detector, "manipulation"):
        methods = (*methods, "manipulation")
    bundle = pipeline.run(detector, image, methods=methods, params=params, cache=cache)
    summary = summarize(args, detector, bundle, kind, crops, face)
    told = None
    if "shapley" in bundle.explanations or "shapley" in bundle.notes:
        summary["summary"], told = story(detector, bundle, image)
    figures = write_figures(bundle, image, out, summary, told)
    if args.report:
        write_report(args, detector, params, cache, photo, image, crops, kind, face, figures)
        summary["report"] = str(args.report)
    return summary


def summarize(args, detector, bundle, kind: str, crops: list, face) -> dict:
    """The JSON summary of a pipeline run (figures are added as they are written)."""
    want = set(METHODS[:4]) if args.method == "all" else {args.method}
    from explain import manipulation

    summary = {"path": args.image, "model": bundle.model, "verdict": bundle.verdict, "p_fake": bundle.p_fake,
               "threshold": bundle.threshold, "calibrated": detector.calibration is not None,
               "crop": kind, "face": args.face, "faces_found": sum(f is not None for f, _ in crops),
               "box": None if face is None else list(face.box), "target": args.target,
               "seconds": {k: round(v, 3) for k, v in bundle.timings.items() if k not in ("stability", "regions")},
               "figures": [], "regions": {}, "deletion": {}}
    if "lime" in bundle.explanations:
        e = bundle.explanations["lime"]
        summary["lime"] = {"top_positive": e.extras["top_positive"], "score": e.extras["score"],
                           "n_segments": e.extras["n_segments_actual"], "preset": bundle.params.preset_name}
    if "activations" in bundle.explanations:
        e = bundle.explanations["activations"]
        summary["activations"] = {"layer": e.extras["layer"], "n_channels": int(e.extras["n_channels"])}
    if "manipulation" in bundle.explanations:
        e = bundle.explanations["manipulation"]
        summary["manipulation"] = {k: e.extras[k] for k in ("mean", "max", "share_over_half")}
    for method in bundle.not_applicable:
        if method in want:
            summary.setdefault("not_applicable", []).append(method)
            line = (manipulation.not_applicable_line(detector) if method == "manipulation"
                    else f"{method} does not apply to {detector.name} (not a neural network)")
            print(f"warning: {line}", file=sys.stderr)
    if bundle.face_found is not None:
        summary["face_found"] = bundle.face_found
        for name in bundle.attributions:
            s = bundle.regions.get(name)
            summary["regions"][name] = [] if s is None else [
                {"region": r, "mean": s.regions[r]["mean"], "share": s.regions[r]["share"]} for r in s.ranking]
    for name, curve in bundle.deletion.items():
        summary["deletion"][name] = {"auc_explanation": curve.auc_explanation, "auc_random": curve.auc_random,
                                     "faster_than_random": curve.useful}
    return summary


def story(detector, bundle, image):
    """The Explain page's Summary (:class:`explain.summary.Summary`) and its JSON: headline, region Shapley
    values, each method's trust and top region."""
    from explain.metrics import sanity
    from explain.summary import summarize as summary_of

    p = bundle.p_fake
    spread = float(detector.views_spread([image], p_fake=[p])[0])
    unsure = bool(detector.unsure([p], [spread])[0])
    s = summary_of(bundle, sanity_failures=sanity.failures(detector, bundle.params), unsure=unsure)
    shap = bundle.explanations.get("shapley")
    return {"headline": s.headline, "verdict": s.verdict_label, "spread": spread,
            "shapley": None if shap is None else {"values": shap.extras["values"], "base": shap.extras["base"],
                                                  "full": shap.extras["full"], "fill": shap.extras["fill"]},
            "methods": [{"method": r.method, "top_inner": r.top_inner, "trusted": r.trusted, "reason": r.reason}
                        for r in s.methods if r.status == "done"],
            "agree": s.agreement.agree, "not_applicable": s.not_applicable}, s


def write_figures(bundle, image, out: Path, summary: dict, told=None) -> dict[str, bytes]:
    """Every figure of ``bundle`` as ``out/<name>.png`` (listed in ``summary["figures"]``); returns their bytes."""
    from explain import render

    figures = {}

    def save(fig, name):
        path = out / f"{name}.png"
        figures[name] = render.png(fig)
        path.write_bytes(figures[name])
        summary["figures"].append(str(path))

    ex = bundle.explanations
    if told is not None and told.waterfall:
        save(render.waterfall(told), "shapley_waterfall")
    if "lime" in ex:
        save(render.lime_panels(ex["lime"], image), "lime")
    if "gradcam" in ex:
        save(render.gradcam_overlay(ex["gradcam"], image), "gradcam")
    if "activations" in ex:
        save(render.activation_grid(ex["activations"]), "activations")
        save(render.activation_zoom(ex["activations"]), "activation_zoom")
    if "manipulation" in ex:
        save(render.manipulation_overlay(ex["manipulation"], image), "manipulation")
    for name, s in bundle.regions.items():
        save(render.region_bars(s), f"regions_{name}")
    if bundle.regions:
        save(render.region_overlay(next(iter(bundle.regions.values())), image), "regions_map")
    for name, curve in bundle.deletion.items():
        save(render.deletion_plot(curve), f"deletion_{name}")
    return figures


def write_report(args, detector, params: Params, cache, photo, image, crops, kind, face, figures) -> None:
    """The HTML report, from the same pipeline cache: what --method left out is computed by the report."""
    from explain.report.image import image_report

    crop_info = {"image": args.image, "mode": args.crop, "kind": kind,
                 "face": f"{args.face} of {len(crops)}", "box": None if face is None else list(face.box)}
    html = image_report(image, model=detector, params=params, cache=cache, crop_info=crop_info, figures=figures,
                        photo=photo if kind != "none" else None, title=f"Deepfake Lens report: {Path(args.image).name}")
    path = Path(args.report)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")


def format_summary(s: dict) -> str:
    threshold = s.get("threshold")
    at = "" if threshold is None else f", threshold {threshold:.3f}"
    lines = [f"{s['path']}: {s['verdict']} (P(fake) {s['p_fake']:.3f}{at}) by {s['model']}"]
    story = s.get("summary")
    if story:
        lines.append(f"  {story['headline']}")
        if story["shapley"]:
            values = sorted(story["shapley"]["values"].items(), key=lambda kv: -abs(kv[1]))
            lines.append(f"  region Shapley values (P(fake) units, from {story['shapley']['base']:.3f}): "
                         + ", ".join(f"{r} {v:+.3f}" for r, v in values))
        for m in story["methods"]:
            if not m["trusted"]:
                lines.append(f"  not trusted: {m['method']}: {m['reason']}")
    target = s["verdict"] if s["target"] == "verdict" else s["target"]
    for method, ranking in s["regions"].items():
        if not ranking:
            continue
        top = ", ".join(f"{r['region']} {r['mean']:+.3f}" for r in ranking[:4])
        lines.append(f"  regions ({method}, evidence for '{target}'): {top}")
    if s.get("face_found") is False:
        lines.append("  no face found: region summary skipped, pixel-level figures only")
    for method, d in s["deletion"].items():
        verdict = "faster than random" if d["faster_than_random"] else "NOT faster than random"
        lines.append(f"  deletion ({method}): area {d['auc_explanation']:.3f} vs random {d['auc_random']:.3f}, {verdict}")
    lines.append("  seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in s["seconds"].items()))
    lines.append(f"  figures: {len(s['figures'])} PNGs in {Path(s['figures'][0]).parent if s['figures'] else '-'}")
    if s.get("report"):
        lines.append(f"  report: {s['report']}")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    from models.data.intake import ImageLoadError
    from models.detectors.registry import ModelNotFoundError

    try:
        summary = run(args)
    except (ImageLoadError, ModelNotFoundError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary) if args.json else format_summary(summary))
    return 0

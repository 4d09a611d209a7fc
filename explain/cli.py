"""``python -m explain IMAGE [--model M] [--method lime|gradcam|activations|regions|all] [--out DIR] [--json] [--report OUT.html]``

Explains one face image: writes the figures as PNGs into DIR and prints a summary (verdict at the model's
operating point, calibrated P(fake), the threshold, top regions with their scores, deletion-curve areas,
seconds per method). With --json, stdout holds exactly one JSON object. With --report, also a self-contained HTML
report (explain.report: every model's verdict, LIME, Grad-CAM, regions, deletion curves, parameters, model versions),
built from the same explanations (what --method left out is computed for it). Exit status 0 on success, 2 on bad input (one line on stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

METHODS = ("lime", "gradcam", "activations", "regions", "all")


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m explain", description=__doc__.split("\n")[0])
    p.add_argument("image")
    p.add_argument("--model", default=None, help="model name or .keras path (default: the shipped default)")
    p.add_argument("--method", default="all", choices=METHODS)
    p.add_argument("--target", default="verdict", choices=("verdict", "fake", "real"))
    p.add_argument("--out", default=None, help="folder for the PNGs (default: explain_out/<image stem>)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--num-samples", type=int, default=1000, help="LIME samples (default 1000)")
    p.add_argument("--n-segments", type=int, default=100, help="SLIC superpixels asked for (default 100)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--layer", default=None, help="layer for Grad-CAM / activations (default last / first conv)")
    p.add_argument("--no-deletion", action="store_true", help="skip the deletion curves (faithfulness)")
    p.add_argument("--crop", default="auto", choices=("auto", "face", "none"),
                   help="auto: find faces, centre square if none (default); face: require one; none: already a crop")
    p.add_argument("--face", type=int, default=1, help="which face to explain, 1 = the largest (default)")
    p.add_argument("--report", default=None, metavar="OUT.html",
                   help="also write a self-contained HTML report (all models' verdicts, every explanation)")
    return p.parse_args(argv)


def run(args) -> dict:
    if args.num_samples < 1:
        raise ValueError(f"--num-samples must be at least 1, not {args.num_samples}")
    if args.n_segments < 1:
        raise ValueError(f"--n-segments must be at least 1, not {args.n_segments}")
    if args.report is not None and Path(args.report).is_dir():
        raise ValueError(f"--report {args.report}: is a folder, give a file name such as report.html")
    from explain import activations, gradcam, lime, render
    from explain.faithfulness import deletion_curve
    from explain.regions import detect_landmarks, summarize
    from models import load_model
    from models.data.intake import load_image
    from models.detectors.labels import verdict
    from models.scoring.stream import analyse

    detector = load_model(args.model)
    photo = load_image(args.image)
    crops, kind, warnings = analyse(photo, args.crop)
    if not 1 <= args.face <= len(crops):
        raise ValueError(f"--face {args.face}: the image has {len(crops)} face(s)")
    for w in warnings:
        print(f"warning: {args.image}: {w}", file=sys.stderr)
    face, image = crops[args.face - 1]
    out = Path(args.out or Path("explain_out") / Path(args.image).stem)
    out.mkdir(parents=True, exist_ok=True)
    want = set(METHODS[:4]) if args.method == "all" else {args.method}
    p_fake = float(detector.predict([image])[0])  # calibrated; the verdict at the model's operating point
    threshold = float(detector.threshold)
    summary = {"path": args.image, "model": detector.name, "verdict": verdict(p_fake, threshold), "p_fake": p_fake,
               "threshold": threshold, "calibrated": detector.calibration is not None,
               "crop": kind, "face": args.face, "faces_found": sum(f is not None for f, _ in crops),
               "box": None if face is None else list(face.box),
               "target": args.target, "seconds": {}, "figures": [], "regions": {}, "deletion": {}}
    explanations, figures, curves, landmarks = {}, {}, {}, None

    def save(fig, name):
        path = out / f"{name}.png"
        figures[name] = render.png(fig)
        path.write_bytes(figures[name])
        summary["figures"].append(str(path))

    if want & {"lime", "regions"}:
        e = lime.explain(detector, image, target=args.target, num_samples=args.num_samples,
                         n_segments=args.n_segments, seed=args.seed)
        explanations["lime"] = e
        summary["seconds"]["lime"] = round(e.seconds, 3)
        summary["lime"] = {"top_positive": e.extras["top_positive"], "score": e.extras["score"],
                           "n_segments": e.extras["n_segments_actual"]}
        save(render.lime_panels(e, image), "lime")
    if want & {"gradcam", "regions"} and detector.supports_gradcam:
        e = gradcam.explain(detector, image, target=args.target, layer=args.layer)
        explanations["gradcam"] = e
        summary["seconds"]["gradcam"] = round(e.seconds, 3)
        save(render.gradcam_overlay(e, image), "gradcam")
    if "activations" in want and detector.supports_activations:
        e = activations.explain(detector, image, target=args.target, layer=args.layer)
        summary["seconds"]["activations"] = round(e.seconds, 3)
        summary["activations"] = {"layer": e.extras["layer"], "n_channels": int(e.extras["n_channels"])}
        save(render.activation_grid(e), "activations")
        save(render.activation_zoom(e), "activation_zoom")
    for method, ok in (("gradcam", detector.supports_gradcam), ("activations", detector.supports_activations)):
        if method in want and not ok:
            summary.setdefault("not_applicable", []).append(method)
            print(f"warning: {method} does not apply to {detector.name} (not a neural network)", file=sys.stderr)
    if want & {"regions", "lime", "gradcam"} and explanations:
        t = time.perf_counter()
        landmarks = detect_landmarks(image)
        summary["seconds"]["landmarks"] = round(time.perf_counter() - t, 3)
        summary["face_found"] = landmarks is not None
        for name, e in explanations.items():
            if landmarks is None:  # no face: nothing to rank (and no second mtcnn pass per method)
                summary["regions"][name] = []
                continue
            s = summarize(e, landmarks=landmarks)
            summary["regions"][name] = [{"region": r, "mean": s.regions[r]["mean"], "share": s.regions[r]["share"]}
                                        for r in s.ranking]
            if s.face_found:
                save(render.region_bars(s), f"regions_{name}")
        if landmarks is not None:
            save(render.region_overlay(summarize(next(iter(explanations.values())), landmarks=landmarks), image),
                 "regions_map")
    if not args.no_deletion:
        for name, e in explanations.items():
            curve = curves[name] = deletion_curve(detector, image, e, seed=args.seed, n_segments=args.n_segments)
            summary["seconds"][f"deletion_{name}"] = round(curve.seconds, 3)
            summary["deletion"][name] = {"auc_explanation": curve.auc_explanation, "auc_random": curve.auc_random,
                                         "faster_than_random": curve.useful}
            save(render.deletion_plot(curve), f"deletion_{name}")
    if args.report:
        write_report(args, detector, photo, image, crops, kind, face, explanations, figures, curves,
                     landmarks if "face_found" in summary else None, "face_found" in summary)
        summary["report"] = str(args.report)
    return summary


def write_report(args, detector, photo, image, crops, kind, face, explanations, figures, curves, landmarks,
                 have_landmarks: bool) -> None:
    """The HTML report from what run() computed; what --method left out is computed here or by explain.report."""
    from explain import gradcam, report

    crop_info = {"image": args.image, "mode": args.crop, "kind": kind,
                 "face": f"{args.face} of {len(crops)}", "box": None if face is None else list(face.box)}
    params = {"n_segments": args.n_segments, "num_samples": args.num_samples, "seed": args.seed}
    if "gradcam" not in explanations and detector.supports_gradcam:
        explanations["gradcam"] = gradcam.explain(detector, image, target=args.target, layer=args.layer)
    html = report.image_report(image, model=detector, lime_params=params, target=args.target, crop_info=crop_info,
                               explanations=explanations, figures=figures, curves=curves,
                               landmarks=landmarks if have_landmarks else report.MISSING,
                               photo=photo if kind != "none" else None,
                               deletion=not args.no_deletion, title=f"Deepfake Lens report: {Path(args.image).name}")
    path = Path(args.report)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")


def format_summary(s: dict) -> str:
    threshold = s.get("threshold")
    at = "" if threshold is None else f", threshold {threshold:.3f}"
    lines = [f"{s['path']}: {s['verdict']} (P(fake) {s['p_fake']:.3f}{at}) by {s['model']}"]
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

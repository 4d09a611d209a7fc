"""Self-contained HTML reports: one image explained, or a batch summarised with its most suspicious faces.

:func:`image_report` and :func:`batch_report` return one HTML string with inline CSS and every figure
embedded as a base64 PNG (``<img src="data:image/png;base64,...">``): no scripts, no external URLs, so
the file opens anywhere, offline, and can be mailed or archived as is. All text is escaped (file names
may contain markup). No Streamlit here: the Explain page and ``python -m explain --report`` both call it.

``progress(fraction, message)``, when given, is called as the report is computed (fraction in [0, 1]).
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import math
import platform
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from explain.base import check_image, resolve_target, threshold_of

DEFAULT_LIME = {"n_segments": 100, "compactness": 1.0, "sigma": 1.0, "num_samples": 1000, "hide_color": 0,
                "seed": 0}
LIBRARIES = ("numpy", "tensorflow", "keras", "lime", "scikit-image", "mtcnn", "matplotlib", "streamlit")
PHOTO_MAX_SIDE = 768  # the original photo is embedded at most this large
METHODS = ("lime", "gradcam")  # the explanations a report shows
MISSING = object()  # ``landmarks`` not given: detect them

Progress = Callable[[float, str], None]

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222; margin: 0 auto;
       max-width: 1100px; padding: 24px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; border-bottom: 1px solid #ddd; margin-top: 28px; }
h3 { font-size: 15px; margin-bottom: 4px; }
.meta, .note, figcaption { color: #666; font-size: 12px; }
.row { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
figure { margin: 0; } img { max-width: 100%; height: auto; }
img.pixel { width: 256px; image-rendering: pixelated; }
table { border-collapse: collapse; margin: 8px 0; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f5f5f5; }
.fake { background: #fde2e1; color: #a40000; font-weight: 600; padding: 0 6px; border-radius: 3px; }
.real { background: #e0f3e3; color: #146c2e; font-weight: 600; padding: 0 6px; border-radius: 3px; }
.warn { background: #fff4d6; border-left: 4px solid #e0a800; padding: 6px 10px; }
.item { border-top: 1px solid #eee; padding-top: 8px; margin-top: 16px; }
code { font-size: 12px; }
"""


# --- small HTML helpers ---------------------------------------------------------------------------------

class _Raw(str):
    """Already-safe HTML (never user text): table cells of this type are not escaped."""


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        return "—" if math.isnan(value) else f"{float(value):.3f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value)
    return str(value)


def _param(value) -> str:
    """A parameter as typed: floats without padding (1, 0.5), sequences comma-separated."""
    if isinstance(value, (float, np.floating)):
        return f"{float(value):g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_param(v) for v in value)
    return _fmt(value)


def _cell(value) -> str:
    return value if isinstance(value, _Raw) else _e(_fmt(value))


def _table(headers: Iterable[str], rows: Iterable[Iterable]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _kv(items: Mapping) -> str:
    return "<table><tbody>" + "".join(f"<tr><th>{_e(k)}</th><td>{_cell(v)}</td></tr>" for k, v in items.items()) \
        + "</tbody></table>"


def _badge(verdict: str) -> _Raw:
    v = str(verdict).lower()
    return _Raw(f'<span class="{v}">{_e(v.upper())}</span>' if v in ("fake", "real") else _e(verdict))


def _p(text: str, cls: str = "") -> str:
    return f'<p class="{cls}">{_e(text)}</p>' if cls else f"<p>{_e(text)}</p>"


def _png(obj) -> bytes:
    """PNG bytes of PNG bytes, a matplotlib Figure or an RGB uint8 array."""
    if isinstance(obj, (bytes, bytearray)):
        return bytes(obj)
    if isinstance(obj, np.ndarray):
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(obj)).save(buf, format="PNG")
        return buf.getvalue()
    from explain import render

    return render.png(obj)


def _img(obj, alt: str, caption: str | None = None, cls: str = "") -> str:
    data = base64.b64encode(_png(obj)).decode("ascii")
    klass = f' class="{cls}"' if cls else ""
    tag = f'<img{klass} src="data:image/png;base64,{data}" alt="{_e(alt)}">'
    cap = f"<figcaption>{_e(caption)}</figcaption>" if caption else ""
    return f"<figure>{tag}{cap}</figure>"


def _thumbnail(image: np.ndarray, max_side: int = PHOTO_MAX_SIDE) -> np.ndarray:
    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image
    from PIL import Image

    scale = max_side / max(h, w)
    return np.asarray(Image.fromarray(image).resize((max(1, round(w * scale)), max(1, round(h * scale))),
                                                    Image.LANCZOS))


def _page(title: str, body: str, subtitle: str = "") -> str:
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{_e(title)}</title>\n'
            f"<style>{CSS}</style>\n</head>\n<body>\n<h1>{_e(title)}</h1>\n"
            f'<p class="meta">{_e(subtitle)}</p>\n{body}\n</body>\n</html>\n')


def _section(title: str, *parts: str) -> str:
    return f"<section>\n<h2>{_e(title)}</h2>\n" + "\n".join(p for p in parts if p) + "\n</section>"


def _progress(progress: Progress | None, fraction: float, message: str) -> None:
    if progress is not None:
        progress(min(max(float(fraction), 0.0), 1.0), message)


# --- provenance -----------------------------------------------------------------------------------------

_SHA_CACHE: dict[tuple, str] = {}


def file_sha256(path) -> str | None:
    """sha256 of a file (cached per path, size and mtime), or None when there is no such file."""
    try:
        p = Path(path)
        st = p.stat()
    except (OSError, TypeError):
        return None
    if not p.is_file():
        return None
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA_CACHE:
        h = hashlib.sha256()
        with p.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _SHA_CACHE[key] = h.hexdigest()
    return _SHA_CACHE[key]


def _dig(d, *keys):
    for k in keys:
        if not isinstance(d, Mapping):
            return None
        d = d.get(k)
    return d


def model_version(detector) -> dict:
    """What identifies a detector in a report: name, architecture, file, its sha256, creation date, input
    size, threshold (and whether it is a saved operating point), calibration and test ROC AUC (metadata)."""
    meta = getattr(detector, "metadata", None) or {}
    path = getattr(detector, "path", None)
    calibration = meta.get("calibration") if isinstance(meta, Mapping) else None
    auc = _dig(meta, "metrics", "test", "overall", "roc_auc")
    return {
        "name": detector.name,
        "architecture": meta.get("architecture") or type(detector).__name__,
        "file": Path(path).name if path else None,
        "sha256": file_sha256(path) if path else None,
        "created": meta.get("created"),
        "input_size": int(detector.input_size),
        "threshold": threshold_of(detector),
        "operating_point": _dig(meta, "operating_point", "threshold") is not None,
        "calibrated": calibration is not None,
        "calibration": calibration.get("method") if isinstance(calibration, Mapping) else None,
        "test_roc_auc": float(auc) if isinstance(auc, (int, float)) else None,
    }


def library_versions() -> dict:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def _versions_table(versions: list[dict]) -> str:
    rows = []
    for v in versions:
        sha = v["sha256"]
        sha_cell = _Raw(f'<code title="{_e(sha)}">{_e(sha[:12])}</code>') if sha else "— (not from a file)"
        threshold = f"{v['threshold']:.3f}" + (" (saved operating point)" if v["operating_point"] else " (default)")
        calibrated = f"yes ({v['calibration']})" if v["calibrated"] and v["calibration"] else v["calibrated"]
        rows.append([v["name"], v["architecture"], v["file"], sha_cell, v["created"], f"{v['input_size']} px",
                     threshold, calibrated, v["test_roc_auc"]])
    return _table(["model", "architecture", "file", "sha256 (first 12)", "created", "input", "threshold",
                   "calibrated", "test ROC AUC"], rows) + _p("sha256 of the model file; hover for all 64 digits.",
                                                              "note")


def _footer(timestamp: str) -> str:
    libs = ", ".join(f"{k} {v}" for k, v in library_versions().items())
    return _section("Provenance", _p(f"Generated {timestamp} by Deepfake Lens. Libraries: {libs}.", "meta"),
                    _p("A verdict is a signal, not proof: the detectors were trained on a few public sources of "
                       "face crops and miss many manipulations.", "note"))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# --- models ---------------------------------------------------------------------------------------------

def _detector(model):
    """A Detector for a name, a path, None (the default) or a Detector itself."""
    if model is None or isinstance(model, (str, Path)):
        from models import load_model

        return load_model(model)
    return model


def _verdict(detector, p_fake: float) -> str:
    fn = getattr(detector, "verdict", None)
    if fn is not None:
        return fn(p_fake)
    from models.detectors.labels import verdict

    return verdict(p_fake, threshold_of(detector))


def _lime_params(lime_params) -> dict:
    params = dict(DEFAULT_LIME)
    if lime_params:
        params.update(dict(lime_params))
    return params


# --- one image ------------------------------------------------------------------------------------------

def image_report(image, *, model=None, models=None, lime_params=None, target: str = "verdict",
                 crop_info: Mapping | None = None, explanations: Mapping | None = None,
                 figures: Mapping | None = None, curves: Mapping | None = None, landmarks=MISSING,
                 photo: np.ndarray | None = None, stability: float | None = None, deletion: bool = True,
                 title: str | None = None, progress: Progress | None = None) -> str:
    """A self-contained HTML report of one face crop ``image`` (HxWx3 uint8 RGB).

    ``model``: the explained model (name, path, Detector; None = the default). ``models``: the models whose
    verdicts are tabulated (names or Detectors; None = every installed model); the explained one comes first.
    ``lime_params``: LIME's parameters (dict or (name, value) pairs; defaults: :data:`DEFAULT_LIME`).
    ``crop_info``: how the crop was made, shown under Parameters (e.g. image, crop mode, face, box).

    Pass what the caller already computed to avoid recomputing it: ``explanations`` ({"lime": ...,
    "gradcam": ...} Explanations for ``model`` on ``image``), ``figures`` (PNG bytes or Figures named as the
    CLI and page name them: lime, gradcam, regions_map, regions_lime, regions_gradcam, deletion_lime,
    deletion_gradcam), ``curves`` ({method: DeletionCurve}), ``landmarks`` (mtcnn's, or None for no face),
    ``stability`` (LIME's top-5 Jaccard across seeds). Anything missing is computed; ``deletion=False``
    skips deletion curves that were not given. ``photo``: the original photo, shown next to the crop.
    """
    from explain import gradcam, render
    from explain import lime as lime_method
    from explain.faithfulness import deletion_curve
    from explain.regions import LABELS, detect_landmarks, summarize
    from models.data.preprocess import model_view

    image = check_image(image)
    timestamp = _now()
    _progress(progress, 0.0, "Loading the models")
    detector = _detector(model)
    if models is None:
        from models import list_models

        models = list_models()
    others = []
    for m in models:
        d = _detector(m)
        if d.name != detector.name and all(d.name != o.name for o in others):
            others.append(d)
    all_models = [detector, *others]

    verdicts = []
    for i, d in enumerate(all_models):
        _progress(progress, 0.1 * i / len(all_models), f"Verdict of {d.name}")
        p = float(d.predict([image])[0])
        verdicts.append((d, p, _verdict(d, p)))
    p_fake = verdicts[0][1]
    resolved = resolve_target(target, p_fake, threshold_of(detector))

    explanations = {k: v for k, v in dict(explanations or {}).items() if k in METHODS}
    figures = dict(figures or {})
    curves = dict(curves or {})
    params = _lime_params(lime_params)
    if "lime" not in explanations:
        def lime_progress(done, total):
            _progress(progress, 0.1 + 0.5 * done / max(total, 1), f"LIME: {done}/{total} perturbed images scored")

        explanations["lime"] = lime_method.explain(detector, image, target=target, progress=lime_progress,
                                                   **params)
    if _gradcam_applies(detector) and "gradcam" not in explanations:
        _progress(progress, 0.6, "Grad-CAM")
        explanations["gradcam"] = gradcam.explain(detector, image, target=target)
    explanations = {m: explanations[m] for m in METHODS if m in explanations}
    if landmarks is MISSING:
        _progress(progress, 0.65, "Finding facial landmarks (mtcnn)")
        landmarks = detect_landmarks(image)
    if deletion:
        for i, (m, e) in enumerate(explanations.items()):
            if m in curves or f"deletion_{m}" in figures:
                continue
            _progress(progress, 0.7 + 0.2 * i / len(explanations), f"Deletion curve for {m}")
            curves[m] = deletion_curve(detector, image, e, seed=int(params.get("seed", 0)),
                                       n_segments=int(e.params.get("n_segments", params.get("n_segments", 100))))
    _progress(progress, 0.9, "Writing the report")

    def fig(name, make, alt, caption=None):
        return _img(figures[name] if name in figures else make(), alt, caption)

    # the image
    crop_info = dict(crop_info or {})
    source = crop_info.get("image")
    shown = []
    if photo is not None:
        shown.append(_img(_thumbnail(check_image(photo)), "original photo", "The photo"))
    shown.append(_img(image, "face crop", f"The crop explained ({image.shape[1]}x{image.shape[0]} px)", "pixel"))
    shown.append(_img(model_view(image, detector.input_size), "model input",
                      f"What {detector.name} sees: {detector.input_size}x{detector.input_size} px", "pixel"))
    lead = (f"{detector.name} calls this face {verdicts[0][2]} "
            f"(P(fake) {p_fake:.3f}, threshold {threshold_of(detector):.3f}); the explanations show the evidence "
            f"for '{resolved}'.")
    s_image = _section("Image", f'<div class="row">{"".join(shown)}</div>', _p(lead))

    # verdicts of every model
    rows = [[_Raw(f"<b>{_e(d.name)}</b> (explained)") if d is detector else d.name, p, _badge(v), threshold_of(d)]
            for d, p, v in verdicts]
    s_verdicts = _section("Verdicts of all models", _table(["model", "P(fake)", "verdict", "threshold"], rows),
                          _p("P(fake) is calibrated; each model's verdict uses its own threshold.", "note"))

    # LIME
    le = explanations["lime"]
    lime_facts = {"P(fake)": le.p_fake, "evidence for": le.target, "superpixels": le.extras.get("n_segments_actual"),
                  "local fit R²": le.extras.get("score"), "top-5 superpixels (ids)": le.extras.get("top_positive"),
                  "seconds": le.seconds}
    warn = ""
    if stability is not None:
        lime_facts["top-5 agreement across 3 seeds (Jaccard)"] = float(stability)
        if stability < 0.5:
            warn = ('<p class="warn">Unstable: the top-5 superpixels change with the random seed. Do not read '
                    "much into this LIME mask; raise the number of samples.</p>")
    s_lime = _section("LIME", fig("lime", lambda: render.lime_panels(le, image, stability=stability), "LIME panels"),
                      _kv(lime_facts), warn)

    # Grad-CAM
    if "gradcam" in explanations:
        ge = explanations["gradcam"]
        s_cam = _section("Grad-CAM", fig("gradcam", lambda: render.gradcam_overlay(ge, image), "Grad-CAM overlay"),
                         _p(f"Layer {ge.params.get('layer')}, {ge.params.get('variant', 'gradcam')}; evidence for "
                            f"'{ge.target}'.", "note"))
    else:
        s_cam = _section("Grad-CAM", _p(f"Grad-CAM does not apply to {detector.name}: it needs a convolutional "
                                        "network's gradients (this model has no conv layers). LIME does apply.",
                                        "note"))

    # regions
    caveat = _p("Regions come from mtcnn landmarks. The ranking shows what the model responds to; it does not "
                "locate a manipulation (on photoshopped faces with known edits, no model and method ranked an "
                "edited region first more often than chance).", "note")
    if landmarks is None:
        s_regions = _section("Facial regions", _p("No face found in the crop: the region summary needs facial "
                                                  "landmarks, so only the pixel-level explanations are shown."),
                             caveat)
    else:
        summaries = {m: summarize(e, landmarks=landmarks) for m, e in explanations.items()}
        first = next(iter(summaries.values()))
        parts = [fig("regions_map", lambda: render.region_overlay(first, image), "facial regions")]
        parts += [fig(f"regions_{m}", lambda s=s, m=m: render.region_bars(s, title=f"{m}: what drove '{resolved}'"),
                      f"regions {m}") for m, s in summaries.items()]
        tables = [f"<div><h3>{_e(m)}</h3>" + _table(["region", "mean evidence", "share of positive evidence"],
                                               [[LABELS[r], s.regions[r]["mean"], s.regions[r]["share"]]
                                                for r in s.ranking]) + "</div>" for m, s in summaries.items()]
        s_regions = _section("Facial regions", f'<div class="row">{"".join(parts)}</div>',
                             f'<div class="row">{"".join(tables)}</div>', caveat)

    # deletion curves
    parts, lines = [], []
    for m in explanations:
        if m in curves:
            c = curves[m]
            parts.append(fig(f"deletion_{m}", lambda c=c: render.deletion_plot(c), f"deletion curve {m}"))
            lines.append(f"{m}: area {c.auc_explanation:.3f} vs random {c.auc_random:.3f}: "
                         + ("faster than random, faithful" if c.useful else "NOT faster than random, do not trust it"))
        elif f"deletion_{m}" in figures:
            parts.append(_img(figures[f"deletion_{m}"], f"deletion curve {m}"))
    if parts:
        s_deletion = _section("Faithfulness: deletion curves", f'<div class="row">{"".join(parts)}</div>',
                              *[_p(line) for line in lines],
                              _p("Superpixels are removed most important first; a faithful explanation makes "
                                 "P(target) fall faster than removing them in random order.", "note"))
    else:
        s_deletion = _section("Faithfulness: deletion curves", _p("Deletion curves were not computed.", "note"))

    # parameters
    settings = {"target asked": target, "target explained": resolved}
    settings.update({f"LIME {k}": _param(v) for k, v in le.params.items() if k != "batch_size"})
    if "gradcam" in explanations:
        settings.update({f"Grad-CAM {k}": _param(v) for k, v in explanations["gradcam"].params.items()})
    for m, c in curves.items():
        if m in explanations:
            settings[f"deletion curve ({m})"] = ", ".join(f"{k} {_param(v)}" for k, v in c.params.items()
                                                           if k != "batch_size")
    settings.update({f"crop: {k}" if k != "image" else "image": _param(v) for k, v in crop_info.items()})
    s_params = _section("Parameters", _kv(settings))
    s_models = _section("Model versions", _versions_table([model_version(d) for d in all_models]))

    name = f": {source}" if source else ""
    body = "\n".join([s_image, s_verdicts, s_lime, s_cam, s_regions, s_deletion, s_params, s_models,
                      _footer(timestamp)])
    _progress(progress, 1.0, "Report ready")
    return _page(title or f"Deepfake Lens report{name}", body,
                 f"Generated {timestamp} · explained with {detector.name}")


# --- a batch --------------------------------------------------------------------------------------------

def _number(value) -> float | None:
    if value is None:
        return None
    try:
        x = float(str(value).strip()) if isinstance(value, str) else float(value)
    except ValueError:
        return None
    return None if math.isnan(x) else x


def _text(value) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    s = str(value).strip()
    return s or None


def normalize_row(row: Mapping) -> dict:
    """A batch row with numbers as numbers (CSV strings accepted) and empty fields as None. ``row``: a dict
    (e.g. from csv.DictReader) or an object with ``to_csv_dict()`` (models.batch.Row)."""
    if not isinstance(row, Mapping) and hasattr(row, "to_csv_dict"):
        row = row.to_csv_dict()
    out = dict(row)
    out["p_fake"] = _number(row.get("p_fake"))
    out["error"] = _text(row.get("error"))
    face = _number(row.get("face"))
    out["face"] = int(face) if face is not None else _text(row.get("face"))
    for key in ("box_x", "box_y", "box_w", "box_h"):
        if key in row:
            v = _number(row.get(key))
            out[key] = None if v is None else int(v)
    for key in ("path", "verdict", "model", "crop"):
        out[key] = _text(row.get(key))
    return out


def _histogram(values, threshold: float | None):
    from models.analysis.plots import histogram_figure

    return histogram_figure(values, threshold)


def _gradcam_applies(detector) -> bool:
    """Grad-CAM needs a Keras model with at least one conv layer."""
    from explain import gradcam

    if not getattr(detector, "supports_gradcam", True) or getattr(detector, "keras_model", None) is None:
        return False
    return bool(gradcam.conv_layers(detector))


def batch_report(rows: Iterable[Mapping], load: Callable[[dict], np.ndarray], *, model=None, top_n: int = 5,
                 lime_params=None, title: str | None = None, progress: Progress | None = None) -> str:
    """A self-contained HTML report of a scored batch: a summary, then the ``top_n`` most suspicious crops explained.

    ``rows``: the batch's rows (dicts with at least path, face, p_fake, verdict, model, error; CSV strings
    are fine, an empty error means none; models.batch.Row objects too). ``load(row)`` returns the RGB uint8 crop to explain for a row (it
    may raise: the row then shows the error). ``model``: the model that explains (name, path or Detector;
    None = the batch's most common model, else the default). The top crops are the scored rows with the
    highest P(fake); each gets LIME panels (``lime_params``) and, for neural networks, Grad-CAM.
    """
    from explain import gradcam, render
    from explain import lime as lime_method

    timestamp = _now()
    rows = [normalize_row(r) for r in rows]
    scored = [r for r in rows if r["error"] is None and r["p_fake"] is not None]
    errors = [r for r in rows if r["error"] is not None]
    unscored = len(rows) - len(scored) - len(errors)
    n_images = len({r["path"] for r in rows})
    params = _lime_params(lime_params)

    detector = None
    if scored:
        if model is None:
            from models import list_models

            installed = set(list_models())
            counts = Counter(r["model"] for r in scored if r["model"] in installed)
            model = counts.most_common(1)[0][0] if counts else None
        detector = _detector(model)

    facts = {"images": n_images, "rows (one per crop)": len(rows), "crops scored": len(scored),
             "errors": len(errors)}
    if unscored:
        facts["rows without a score"] = unscored
    for kind, n in sorted(Counter(r["crop"] for r in scored if r["crop"]).items()):
        facts[f"crops of kind '{kind}'"] = n
    for verdict, n in sorted(Counter(r["verdict"] or "?" for r in scored).items()):
        facts[f"verdict {verdict}"] = n
    batch_models = sorted(Counter(r["model"] for r in scored if r["model"]).items())
    if batch_models:
        facts["scored by"] = ", ".join(f"{m} ({n})" for m, n in batch_models)

    summary = [_kv(facts)]
    if not rows:
        summary.append(_p("This batch is empty: there is nothing to summarise or explain."))
    elif not scored:
        summary.append(_p(f"No crop of this batch could be scored: {len(errors)} of {len(rows)} rows are errors."))
    else:
        values = [r["p_fake"] for r in scored]
        summary.append(_img(_histogram(values, threshold_of(detector)), "P(fake) histogram"))
        summary.append(_p(f"Median P(fake) {float(np.median(values)):.3f}; highest {max(values):.3f}.", "note"))
    if errors:
        first = errors[:5]
        summary.append(f"<h3>Errors ({len(errors)})</h3>" + _table(["path", "error"],
                                                                    [[r["path"], r["error"]] for r in first]))
        if len(errors) > len(first):
            summary.append(_p(f"… and {len(errors) - len(first)} more.", "note"))
    sections = [_section("Summary", *summary)]

    top = sorted(scored, key=lambda r: -r["p_fake"])[: max(int(top_n), 0)]
    items = []
    for i, row in enumerate(top):
        _progress(progress, i / max(len(top), 1), f"Explaining {i + 1} of {len(top)}: {row['path']}")
        face = f", face {row['face']}" if row["face"] not in (None, "") else ""
        head = (f'<div class="item"><h3>{i + 1}. {_e(row["path"])}{_e(face)}</h3>'
                f"<p>Batch: P(fake) <b>{row['p_fake']:.3f}</b> {_badge(row['verdict'] or '?')} by "
                f"{_e(row['model'] or '?')}</p>")
        try:
            crop = check_image(load(row))
        except Exception as exc:  # the caller's loader: any failure is shown, the report goes on
            items.append(head + _p(f"Could not load this crop: {type(exc).__name__}: {exc}", "warn") + "</div>")
            continue

        def lime_progress(done, total, i=i):
            _progress(progress, (i + 0.8 * done / max(total, 1)) / len(top), f"LIME {i + 1} of {len(top)}: "
                      f"{done}/{total}")

        e = lime_method.explain(detector, crop, target="verdict", progress=lime_progress, **params)
        parts = [_img(crop, "crop", f"{crop.shape[1]}x{crop.shape[0]} px", "pixel"),
                 _img(render.lime_panels(e, crop), "LIME panels")]
        note = f"{detector.name}: P(fake) {e.p_fake:.3f}, {_verdict(detector, e.p_fake)}; evidence for '{e.target}'."
        if _gradcam_applies(detector):
            parts.append(_img(render.gradcam_overlay(gradcam.explain(detector, crop), crop), "Grad-CAM"))
        else:
            note += f" Grad-CAM does not apply to {detector.name} (no conv layers to take gradients at)."
        items.append(head + f'<div class="row">{"".join(parts)}</div>' + _p(note, "note") + "</div>")
    if top:
        sections.append(_section(f"Top {len(top)} most suspicious crops (highest P(fake))", *items))
    settings = {"top N": top_n}
    if detector is not None:
        settings["explained with"] = detector.name
        settings.update({f"LIME {k}": _param(v) for k, v in params.items()})
    sections.append(_section("Parameters", _kv(settings)))
    if detector is not None:
        sections.append(_section("Model version", _versions_table([model_version(detector)])))
    sections.append(_footer(timestamp))
    _progress(progress, 1.0, "Report ready")
    return _page(title or "Deepfake Lens batch report", "\n".join(sections),
                 f"Generated {timestamp} · {n_images} images, {len(scored)} crops scored, {len(errors)} errors")

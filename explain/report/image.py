"""The report of one face crop: every model's verdict, the Summary (:mod:`explain.summary`: region Shapley values
as a waterfall, each method's top region and whether it is trusted), then the explained model's LIME, Grad-CAM,
facial regions and deletion curves (from :func:`explain.pipeline.run`), the parameters and the model versions."""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping

import numpy as np

from explain import pipeline, render
from explain.base import check_image
from explain.metrics import stability as stability_metric
from explain.params import DEFAULTS, Params
from explain.regions import REGION_NAMES
from explain.report.html import (
    Progress,
    Raw,
    badge,
    esc,
    img,
    kv,
    now,
    page,
    para,
    param,
    report_progress,
    section,
    table,
    thumbnail,
)
from explain.report.provenance import detector_of, footer, model_version, versions_table
from explain.summary import Summary, summarize
from models.data.preprocess import model_view
from models.detectors.labels import verdict

METHODS = ("shapley", "lime", "gradcam", "manipulation")  # the explanations a report shows (the map where it applies)

Figure = Callable[..., str]  # fig(name, make, alt, caption=None): a given figure, else make()'s, as <figure>


def image_report(image, *, model=None, models=None, params: Params = DEFAULTS, cache: pipeline.Cache | None = None,
                 crop_info: Mapping | None = None, figures: Mapping | None = None, photo: np.ndarray | None = None,
                 title: str | None = None, progress: Progress | None = None,
                 sanity_failures: Mapping[str, str] | None = None, unsure: bool | None = None,
                 provenance: Mapping | None = None) -> str:
    """A self-contained HTML report of one face crop ``image`` (HxWx3 uint8 RGB).

    ``model``: the explained model (name, path, Detector; None = the default). ``models``: the models whose
    verdicts are tabulated (names or Detectors; None = every installed model); the explained one comes first.
    ``params``: the explanation's parameters (``params.deletion``: deletion curves, ``params.stability``:
    LIME's agreement across seeds). ``crop_info``: how the crop was made, shown under Parameters (e.g. image,
    crop mode, face, box). The explanations come from :func:`explain.pipeline.run`; pass the caller's
    ``cache`` (the one its own ``pipeline.run`` used for this model and image) so that nothing is computed
    twice, and ``figures`` (PNG bytes or Figures named as the CLI and page name them: lime, gradcam,
    regions_map, regions_lime, regions_gradcam, deletion_lime, deletion_gradcam) to reuse them.
    ``photo``: the original photo, shown next to the crop. ``sanity_failures``: method -> why it fails the
    model-randomisation check (greyed in the Summary, as on the page). ``unsure``: the verdict's "unsure" flag
    (None: computed from the spread over views). ``provenance``: what the file declares about its origin
    (models.data.provenance's dict), shown beside the verdict, never mixed into it.
    """
    image = check_image(image)
    timestamp = now()
    report_progress(progress, 0.0, "Loading the models")
    detector = detector_of(model)
    all_models = _models(detector, models)
    verdicts = _verdicts(all_models, image, progress)
    methods = [m for m in METHODS if m != "manipulation" or pipeline.applies(detector, m)]
    bundle = pipeline.run(detector, image, methods=(*methods, "regions"), params=params, cache=cache,
                          progress=lambda f, m: report_progress(progress, 0.1 + 0.8 * f, m))
    if unsure is None:
        unsure = bool(detector.unsure(bundle.p_fake, detector.views_spread([image], p_fake=[bundle.p_fake])[0]))
    summary = summarize(bundle, sanity_failures=dict(sanity_failures or {}), unsure=unsure)
    report_progress(progress, 0.9, "Writing the report")
    figures = dict(figures or {})

    def fig(name, make, alt, caption=None):
        return img(figures[name] if name in figures else make(), alt, caption)

    crop_info = dict(crop_info or {})
    source = crop_info.get("image")
    body = "\n".join([
        _image_section(image, photo, detector, bundle),
        _verdicts_section(verdicts, detector),
        provenance_section(provenance, detector.verdict(bundle.p_fake)),
        _summary_section(summary, fig),
        _lime_section(bundle, image, fig),
        _gradcam_section(bundle, image, detector, fig),
        _regions_section(bundle, image, fig),
        _deletion_section(bundle, figures, fig),
        _params_section(bundle, crop_info),
        section("Model versions", versions_table([model_version(d) for d in all_models])),
        footer(timestamp),
    ])
    report_progress(progress, 1.0, "Report ready")
    name = f": {source}" if source else ""
    return page(title or f"Deepfake Lens report{name}", body,
                f"Generated {timestamp} · explained with {detector.name}")


def provenance_section(provenance: Mapping | None, verdict: str) -> str:
    """The file's provenance beside the verdict: its summary, any conflict with the verdict, unreadable parts."""
    from models.data.provenance import conflict

    if provenance is None:
        return section("Provenance", para("Not available: this image was not read from a file (a built-in sample "
                                          "or pixels handed over).", "note"))
    parts = [para(provenance.get("summary", ""))]
    if disagree := conflict(dict(provenance), verdict):
        parts.append(para(disagree, "warn"))
    parts += [para(n, "warn") for n in provenance.get("notes", [])]
    parts.append(para("What a file declares about itself can be stripped or forged; a valid signature shows who "
                      "signed, not that the content is true. Missing metadata is unknown, not evidence.", "note"))
    return section("Provenance", *parts)


def _models(detector, models) -> list:
    """The explained detector first, then the other models (each once)."""
    if models is None:
        from models import list_models

        models = list_models()
    others = []
    for m in models:
        d = detector_of(m)
        if d.name != detector.name and all(d.name != o.name for o in others):
            others.append(d)
    return [detector, *others]


def _verdicts(all_models: list, image: np.ndarray, progress: Progress | None) -> list[tuple]:
    out = []
    for i, d in enumerate(all_models):
        report_progress(progress, 0.1 * i / len(all_models), f"Verdict of {d.name}")
        p = float(d.predict([image])[0])
        out.append((d, p, verdict(p, d.threshold)))
    return out


def _image_section(image, photo, detector, bundle: pipeline.Bundle) -> str:
    shown = []
    if photo is not None:
        shown.append(img(thumbnail(check_image(photo)), "original photo", "The photo"))
    shown.append(img(image, "face crop", f"The crop explained ({image.shape[1]}x{image.shape[0]} px)", "pixel"))
    shown.append(img(model_view(image, detector.input_size), "model input",
                     f"What {detector.name} sees: {detector.input_size}x{detector.input_size} px", "pixel"))
    lead = (f"{detector.name} calls this face {bundle.verdict} "
            f"(P(fake) {bundle.p_fake:.3f}, threshold {bundle.threshold:.3f}); the explanations show the evidence "
            f"for '{bundle.target}'.")
    return section("Image", f'<div class="row">{"".join(shown)}</div>', para(lead))


def _verdicts_section(verdicts: list[tuple], detector) -> str:
    rows = [[Raw(f"<b>{esc(d.name)}</b> (explained)") if d is detector else d.name, p, badge(v), float(d.threshold)]
            for d, p, v in verdicts]
    return section("Verdicts of all models", table(["model", "P(fake)", "verdict", "threshold"], rows),
                   para("P(fake) is calibrated; each model's verdict uses its own threshold.", "note"))


def _summary_section(summary: Summary, fig: Figure) -> str:
    """The headline, the waterfall of region Shapley values and the methods (untrusted ones greyed, with why)."""
    rows = []
    for r in summary.methods:
        cells = [r.name, REGION_NAMES.get(r.top_inner, "none"), REGION_NAMES.get(r.top_region, "none"),
                 r.faithfulness or "—", "yes" if r.trusted else f"no: {r.reason}"]
        rows.append([c if r.trusted else Raw(f'<span class="untrusted">{esc(c)}</span>') for c in cells])
    parts = [para(summary.headline)]
    if summary.waterfall:
        parts.append(fig("waterfall", lambda: render.waterfall(summary), "region Shapley values waterfall"))
        parts.append(para("Region Shapley values are exact for this model: each region's signed share of P(fake), "
                          f"adding up from {summary.base:.3f} (every region removed) to {summary.p_fake:.3f}.", "note"))
    parts.append(table(["method", "top region (eyes, nose, mouth)", "top region overall", "faithfulness", "trusted"],
                       rows))
    parts.append(para("A method is trusted only when its deletion curve beats random deletion and it passes the "
                      "model-randomisation check; untrusted methods are greyed and never counted as agreeing.", "note"))
    parts += [para(line, "note") for line in summary.not_applicable.values()]
    return section("Summary", *parts)


def _lime_section(bundle: pipeline.Bundle, image, fig: Figure) -> str:
    le = bundle.explanations["lime"]
    stability = bundle.stability["mean_jaccard"] if bundle.stability else None
    facts = {"P(fake)": le.p_fake, "evidence for": le.target, "superpixels": le.extras.get("n_segments_actual"),
             "local fit R²": le.extras.get("score"), "top-5 superpixels (ids)": le.extras.get("top_positive"),
             "seconds": le.seconds}
    warn = ""
    if stability is not None:
        facts["top-5 agreement across 3 seeds (Jaccard)"] = float(stability)
        advice = stability_metric.advice(float(stability), bundle.params)
        if advice:
            warn = f'<p class="warn">{html.escape(advice)}</p>'
    return section("LIME", fig("lime", lambda: render.lime_panels(le, image, stability=stability), "LIME panels"),
                   kv(facts), warn)


def _gradcam_section(bundle: pipeline.Bundle, image, detector, fig: Figure) -> str:
    if "gradcam" not in bundle.explanations:
        return section("Grad-CAM", para(f"Grad-CAM does not apply to {detector.name}: it needs a convolutional "
                                        "network's gradients (this model has no conv layers). LIME does apply.",
                                        "note"))
    ge = bundle.explanations["gradcam"]
    return section("Grad-CAM", fig("gradcam", lambda: render.gradcam_overlay(ge, image), "Grad-CAM overlay"),
                   para(f"Layer {ge.params.get('layer')}, {ge.params.get('variant', 'gradcam')}; evidence for "
                        f"'{ge.target}'.", "note"))


def _regions_section(bundle: pipeline.Bundle, image, fig: Figure) -> str:
    caveat = para("Regions come from mtcnn landmarks; left and right are as the viewer sees the image. The region "
                  "Shapley values (Summary) are exact for the model: they show what it responds to. Whether a "
                  "method's top region is where a face was edited is measured against ground truth in "
                  "docs/BENCHMARKS.md (\"Region ground truth\").", "note")
    if not bundle.face_found:
        return section("Facial regions", para("No face found in the crop: the region summary needs facial "
                                               "landmarks, so only the pixel-level explanations are shown."), caveat)
    summaries = bundle.regions
    first = next(iter(summaries.values()))
    parts = [fig("regions_map", lambda: render.region_overlay(first, image), "facial regions")]
    parts += [fig(f"regions_{m}", lambda s=s, m=m: render.region_bars(s, title=f"{m}: what drove '{bundle.target}'"),
                  f"regions {m}") for m, s in summaries.items()]
    tables = [f"<div><h3>{esc(m)}</h3>" + table(["region", "mean evidence", "share of positive evidence"],
                                                [[REGION_NAMES[r], s.regions[r]["mean"], s.regions[r]["share"]]
                                                 for r in s.ranking]) + "</div>" for m, s in summaries.items()]
    return section("Facial regions", f'<div class="row">{"".join(parts)}</div>',
                   f'<div class="row">{"".join(tables)}</div>', caveat)


def _deletion_section(bundle: pipeline.Bundle, figures: Mapping, fig: Figure) -> str:
    parts, lines = [], []
    for m in bundle.attributions:
        if m in bundle.deletion:
            c = bundle.deletion[m]
            parts.append(fig(f"deletion_{m}", lambda c=c: render.deletion_plot(c), f"deletion curve {m}"))
            lines.append(f"{m}: area {c.auc_explanation:.3f} vs random {c.auc_random:.3f}: "
                         + ("faster than random, faithful" if c.useful else "NOT faster than random, do not trust it"))
        elif f"deletion_{m}" in figures:
            parts.append(img(figures[f"deletion_{m}"], f"deletion curve {m}"))
    if not parts:
        return section("Faithfulness: deletion curves", para("Deletion curves were not computed.", "note"))
    return section("Faithfulness: deletion curves", f'<div class="row">{"".join(parts)}</div>',
                   *[para(line) for line in lines],
                   para("Superpixels are removed most important first; a faithful explanation makes "
                        "P(target) fall faster than removing them in random order.", "note"))


def _params_section(bundle: pipeline.Bundle, crop_info: Mapping) -> str:
    settings = {"target asked": bundle.params.target, "target explained": bundle.target}
    settings.update({f"LIME {k}": param(v) for k, v in bundle.explanations["lime"].params.items()
                     if k != "batch_size"})
    if "gradcam" in bundle.explanations:
        settings.update({f"Grad-CAM {k}": param(v) for k, v in bundle.explanations["gradcam"].params.items()})
    for m, c in bundle.deletion.items():
        settings[f"deletion curve ({m})"] = ", ".join(f"{k} {param(v)}" for k, v in c.params.items()
                                                       if k != "batch_size")
    settings.update({f"crop: {k}" if k != "image" else "image": param(v) for k, v in crop_info.items()})
    return section("Parameters", kv(settings))

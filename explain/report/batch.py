"""The report of a scored batch: a summary (counts, P(fake) histogram, errors), then the ``top_n`` most
suspicious crops explained (LIME panels and, for neural networks, Grad-CAM, from :func:`explain.pipeline.run`)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace

import numpy as np

from explain import pipeline, render
from explain.base import check_image
from explain.params import DEFAULTS, Params
from explain.report.html import Progress, badge, esc, img, kv, now, page, para, param, report_progress, section, table
from explain.report.provenance import detector_of, footer, model_version, versions_table
from models.detectors.labels import verdict


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
    for key in ("path", "verdict", "model", "crop", "provenance"):
        out[key] = _text(row.get(key))
    return out


def _histogram(values, threshold: float | None):
    from models.analysis.plots import histogram_figure

    return histogram_figure(values, threshold)


def batch_report(rows: Iterable[Mapping], load: Callable[[dict], np.ndarray], *, model=None, top_n: int = 5,
                 params: Params = DEFAULTS, title: str | None = None, progress: Progress | None = None) -> str:
    """A self-contained HTML report of a scored batch: a summary, then the ``top_n`` most suspicious crops explained.

    ``rows``: the batch's rows (dicts with at least path, face, p_fake, verdict, model, error; CSV strings
    are fine, an empty error means none; models.batch.Row objects too). ``load(row)`` returns the RGB uint8 crop
    to explain for a row (it may raise: the row then shows the error). ``model``: the model that explains (name,
    path or Detector; None = the batch's most common model, else the default). The top crops are the scored
    rows with the highest P(fake); each gets LIME panels (``params``, evidence for the verdict) and, for neural
    networks, Grad-CAM.
    """
    timestamp = now()
    rows = [normalize_row(r) for r in rows]
    scored = [r for r in rows if r["error"] is None and r["p_fake"] is not None]
    errors = [r for r in rows if r["error"] is not None]
    n_images = len({r["path"] for r in rows})
    detector = _explaining_detector(model, scored) if scored else None
    sections = [section("Summary", *_summary(rows, scored, errors, detector))]
    top = sorted(scored, key=lambda r: -r["p_fake"])[: max(int(top_n), 0)]
    if top:
        items = _explained(top, load, detector, params, progress)
        sections.append(section(f"Top {len(top)} most suspicious crops (highest P(fake))", *items))
    settings = {"top N": top_n}
    if detector is not None:
        settings["explained with"] = detector.name
        settings.update({f"LIME {k}": param(v) for k, v in params.lime_kwargs().items()})
    sections.append(section("Parameters", kv(settings)))
    if detector is not None:
        sections.append(section("Model version", versions_table([model_version(detector)])))
    sections.append(footer(timestamp))
    report_progress(progress, 1.0, "Report ready")
    return page(title or "Deepfake Lens batch report", "\n".join(sections),
                f"Generated {timestamp} · {n_images} images, {len(scored)} crops scored, {len(errors)} errors")


def _explaining_detector(model, scored: list[dict]):
    """``model``, else the model that scored most of the batch (when installed), else the default."""
    if model is None:
        from models import list_models

        installed = set(list_models())
        counts = Counter(r["model"] for r in scored if r["model"] in installed)
        model = counts.most_common(1)[0][0] if counts else None
    return detector_of(model)


def _facts(rows: list[dict], scored: list[dict], errors: list[dict]) -> dict:
    facts = {"images": len({r["path"] for r in rows}), "rows (one per crop)": len(rows),
             "crops scored": len(scored), "errors": len(errors)}
    unscored = len(rows) - len(scored) - len(errors)
    if unscored:
        facts["rows without a score"] = unscored
    for kind, n in sorted(Counter(r["crop"] for r in scored if r["crop"]).items()):
        facts[f"crops of kind '{kind}'"] = n
    for v, n in sorted(Counter(r["verdict"] or "?" for r in scored).items()):
        facts[f"verdict {v}"] = n
    batch_models = sorted(Counter(r["model"] for r in scored if r["model"]).items())
    if batch_models:
        facts["scored by"] = ", ".join(f"{m} ({n})" for m, n in batch_models)
    return facts


def _summary(rows: list[dict], scored: list[dict], errors: list[dict], detector) -> list[str]:
    summary = [kv(_facts(rows, scored, errors))]
    if not rows:
        summary.append(para("This batch is empty: there is nothing to summarise or explain."))
    elif not scored:
        summary.append(para(f"No crop of this batch could be scored: {len(errors)} of {len(rows)} rows are errors."))
    else:
        values = [r["p_fake"] for r in scored]
        summary.append(img(_histogram(values, float(detector.threshold)), "P(fake) histogram"))
        summary.append(para(f"Median P(fake) {float(np.median(values)):.3f}; highest {max(values):.3f}.", "note"))
    if errors:
        first = errors[:5]
        summary.append(f"<h3>Errors ({len(errors)})</h3>" + table(["path", "error"],
                                                                   [[r["path"], r["error"]] for r in first]))
        if len(errors) > len(first):
            summary.append(para(f"… and {len(errors) - len(first)} more.", "note"))
    return summary


def _explained(top: list[dict], load, detector, params: Params, progress: Progress | None) -> list[str]:
    """One block per top row: the batch's verdict, the crop, its LIME panels and Grad-CAM (when it applies)."""
    params = replace(params, target="verdict", deletion=False, stability=False)
    items = []
    for i, row in enumerate(top):
        report_progress(progress, i / max(len(top), 1), f"Explaining {i + 1} of {len(top)}: {row['path']}")
        face = f", face {row['face']}" if row["face"] not in (None, "") else ""
        head = (f'<div class="item"><h3>{i + 1}. {esc(row["path"])}{esc(face)}</h3>'
                f"<p>Batch: P(fake) <b>{row['p_fake']:.3f}</b> {badge(row['verdict'] or '?')} by "
                f"{esc(row['model'] or '?')}</p>"
                + (para(f"Provenance: {row['provenance']}", "note") if row.get("provenance") else ""))
        try:
            crop = check_image(load(row))
        except Exception as exc:  # the caller's loader: any failure is shown, the report goes on
            items.append(head + para(f"Could not load this crop: {type(exc).__name__}: {exc}", "warn") + "</div>")
            continue

        def step(fraction, message, i=i):
            report_progress(progress, (i + 0.8 * fraction) / len(top), f"{i + 1} of {len(top)}: {message}")

        bundle = pipeline.run(detector, crop, methods=("lime", "gradcam"), params=params, progress=step)
        items.append(head + explained_crop(crop, bundle, detector) + "</div>")
    return items


def explained_crop(crop: np.ndarray, bundle: pipeline.Bundle, detector) -> str:
    e = bundle.explanations["lime"]
    parts = [img(crop, "crop", f"{crop.shape[1]}x{crop.shape[0]} px", "pixel"),
             img(render.lime_panels(e, crop), "LIME panels")]
    note = (f"{detector.name}: P(fake) {e.p_fake:.3f}, {verdict(e.p_fake, detector.threshold)}; "
            f"evidence for '{e.target}'.")
    if "gradcam" in bundle.explanations:
        parts.append(img(render.gradcam_overlay(bundle.explanations["gradcam"], crop), "Grad-CAM"))
    else:
        note += f" Grad-CAM does not apply to {detector.name} (no conv layers to take gradients at)."
    return f'<div class="row">{"".join(parts)}</div>' + para(note, "note")

"""The report of a scored clip: the verdict and its reason, the tracks, P(fake) over time per track, then the
``top_n`` most suspicious sampled faces explained (LIME panels and, for neural networks, Grad-CAM, from
:func:`explain.pipeline.run`, as the batch report does for its crops)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from explain import pipeline
from explain.params import DEFAULTS, Params
from explain.report.batch import explained_crop
from explain.report.html import Progress, badge, esc, img, kv, now, page, para, param, report_progress, section, table
from explain.report.provenance import detector_of, footer, model_version, versions_table
from models.analysis import video as view

TRUST = ("The detectors were trained on still face crops (JPEG photos), never on video: they see one frame at a "
         "time and cannot use what gives many video fakes away (flicker, lips out of sync, faces that jump). Read a "
         "video verdict as a screening hint, weaker than a verdict on a photo, and look at the frames below.")


def timeline_figure(result, detector, marks: list[tuple[float, float]] | None = None):
    """The clip's P(fake) per track over time, with the threshold and the detector's "unsure" band."""
    from models.analysis.plots import timeline_figure as figure

    epsilon = float(detector.unsure_settings["epsilon"]) if hasattr(detector, "unsure_settings") else 0.0
    return figure(view.timeline_tracks(result), float(result.threshold), epsilon, result.duration_s, marks)


def video_report(result, *, model=None, top_n: int = 4, params: Params = DEFAULTS, title: str | None = None,
                 progress: Progress | None = None) -> str:
    """A self-contained HTML report of one scored clip (a models.video.score.VideoResult).

    ``model``: the detector that scored it (name, path or Detector; None = the default). The top faces are the
    sampled faces with the highest P(fake); their crops must have been kept (``score_video(keep_crops=True)``),
    else the section says so. Each gets LIME panels (``params``, evidence for the verdict) and Grad-CAM.
    """
    timestamp = now()
    detector = detector_of(model)
    sections = [section("Summary", *_summary(result, detector))]
    top = result.top_frames(top_n) if result.tracks else []
    if top:
        sections.append(section(f"Top {len(top)} most suspicious sampled faces (highest P(fake))",
                                *_explained(top, detector, params, progress)))
    settings = {"frames sampled": result.frames_sampled, "top N": top_n, "explained with": detector.name}
    settings.update({f"LIME {k}": param(v) for k, v in params.lime_kwargs().items()})
    sections.append(section("Parameters", kv(settings)))
    sections.append(section("Model version", versions_table([model_version(detector)])))
    sections.append(footer(timestamp))
    report_progress(progress, 1.0, "Report ready")
    return page(title or f"Deepfake Lens video report: {result.path}", "\n".join(sections),
                f"Generated {timestamp} · {result.path}")


def _summary(result, detector) -> list[str]:
    facts = {"clip": result.path, "verdict": badge(result.verdict) if result.verdict in ("fake", "real")
             else (result.verdict or "error"),
             "P(fake) (highest track)": "–" if result.p_fake is None else f"{result.p_fake:.3f}",
             "duration (s)": "–" if result.duration_s is None else f"{result.duration_s:.2f}",
             "frames per second": "–" if result.fps is None else f"{result.fps:.2f}",
             "frames sampled": result.frames_sampled, "size": f"{result.width}x{result.height}",
             "scored by": detector.name, "threshold": f"{result.threshold:.2f}"}
    parts = [kv(facts), para(view.headline(result)), para(TRUST, "note")]
    if result.error:
        return [kv({"clip": result.path}), para(result.error, "warn")]
    parts += [para(w, "warn") for w in result.warnings]
    rows = view.track_rows(result)
    if rows:
        parts.append(table(list(rows[0]), [[r[k] if k != "P(fake)" else f"{r[k]:.3f}" for k in r] for r in rows]))
        parts.append(img(timeline_figure(result, detector), "P(fake) over time per track"))
    return parts


def _explained(top, detector, params: Params, progress: Progress | None) -> list[str]:
    params = replace(params, target="verdict", deletion=False, stability=False)
    items = []
    for i, (track, s) in enumerate(top):
        report_progress(progress, i / len(top), f"Explaining {i + 1} of {len(top)}: track {track.track}, "
                                                f"{s.time_s:.2f} s")
        head = (f'<div class="item"><h3>{i + 1}. track {track.track} at {s.time_s:.3f} s</h3>'
                f"<p>P(fake) <b>{s.p_fake:.3f}</b> in this frame; the track's mean {track.p_fake:.3f} "
                f"{badge(track.verdict)}{esc(' unsure' if track.unsure else '')}</p>")
        if s.crop is None:
            items.append(head + para("The face's crop was not kept when the clip was scored.", "warn") + "</div>")
            continue
        crop = np.ascontiguousarray(s.crop)

        def step(fraction, message, i=i):
            report_progress(progress, (i + 0.9 * fraction) / len(top), f"{i + 1} of {len(top)}: {message}")

        bundle = pipeline.run(detector, crop, methods=("lime", "gradcam"), params=params, progress=step)
        items.append(head + explained_crop(crop, bundle, detector) + "</div>")
    return items

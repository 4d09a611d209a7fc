"""Explain: why a detector calls a face real or fake. A Summary first (verdict, region Shapley values as a
waterfall, each method's top region and whether it can be trusted), then LIME, Grad-CAM, activations, the
manipulation map, regions and faithfulness.

The pipeline runs in two phases with one cache: first the fast methods (Shapley values, manipulation map,
Grad-CAM, regions, their deletion curves), so that the Summary appears at once; then LIME and its stability
check, which stream in and complete the Summary."""

import hashlib
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import streamlit as st

from explain import activations, gradcam, pipeline, render
from explain import queue as explain_queue
from explain.base import TARGETS
from explain.metrics import sanity
from explain.metrics.stability import advice as stability_advice
from explain.params import PRESET_LABELS
from explain.pipeline import DEFAULTS, Params
from explain.regions import REGION_NAMES
from explain.summary import METHOD_NAMES, summarize
from models.analysis.demo import edited_words
from models.analysis.display import enlarge
from models.data.preprocess import model_view
from pages._shared import (
    choose_face,
    compare_models,
    ensure_navigation,
    explain_cache,
    get_detector,
    image_key,
    installed_models,
    memo,
    model_select,
    pick_image,
    show_manipulation_map,
    show_provenance,
    show_verdict,
    waiting_text,
)

ensure_navigation()
st.title("Explain")

REGION_HELP = (
    "Regions come from mtcnn landmarks (eyes, nose, mouth corners); left and right are as you see the image. "
    "The bars show each method's mean evidence per pixel in each region, red toward fake and blue toward real. "
    "The region Shapley values on the Summary tab are exact for the model: they measure what this model responds "
    "to, in units of P(fake). **How far to trust the ranking as a locator of edits:** on photoshopped faces whose "
    "edited regions are known, the best method (Grad-CAM for detector_v1, the manipulation map for detector_v2, "
    "each chosen on validation) puts an edited region first only 1.04x and 1.23x as often as chance on test, and "
    "at chance on validation; no method, region Shapley values included, locates an edit reliably "
    "(docs/BENCHMARKS.md, \"Region ground truth\"). Read the ranking as what the model responds to, not as "
    "where the face was edited."
)
SUMMARY_HELP = (
    "Region Shapley values: each facial region's exact share of P(fake) for this model (all 64 combinations of "
    "the six regions scored, a removed region {fill}). Red bars push toward fake, blue toward real; they add up "
    "from P(fake) with every region removed to this image's P(fake). A method is trusted only when its deletion "
    "curve beats random deletion and it passes the model-randomisation check; an untrusted method is greyed with "
    "the reason and never counted as agreeing. These say what the model responds to; none of them locates an "
    "edit reliably (best on known photoshop edits: Grad-CAM for detector_v1, the manipulation map for "
    "detector_v2, lift 1.04x and 1.23x chance on test, chance on validation; see the Regions tab)."
)
FIRST_PHASE = ("shapley", "manipulation", "gradcam", "regions")  # the Summary: fast, shown first
SECOND_PHASE = (*FIRST_PHASE, "lime")  # then LIME (+ stability): everything of the first phase is a cache hit
FILLS = {"blur": "blurred", "mean": "filled with the mean colour", "hide": "filled like LIME's superpixels"}


HIDE_COLORS = {"black (0)": 0, "grey (128)": 128, "their mean colour": None}

page_figures: dict[str, bytes] = {}  # every figure shown on this run, by name: the HTML report reuses them


def figure(fig, name: str, caption: str | None = None, download: bool = True):
    data = render.png(fig)
    page_figures[name] = data
    st.image(data, caption=caption, width="stretch")
    if download:
        st.download_button(f"Download {name}.png", data, file_name=f"{name}.png", mime="image/png",
                           key=f"dl_{name}")


def method_table(summary) -> str:
    """The Summary's methods as a Markdown table: trusted first; an untrusted one greyed, with the reason."""
    lines = ["| Method | Top region (eyes, nose, mouth) | Top region overall | Faithfulness | Trusted |",
             "|---|---|---|---|---|"]
    for r in summary.methods:
        inner, overall = (REGION_NAMES.get(x, "none") if x else "none" for x in (r.top_inner, r.top_region))
        if r.status == "pending":
            cells = [f"{r.name}: computing…", "…", "…", "…", "not yet"]
        elif r.trusted:
            cells = [f"**{r.name}**", inner, overall, r.faithfulness, "yes"]
        else:
            cells = [r.name, inner, overall, r.faithfulness, f"no: {r.reason}"]
        if not r.trusted:
            cells = [f":gray[{c}]" for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def show_summary_text(summary) -> None:
    """The headline, the method table and what does not apply."""
    st.markdown(f"#### {summary.headline}")
    st.markdown(method_table(summary))
    a = summary.agreement
    if a.agree is None:
        st.caption("Fewer than two trusted methods name a region, so there is no agreement to report.")
    elif a.agree:
        st.caption(f"The trusted methods ({', '.join(METHOD_NAMES[m] for m in a.basis)}) agree on the "
                   f"{REGION_NAMES[a.region]}.")
    else:
        st.caption("The trusted methods disagree: " + "; ".join(
            f"{METHOD_NAMES[m]}: {REGION_NAMES[r]}" for m, r in a.disagree.items())
            + f" (the others: {REGION_NAMES[a.region]}).")
    for line in summary.not_applicable.values():
        st.caption(line)


names = installed_models()
with st.sidebar:
    model_name = model_select(names, key="explain_model")
    target = st.selectbox("Explain the evidence for", list(TARGETS), key="explain_target",
                          help="'verdict' explains the predicted class, as the study did.")
    with st.expander("LIME", expanded=False):
        preset = st.radio("Preset", list(PRESET_LABELS), format_func=PRESET_LABELS.get, key="lime_preset",
                          help="Stable (the default): 30 regular superpixels, mean-colour fill, 1,500 samples; its "
                               "top 5 agrees across seeds far more often. The 2020 study's: SLIC 100/1/1, black "
                               "fill, 1,000 samples (docs/BENCHMARKS.md, 'LIME stability').")
        base = Params.preset(preset)
        num_samples = st.slider("Samples", 200, 3000, base.num_samples, step=100, key=f"lime_samples_{preset}")
        n_segments = st.slider("Superpixels asked of SLIC", 20, 300, base.n_segments, step=10,
                               key=f"lime_segments_{preset}")
        compactness = st.number_input("SLIC compactness", 0.1, 100.0, float(base.compactness),
                                      key=f"lime_compactness_{preset}")
        sigma = st.number_input("SLIC sigma", 0.0, 5.0, float(base.sigma), key=f"lime_sigma_{preset}")
        hide = st.selectbox("Switched-off superpixels are filled with", list(HIDE_COLORS),
                            index=list(HIDE_COLORS.values()).index(base.hide_color), key=f"lime_hide_{preset}")
        seed = st.number_input("Seed", 0, 10_000, DEFAULTS.seed)
        want_stability = st.toggle(f"Stability across {DEFAULTS.stability_runs} seeds", value=True,
                                   key="lime_stability", help="Runs LIME again with the next seeds.")
    want_deletion = st.toggle("Deletion curves (faithfulness)", value=DEFAULTS.deletion, key="deletion")
    want_compare = st.toggle("Compare all models", value=False, key="explain_compare",
                             help="Verdicts and LIME masks of every installed model on this face, side by side "
                                  "(LIME with the settings above; about 2 s per model).")

image, name, sample = pick_image("explain")
if image is None:
    st.stop()
detector = get_detector(model_name)
if not (detector.supports_gradcam and detector.supports_activations):
    st.info(f"{model_name} is not a neural network: Grad-CAM and activation maps do not apply; LIME does.")
crop, kind, index, crops, shown = choose_face(image, "explain", recipe=detector.crop_recipe)
if crop is None:
    st.stop()
crop = np.ascontiguousarray(crop)
p_fake = float(detector.predict([crop])[0])
label = detector.verdict(p_fake)
resolved = label if target == "verdict" else target

top = st.columns([1, 1, 1.3])
top[0].image(shown, caption=f"{name}" + (f", face {index + 1} of {len(crops)}" if len(crops) > 1 else ""),
             width="stretch")
top[1].image(enlarge(model_view(crop, detector.input_size)), width="stretch",
             caption=f"What {detector.name} sees: {detector.input_size}x{detector.input_size} px")
with top[2]:
    unsure = show_verdict(detector, crop, p_fake)
    st.metric("P(fake)", f"{p_fake:.1%}")
    st.progress(p_fake, text=f"P(fake) = {p_fake:.3f} (threshold {detector.threshold:.2f})")
    st.caption(f"Explaining the evidence for **{resolved}**. A verdict is a signal, not proof.")
    if sample is not None and sample.truth:
        st.caption(f"Ground truth: **{sample.truth}** ({sample.source})."
                   + (f" Edited here: {edited_words(sample.edited)}: do the regions below point at it?"
                      if sample.edited else ""))
    show_provenance("explain", label)
    report_slot = st.container()  # filled at the end, once every figure of the page exists

layers_cam, cam_layer = [], None
if pipeline.applies(detector, "gradcam"):
    layers_cam = gradcam.conv_layers(detector)
    cam_layer = st.session_state.get("cam_layer") or gradcam.default_layer(detector)
    if cam_layer not in layers_cam:
        cam_layer = gradcam.default_layer(detector)
params = replace(base, target=target, n_segments=int(n_segments), compactness=float(compactness), sigma=float(sigma),
                 num_samples=int(num_samples), hide_color=HIDE_COLORS[hide], seed=int(seed), layer=cam_layer,
                 stability=want_stability, deletion=want_deletion)
cache = explain_cache(model_name, crop)  # every step memoised for this session: display options recompute nothing

# method -> why it fails the model-randomisation check stored in the model's JSON (greyed on the Summary)
sanity_failures = sanity.failures(detector, params)


def run_phase(methods, label: str, done: str, priority: int, phase_params=None):
    """One phase of the pipeline, its steps memoised for this session; a step that must compute first takes its
    turn in the server's explanation queue (the quick Summary phase before anyone's LIME), saying its place."""
    with st.status(label, expanded=True) as status:
        bar = st.progress(0.0, text=label)
        try:
            with explain_queue.SHARED.slot(priority, on_wait=lambda n: bar.progress(0.0, text=waiting_text(n))) as slot:
                result = pipeline.run(detector, crop, methods=methods, params=phase_params or params,
                                      cache=explain_cache(model_name, crop, slot),
                                      progress=lambda fraction, message: bar.progress(fraction, text=message))
        except explain_queue.Busy as exc:
            status.update(label=str(exc), state="error", expanded=True)
            st.stop()
        status.update(label=done, state="complete", expanded=False)
    return result


first = run_phase(FIRST_PHASE, "Explaining: region Shapley values, Grad-CAM, manipulation map…", "Summary ready", 0)
second_slot = st.empty()  # LIME's progress, above the tabs

tabs = st.tabs(["Summary", "LIME", "Grad-CAM", "Activations", "Manipulation map", "Regions", "Faithfulness",
                "Compare models"])
with tabs[0]:
    summary_slot = st.empty()
    first_summary = summarize(first, sanity_failures=sanity_failures, unsure=unsure, pending=("lime",))
    with summary_slot.container():
        show_summary_text(first_summary)
    left, right = st.columns([2, 1])
    with left:
        if first_summary.waterfall:
            figure(render.waterfall(first_summary), "waterfall")
            st.caption(SUMMARY_HELP.format(fill=FILLS.get(first_summary.fill, "filled")))
        else:
            st.info(first.notes.get("shapley", "No region Shapley values for this image."))
    with right:
        if first.regions:
            figure(render.region_overlay(next(iter(first.regions.values())), crop), "summary_regions",
                   download=False)
with tabs[2]:
    if "gradcam" in first.explanations:
        st.selectbox("Conv layer", layers_cam, index=layers_cam.index(cam_layer), key="cam_layer")
        figure(render.gradcam_overlay(first.explanations["gradcam"], crop), "gradcam")
    else:
        st.info("Grad-CAM needs a neural network's gradients; it does not apply to this model.")
with tabs[4]:
    show_manipulation_map(detector, crop, figure=figure, explanation=first.explanations.get("manipulation"))

STABILITY_NOW = "explain_stability_now"
this_image = (model_name, image_key(crop))
running, waiting = explain_queue.SHARED.state()
# Under load (another explanation running or waiting), LIME's stability check (two more LIME runs, about two
# thirds of this phase) waits for a click, so that everyone's LIME comes sooner; alone, it runs as always.
defer_stability = params.stability and running + waiting > 0 and st.session_state.get(STABILITY_NOW) != this_image
with second_slot.container():
    bundle = run_phase(SECOND_PHASE, "LIME" + ("" if defer_stability else " and its stability check") + "…",
                       "Explained", 1, replace(params, stability=False) if defer_stability else None)
    if defer_stability:
        st.info(f"LIME's stability check across {params.stability_runs} seeds was postponed: "
                f"{running + waiting} other explanation{'s were' if running + waiting != 1 else ' was'} running or "
                "waiting on this server.")
        st.button("Run the stability check now", key="explain_stability_button",
                  on_click=st.session_state.__setitem__, args=(STABILITY_NOW, this_image))
summary = summarize(bundle, sanity_failures=sanity_failures, unsure=unsure)
with summary_slot.container():  # LIME is in: its top region and faithfulness join the Summary
    show_summary_text(summary)
lime_e = bundle.explanations["lime"]
stab = bundle.stability

with tabs[1]:
    jac = stab["mean_jaccard"] if stab else None
    figure(render.lime_panels(lime_e, crop, stability=jac), "lime")
    cols = st.columns(3)
    cols[0].metric("Superpixels", lime_e.extras["n_segments_actual"])
    cols[1].metric("Local fit R²", f"{lime_e.extras['score']:.2f}")
    if jac is not None:
        cols[2].metric("Top-5 agreement across 3 seeds", f"{jac:.2f}")
        warning = stability_advice(jac, params)
        if warning:
            st.warning(warning)
    st.caption(f"LIME {lime_e.params['num_samples']} samples, {lime_e.seconds:.1f} s.")
with tabs[3]:
    if pipeline.applies(detector, "activations"):
        layer_names = activations.layers(detector)
        c1, c2, c3 = st.columns(3)
        act_layer = c1.selectbox("Layer", layer_names, index=layer_names.index(activations.default_layer(detector)),
                                 key="act_layer")
        order = c2.radio("Order channels by", ["mean", "index"], horizontal=True, key="act_order")
        zoom = c3.number_input("Zoom on channel", 0, 4096, 0, key="act_zoom")
        act_params = replace(params, layer=act_layer, activations_order=order, activations_channel=int(zoom))
        act = pipeline.run(detector, crop, methods=("activations",), params=act_params,
                           cache=cache).explanations["activations"]
        if int(zoom) >= act.extras["n_channels"]:
            st.caption(f"{act_layer} has {act.extras['n_channels']} channels.")
        left, right = st.columns([2.2, 1])
        with left:
            figure(render.activation_grid(act), "activations")
        with right:
            figure(render.activation_zoom(act), "activation_zoom")
    else:
        st.info("Activation maps need a neural network; they do not apply to this model.")
with tabs[5]:
    st.caption(REGION_HELP)
    if not bundle.face_found:
        st.info("No face found in this image: the region summary needs facial landmarks, so only the "
                "pixel-level explanations (LIME, Grad-CAM) are shown.")
    else:
        summaries = bundle.regions
        cols = st.columns(2)
        with cols[0]:
            figure(render.region_overlay(next(iter(summaries.values())), crop), "regions_map")
        for i, (m, s) in enumerate(summaries.items(), start=1):
            if i % 2 == 0:
                cols = st.columns(2)
            with cols[i % 2]:
                name = METHOD_NAMES.get(m, m)
                figure(render.region_bars(s, title=f"{name}: what drove '{bundle.target}'"), f"regions_{m}")
                row = summary.row(m)
                top = row.top_region if row is not None else (s.ranking[0] if s.ranking else None)
                st.caption(f"{name}: top region **{REGION_NAMES[top]}**" if top else
                           f"{name}: no region shows evidence for '{bundle.target}'")
with tabs[6]:
    curves = bundle.deletion
    if not curves:
        st.info("Switch on 'Deletion curves' in the sidebar.")
    st.caption("Superpixels are removed most important first, filled as LIME fills them (the preset's fill: "
               "each superpixel's mean colour for the stable preset, black for the study's); a faithful explanation makes P(target) fall faster than removing them in random order "
               f"({DEFAULTS.deletion_random} shuffles). A method that fails is greyed on the Summary tab.")
    for i, (m, c) in enumerate(curves.items()):
        if i % 2 == 0:
            cols = st.columns(2)
        with cols[i % 2]:
            figure(render.deletion_plot(c), f"deletion_{m}")
with tabs[7]:
    if not want_compare:
        st.info("Switch on 'Compare all models' in the sidebar to see every model's verdict and LIME mask on this face.")
    else:
        compare_models(crop, [model_name] + [n for n in names if n != model_name], params, key="explain_cmp")


def report_file_name(image_name: str | None) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(str(image_name or "image")).stem).strip("._") or "image"
    return f"{stem[:80]}_report.html"


def prepare_report() -> bytes:
    """The page's explanations as one self-contained HTML file (explain.report.image), with every installed
    model's verdict. Its pipeline run shares the page's cache: LIME, Grad-CAM and the figures are the ones
    already computed above; only missing deletion curves and the other models' verdicts are computed (once
    per session: memo)."""
    from explain.report.image import image_report

    bar = st.progress(0.0, text="Preparing the report…")
    report_params = replace(params, deletion=True)
    digest = hashlib.sha1(b"".join(page_figures[k] for k in sorted(page_figures))).hexdigest()
    face = crops[index][0]
    crop_info = {"image": name, "mode": st.session_state.get("explain_crop", "auto"), "kind": kind,
                 "face": f"{index + 1} of {len(crops)}", "box": None if face is None else list(face.box)}
    if sample is not None and sample.truth:
        crop_info["ground truth"] = f"{sample.truth} ({sample.source})"

    def build():
        return image_report(
            crop, model=detector, models=[get_detector(n) for n in names], params=report_params, cache=cache,
            crop_info=crop_info, figures=page_figures, photo=shown if kind != "none" else None,
            title=f"Deepfake Lens report: {name}", progress=lambda f, text: bar.progress(f, text=text),
            sanity_failures=sanity_failures, unsure=unsure,
            provenance=st.session_state.get("explain_provenance")).encode("utf-8")

    data = memo(("report", model_name, image_key(crop), report_params, digest, name, index, str(crop_info)), build)
    bar.empty()
    return data


with report_slot:
    if st.toggle("Prepare an HTML report", key="explain_report",
                 help="This page in one self-contained HTML file to save or share: every installed model's verdict, "
                      "LIME, Grad-CAM, regions, deletion curves, the parameters and model versions."):
        st.download_button("Download HTML report", prepare_report(), file_name=report_file_name(name),
                           mime="text/html", key="dl_report")

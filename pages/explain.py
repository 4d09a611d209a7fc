"""Explain: why a detector calls a face real or fake (LIME, Grad-CAM, activations, manipulation map, regions,
faithfulness)."""

import hashlib
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import streamlit as st

from explain import activations, gradcam, pipeline, render
from explain.base import TARGETS
from explain.pipeline import DEFAULTS, Params
from explain.regions import REGION_NAMES
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
    show_verdict,
)

ensure_navigation()
st.title("Explain")

REGION_HELP = (
    "Regions come from mtcnn landmarks (eyes, nose, mouth corners); the bars show the mean evidence per pixel "
    "for the target class in each region. **How far to trust the ranking:** on 69 photoshopped ciplab fakes whose "
    "edited regions are known, no model and method ranked an edited region first more often than chance "
    "(lift 0.74 to 1.04, 95% intervals including or below 1; docs/BENCHMARKS.md). The ranking shows what the model "
    "responds to; it does not locate the manipulation."
)


HIDE_COLORS = {"black (0)": 0, "grey (128)": 128, "their mean colour": None}

page_figures: dict[str, bytes] = {}  # every figure shown on this run, by name: the HTML report reuses them


def figure(fig, name: str, caption: str | None = None):
    data = render.png(fig)
    page_figures[name] = data
    st.image(data, caption=caption, width="stretch")
    st.download_button(f"Download {name}.png", data, file_name=f"{name}.png", mime="image/png", key=f"dl_{name}")


names = installed_models()
with st.sidebar:
    model_name = model_select(names, key="explain_model")
    target = st.selectbox("Explain the evidence for", list(TARGETS), key="explain_target",
                          help="'verdict' explains the predicted class, as the study did.")
    with st.expander("LIME", expanded=False):
        num_samples = st.slider("Samples", 200, 3000, DEFAULTS.num_samples, step=100, key="lime_samples")
        n_segments = st.slider("Superpixels asked of SLIC", 20, 300, DEFAULTS.n_segments, step=10, key="lime_segments")
        compactness = st.number_input("SLIC compactness", 0.1, 100.0, float(DEFAULTS.compactness))
        sigma = st.number_input("SLIC sigma", 0.0, 5.0, float(DEFAULTS.sigma))
        hide = st.selectbox("Switched-off superpixels are filled with", list(HIDE_COLORS),
                            index=list(HIDE_COLORS.values()).index(DEFAULTS.hide_color))
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
    show_verdict(detector, crop, p_fake)
    st.metric("P(fake)", f"{p_fake:.1%}")
    st.progress(p_fake, text=f"P(fake) = {p_fake:.3f} (threshold {detector.threshold:.2f})")
    st.caption(f"Explaining the evidence for **{resolved}**. A verdict is a signal, not proof.")
    if sample is not None and sample.truth:
        st.caption(f"Ground truth: **{sample.truth}** ({sample.source}).")
    report_slot = st.container()  # filled at the end, once every figure of the page exists

layers_cam, cam_layer = [], None
if pipeline.applies(detector, "gradcam"):
    layers_cam = gradcam.conv_layers(detector)
    cam_layer = st.session_state.get("cam_layer") or gradcam.default_layer(detector)
    if cam_layer not in layers_cam:
        cam_layer = gradcam.default_layer(detector)
params = Params(target=target, n_segments=int(n_segments), compactness=float(compactness), sigma=float(sigma),
                num_samples=int(num_samples), hide_color=HIDE_COLORS[hide], seed=int(seed), layer=cam_layer,
                stability=want_stability, deletion=want_deletion)
cache = explain_cache(model_name, crop)  # every step memoised for this session: display options recompute nothing

with st.status("Explaining…", expanded=True) as status:
    bar = st.progress(0.0, text="LIME")
    bundle = pipeline.run(detector, crop, methods=("lime", "gradcam", "regions"), params=params, cache=cache,
                          progress=lambda fraction, message: bar.progress(fraction, text=message))
    status.update(label="Explained", state="complete", expanded=False)
lime_e = bundle.explanations["lime"]
stab = bundle.stability

tabs = st.tabs(["LIME", "Grad-CAM", "Activations", "Manipulation map", "Regions", "Faithfulness", "Compare models"])
with tabs[0]:
    jac = stab["mean_jaccard"] if stab else None
    figure(render.lime_panels(lime_e, crop, stability=jac), "lime")
    cols = st.columns(3)
    cols[0].metric("Superpixels", lime_e.extras["n_segments_actual"])
    cols[1].metric("Local fit R²", f"{lime_e.extras['score']:.2f}")
    if jac is not None:
        cols[2].metric("Top-5 agreement across 3 seeds", f"{jac:.2f}")
        if jac < 0.5:
            st.warning(f"Unstable: the top-5 superpixels change with the random seed (mean Jaccard {jac:.2f}). "
                       "Do not read much into this LIME mask; raise the number of samples.")
    st.caption(f"LIME {lime_e.params['num_samples']} samples, {lime_e.seconds:.1f} s.")
with tabs[1]:
    if "gradcam" in bundle.explanations:
        st.selectbox("Conv layer", layers_cam, index=layers_cam.index(cam_layer), key="cam_layer")
        figure(render.gradcam_overlay(bundle.explanations["gradcam"], crop), "gradcam")
    else:
        st.info("Grad-CAM needs a neural network's gradients; it does not apply to this model.")
with tabs[2]:
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
with tabs[3]:
    show_manipulation_map(detector, crop, figure=figure)
with tabs[4]:
    st.caption(REGION_HELP)
    if not bundle.face_found:
        st.info("No face found in this image: the region summary needs facial landmarks, so only the "
                "pixel-level explanations (LIME, Grad-CAM) are shown.")
    else:
        summaries = bundle.regions
        cols = st.columns(1 + len(summaries))
        with cols[0]:
            figure(render.region_overlay(next(iter(summaries.values())), crop), "regions_map")
        for col, (m, s) in zip(cols[1:], summaries.items()):
            with col:
                figure(render.region_bars(s, title=f"{m}: what drove '{bundle.target}'"), f"regions_{m}")
                st.caption(f"{m}: top region **{REGION_NAMES[s.ranking[0]]}**")
with tabs[5]:
    curves = bundle.deletion
    if not curves:
        st.info("Switch on 'Deletion curves' in the sidebar.")
    st.caption("Superpixels are removed (filled with black, as LIME does) most important first; a faithful "
               "explanation makes P(target) fall faster than removing them in random order "
               f"({DEFAULTS.deletion_random} shuffles).")
    cols = st.columns(max(1, len(curves)))
    for col, (m, c) in zip(cols, curves.items()):
        with col:
            figure(render.deletion_plot(c), f"deletion_{m}")
with tabs[6]:
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
            title=f"Deepfake Lens report: {name}", progress=lambda f, text: bar.progress(f, text=text)).encode("utf-8")

    data = memo(("report", model_name, image_key(crop), report_params, digest, name, index, str(crop_info)), build)
    bar.empty()
    return data


with report_slot:
    if st.toggle("Prepare an HTML report", key="explain_report",
                 help="This page in one self-contained HTML file to save or share: every installed model's verdict, "
                      "LIME, Grad-CAM, regions, deletion curves, the parameters and model versions."):
        st.download_button("Download HTML report", prepare_report(), file_name=report_file_name(name),
                           mime="text/html", key="dl_report")

"""Explain: why a detector calls a face real or fake (LIME, Grad-CAM, activations, regions, faithfulness)."""

import hashlib
import re
from pathlib import Path

import numpy as np
import streamlit as st

from explain import activations, gradcam, render
from explain import lime as lime_method
from explain.faithfulness import deletion_curve
from explain.regions import LABELS, detect_landmarks, summarize
from models.data.preprocess import model_view
from pages._shared import (
    choose_face,
    compare_models,
    enlarge,
    ensure_navigation,
    get_detector,
    image_key,
    installed_models,
    memo,
    model_select,
    pick_image,
    run_lime,
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


def run_stability(model: str, image: np.ndarray, target: str, params: tuple, progress=None, reuse=None):
    def compute():
        kw = dict(params)
        seed = kw.pop("seed")
        s = lime_method.stability(get_detector(model), image, target=target, seeds=(seed, seed + 1, seed + 2),
                                  progress=progress, reuse=reuse, **kw)
        return {"mean_jaccard": s["mean_jaccard"], "sets": s["sets"]}

    return memo(("stability", model, image_key(image), target, params), compute)


def run_gradcam(model: str, image: np.ndarray, target: str, layer: str):
    return memo(("gradcam", model, image_key(image), target, layer),
                lambda: gradcam.explain(get_detector(model), image, target=target, layer=layer))


def run_activations(model: str, image: np.ndarray, layer: str, order: str, channel):
    return memo(("activations", model, image_key(image), layer, order, channel),
                lambda: activations.explain(get_detector(model), image, layer=layer, order=order, channel=channel))


def find_landmarks(image: np.ndarray):
    return memo(("landmarks", image_key(image)), lambda: detect_landmarks(image))


def run_deletion(model: str, image: np.ndarray, explanation, key: tuple):
    return memo(("deletion", model, image_key(image), key),
                lambda: deletion_curve(get_detector(model), image, explanation,
                                       n_segments=int(explanation.params.get("n_segments", 100))))


page_figures: dict[str, bytes] = {}  # every figure shown on this run, by name: the HTML report reuses them


def figure(fig, name: str, caption: str | None = None):
    data = render.png(fig)
    page_figures[name] = data
    st.image(data, caption=caption, width="stretch")
    st.download_button(f"Download {name}.png", data, file_name=f"{name}.png", mime="image/png", key=f"dl_{name}")


names = installed_models()
with st.sidebar:
    model_name = model_select(names, key="explain_model")
    target = st.selectbox("Explain the evidence for", ["verdict", "fake", "real"], key="explain_target",
                          help="'verdict' explains the predicted class, as the study did.")
    with st.expander("LIME", expanded=False):
        num_samples = st.slider("Samples", 200, 3000, 1000, step=100, key="lime_samples")
        n_segments = st.slider("Superpixels asked of SLIC", 20, 300, 100, step=10, key="lime_segments")
        compactness = st.number_input("SLIC compactness", 0.1, 100.0, 1.0)
        sigma = st.number_input("SLIC sigma", 0.0, 5.0, 1.0)
        hide = st.selectbox("Switched-off superpixels are filled with", ["black (0)", "grey (128)", "their mean colour"])
        seed = st.number_input("Seed", 0, 10_000, 0)
        want_stability = st.toggle("Stability across 3 seeds", value=True, key="lime_stability",
                                   help="Runs LIME twice more, with the next two seeds.")
    want_deletion = st.toggle("Deletion curves (faithfulness)", value=True, key="deletion")
    want_compare = st.toggle("Compare all models", value=False, key="explain_compare",
                             help="Verdicts and LIME masks of every installed model on this face, side by side "
                                  "(LIME with the settings above; about 2 s per model).")

image, name, sample = pick_image("explain")
if image is None:
    st.stop()
detector = get_detector(model_name)
if not (detector.supports_gradcam and detector.supports_activations):
    st.info(f"{model_name} is not a neural network: Grad-CAM and activation maps do not apply; LIME does.")
crop, kind, index, crops, shown = choose_face(image, "explain")
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
    st.markdown(f"### Verdict: {':red-background[FAKE]' if label == 'fake' else ':green-background[REAL]'}")
    st.metric("P(fake)", f"{p_fake:.1%}")
    st.progress(p_fake, text=f"P(fake) = {p_fake:.3f} (threshold {detector.threshold:.2f})")
    st.caption(f"Explaining the evidence for **{resolved}**. A verdict is a signal, not proof.")
    if sample is not None and sample.truth:
        st.caption(f"Ground truth: **{sample.truth}** ({sample.source}).")
    report_slot = st.container()  # filled at the end, once every figure of the page exists

hide_color = {"black (0)": 0, "grey (128)": 128, "their mean colour": None}[hide]
lime_params = (("n_segments", int(n_segments)), ("compactness", float(compactness)), ("sigma", float(sigma)),
               ("num_samples", int(num_samples)), ("hide_color", hide_color), ("seed", int(seed)))

with st.status("Explaining…", expanded=True) as status:
    bar = st.progress(0.0, text="LIME")

    def lime_progress(done, total):
        bar.progress(done / total, text=f"LIME: {done}/{total} perturbed images scored")

    lime_e = run_lime(model_name, crop, target, lime_params, progress=lime_progress)
    bar.progress(1.0, text=f"LIME done in {lime_e.seconds:.1f} s")
    stab = None
    if want_stability:
        st.write(f"Stability: LIME again with seeds {seed + 1} and {seed + 2}…")
        stab = run_stability(model_name, crop, target, lime_params, reuse=lime_e,
                             progress=lambda d, t: bar.progress(d / t, text=f"Stability: {d}/{t}"))
    explanations = {"lime": lime_e}
    if detector.supports_gradcam:
        layers_cam = gradcam.conv_layers(detector)
        cam_layer = st.session_state.get("cam_layer") or gradcam.default_layer(detector)
        if cam_layer not in layers_cam:
            cam_layer = gradcam.default_layer(detector)
        explanations["gradcam"] = run_gradcam(model_name, crop, target, cam_layer)
    st.write("Finding facial landmarks (mtcnn)…")
    landmarks = find_landmarks(crop)
    curves = {}
    if want_deletion:
        st.write("Deletion curves…")
        for m, e in explanations.items():
            curves[m] = run_deletion(model_name, crop, e, (m, target, lime_params if m == "lime" else e.params["layer"]))
    status.update(label="Explained", state="complete", expanded=False)

tabs = st.tabs(["LIME", "Grad-CAM", "Activations", "Regions", "Faithfulness", "Compare models"])
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
    if "gradcam" in explanations:
        st.selectbox("Conv layer", layers_cam, index=layers_cam.index(cam_layer), key="cam_layer")
        figure(render.gradcam_overlay(explanations["gradcam"], crop), "gradcam")
    else:
        st.info("Grad-CAM needs a neural network's gradients; it does not apply to this model.")
with tabs[2]:
    if detector.supports_activations:
        layer_names = activations.layers(detector)
        c1, c2, c3 = st.columns(3)
        act_layer = c1.selectbox("Layer", layer_names, index=layer_names.index(activations.default_layer(detector)),
                                 key="act_layer")
        order = c2.radio("Order channels by", ["mean", "index"], horizontal=True, key="act_order")
        zoom = c3.number_input("Zoom on channel", 0, 4096, 0, key="act_zoom")
        act = run_activations(model_name, crop, act_layer, order, int(zoom))
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
    st.caption(REGION_HELP)
    if landmarks is None:
        st.info("No face found in this image: the region summary needs facial landmarks, so only the "
                "pixel-level explanations (LIME, Grad-CAM) are shown.")
    else:
        summaries = {m: summarize(e, landmarks=landmarks) for m, e in explanations.items()}
        cols = st.columns(1 + len(summaries))
        with cols[0]:
            figure(render.region_overlay(next(iter(summaries.values())), crop), "regions_map")
        for col, (m, s) in zip(cols[1:], summaries.items()):
            with col:
                figure(render.region_bars(s, title=f"{m}: what drove '{resolved}'"), f"regions_{m}")
                st.caption(f"{m}: top region **{LABELS[s.ranking[0]]}**")
with tabs[4]:
    if not curves:
        st.info("Switch on 'Deletion curves' in the sidebar.")
    st.caption("Superpixels are removed (filled with black, as LIME does) most important first; a faithful "
               "explanation makes P(target) fall faster than removing them in random order (5 shuffles).")
    cols = st.columns(max(1, len(curves)))
    for col, (m, c) in zip(cols, curves.items()):
        with col:
            figure(render.deletion_plot(c), f"deletion_{m}")
with tabs[5]:
    if not want_compare:
        st.info("Switch on 'Compare all models' in the sidebar to see every model's verdict and LIME mask on this face.")
    else:
        compare_models(crop, [model_name] + [n for n in names if n != model_name], target, lime_params, key="explain_cmp")


def report_file_name(image_name: str | None) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(str(image_name or "image")).stem).strip("._") or "image"
    return f"{stem[:80]}_report.html"


def prepare_report() -> bytes:
    """The page's explanations as one self-contained HTML file (explain.report), with every installed model's
    verdict. LIME, Grad-CAM and the figures are the ones already computed above; only missing deletion curves
    and the other models' verdicts are computed (once per session: memo)."""
    from explain.report import image_report

    bar = st.progress(0.0, text="Preparing the report…")
    report_curves = dict(curves)
    for m, e in explanations.items():
        if m not in report_curves:
            bar.progress(0.0, text=f"Deletion curve for {m}…")
            report_curves[m] = run_deletion(model_name, crop, e,
                                            (m, target, lime_params if m == "lime" else e.params["layer"]))
    digest = hashlib.sha1(b"".join(page_figures[k] for k in sorted(page_figures))).hexdigest()
    face = crops[index][0]
    crop_info = {"image": name, "mode": st.session_state.get("explain_crop", "auto"), "kind": kind,
                 "face": f"{index + 1} of {len(crops)}", "box": None if face is None else list(face.box)}
    if sample is not None and sample.truth:
        crop_info["ground truth"] = f"{sample.truth} ({sample.source})"

    def build():
        return image_report(
            crop, model=detector, models=[get_detector(n) for n in names], lime_params=dict(lime_params),
            target=target, crop_info=crop_info, explanations=explanations, figures=page_figures,
            curves=report_curves, landmarks=landmarks, photo=shown if kind != "none" else None,
            stability=stab["mean_jaccard"] if stab else None, title=f"Deepfake Lens report: {name}",
            progress=lambda f, text: bar.progress(f, text=text)).encode("utf-8")

    data = memo(("report", model_name, image_key(crop), target, lime_params, digest, name, index, str(crop_info)),
                build)
    bar.empty()
    return data


with report_slot:
    if st.toggle("Prepare an HTML report", key="explain_report",
                 help="This page in one self-contained HTML file to save or share: every installed model's verdict, "
                      "LIME, Grad-CAM, regions, deletion curves, the parameters and model versions."):
        st.download_button("Download HTML report", prepare_report(), file_name=report_file_name(name),
                           mime="text/html", key="dl_report")

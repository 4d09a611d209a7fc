"""Predict: one image in, a verdict with P(fake) out, for one model or all of them."""

import pandas as pd
import streamlit as st

from explain.pipeline import DEFAULTS
from models.analysis.demo import edited_words
from models.analysis.display import enlarge
from models.data.preprocess import model_view
from models.detectors.labels import unsure_label
from pages._shared import (
    DEMO_MODE,
    DEMO_MODEL,
    choose_face,
    compare_models,
    demo_pair,
    ensure_navigation,
    get_detector,
    image_key,
    image_mode,
    installed_models,
    memo,
    model_select,
    open_in_explain,
    pick_image,
    show_manipulation_map,
    show_provenance,
    show_verdict,
    spreads,
)

ensure_navigation()

EXPLAIN_KEY = "_predict_explain"
if EXPLAIN_KEY in st.session_state:  # "Explain this face" was clicked (callbacks cannot switch pages themselves)
    open_in_explain(**st.session_state.pop(EXPLAIN_KEY))

st.title("Predict")

names = installed_models()
mode = image_mode("predict", demo=True)
with st.sidebar:
    model_name = model_select(names, prefer=DEMO_MODEL if mode == DEMO_MODE else None)
    compare = st.toggle("Compare all models", value=False)
    compare_lime = st.toggle("…with LIME masks side by side", value=False, disabled=not compare,
                             help=f"LIME ({DEFAULTS.num_samples} samples, about 2 s per model) for every model on this face.")

if mode == DEMO_MODE:
    image, name, sample = demo_pair("predict", names, model_name)
else:
    image, name, sample = pick_image("predict", mode)
if image is None:
    st.stop()

detector = get_detector(model_name)
crop, kind, index, crops, shown = choose_face(image, "predict", recipe=detector.crop_recipe)
if crop is None:
    st.stop()
all_p = memo(("predict", detector.name, tuple(image_key(c) for _, c in crops)),  # face switches: cache hits
             lambda: detector.predict([c for _, c in crops]))
p_fake = float(all_p[index])
label = detector.verdict(p_fake)

left, mid, right = st.columns([1.2, 1, 1.2])
with left:
    st.image(shown, caption=f"{name} ({image.shape[1]}x{image.shape[0]})", width="stretch")
    st.caption({"face": f"Face {index + 1} of {len(crops)}, cropped as the training data was (1.3x its box).",
                "center": "No face found: the centre square is scored.",
                "none": "Taken as an already-made face crop (no detection)."}[kind])
with mid:
    st.image(
        enlarge(model_view(crop, detector.input_size)),
        caption=f"What {detector.name} sees: {detector.input_size}x{detector.input_size} px",
        width="stretch",
    )
with right:
    show_verdict(detector, crop, p_fake)
    st.metric("P(fake)", f"{p_fake:.1%}")
    st.progress(p_fake, text=f"P(fake) = {p_fake:.3f} (threshold {detector.threshold:.2f})")
    if sample is not None and sample.truth:
        right_or_wrong = "correct" if sample.truth == label else "wrong"
        st.caption(f"Ground truth: **{sample.truth}** ({sample.source}); this verdict is {right_or_wrong}."
                   + (f" Edited here: {edited_words(sample.edited)}." if sample.edited else ""))
    auc = detector.metadata.get("metrics", {}).get("test", {}).get("overall", {}).get("roc_auc")
    if auc is not None:
        st.caption(f"{detector.name}: test ROC AUC {auc:.3f}. A verdict is a signal, not proof.")
    show_provenance("predict", label)

st.button("Explain this face", type="primary", key="predict_to_explain", on_click=st.session_state.__setitem__,
          args=(EXPLAIN_KEY, {"name": name, "pixels": image, "origin": "Predict",
                              "face": index + 1 if kind == "face" else None,
                              "truth": sample.truth if sample else None, "source": sample.source if sample else None,
                              "edited": sample.edited if sample else (), "model": model_name,
                              "provenance": st.session_state.get("predict_provenance")}),
          help="Open this image in Explain with this face selected: which regions drive the verdict.")

st.subheader("Manipulation map")
show_manipulation_map(detector, crop)

if len(crops) > 1:
    st.subheader("Every face")
    flags = detector.unsure(all_p, spreads(detector, [c for _, c in crops], all_p))
    st.dataframe(
        pd.DataFrame([{"face": i + 1, "box [x, y, w, h]": str(list(f.box)), "confidence": round(f.confidence, 3),
                       "P(fake)": float(p), "verdict": detector.verdict(float(p)),
                       "unsure": unsure_label(detector.verdict(float(p))) if u else ""}
                      for i, ((f, _), p, u) in enumerate(zip(crops, all_p, flags))]),
        hide_index=True,
        column_config={"P(fake)": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="%.3f")},
    )

if compare:
    st.subheader("All models")
    rows = []
    progress = st.progress(0.0, text="Scoring with every model…")
    for i, n in enumerate(names):
        det = get_detector(n)
        p = float(det.predict([crop])[0])
        test = det.metadata.get("metrics", {}).get("test", {}).get("overall", {})
        rows.append({"model": n, "input px": det.input_size, "P(fake)": p, "verdict": det.verdict(p),
                     "threshold": det.threshold, "test ROC AUC": test.get("roc_auc")})
        progress.progress((i + 1) / len(names), text=f"Scored {n}")
    progress.empty()
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        column_config={
            "P(fake)": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="%.3f"),
            "threshold": st.column_config.NumberColumn(format="%.2f"),
            "test ROC AUC": st.column_config.NumberColumn(format="%.3f"),
        },
    )
    if compare_lime:
        st.subheader("LIME masks, side by side")
        compare_models(crop, [model_name] + [n for n in names if n != model_name], key="predict_cmp")

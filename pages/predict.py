"""Predict: one image in, a verdict with P(fake) out, for one model or all of them."""

import pandas as pd
import streamlit as st

from models import THRESHOLD, default_model_name, list_models, verdict
from models.preprocess import model_view
from models.scoring import prepare
from pages._shared import enlarge, ensure_navigation, get_detector, pick_image

ensure_navigation()

st.title("Predict")

names = list_models()
if not names:
    st.error("No models installed under `assets/models/`.")
    st.stop()
default = default_model_name()
with st.sidebar:
    model_name = st.selectbox("Model", names, index=names.index(default) if default in names else 0)
    compare = st.toggle("Compare all models", value=False)

image, name, sample = pick_image("predict")
if image is None:
    st.stop()

crop = prepare(image)
detector = get_detector(model_name)
p_fake = float(detector.predict([crop])[0])
label = verdict(p_fake)

left, mid, right = st.columns([1.2, 1, 1.2])
with left:
    st.image(image, caption=f"{name} ({image.shape[1]}x{image.shape[0]})", width="stretch")
    if crop.shape[:2] != image.shape[:2]:
        st.caption("Not square: the centre square is scored.")
with mid:
    st.image(
        enlarge(model_view(crop, detector.input_size)),
        caption=f"What {detector.name} sees: {detector.input_size}x{detector.input_size} px",
        width="stretch",
    )
with right:
    st.markdown(f"### Verdict: {':red-background[FAKE]' if label == 'fake' else ':green-background[REAL]'}")
    st.metric("P(fake)", f"{p_fake:.1%}")
    st.progress(p_fake, text=f"P(fake) = {p_fake:.3f} (threshold {THRESHOLD:.2f})")
    if sample is not None and sample.truth:
        right_or_wrong = "correct" if sample.truth == label else "wrong"
        st.caption(f"Ground truth: **{sample.truth}** ({sample.source}); this verdict is {right_or_wrong}.")
    auc = detector.metadata.get("metrics", {}).get("test", {}).get("overall", {}).get("roc_auc")
    if auc is not None:
        st.caption(f"{detector.name}: test ROC AUC {auc:.3f}. A verdict is a signal, not proof.")

if compare:
    st.subheader("All models")
    rows = []
    progress = st.progress(0.0, text="Scoring with every model…")
    for i, n in enumerate(names):
        det = get_detector(n)
        p = float(det.predict([crop])[0])
        test = det.metadata.get("metrics", {}).get("test", {}).get("overall", {})
        rows.append({"model": n, "input px": det.input_size, "P(fake)": p, "verdict": verdict(p),
                     "test ROC AUC": test.get("roc_auc")})
        progress.progress((i + 1) / len(names), text=f"Scored {n}")
    progress.empty()
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        column_config={
            "P(fake)": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="%.3f"),
            "test ROC AUC": st.column_config.NumberColumn(format="%.3f"),
        },
    )

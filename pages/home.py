"""Home: what Deepfake Lens does, the installed models and their measured metrics, how to use it."""

import pandas as pd
import streamlit as st

from models.catalog import model_rows
from pages._shared import ensure_navigation

ensure_navigation()

st.title("Deepfake Lens")
st.markdown(
    "Deepfake Lens runs detectors (CNNs and a spectrum baseline) on a **face image**, gives a verdict with **P(fake)** "
    "(the model's probability that the face is fake), and helps you see *why*."
)

st.subheader("Installed models")
rows = model_rows()
if not rows:
    st.warning("No models installed under `assets/models/`. Train one with `python -m models.train`.")
else:
    df = pd.DataFrame(rows)
    pct = st.column_config.NumberColumn(format="%.3f")
    st.dataframe(
        df,
        hide_index=True,
        column_config={
            "default": st.column_config.CheckboxColumn("default"),
            "params": st.column_config.NumberColumn(format="%d"),
            **{c: pct for c in df.columns if c.startswith(("test ", "recall ")) and c != "test n"},
            "test n": st.column_config.NumberColumn(format="%d"),
        },
    )
    st.caption(
        "Metrics are measured on the shared dataset's held-out test split (StyleGAN faces, LFW face swaps and "
        "photoshopped ciplab edits, plus matching real photos). Recall per kind = share of those fakes caught."
    )

st.subheader("How to use it")
st.markdown(
    """
1. Open **Predict**, pick a built-in sample or upload a photo (several faces are numbered; pick one).
2. Read the verdict and P(fake). The page also shows the exact low-resolution input the model saw.
3. Switch on **Compare all models** in the sidebar to see every installed detector's score side by side.
4. Open **Explain** to see why: LIME superpixels (with a stability check across seeds), Grad-CAM, activation maps,
   which facial regions (eyes, nose, mouth…) drove the verdict, and a deletion curve that tells whether the
   explanation is faithful to the model.

From a terminal: `python -m models.predict photo.jpg`, `python -m models.evaluate --data DIR`,
`python -m explain photo.jpg` (see the README).
"""
)

st.subheader("Limits")
st.markdown(
    """
- The detectors were trained on 128 px face crops of three kinds of fake: StyleGAN faces, LFW face swaps
  and photoshopped eye/nose/mouth edits. They have not seen diffusion-model faces, video, or heavy filters.
- Faces are found with mtcnn and cropped as the training data was; with no face the centre square is scored
  (and the page says so). Verdicts near 0.5 can flip when the crop moves by a pixel or two: treat them as unsure.
- The default, `detector_v1`, catches most face swaps and GAN faces but misses about 40% of photoshopped
  eye/nose/mouth edits at the default threshold; the study's two models are weak on this data (see the table).
- Re-compression and downscaling cost a few points of accuracy (see the README's robustness numbers).
- **A verdict is a signal, not proof.**
"""
)

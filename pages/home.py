"""Home: what Deepfake Lens does, the installed models and their measured metrics, how to use it."""

import pandas as pd
import streamlit as st

from models.analysis.catalog import default_generalisation, generalisation_sentence, model_rows
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
    generalisation = default_generalisation()
    if generalisation:
        st.markdown(generalisation_sentence(generalisation) + " See **Models**, Cross-source.")

st.subheader("How to use it")
st.markdown(
    """
1. Open **Predict**: it opens on a demo pair (a real photo and a fake made from it on the spot, its edited region
   known). Then pick a built-in sample or upload a photo (several faces are numbered; pick one).
2. Read the verdict and P(fake). The page also shows the exact low-resolution input the model saw.
3. Switch on **Compare all models** in the sidebar to see every installed detector's score side by side,
   optionally with their LIME masks.
4. Open **Explain** to see why: LIME superpixels (with a stability check across seeds), Grad-CAM, activation maps,
   which facial regions (eyes, nose, mouth…) drove the verdict, a deletion curve that tells whether the
   explanation is faithful to the model, and every model side by side. Export it all as one HTML report.
5. **Batch** scores many images or zip archives at once: a sortable table with thumbnails, a P(fake) histogram,
   the CSV, an HTML report of the most suspicious faces, and any row opens in Explain.
6. **Video** scores every face of a clip over time: a timeline of P(fake) per person, the most suspicious
   frames (each one click from Explain), the CSV and an HTML report. Clips go through Batch and the CLI too.
7. **Models** compares the detectors on the test split (per source, per kind of fake, ROC, confusion, training
   curves, cross-source generalisation) and sets each model's operating point (threshold) and calibration.
8. With `DEEPFAKE_DATA` set, **Dataset** shows class balance, an image grid and the mean real and fake faces,
   and **Error analysis** shows a model's most confident mistakes, each one click from Explain.

P(fake) is calibrated on the validation split, and each model calls a face fake at its own saved threshold.
From a terminal: `python -m models.predict photo.jpg folder/ archive.zip --csv out.csv`,
`python -m models.evaluate --data DIR`, `python -m explain photo.jpg --report report.html` (see the README).
"""
)

st.subheader("Limits")
st.markdown(
    """
- The detectors were trained on 128 px face crops of three kinds of fake: StyleGAN faces, LFW face swaps
  and photoshopped eye/nose/mouth edits (detector_v2 also diffusion faces and self-blends). They have never
  seen video: a clip is scored one sampled frame at a time, so its verdict is a screening hint.
- Faces are found with mtcnn and cropped as the training data was; with no face the centre square is scored
  (and the page says so). Verdicts near 0.5 can flip when the crop moves by a pixel or two: treat them as unsure.
- The default, `detector_v1`, catches most face swaps and GAN faces but misses about half of the photoshopped
  eye/nose/mouth edits at its operating point; the study's two models are weak on this data (see the table).
- Trained without one source of fakes, a detector does much worse on that source (Models page, Cross-source):
  expect the same on a generator it has never seen.
- Re-compression and downscaling cost a few points of accuracy (see the README's robustness numbers).
- **A verdict is a signal, not proof.**
"""
)

"""Deepfake Lens: a multipage dashboard. Run with `make run`."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import streamlit as st

st.set_page_config(page_title="Deepfake Lens", page_icon=":material/center_focus_strong:", layout="wide")

pages = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/predict.py", title="Predict", icon=":material/image_search:", url_path="predict"),
    st.Page("pages/explain.py", title="Explain", icon=":material/psychology:", url_path="explain"),
    st.Page("pages/batch.py", title="Batch", icon=":material/photo_library:", url_path="batch"),
    st.Page("pages/video.py", title="Video", icon=":material/movie:", url_path="video"),
    st.Page("pages/models.py", title="Models", icon=":material/leaderboard:", url_path="models"),
    st.Page("pages/dataset.py", title="Dataset", icon=":material/dataset:", url_path="dataset"),
    st.Page("pages/errors.py", title="Error analysis", icon=":material/report:", url_path="errors"),
]
st.navigation(pages).run()

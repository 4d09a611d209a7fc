"""Dataset: class balance per split and source, an image grid, and the mean face per class (dataset bias)."""

import os
from pathlib import Path

import pandas as pd
import streamlit as st

from models.analysis import explore
from models.analysis.display import gallery_caption
from models.data.files import data_root
from pages._shared import ensure_navigation, open_in_explain, thumbnail_grid

ensure_navigation()

OPEN_KEY = "_dataset_open"
pending = st.session_state.pop(OPEN_KEY, None)
if pending:  # an Explain button was clicked (callback): switch pages from the script body
    open_in_explain(pending["name"], path=pending["path"], origin="dataset", truth=pending["label"],
                    source=pending["source"])

st.title("Dataset")
root = data_root()
if not explore.is_dataset(root):
    st.info(
        "No dataset found"
        + (f" at `{root}`" if os.environ.get("DEEPFAKE_DATA") else "")
        + ". Point `DEEPFAKE_DATA` at a folder laid out as `{train,val,test}/{real,fake}/` (a `manifest.csv` at its "
        "root adds the source of each image), then restart the app:\n\n"
        "```bash\nexport DEEPFAKE_DATA=/path/to/faces128\nmake run\n```\n\n"
        "`make run` and `make test` set it to `../shared/data/faces128` when that folder exists.")
    st.stop()


@st.cache_data(show_spinner=False, max_entries=8)
def balance(root: str, stamp: tuple) -> tuple[list[dict], str]:
    return explore.class_balance(root), explore.balance_origin(root)


@st.cache_data(show_spinner="Listing images…", max_entries=8)
def images(root: str, stamp: tuple) -> list[dict]:
    return explore.list_images(root)


@st.cache_data(show_spinner=False, max_entries=32)
def mean_faces(root: str, split: str, source: str | None, stamp: tuple) -> explore.MeanFaces:
    rows = explore.filter_images(images(root, stamp), split=split, source=source)
    bar = st.progress(0.0, text=f"Averaging {len(rows)} images…")

    def step(done, total):
        bar.progress(done / total, text=f"Averaging images: {done}/{total}")

    result = explore.mean_faces([r["path"] for r in rows], [r["label"] for r in rows], progress=step)
    bar.empty()
    return result


def request_explain(row: dict) -> None:
    """Button callback: remember the image; the next script run (above) opens it on the Explain page."""
    st.session_state[OPEN_KEY] = {**row, "name": f"{row['split']}/{row['label']}: {Path(row['path']).name}"}


stamp = explore.dataset_stamp(root)
rows, origin = balance(str(root), stamp)
st.caption(f"`{root}`: {sum(r['total'] for r in rows):,} images, counted from "
           + ("`manifest.csv`." if origin == explore.MANIFEST else "the folders (no `manifest.csv`)."))

tab_balance, tab_images, tab_mean = st.tabs(["Class balance", "Images", "Mean face"])

with tab_balance:
    share = st.column_config.NumberColumn(format="%.2f")
    st.markdown("##### Per split")
    st.dataframe(pd.DataFrame(explore.balance_by_split(rows)), hide_index=True,
                 column_config={"share fake": share})
    st.markdown("##### Per source")
    by_source = pd.DataFrame(explore.balance_by_source(rows))
    st.dataframe(by_source, hide_index=True, column_config={"share fake": share})
    st.bar_chart(by_source.set_index("source")[["real", "fake"]], horizontal=True, height=60 + 40 * len(by_source),
                 color=["#2e7d32", "#c62828"])
    lonely = explore.one_class_sources(rows)
    if lonely:
        st.warning("Only one class from " + ", ".join(f"**{s}** ({c} only)" for s, c in lonely.items())
                   + ": a model can score these by recognising the collection (its resolution, compression, framing) "
                     "rather than a manipulation.")
    st.caption("Kinds of fake come from the data README: GAN faces, LFW face swaps, photoshopped ciplab edits.")

with tab_images:
    every = images(str(root), stamp)
    splits = explore.splits_in(every)
    c1, c2, c3 = st.columns(3)
    split = c1.selectbox("Split", ["all", *splits], key="ds_split")
    label = c2.selectbox("Class", ["all", "real", "fake"], key="ds_label")
    in_split = explore.filter_images(every, split=None if split == "all" else split)
    sources = explore.sources_in(in_split)
    source = c3.selectbox("Source", ["all", *sources], key="ds_source")
    shown = explore.filter_images(in_split, label=None if label == "all" else label,
                                  source=None if source == "all" else source)
    n_pages = explore.paginate(shown, 1)[2]
    page = st.number_input(f"Page (of {n_pages})", 1, n_pages, 1, key=f"ds_page_{split}_{label}_{source}")
    items, page, _ = explore.paginate(shown, page)
    first, last = explore.page_span(page, len(items))
    st.caption(f"{len(shown):,} images match; showing {len(items)} ({first}–{last}). Thumbnails are "
               f"{explore.THUMB_SIZE} px, made now.")
    # One fixed-length line per caption (the name cut in the middle); the full name is in the button's tooltip.
    thumbnail_grid(items, caption=lambda r: f"{r['label']} · {gallery_caption(r['file'])[0]}",
                   key=lambda r: f"ds_explain_{r['file']}", on_click=request_explain, args=lambda r: (r,))

with tab_mean:
    st.markdown("The average of every real crop and of every fake crop, and their difference. Anything visible in "
                "the difference is a cue a detector can learn that says nothing about manipulation: framing, "
                "brightness, background, pose.")
    every = images(str(root), stamp)
    splits = explore.splits_in(every)
    c1, c2 = st.columns(2)
    split = c1.selectbox("Split", splits, index=splits.index("test") if "test" in splits else 0, key="ds_mean_split",
                         help="Train is what the models learned from (about 12,000 images here, several seconds); "
                              "test is quicker.")
    sources = explore.sources_in(explore.filter_images(every, split=split))
    source = c2.selectbox("Source", ["all sources", *sources], key="ds_mean_source")
    mf = mean_faces(str(root), split, None if source == "all sources" else source, stamp)
    st.pyplot(explore.mean_face_figure(mf), width="stretch")
    summary = mf.summary()
    m = st.columns(4)
    m[0].metric("Real images", f"{mf.n_real:,}")
    m[1].metric("Fake images", f"{mf.n_fake:,}")
    if mf.diff is not None:
        m[2].metric("Mean |fake − real|", f"{summary['mean |diff|']:.3f}")
        m[3].metric("Brightness fake − real", f"{summary['brightness fake'] - summary['brightness real']:+.3f}")
        st.caption("Difference in mean brightness on a 0-1 scale: red where fakes are brighter on average, blue where "
                   "reals are; limits are symmetric around 0.")
    elif mf.n_real or mf.n_fake:
        st.info(f"Only {'fake' if mf.n_fake else 'real'} images here: there is no difference to show.")
    else:
        st.info("No images here.")
    if mf.skipped:
        st.warning(f"{mf.skipped} files could not be decoded and were left out.")

"""Error analysis: one model's false positives and false negatives on the test split, most confident first."""

import os

import pandas as pd
import streamlit as st

from explain import aggregate
from models.analysis import explore
from models.analysis.display import gallery_caption
from models.analysis.zoo import eval_file, eval_stamp, load_scores, model_stamp, model_threshold
from models.data.files import data_root
from pages._shared import (
    ensure_navigation,
    get_detector,
    installed_models,
    memo,
    model_select,
    open_in_explain,
    thumbnail_grid,
)

ensure_navigation()

OPEN_KEY = "_errors_open"
pending = st.session_state.pop(OPEN_KEY, None)
if pending:  # an Explain button was clicked (callback): switch pages from the script body
    st.session_state["explain_model"] = pending["model"]  # explain the mistake with the model that made it
    open_in_explain(f"{pending['file']} ({pending['model']}: P(fake) {pending['p_fake']:.3f})", path=pending["path"],
                    origin="error analysis", truth=pending["truth"], source=pending["source"])

st.title("Error analysis")
st.caption("Which test images a model gets wrong at its own operating point: reals it calls fake (false positives) "
           "and fakes it lets through (false negatives), the most confident mistakes first.")

names = installed_models()
root = data_root()
if not explore.has_split(root, "test"):
    st.info(
        "The galleries need the dataset's test images"
        + (f" (none found at `{root}`)" if os.environ.get("DEEPFAKE_DATA") else "")
        + ". Point `DEEPFAKE_DATA` at a folder laid out as `{train,val,test}/{real,fake}/`, then restart the app:\n\n"
        "```bash\nexport DEEPFAKE_DATA=/path/to/faces128\nmake run\n```")
    st.stop()


@st.cache_data(show_spinner=False, max_entries=16)
def cached_scores(name: str, stamp: float):
    return load_scores(name, "test")


@st.cache_data(show_spinner=False, max_entries=16)
def cached_coverage(name: str, stamp: float, root: str) -> float:
    s = cached_scores(name, stamp)
    return explore.coverage(s, root) if s is not None else 0.0


def scores_now(name: str):
    """Score the test split with ``name`` now, with a progress bar; kept for this session."""
    def compute():
        bar = st.progress(0.0, text=f"Scoring the test split with {name}…")
        out = explore.score_split(get_detector(name), root, "test",
                                  progress=lambda d, t: bar.progress(d / max(t, 1), text=f"Scoring: {d}/{t} images"))
        bar.empty()
        return out

    return memo(("errors_scores", name, str(root), model_stamp(name)), compute)


with st.sidebar:
    name = model_select(names, key="errors_model")
threshold = model_threshold(name)

stamp = eval_stamp(name, "test")
scores = cached_scores(name, stamp)
status = explore.cached_scores_status(scores, cached_coverage(name, stamp, str(root)) if scores is not None else 0.0)
if status == "other dataset":
    st.info(f"The cached test scores of {name} were made on another dataset (their files are not under `{root}`): "
            "scoring this dataset's test split now.")
elif status == "missing":
    st.info(f"No cached test scores for {name} (`make eval` writes them): scoring the test split now.")
if status in ("missing", "other dataset"):
    scores, failed = scores_now(name)
    if failed:
        st.warning(f"{len(failed)} files could not be scored and are left out, e.g. {failed[0]}")
    st.caption(f"Scored just now ({len(scores):,} images, kept for this session).")
else:
    if status == "stale":
        st.warning(f"The model file of {name} is newer than its cached scores: run `make eval`.")
    st.caption(f"From the cached evaluation `{eval_file(name, 'test').name}` ({len(scores):,} test images).")

totals = explore.error_totals(scores, threshold)
fp, fn = explore.mistakes(scores, threshold, root)
m = st.columns(5)
m[0].metric("Threshold", f"{threshold:.3f}", help="The model's operating point (set it on the Models page): "
            "an image is called fake at P(fake) ≥ threshold.")
m[1].metric("Test images", f"{totals['n']:,}")
m[2].metric("False positives", f"{totals['FP']:,}",
            help=f"Reals called fake: {totals['FP rate']:.1%} of {totals['n real']:,} reals." if totals["n real"] else None)
m[3].metric("False negatives", f"{totals['FN']:,}",
            help=f"Fakes passed as real: {totals['FN rate']:.1%} of {totals['n fake']:,} fakes." if totals["n fake"]
            else None)
m[4].metric("Accuracy", f"{totals['accuracy']:.1%}" if totals["accuracy"] is not None else "–")

st.subheader("By source")
rate = st.column_config.NumberColumn(format="%.3f")
st.dataframe(pd.DataFrame(explore.errors_by_source(scores, threshold)), hide_index=True,
             column_config={c: rate for c in ("FP rate", "FN rate", "error rate")})
st.caption("FP rate: share of the source's reals called fake. FN rate: share of its fakes passed as real. "
           "Sources with only fakes (basemax) can have no false positives.")


@st.cache_data(show_spinner=False, max_entries=16)
def cached_phi(name: str, folder: str, stamp: float):
    return aggregate.load_cache(name, "test", folder)


def drivers(name: str, scores, threshold: float) -> None:
    """What drives the mistakes: cached region Shapley values aggregated over the FPs and the FNs."""
    st.subheader("What drives the mistakes")
    folder = eval_file(name, "test").parent  # the Shapley cache sits next to the evaluation cache it joins
    path = aggregate.cache_path(name, "test", folder)
    phi = cached_phi(name, str(folder), path.stat().st_mtime if path.is_file() else 0.0)
    if phi is None:
        if name in aggregate.CACHED_MODELS:
            st.info(f"No region Shapley values cached for {name} (`{path.name}`): run `make eval`.")
        else:
            st.info(f"No region Shapley values cached for {name}: `make eval` caches them for "
                    f"{' and '.join(aggregate.CACHED_MODELS)} only. For {name}: `python -m explain.shapley_cache "
                    f"--models {name} --split test`.")
        return
    if aggregate.is_stale(name, "test", folder):
        st.warning(f"The model file of {name} is newer than `{path.name}`: run `make eval`.")
    m = aggregate.mistakes(phi, scores, threshold)
    if m.missing and len(m.missing) == m.n_fp + m.n_fn:
        st.info(f"`{path.name}` covers none of these {len(m.missing):,} mistakes (made on another dataset?): "
                "run `make eval`.")
        return
    sets = {"False positives": aggregate.aggregate(m.fp, "fake"),
            "False negatives": aggregate.aggregate(m.fn, "real")}
    for label, agg in sets.items():
        st.markdown(aggregate.sentence(label, agg) + ".")
    st.pyplot(aggregate.figure(sets), width="stretch")  # full width: its text at least the body's size
    st.caption("Exact region Shapley values (64 coalitions, removed regions blurred), toward fake: how much "
               "each region raised (red) or lowered (blue) P(fake), averaged over the set; \"top region\": the "
               "one pushing hardest toward the wrong verdict. Cached by `make eval` in "
               f"`{path.name}`, at the threshold {threshold:.3f}.")
    no_face = sum(a.no_face for a in sets.values())
    if no_face:
        st.caption(f"{no_face:,} of the {m.n_fp + m.n_fn:,} mistakes have no facial landmarks (mtcnn found "
                   "none): counted, not explained.")
    if m.missing:
        st.caption(f"{len(m.missing):,} mistakes are not in the cache (run `make eval`).")
    reference = {**sets, f"All reals (n={len(m.reals):,}, reference)": aggregate.aggregate(m.reals, "real"),
                 f"All fakes (n={len(m.fakes):,}, reference)": aggregate.aggregate(m.fakes, "fake")}
    with st.expander("Per region, as a table (with all reals and all fakes for reference)"):
        st.dataframe(pd.DataFrame([{"set": label, **r} for label, a in reference.items() for r in a.table()]),
                     hide_index=True, column_config={
                         "mean φ (P(fake))": st.column_config.NumberColumn(format="%+.3f"),
                         "mean |φ|": st.column_config.NumberColumn(format="%.3f"),
                         "top region in": st.column_config.NumberColumn(format="percent")})


drivers(name, scores, threshold)


def request_explain(row: dict, model: str) -> None:
    """Button callback: remember the image; the next script run (top of the page) opens it on the Explain page."""
    st.session_state[OPEN_KEY] = {**row, "model": model}


def gallery(rows: list[dict], kind: str, order: str) -> None:
    sources = explore.sources_in(rows)
    c1, c2 = st.columns([1, 1])
    source = c1.selectbox("Source", ["all", *sources], key=f"errors_{kind}_source")
    shown = explore.filter_images(rows, source=None if source == "all" else source)
    n_pages = explore.paginate(shown, 1)[2]
    page = c2.number_input(f"Page (of {n_pages})", 1, n_pages, 1, key=f"errors_{kind}_page_{name}_{source}")
    items, page, _ = explore.paginate(shown, page)
    if not shown:
        st.success("None.")
        return
    st.caption(f"{len(shown):,} {order}. Thumbnails are {explore.THUMB_SIZE} px, made now; **Explain** opens the "
               "image on the Explain page with this model.")
    # One fixed-length line per caption (P(fake), the name cut in the middle); the full name is in the tooltip.
    thumbnail_grid(items, caption=lambda r: gallery_caption(r["file"], r["p_fake"])[0],
                   key=lambda r: f"errors_explain_{kind}_{r['file']}", on_click=request_explain,
                   args=lambda r: (r, name))
    with st.expander(f"All {len(shown):,} as a table"):
        st.dataframe(pd.DataFrame(shown)[["file", "source", "kind", "p_fake"]], hide_index=True,
                     column_config={"p_fake": st.column_config.ProgressColumn(
                         "P(fake)", min_value=0.0, max_value=1.0, format="%.3f")})


tab_fp, tab_fn = st.tabs([f"False positives ({len(fp):,})", f"False negatives ({len(fn):,})"])
with tab_fp:
    gallery(fp, "fp", "reals called fake, highest P(fake) first")
with tab_fn:
    gallery(fn, "fn", "fakes passed as real, lowest P(fake) first")
missing = explore.missing_files(fp + fn)
if missing:
    st.warning(f"{len(missing)} scored files are missing under `{root}` (e.g. {missing[0]['file']}).")

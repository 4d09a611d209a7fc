"""Batch: score many images or zip archives at once; results table, histogram, CSV, report, open in Explain."""

import io

import pandas as pd
import streamlit as st

from explain import aggregate
from models.analysis import catalog
from models.analysis.display import RowThumbnails, batch_display_rows
from models.analysis.plots import histogram_figure
from models.analysis.video import face_number
from models.data.intake import ImageLoadError
from models.scoring.archive import upload_items
from models.scoring.batch import CSV_COLUMNS, BatchRun, Row, crop_loader, unique_names, write_csv
from models.video.inputs import read_upload, score_rows
from models.video.score import split_fragment
from pages._shared import (
    ensure_navigation,
    get_detector,
    installed_models,
    model_select,
    open_in_explain,
)

ensure_navigation()
st.title("Batch")
st.caption("Score a folder's worth of face photos at once: upload many images, video clips, or zip archives of them. "
           "Every face found gets a row (a clip: one per face track and sampled frame, its path `clip.mp4#t=1.250`); "
           "bad files get a one-line error and the rest of the batch goes on.")

PAGE_MAX_FILES = 5_000  # image files per archive on this page
PAGE_MAX_BYTES = 1024**3  # uncompressed bytes per archive on this page
STATE = "batch_state"

names = installed_models()
with st.sidebar:
    model_name = model_select(names, key="batch_model")
    crop = st.radio("Face crop", ["auto", "face", "none"], horizontal=True, key="batch_crop",
                    help="auto: every face found, cropped as the training data was (centre square if none); "
                         "face: images without a face are errors; none: the images already are face crops.")

uploads = st.file_uploader("Images, videos or .zip archives", accept_multiple_files=True, key="batch_upload",
                           help="Any file is accepted; one that is neither an image nor a video gets a one-line "
                                "reason in its row. Clips: 32 frames sampled evenly (the Video page shows one "
                                "clip in depth).")
st.caption(f"Archives: up to {PAGE_MAX_FILES:,} images and {PAGE_MAX_BYTES / 1024**3:.0f} GiB uncompressed each; "
           "nested archives and unsafe names (absolute, `..`) are refused; nothing is extracted to disk.")
if not uploads:
    st.info("Upload face images (JPEG, PNG, WebP, BMP, GIF, TIFF) or .zip archives of them.")
    st.stop()

# Each upload is itself (file_id), even when two share a file name: the second photo.jpg shows as "photo.jpg (2)".
shown = unique_names(up.name for up in uploads)
files = {name: up.getvalue() for name, up in zip(shown, uploads)}
own_names = {name: up.name for name, up in zip(shown, uploads)}
batch_key = (tuple(up.file_id for up in uploads), model_name, crop)


def pixels_of(name: str):
    """Decode an input again by its display name (``upload.jpg`` or ``archive.zip!inner/path.jpg``), guarded."""
    return read_upload(name, files, own_names)


def start():
    st.session_state[STATE] = BatchRun(batch_key)


def stop():
    state = st.session_state.get(STATE)
    if state is not None:
        state.cancel()


OPEN = "batch_open"
if OPEN in st.session_state:  # set by an "Explain" click (callbacks cannot switch pages themselves)
    path, face, box, summary = st.session_state.pop(OPEN)
    try:
        pixels = pixels_of(path)
        if split_fragment(path)[1] is not None:  # a clip's frame: its track number is not the face's number
            face = face_number(pixels, box) if box else None
        open_in_explain(path, pixels=pixels, origin="batch", face=face, model=model_name,
                        provenance={"summary": summary} if summary else None)
    except (ImageLoadError, KeyError, OSError) as exc:
        st.error(f"Cannot open {path}: {exc}")

state: BatchRun | None = st.session_state.get(STATE)
if state is not None and state.key != batch_key:
    state = None  # other files, model or crop: old results no longer apply
n_files = len(uploads)
left, right = st.columns([1, 1])
left.button(f"Score {n_files} upload{'s' if n_files != 1 else ''} with {model_name}", type="primary",
            key="batch_start", on_click=start, disabled=bool(state and state.status == "running"))
if state is not None and state.status == "running":
    right.button("Cancel", key="batch_cancel", on_click=stop, help="Stops after the current chunk; rows scored so "
                 "far are kept.")
    detector = get_detector(model_name)
    bar = st.progress(0.0, text="Scoring…")
    items = upload_items(((name, files[name], own_names[name]) for name in shown), max_files=PAGE_MAX_FILES,
                         max_total_bytes=PAGE_MAX_BYTES)
    state.score(detector, items, crop=crop, thumbnail=RowThumbnails(pixels_of), scorer=score_rows,
                progress=lambda: bar.progress(*state.progress(n_files)))
    bar.empty()
    st.rerun()  # redraw the buttons above (Score enabled again, Cancel gone)

if state is None:
    st.stop()

rows: list[Row] = state.rows
if state.status == "cancelled":
    st.warning(f"Cancelled: {len(state.done)} files scored before the stop; their rows are kept below.")
if state.limit:
    st.error(f"{state.limit}. The files before it were scored and are kept.")
for note in state.notes[:20]:
    st.caption(f"Note: {note}")
if not rows:
    st.info("Nothing scored yet.")
    st.stop()

detector = get_detector(model_name)
c = st.columns(5)
for col, (label, value) in zip(c, state.counts().items()):
    col.metric(label, value)
st.caption(f"{model_name} at threshold {detector.threshold:.2f}; {state.seconds:.1f} s in all.")
st.caption(catalog.score_note(catalog.default_generalisation()))

# Full width, the columns that matter first (crop, file, P(fake), verdict, error) in widths that fit 1400 px;
# where the crop came from in one "box" column; the model is the caption above (and a CSV column).
event = st.dataframe(
    pd.DataFrame(batch_display_rows(state.table())), hide_index=True, key="batch_table", on_select="rerun",
    selection_mode="single-row", row_height=56,
    column_config={
        "thumbnail": st.column_config.ImageColumn("crop", width=64, help="The crop scored"),
        "path": st.column_config.TextColumn("file", width=140),
        "p_fake": st.column_config.ProgressColumn("P(fake)", min_value=0.0, max_value=1.0, format="%.3f",
                                                  width=110),
        "verdict": st.column_config.TextColumn("verdict", width=60),
        "unsure": st.column_config.TextColumn("unsure", width=120,
                                              help="P(fake) varies a lot over flipped and slightly shifted views of the crop, "
                                              "or lies very close to the threshold"),
        "error": st.column_config.TextColumn("error", width=245, help="Why the file was not scored (click a cell to read it all)"),
        "box": st.column_config.TextColumn("box", width=135, help="The crop scored: which face, its width x height "
                                           "and top-left corner in the image (EXIF-upright pixels)"),
    })
st.caption("Click a column header to sort; select a row to explain it.")
left, right = st.columns([3, 2])
with left:
    if scored := state.p_fakes():
        st.pyplot(histogram_figure(scored, detector.threshold), width="stretch")  # ~600 px: its own size
with right:
    buf = io.StringIO()
    write_csv(rows, buf)
    st.download_button("Download CSV", buf.getvalue().encode(), file_name="deepfake_lens_batch.csv",
                       mime="text/csv", key="batch_csv", help="Columns: " + ",".join(CSV_COLUMNS))
    st.caption("One row per face (per image for crop \"none\"); same-named uploads are numbered "
               "(photo.jpg, photo.jpg (2)) in the table and the CSV `path`.")

selected = event.selection.rows if event is not None else []
if selected:
    row = rows[selected[0]]
    label = row.path + (f" (face {row.face})" if row.face else "")
    if row.error:
        st.error(row.error)
    else:
        if row.provenance:
            st.caption(f"Provenance of {row.path} (what the file declares, not part of the score): {row.provenance}")
        st.button(f"Explain {label}", key="batch_explain", type="primary",
                  on_click=lambda path=row.path, face=row.face, box=row.box, prov=row.provenance:
                  st.session_state.update({OPEN: (path, face, box, prov)}))

SHAPLEY = "batch_shapley_state"


def row_key(row: Row) -> str:
    return row.path + (f" (face {row.face})" if row.face else "")


def region_drivers(rows: list[Row]) -> None:
    """Region Shapley values of every scored face (kept across reruns), aggregated by verdict."""
    kept = st.session_state.get(SHAPLEY)
    if kept is None or kept["key"] != batch_key:
        kept = st.session_state[SHAPLEY] = {"key": batch_key, "rows": {}}
    done: dict = kept["rows"]
    scored = {row_key(r): r for r in rows if r.error is None}
    todo = [k for k in scored if k not in done]
    if todo:
        detector = get_detector(model_name)
        load = crop_loader(rows, pixels_of, size=128, recipe=detector.crop_recipe)  # the crops scored
        bar = st.progress(0.0, text="Region Shapley values…")
        for phi in aggregate.phi_rows(detector, todo, lambda k: load(scored[k].to_csv_dict()),
                                      progress=lambda d, t: bar.progress(d / t, text=f"Region Shapley values: "
                                                                         f"{d}/{t} faces")):
            done[phi.path] = phi
        bar.empty()
    sets = aggregate.verdict_sets([done[k] for k in scored], {k: r.verdict for k, r in scored.items()})
    aggs = {"Fake verdicts": aggregate.aggregate(sets["fake"], "fake"),
            "Real verdicts": aggregate.aggregate(sets["real"], "real")}
    for label, agg in aggs.items():
        st.markdown(aggregate.sentence(label, agg) + ".")
    st.pyplot(aggregate.figure(aggs), width="stretch")  # full width: its text at least the body's size
    st.caption("Exact region Shapley values (64 coalitions, removed regions blurred), toward fake: how much "
               "each region raised (red) or lowered (blue) P(fake), averaged over the faces with that verdict; "
               "\"top region\": the one pushing hardest toward the verdict.")
    no_face = sum(a.no_face for a in aggs.values())
    if no_face:
        st.caption(f"{no_face:,} of {len(scored):,} faces have no facial landmarks (mtcnn found none): "
                   "counted, not explained.")


if st.toggle("Which regions drive these verdicts (region Shapley)", key="batch_shapley",
             help="About 0.2-0.4 s per face on a CPU; results are kept while the batch stays the same."):
    region_drivers(rows)

with st.expander("HTML report for a presentation"):
    top_n = st.number_input("Explain the N most suspicious faces", 1, 20, 5, key="batch_report_n")
    if st.toggle("Prepare the report", key="batch_report"):
        from explain.report.batch import batch_report

        bar = st.progress(0.0, text="Explaining the most suspicious faces…")
        load = crop_loader(rows, pixels_of, size=128, recipe=get_detector(model_name).crop_recipe)  # what was scored
        html = batch_report([r.to_csv_dict() for r in rows], load, model=model_name, top_n=int(top_n),
                            progress=lambda f, m="": bar.progress(min(1.0, f), text=m or "Explaining…"))
        bar.empty()
        st.download_button("Download HTML report", html.encode(), file_name="deepfake_lens_batch_report.html",
                           mime="text/html", key="batch_report_download")

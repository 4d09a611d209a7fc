"""Batch: score many images or zip archives at once; results table, histogram, CSV, report, open in Explain."""

import base64
import io
import time

import pandas as pd
import streamlit as st

from models.analysis.explore import jpeg_bytes
from models.analysis.plots import histogram_figure
from models.data.intake import ImageLoadError, load_image
from models.scoring.archive import ArchiveLimitError, Item, is_archive_name, iter_zip
from models.scoring.batch import CSV_COLUMNS, Row, row_thumbnail, write_csv
from pages._shared import (
    UPLOAD_TYPES,
    ensure_navigation,
    get_detector,
    installed_models,
    model_select,
    open_in_explain,
)

ensure_navigation()
st.title("Batch")
st.caption("Score a folder's worth of face photos at once: upload many images, or zip archives of them. Every face "
           "found gets a row; bad files get a one-line error and the rest of the batch goes on.")

PAGE_MAX_FILES = 5_000  # image files per archive on this page
PAGE_MAX_BYTES = 1024**3  # uncompressed bytes per archive on this page
STATE = "batch_state"

names = installed_models()
with st.sidebar:
    model_name = model_select(names, key="batch_model")
    crop = st.radio("Face crop", ["auto", "face", "none"], horizontal=True, key="batch_crop",
                    help="auto: every face found, cropped as the training data was (centre square if none); "
                         "face: images without a face are errors; none: the images already are face crops.")

uploads = st.file_uploader("Images or .zip archives", type=[*UPLOAD_TYPES, "zip"], accept_multiple_files=True,
                           key="batch_upload")
st.caption(f"Archives: up to {PAGE_MAX_FILES:,} images and {PAGE_MAX_BYTES / 1024**3:.0f} GiB uncompressed each; "
           "nested archives and unsafe names (absolute, `..`) are refused; nothing is extracted to disk.")
if not uploads:
    st.info("Upload face images (JPEG, PNG, WebP, BMP, GIF, TIFF) or .zip archives of them.")
    st.stop()

files = {up.name: up for up in uploads}
batch_key = (tuple((up.name, up.size) for up in uploads), model_name, crop)


def items():
    """The uploads as models.archive Items, zips expanded lazily and safely."""
    for up in uploads:
        if is_archive_name(up.name) and up.name.lower().endswith(".zip"):
            yield from iter_zip(up.getvalue(), up.name, max_files=PAGE_MAX_FILES, max_total_bytes=PAGE_MAX_BYTES)
        elif is_archive_name(up.name):
            yield Item(up.name, error=f"{up.name}: only .zip archives are opened")
        else:
            yield Item(up.name, data=up.getvalue())


def pixels_of(name: str):
    """Decode an input again by its display name (``upload.jpg`` or ``archive.zip!inner/path.jpg``)."""
    import zipfile

    outer, _, inner = name.partition("!")
    up = files[outer]
    if inner:
        with zipfile.ZipFile(io.BytesIO(up.getvalue())) as zf:
            return load_image(zf.read(inner), name=name)
    return load_image(up.getvalue(), name=name)


def start():
    st.session_state[STATE] = {"key": batch_key, "status": "running", "rows": [], "thumbs": [], "done": set(),
                               "notes": [], "limit": None, "seconds": 0.0}


def stop():
    state = st.session_state.get(STATE)
    if state and state["status"] == "running":
        state["status"] = "cancelled"


OPEN = "batch_open"
if OPEN in st.session_state:  # set by an "Explain" click (callbacks cannot switch pages themselves)
    path, face = st.session_state.pop(OPEN)
    try:
        open_in_explain(path, pixels=pixels_of(path), origin="batch", face=face)
    except (ImageLoadError, KeyError, OSError) as exc:
        st.error(f"Cannot open {path}: {exc}")

state = st.session_state.get(STATE)
if state is not None and state["key"] != batch_key:
    state = None  # other files, model or crop: old results no longer apply
n_files = len(uploads)
left, right = st.columns([1, 1])
left.button(f"Score {n_files} upload{'s' if n_files != 1 else ''} with {model_name}", type="primary",
            key="batch_start", on_click=start, disabled=bool(state and state["status"] == "running"))
if state is not None and state["status"] == "running":
    right.button("Cancel", key="batch_cancel", on_click=stop, help="Stops after the current chunk; rows scored so "
                 "far are kept.")
    detector = get_detector(model_name)
    bar = st.progress(0.0, text="Scoring…")
    started = time.perf_counter()
    thumb_cache = {}

    def thumbnail(row: Row):
        if row.error or row.box is None:
            return None
        if row.path not in thumb_cache:
            thumb_cache.clear()  # one image at a time: memory stays flat
            try:
                thumb_cache[row.path] = pixels_of(row.path)
            except (ImageLoadError, KeyError, OSError):
                return None
        small = row_thumbnail(thumb_cache[row.path], row, size=64)
        return None if small is None else "data:image/jpeg;base64," + base64.b64encode(jpeg_bytes(small)).decode()

    todo = (it for it in items() if it.name not in state["done"])

    def on_note(item):
        state["notes"].append(item.note)

    def progress(n):
        bar.progress(min(1.0, (len(state["done"]) + 1) / max(n_files, len(state["done"]) + 1)),
                     text=f"Scored {len(state['rows'])} faces from {len(state['done'])} files…")

    try:
        from models.scoring.batch import score_items

        # Small chunks when faces are detected (~0.3 s per photo), so that Cancel takes effect quickly.
        chunk = 64 if crop == "none" else 8
        for row in score_items(detector, todo, crop=crop, batch_size=chunk, on_note=on_note, progress=progress,
                               should_stop=lambda: state["status"] != "running"):
            state["rows"].append(row)
            state["thumbs"].append(thumbnail(row))
            state["done"].add(row.path)
    except ArchiveLimitError as exc:
        state["limit"] = str(exc)
    state["seconds"] += time.perf_counter() - started
    if state["status"] == "running":
        state["status"] = "done"
    bar.empty()
    st.rerun()  # redraw the buttons above (Score enabled again, Cancel gone)

if state is None:
    st.stop()

rows: list[Row] = state["rows"]
if state["status"] == "cancelled":
    st.warning(f"Cancelled: {len(state['done'])} files scored before the stop; their rows are kept below.")
if state["limit"]:
    st.error(f"{state['limit']}. The files before it were scored and are kept.")
for note in state["notes"][:20]:
    st.caption(f"Note: {note}")
if not rows:
    st.info("Nothing scored yet.")
    st.stop()

detector = get_detector(model_name)
ok = [r for r in rows if r.error is None]
errors = [r for r in rows if r.error is not None]
c = st.columns(5)
c[0].metric("Files", len(state["done"]))
c[1].metric("Faces scored", len(ok))
c[2].metric("Fake", sum(r.verdict == "fake" for r in ok))
c[3].metric("Real", sum(r.verdict == "real" for r in ok))
c[4].metric("Errors", len(errors))
st.caption(f"{model_name} at threshold {detector.threshold:.2f}; {state['seconds']:.1f} s in all.")

table = pd.DataFrame([{"thumbnail": t, **r.to_csv_dict()} for r, t in zip(rows, state["thumbs"])])
table["p_fake"] = pd.to_numeric(table["p_fake"], errors="coerce")
table = table[["thumbnail", "path", "p_fake", "verdict", "face", "crop", "error", "box_x", "box_y", "box_w", "box_h",
               "model"]]
left, right = st.columns([2.2, 1])
with left:
    event = st.dataframe(
        table, hide_index=True, key="batch_table", on_select="rerun", selection_mode="single-row",
        column_config={
            "thumbnail": st.column_config.ImageColumn("crop scored", width="small"),
            "path": st.column_config.TextColumn("file", width="medium"),
            "p_fake": st.column_config.ProgressColumn("P(fake)", min_value=0.0, max_value=1.0, format="%.3f"),
        })
    st.caption("Click a column header to sort; select a row to explain it.")
with right:
    if ok:
        st.pyplot(histogram_figure([r.p_fake for r in ok], detector.threshold), width="stretch")
    buf = io.StringIO()
    write_csv(rows, buf)
    st.download_button("Download CSV", buf.getvalue().encode(), file_name="deepfake_lens_batch.csv",
                       mime="text/csv", key="batch_csv", help="Columns: " + ",".join(CSV_COLUMNS))

selected = event.selection.rows if event is not None else []
if selected:
    row = rows[selected[0]]
    label = row.path + (f" (face {row.face})" if row.face else "")
    if row.error:
        st.error(row.error)
    else:
        st.button(f"Explain {label}", key="batch_explain", type="primary",
                  on_click=lambda path=row.path, face=row.face: st.session_state.update({OPEN: (path, face)}))

with st.expander("HTML report for a presentation"):
    top_n = st.number_input("Explain the N most suspicious faces", 1, 20, 5, key="batch_report_n")
    if st.toggle("Prepare the report", key="batch_report"):
        from explain.report import batch_report

        bar = st.progress(0.0, text="Explaining the most suspicious faces…")
        by_key = {(r.path, str(r.face or "")): r for r in rows}

        def load(r):  # the exact 128 px crop the model scored
            row = by_key[(r["path"], str(r.get("face") or ""))]
            return row_thumbnail(pixels_of(row.path), row, size=128)

        html = batch_report([r.to_csv_dict() for r in rows], load, model=model_name, top_n=int(top_n),
                            progress=lambda f, m="": bar.progress(min(1.0, f), text=m or "Explaining…"))
        bar.empty()
        st.download_button("Download HTML report", html.encode(), file_name="deepfake_lens_batch_report.html",
                           mime="text/html", key="batch_report_download")

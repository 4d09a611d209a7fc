"""Streamlit glue shared by the pages: cached model loading and the image picker. No detection logic here."""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import numpy as np
import streamlit as st

from models import load_model
from models.analysis.catalog import Sample, builtin_samples, load_sample
from models.analysis.display import shown_photo, thumbnail_jpeg
from models.data.files import data_root
from models.data.intake import ImageLoadError, load_image
from models.data.provenance import read_provenance

UPLOAD_TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff"]


def ensure_navigation() -> None:
    """Make sure the app runs under ``st.navigation`` (streamlit_app.py), never Streamlit's legacy mode.

    Streamlit switches to its legacy multipage mode (every file of ``pages/`` listed by file name, the
    entry script skipped) when a ``pages/`` folder sits next to the entry script and the first request
    of the server process opens a page directly. Each page calls this first: it leaves legacy mode and
    reruns, so ``streamlit_app.py`` builds the real navigation and opens the requested page.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def _memo_store() -> OrderedDict:
    return st.session_state.setdefault("_explanations", OrderedDict())


def memo(key: tuple, compute, max_entries: int = 96):
    """Cache ``compute()`` under ``key`` for this browser session only (an LRU of ``max_entries``).

    Per session on purpose: results derived from an uploaded image are never shared with other users.
    Unlike ``st.cache_data``, ``compute`` may update Streamlit elements created outside it (progress bars),
    which long explanations need. Put everything the result depends on in ``key``; hash images with
    :func:`image_key`.
    """
    store = _memo_store()
    if key in store:
        store.move_to_end(key)
        return store[key]
    value = compute()
    store[key] = value
    while len(store) > max_entries:
        store.popitem(last=False)
    return value


def image_key(image: np.ndarray) -> str:
    return f"{image.shape}:{hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()}"


def installed_models() -> list[str]:
    """The installed model names; the page stops with one clear line when there are none."""
    from models import list_models

    names = list_models()
    if not names:
        st.error("No models installed under `assets/models/`. Train one with `python -m models.train`.")
        st.stop()
    return names


def model_select(names: list[str], key: str | None = None, label: str = "Model", prefer: str | None = None) -> str:
    """A model picker that opens on ``prefer`` when installed, else the shipped default (``assets/models/DEFAULT``)."""
    from models import default_model_name

    default = prefer if prefer in names else default_model_name()
    return st.selectbox(label, names, index=names.index(default) if default in names else 0, key=key)


@st.cache_resource(show_spinner="Loading model…", max_entries=32)
def _cached_detector(name: str, stamp: tuple):
    return load_model(name)


def get_detector(name: str):
    """The installed model ``name``, loaded once per server; reloaded when its file or metadata JSON changes
    (a saved operating point or a new calibration takes effect at once)."""
    return _cached_detector(name, _stamp(name))


def _stamp(name: str) -> tuple:
    """When model ``name``'s file and metadata JSON last changed: part of every cache key derived from it."""
    from models.detectors.registry import resolve_model_path

    path = resolve_model_path(name)
    meta = path.with_suffix(".json")
    return path.stat().st_mtime, meta.stat().st_mtime if meta.is_file() else 0.0


get_detector.clear = _cached_detector.clear


@st.cache_data(show_spinner=False)
def _samples(root: str | None) -> list[Sample]:
    return builtin_samples(root)


def samples() -> list[Sample]:
    """Built-in samples, plus test-split images when DEEPFAKE_DATA points at a dataset (cached per root)."""
    root = data_root()
    return _samples(str(root) if (root / "test").is_dir() else None)


@st.cache_data(show_spinner=False, max_entries=64)
def sample_pixels(sample: Sample) -> np.ndarray:
    return load_sample(sample)


HANDOFF_KEY, HANDOFF_FRESH = "_handoff_image", "_handoff_fresh"


def open_in_explain(name: str, *, path: str | None = None, pixels: np.ndarray | None = None, origin: str = "batch",
                    truth: str | None = None, source: str | None = None, face: int | None = None,
                    edited: tuple[str, ...] = (), model: str | None = None, provenance: dict | None = None) -> None:
    """Hand one image (a file path or decoded pixels) to the Explain page and switch to it.

    The Explain (and Predict) page's image picker then offers it as "From <origin>" and selects it.
    Call from a button callback or the script body; the image stays in this session only.
    """
    if path is None and pixels is None:
        raise ValueError("open_in_explain needs a path or pixels")
    st.session_state[HANDOFF_KEY] = {"name": name, "path": path, "pixels": pixels, "origin": origin,
                                     "truth": truth, "source": source, "edited": tuple(edited),
                                     "provenance": provenance}
    st.session_state[HANDOFF_FRESH] = True
    if model is not None:  # explain with the model the verdict came from
        st.session_state["explain_model"] = model
    if face is not None:  # 1-based, largest first, as in the batch CSV: preselect that face
        st.session_state["explain_face"] = int(face) - 1
    else:
        st.session_state.pop("explain_face", None)
    st.switch_page("pages/explain.py")


def show_image_error(exc: ImageLoadError) -> None:
    """An intake error as a person reads it: its one plain line, then the decoder's own words in a closed
    "Technical detail" expander (when there are any)."""
    st.error(str(exc))
    detail = getattr(exc, "detail", "")
    if detail:
        with st.expander("Technical detail"):
            st.code(detail, language=None, wrap_lines=True)


DEMO_MODE = "Demo pair"
DEMO_MODEL = "detector_v2"  # the model the demo is made for (trained on such blends); detector_v1 is shown beside


def image_mode(key: str = "img", demo: bool = False) -> str:
    """The "Image" radio: ``Demo pair`` (when ``demo``), ``Sample``, ``Upload``, and ``From <origin>`` while an
    image handed over by :func:`open_in_explain` waits (selected the moment it arrives)."""
    handed = st.session_state.get(HANDOFF_KEY)
    modes = ([DEMO_MODE] if demo else []) + ["Sample", "Upload"] + (["From " + handed["origin"]] if handed else [])
    if handed and st.session_state.pop(HANDOFF_FRESH, False):
        st.session_state[f"{key}_mode"] = modes[-1]  # just handed over: show it
    return st.radio("Image", modes, horizontal=True, key=f"{key}_mode")


def pick_image(key: str = "img", mode: str | None = None) -> tuple[np.ndarray | None, str | None, Sample | None]:
    """Upload or sample picker (``mode`` from :func:`image_mode`, which is called here when not given). Returns
    (pixels, name, sample); shows a one-line error (:func:`show_image_error`) on bad input."""
    handed = st.session_state.get(HANDOFF_KEY)
    mode = mode or image_mode(key)
    if handed and mode == "From " + handed["origin"]:
        try:
            pixels = handed["pixels"] if handed["pixels"] is not None else load_image(handed["path"])
        except ImageLoadError as exc:
            show_image_error(exc)
            return None, None, None
        truth = handed.get("truth")
        sample = Sample(handed["name"], handed.get("path"), truth=truth, source=handed.get("source"),
                        edited=handed.get("edited", ())) if truth else None
        prov = handed.get("provenance")
        if prov is None and handed.get("path"):
            prov = file_provenance(handed["path"])
        st.session_state[f"{key}_provenance"] = prov
        return pixels, handed["name"], sample
    if mode == "Upload":
        # Any file is accepted: intake says in one plain line why one is not an image (a PDF, an SVG drawing...).
        up = st.file_uploader("Upload a face image", key=f"{key}_upload")
        if up is None:
            st.info("Upload a face image (JPEG, PNG, WebP, BMP, GIF or TIFF), or switch to a sample.")
            return None, None, None
        try:
            pixels = load_image(up.getvalue(), name=up.name)
            st.session_state[f"{key}_provenance"] = memo(("provenance", up.file_id),
                                                         lambda: read_provenance(up.getvalue()).to_dict())
            return pixels, up.name, None
        except ImageLoadError as exc:
            show_image_error(exc)
            return None, None, None
    options = samples()
    sample = st.selectbox("Sample", options, format_func=lambda s: s.label, key=f"{key}_sample")
    if all(o.builtin for o in options):
        st.caption("Set `DEEPFAKE_DATA` to a dataset folder to also pick images from its test split.")
    try:
        pixels = sample_pixels(sample)
        st.session_state[f"{key}_provenance"] = file_provenance(sample.path) if sample.path else None
        return pixels, sample.label, sample
    except ImageLoadError as exc:
        show_image_error(exc)
        return None, None, None


@st.cache_data(show_spinner=False, max_entries=256)
def file_provenance(path: str) -> dict:
    """What a file on disk declares about its origin (dataset samples, handed-over paths)."""
    return read_provenance(path).to_dict()


def show_provenance(key: str, verdict: str) -> None:
    """The provenance card of the image :func:`pick_image` picked under ``key``: beside the verdict, never in it."""
    from models.data.provenance import conflict

    prov = st.session_state.get(f"{key}_provenance")
    with st.container(border=True):
        if prov is None:
            st.caption("**Provenance**: not available for this image (a built-in sample, or pixels handed over "
                       "without their file).")
            return
        st.markdown(f"**Provenance** (what the file declares, not part of the score): {prov.get('summary', '')}")
        if disagree := conflict(prov, verdict):
            st.warning(disagree)
        for note in prov.get("notes", []):
            st.caption(note)
        if prov.get("has_gps"):
            st.caption("The file holds a GPS location; it is not shown or exported.")
        st.caption("Metadata can be stripped or forged; a valid signature shows who signed, not that the content is "
                   "true. Missing metadata is unknown, not evidence.")


@st.cache_data(show_spinner=False, max_entries=32)
def _demo_reading(name: str, which: str, stamp: tuple):
    """A model's reading of one of the demo pair (built-in pixels: safe to share across sessions)."""
    from models.analysis import demo

    pair = demo.make_demo()
    return demo.read(get_detector(name), pair.fake if which == "fake" else pair.real)


@st.cache_data(show_spinner=False, max_entries=8)
def _demo_typicality(name: str, stamp: tuple) -> dict:
    from models.analysis import demo

    return demo.typicality(get_detector(name))


def _demo_models(names: list[str], chosen: str) -> list[str]:
    return list(dict.fromkeys(n for n in (chosen, DEMO_MODEL, "detector_v1") if n in names))


def _demo_table(readings: list) -> None:
    import pandas as pd

    st.dataframe(pd.DataFrame([{"model": r.model, "P(fake)": r.p_fake, "verdict": r.label} for r in readings]),
                 hide_index=True, width="stretch",
                 column_config={"P(fake)": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0,
                                                                           format="%.3f")})


def demo_pair(key: str, names: list[str], chosen: str) -> tuple[np.ndarray, str, Sample]:
    """The demo: the real astronaut beside a fake made from her at run time (issue 9's blend), each read by the
    chosen model, detector_v2 and detector_v1. Returns the one the user looks closer at, as :func:`pick_image`."""
    from models.analysis import demo
    from models.analysis.catalog import ASTRONAUT, DEMO_FAKE

    pair = demo.make_demo()
    st.info(f"**Demo.** Left, a real photo (scikit-image's astronaut). Right, a fake made from it just now: "
            f"{pair.edited} was cut out, changed a little in colour, sharpness and position, and blended back "
            f"(outlined in yellow). Does the model see it? `{DEMO_MODEL}` was trained on blends made this way "
            "(from other faces), so this is a demonstration, not a test; `detector_v1` never saw one.")
    models = _demo_models(names, chosen)
    cols = st.columns(2)
    for col, which, title in ((cols[0], "real", "Real: the astronaut"),
                              (cols[1], "fake", f"Fake: {pair.edited} re-blended (edge of the edit in yellow)")):
        with col:
            pixels = pair.real if which == "real" else demo.outline(pair.fake, pair.mask)
            st.image(demo.face_zoom(pixels), caption=f"{title}; the face, cut from the 512 px photo", width=300)
            with st.spinner("Reading the demo pair…"):
                _demo_table([_demo_reading(n, which, _stamp(n)) for n in models])
    st.caption("\"unsure\": the spread of P(fake) over 6 views of the crop (flip, 2 px shifts) is over the model's "
               "δ, or P(fake) is within its ε of the threshold (δ and ε fitted on the validation split). An unsure "
               "result is not a verdict; the side it leans to is shown in brackets.")
    with st.expander("How typical is this demo?"):
        st.caption("The same recipe with 16 other random draws (seeds 0-15): how many of those fakes each model "
                   "calls fake.")
        if st.toggle("Score 16 more demo fakes per model", key=f"{key}_typical"):
            with st.spinner("Scoring 16 demo fakes per model…"):
                rows = [{"model": n, **_demo_typicality(n, _stamp(n))} for n in models]
            st.dataframe(rows, hide_index=True)
    look = st.radio("Look closer at", ["the demo fake", "the astronaut"], horizontal=True, key=f"{key}_demo_pick")
    sample = DEMO_FAKE if look == "the demo fake" else ASTRONAUT
    return sample_pixels(sample), sample.label, sample


def choose_face(image: np.ndarray, key: str, recipe: dict | None = None):
    """Find faces per the sidebar's crop setting, box and number them, let the user pick one. ``recipe``: the
    detector's ``crop_recipe`` (crops made from the photo are finished as the training data was).

    Returns ``(crop, kind, index, crops, shown)``: the chosen 128 px crop, "face"/"center"/"none", the chosen
    face's index (0 = largest), every (face, crop) pair and the photo to show (boxed when faces were found);
    ``crop`` is None when a face was required and none found.
    """
    from models.data.faces import NoFaceError
    from models.scoring.stream import analyse

    with st.sidebar:
        mode = st.radio("Face crop", ["auto", "face", "none"], horizontal=True, key=f"{key}_crop",
                        help="auto: find faces and crop them as the training data was (centre square if none); "
                             "face: require a face; none: the image already is a face crop.")
    try:
        crops, kind, warnings = memo(("faces", image_key(image), mode, str(recipe)),
                                     lambda: analyse(image, mode, recipe=recipe))
    except NoFaceError as exc:
        st.error(f"No face found in this image ({exc}). Switch 'Face crop' to auto or none to analyse it anyway.")
        return None, None, None, [], image
    for w in warnings:
        st.warning(w[0].upper() + w[1:] + ".")
    index = 0
    if len(crops) > 1:
        index = st.selectbox(f"{len(crops)} faces found (numbered on the photo, largest first; the chosen one "
                             "in yellow): which one?", list(range(len(crops))),
                             format_func=lambda i: f"Face {i + 1}", key=f"{key}_face")
    shown = shown_photo(image, crops, kind, chosen=index if len(crops) > 1 else None)
    return crops[index][1], kind, index, crops, shown


def spreads(detector, crops: list, p_fake) -> np.ndarray:
    """``detector.views_spread`` of ``crops`` (their single-view scores ``p_fake``), memoised for this session."""
    key = ("spread", detector.name, tuple(image_key(c) for c in crops), tuple(float(p) for p in p_fake))
    return memo(key, lambda: detector.views_spread(list(crops), p_fake=np.asarray(p_fake, np.float32)))


def show_verdict(detector, crop: np.ndarray, p_fake: float) -> bool:
    """The verdict heading, with "unsure (leans fake|real)" beside it when ``detector.unsure`` says so, and a
    caption with the spread over views. Returns whether the verdict is unsure."""
    from models.detectors.base import N_VIEWS
    from models.detectors.labels import unsure_label

    label = detector.verdict(p_fake)
    spread = float(spreads(detector, [crop], [p_fake])[0])
    unsure = bool(detector.unsure(p_fake, spread))
    badge = ":red-background[FAKE]" if label == "fake" else ":blue-background[REAL]"  # the figures' colours
    extra = f" :orange-background[{unsure_label(label)}]" if unsure else ""
    st.markdown(f"### Verdict: {badge}{extra}")
    u = detector.unsure_settings
    st.caption(f"Spread of P(fake) over {N_VIEWS} views of the crop (flip, 2 px shifts): {spread:.3f}. "
               f"Unsure when the spread is over {u['delta']:g} or P(fake) is within {u['epsilon']:g} of the threshold.")
    return unsure


def show_manipulation_map(detector, crop: np.ndarray, figure=None, explanation=None) -> None:
    """The detector's manipulation map over ``crop`` when it has a map head, else one line saying it does not
    apply. ``figure(fig, name)``: how the page shows a figure (default ``st.image``). ``explanation``: the map
    already computed (e.g. by the page's pipeline run); None: computed here, once per session."""
    from explain import manipulation, render

    if not manipulation.applies(detector):
        st.caption(manipulation.not_applicable_line(detector))
        return
    e = explanation if explanation is not None else memo(("manipulation", detector.name, image_key(crop)),
                                                         lambda: manipulation.explain(detector, crop))
    fig = render.manipulation_overlay(e, crop)
    if figure is not None:
        figure(fig, "manipulation")
    else:
        st.image(render.png(fig), width="stretch")
    st.caption(f"P(manipulated) per pixel from {detector.name}'s map head (red: toward fake): mean "
               f"{e.extras['mean']:.2f}, {e.extras['share_over_half']:.0%} of the pixels at 0.5 or more.")


def explain_cache(model: str, image: np.ndarray, slot=None):
    """The ``cache`` of :func:`explain.pipeline.run` for ``model`` on ``image``: every step memoised for this
    session (:func:`memo`) under the step, the model, the image and the step's parameters. ``slot`` (an
    :class:`explain.queue.Slot`): a step that has to compute first waits its turn in the server's queue."""
    key_of_image = image_key(image)

    def cache(key: tuple, compute):
        return memo((key[0], model, key_of_image, *key[1:]), slot.guard(compute) if slot is not None else compute)

    return cache


def waiting_text(ahead: int) -> str:
    """The queue message: "Waiting for 3 other explanations to finish…"."""
    return f"Waiting for {ahead} other explanation{'s' if ahead != 1 else ''} to finish (one runs at a time)…"


def run_lime(model: str, image: np.ndarray, params, progress=None):
    """LIME (explain.pipeline) for ``model`` on ``image`` with ``params`` (an explain.pipeline.Params), cached per
    session under everything it depends on. ``progress(fraction, message)``."""
    from dataclasses import replace

    from explain import pipeline

    lime_only = replace(params, stability=False, deletion=False)
    bundle = pipeline.run(get_detector(model), image, methods=("lime",), params=lime_only, progress=progress,
                          cache=explain_cache(model, image))
    return bundle.explanations["lime"]


def compare_models(crop: np.ndarray, names: list[str], params=None, key: str = "compare") -> None:
    """Every model on one face: verdicts with P(fake), then their LIME masks side by side (LIME with ``params``,
    an explain.pipeline.Params; None: the defaults)."""
    import pandas as pd

    from explain import render
    from explain.pipeline import Params

    params = Params() if params is None else params
    bar = st.progress(0.0, text="Explaining with every model…")
    items, rows = [], []
    for i, n in enumerate(names):
        det = get_detector(n)

        def step(fraction, message, i=i, n=n):
            bar.progress(min(1.0, (i + fraction) / len(names)), text=f"{n}: {message}")

        e = run_lime(n, crop, params, progress=step)
        items.append((n, e.p_fake, det.verdict(e.p_fake), e))
        rows.append({"model": n, "P(fake)": e.p_fake, "verdict": det.verdict(e.p_fake), "threshold": det.threshold})
    bar.empty()
    overlap = f"top-5 overlap with {names[0]}"
    base = set(items[0][3].extras["top_positive"])
    for row, (_, _, _, e) in zip(rows, items):
        row[overlap] = len(base & set(e.extras["top_positive"])) / max(len(base), 1)
    st.dataframe(pd.DataFrame(rows), hide_index=True, key=f"{key}_table", column_config={
        "P(fake)": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="%.3f"),
        "threshold": st.column_config.NumberColumn(format="%.2f"),
        overlap: st.column_config.NumberColumn(
            format="%.2f", help="Share of the first model's top-5 superpixels that are also in this model's top 5 "
                                "(every model gets the same SLIC superpixels).")})
    data = render.png(render.lime_compare(items, crop))
    st.image(data, width="stretch")
    st.download_button("Download comparison.png", data, file_name="lime_comparison.png", mime="image/png",
                       key=f"{key}_download")


@st.cache_data(show_spinner=False, max_entries=1024)
def thumb(path: str) -> bytes:
    """A small JPEG thumbnail of an image file, made at run time (never stored on disk)."""
    return thumbnail_jpeg(path)


def thumbnail_grid(rows: list[dict], caption, key, on_click, args, per_row: int = 8) -> None:
    """Image files as thumbnails, ``per_row`` to a row, each with its ``caption(row)`` and an Explain button
    (``on_click(*args(row))``, widget key ``key(row)``)."""
    for i, row in enumerate(rows):
        if i % per_row == 0:
            cols = st.columns(per_row)  # one row at a time: thumbnails line up in reading order
        with cols[i % per_row]:
            try:
                st.image(thumb(row["path"]), caption=caption(row))
            except ImageLoadError as exc:
                st.caption(f":red[{exc}]")
            st.button("Explain", key=key(row), on_click=on_click, args=args(row), width="stretch",
                      help=f"Open {row['file']} on the Explain page")

"""Video: score every face of a clip over time, see when and where it turns fake, explain any sampled frame."""

from __future__ import annotations

import hashlib
import io
import time

import pandas as pd
import streamlit as st

from explain.report.video import TRUST, timeline_figure, video_report
from models.analysis import video as view
from models.scoring.batch import write_csv
from models.video.decode import LIMITS
from models.video.run import VideoRun
from models.video.score import FRAMES, VideoResult
from models.video.synth import sample_clip
from pages._shared import DEMO_MODEL, ensure_navigation, get_detector, installed_models, model_select, open_in_explain

ensure_navigation()

SAMPLES = {"Sample: real clip": "real", "Sample: fake clip": "fake"}
STATE, OPEN = "video_state", "video_open"


@st.cache_data(show_spinner="Making the sample clip…", max_entries=4)
def _sample(kind: str) -> bytes:
    return sample_clip(kind)


def _stop() -> None:
    state = st.session_state.get(STATE)
    if state is not None:
        state.cancel()


pending = st.session_state.pop(OPEN, None)
if pending:  # an "Explain" click on a frame (callbacks cannot switch pages themselves)
    open_in_explain(pending["name"], pixels=pending["pixels"], origin="Video", face=pending["face"],
                    model=pending["model"], truth=pending.get("truth"), source=pending.get("source"))

st.title("Video")
st.caption(TRUST)
source = st.radio("Clip", [*SAMPLES, "Upload"], horizontal=True, key="video_source")
names = installed_models()
with st.sidebar:
    model_name = model_select(names, key=None, prefer=DEMO_MODEL if source in SAMPLES else None)
    by_fps = st.toggle("Sample by frames per second", value=False, key="video_by_fps",
                       help=f"Off: {FRAMES} frames spread evenly over the clip (or the number below). On: one frame "
                            "every 1/F seconds.")
    if by_fps:
        fps = st.number_input("Frames per second", 0.1, 30.0, 2.0, step=0.5, key="video_fps")
        frames = FRAMES
    else:
        fps = None
        frames = st.slider("Frames sampled", 8, 96, FRAMES, step=8, key="video_frames")

if source == "Upload":
    up = st.file_uploader(f"Upload a video (mp4, mov, m4v, webm, mkv or avi; up to {LIMITS.max_bytes // 2**20} MB, "
                          f"{LIMITS.max_duration_s / 60:.0f} min)", key="video_upload")
    if up is None:
        st.info("Upload a clip with faces in it, or pick a sample clip made here from a photo.")
        st.stop()
    data, name, truth = up.getvalue(), up.name, None
else:
    data, name, truth = _sample(SAMPLES[source]), f"sample-{SAMPLES[source]}.mp4", SAMPLES[source]
    st.caption("Made now from scikit-image's astronaut with a slow pan and zoom"
               + (": from 30% to 70% of its length her mouth is re-blended, as in Predict's demo pair (the blend "
                  f"generator `{DEMO_MODEL}` was trained on: a demonstration, not a test)." if truth == "fake" else "."))

key = (hashlib.sha1(data).hexdigest(), model_name, frames, fps)
state: VideoRun | None = st.session_state.get(STATE)
if state is None or state.key != key:
    state = st.session_state[STATE] = VideoRun(key)
left, right = st.columns([1, 1])
with left:
    st.video(data)
detector = get_detector(model_name)
if state.thread is None:
    state.start(detector, data, frames=frames, fps=fps, name=name)
if state.busy:
    right.button("Cancel", key="video_cancel", on_click=_stop, disabled=state.status != "running",
                 help="Stops after the current frame; the frames scored so far are kept.")
    bar = right.progress(state.fraction, text=state.text)
    while state.busy:  # poll the scoring thread; a click reruns the page and the thread goes on
        bar.progress(state.fraction, text=state.text)
        time.sleep(0.25)
    if state.status == "running":
        state.status = "done"
    st.rerun()  # redraw without the Cancel button

result: VideoResult = state.result
with right:
    if result.error:
        st.error(result.error)
        if result.detail:
            with st.expander("Technical detail"):
                st.code(result.detail, language=None, wrap_lines=True)
        st.stop()
    badge = {"fake": ":red-background[FAKE]", "real": ":blue-background[REAL]", "unsure": ":orange-background[UNSURE]",
             "no face": ":gray-background[NO FACE]"}[result.verdict]
    st.markdown(f"### Clip: {badge}")
    st.write(view.headline(result))
    c = st.columns(3)
    c[0].metric("Duration", f"{result.duration_s:.1f} s")
    c[1].metric("Frames sampled", result.frames_sampled)
    c[2].metric("Face tracks", len(result.tracks))
    if truth:
        st.caption(f"Ground truth: **{truth}** (a sample made here).")
    for w in result.warnings:
        st.warning(w)
    u = detector.unsure_settings
    st.caption(f"{detector.name} at threshold {detector.threshold:.2f}. A track is unsure when its P(fake) spreads "
               f"over {u['delta']:g} (standard deviation across frames) or its mean is within {u['epsilon']:g} of the "
               "threshold. The clip is fake if any track is confidently fake, real if every track is confidently "
               "real, otherwise unsure.")

if not result.tracks:
    st.stop()
top = result.top_frames(6)
st.subheader("P(fake) over time")
st.pyplot(timeline_figure(result, detector, marks=[(s.time_s, s.p_fake) for _, s in top]), width="stretch")
st.dataframe(pd.DataFrame(view.track_rows(result)), hide_index=True,
             column_config={"P(fake)": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="%.3f")})

st.subheader("The most suspicious frames")
st.caption("The sampled faces with the highest P(fake) (ringed on the timeline). Explain opens that frame with that "
           "face selected.")


def _request(track: int, time_s: float, box) -> None:
    try:
        pixels, face = view.frame_at(data, time_s, box, name=name)
    except Exception as exc:  # a frame that cannot be decoded again: say so on the next run
        st.session_state["video_open_error"] = f"Cannot open the frame at {time_s:.2f} s: {exc}"
        return
    st.session_state[OPEN] = {"name": f"{name}#t={time_s:.3f}", "pixels": pixels, "face": face, "model": model_name,
                              "truth": truth, "source": "sample clip made here" if truth else None}


if err := st.session_state.pop("video_open_error", None):
    st.error(err)
cols = st.columns(len(top))
for col, (track, s) in zip(cols, top):
    with col:
        st.image(s.crop, caption=f"{s.time_s:.2f} s · track {track.track} · P {s.p_fake:.2f}", width="stretch")
        st.button("Explain", key=f"video_explain_{track.track}_{s.time_s:.3f}", on_click=_request,
                  args=(track.track, s.time_s, s.box), width="stretch")

st.subheader("Download")
buf = io.StringIO()
write_csv(result.rows(model_name), buf)  # the predict CLI's columns: one row per (track, sampled frame)
d1, d2 = st.columns(2)
d1.download_button("Download CSV", buf.getvalue().encode(), file_name=f"{name}.csv", mime="text/csv", key="video_csv")
with d2:
    if state.report is None and not state.want_report:
        st.button("Make the HTML report", key="video_make_report", on_click=lambda: setattr(state, "want_report", True),
                  help="The timeline, the tracks and the top 4 faces explained (LIME and Grad-CAM): about 10 s.")
    if state.report is None and state.want_report:
        bar = st.progress(0.0, text="Explaining the top frames…")
        state.report = video_report(result, model=detector, progress=lambda f, t: bar.progress(min(1.0, f), text=t))
        bar.empty()
    if state.report is not None:
        st.download_button("Download report.html", state.report.encode(), file_name=f"{name}.report.html",
                           mime="text/html", key="video_report")

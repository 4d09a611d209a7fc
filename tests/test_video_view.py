"""models.analysis.video (what the Video page shows of a scored clip), the timeline figure and the video report,
on hand-made results (no model, no clip)."""

from __future__ import annotations

import numpy as np
import pytest

from models.analysis import video as view
from models.video.score import VideoResult
from models.video.tracks import Sighting, Track


def result(verdict: str, tracks: list[Track]) -> VideoResult:
    return VideoResult("clip.mp4", verdict=verdict, p_fake=max((t.p_fake for t in tracks), default=None),
                       threshold=0.5, duration_s=4.0, fps=12.0, frames_sampled=8, width=256, height=256,
                       tracks=tracks)


def track(number: int, ps: list[float], verdict: str, unsure: bool = False) -> Track:
    frames = [Sighting(0.5 * i, (10 + i, 20, 60, 60), p) for i, p in enumerate(ps)]
    return Track(number, frames, p_fake=float(np.mean(ps)), spread=float(np.std(ps)), verdict=verdict, unsure=unsure)


def test_headline_names_the_deciding_track():
    fake = result("fake", [track(1, [0.2, 0.3, 0.2, 0.1], "real"), track(2, [0.9, 0.8, 0.95, 0.9], "fake")])
    assert view.headline(fake) == ("Fake: 2 face tracks; track 2 is confidently fake (mean P(fake) 0.89 over "
                                   "4 frames).")
    real = result("real", [track(1, [0.2, 0.1, 0.2, 0.1], "real")])
    assert view.headline(real) == "Real: 1 face track; every track is confidently real."
    unsure = result("unsure", [track(1, [0.5, 0.52, 0.49, 0.5], "fake", unsure=True)])
    assert view.headline(unsure) == "Unsure: 1 face track; track 1 is unsure."
    assert view.headline(result("no face", [])).startswith("No face: no face was tracked in 8 sampled frames")
    broken = VideoResult("x.mp4", error="x.mp4: not a video file")
    assert view.headline(broken) == "x.mp4: not a video file"


def test_track_rows_and_timeline():
    r = result("fake", [track(1, [0.9, 0.8, 0.7, 0.9], "fake"), track(2, [0.5, 0.5, 0.6, 0.4], "real", True)])
    rows = view.track_rows(r)
    assert [row["track"] for row in rows] == [1, 2] and rows[0]["frames"] == 4
    assert (rows[0]["from (s)"], rows[0]["to (s)"]) == (0.0, 1.5)
    assert rows[0]["P(fake)"] == pytest.approx(0.825) and rows[1]["verdict"] == "unsure (leans real)"
    lines = view.timeline_tracks(r)
    assert lines[1] == ([0.0, 0.5, 1.0, 1.5], [0.9, 0.8, 0.7, 0.9])
    from models.analysis.plots import timeline_figure

    fig = timeline_figure(lines, 0.5, 0.05, 4.0, marks=[(0.0, 0.9)])
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.get_lines() if line.get_label().startswith("track")] == ["track 1",
                                                                                                   "track 2"]
    assert ax.get_xlim() == (0.0, 4.0) and any(p.get_label().startswith("unsure band") for p in ax.patches)


def test_face_number_finds_the_tracked_face_in_a_frame():
    from skimage import data

    face = data.astronaut()[0:256, 128:384]
    two = np.ascontiguousarray(np.concatenate([face[:, ::-1], np.zeros((256, 64, 3), np.uint8), face], axis=1))
    from models.data.faces import detect_faces

    faces = detect_faces(two)
    assert len(faces) == 2
    right = max(faces, key=lambda f: f.box[0])
    assert view.face_number(two, right.box) == [f.box for f in faces].index(right.box) + 1
    assert view.face_number(two, (0, 240, 8, 8)) is None  # overlaps no face


def test_video_report_without_kept_crops_says_so():
    from explain.report.video import video_report

    r = result("fake", [track(1, [0.9, 0.8, 0.7, 0.9], "fake")])
    html = video_report(r, model="baseline_cnn", top_n=2)
    assert "clip.mp4" in html and "P(fake) over time per track" in html
    assert html.count("was not kept when the clip was scored") == 2
    assert "screening hint" in html
    broken = video_report(VideoResult("x.mp4", error="x.mp4: not a video file"), model="baseline_cnn")
    assert "x.mp4: not a video file" in broken and "most suspicious" not in broken


def test_a_video_run_scores_in_its_thread_and_a_cancel_keeps_what_was_scored():
    """models.video.run.VideoRun: the page's background scoring, without Streamlit (a stub detector)."""
    import threading

    from models.video.run import VideoRun
    from models.video.synth import make_clip

    class Stub:
        name, threshold, crop_recipe = "stub", 0.5, None
        unsure_settings = {"delta": 0.5, "epsilon": 0.01}

        def predict(self, crops):
            return np.full(len(crops), 0.9, np.float32)

        def unsure(self, p, s):
            return np.zeros(np.shape(p), bool)

        def verdict(self, p):
            return "fake" if p >= self.threshold else "real"

    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        data = make_clip(f"{tmp}/c.mp4", seconds=1.0, fps=8.0, size=(192, 192)).read_bytes()
    run = VideoRun(("k",))
    run.start(Stub(), data, frames=8, fps=None, name="c.mp4")
    run.thread.join(120)
    assert not run.busy and run.result.frames_sampled == 8 and run.fraction == 1.0
    assert run.result.verdict == "fake" and run.status == "running"  # the page marks it done
    stopped = VideoRun(("k2",))
    gate = threading.Event()
    stopped._progress = lambda fraction, text: (stopped.cancel(), gate.set())  # Cancel after the first frame
    stopped.start(Stub(), data, frames=8, fps=None, name="c.mp4")
    stopped.thread.join(120)
    assert gate.is_set() and stopped.status == "cancelled"
    assert stopped.result is not None and stopped.result.cancelled and stopped.result.frames_sampled < 8
    broken = VideoRun(("k3",))
    broken.start(None, data, frames=8, fps=None, name="c.mp4")  # a failure inside the thread: one line, no hang
    broken.thread.join(120)
    assert broken.result.error and broken.result.error.startswith("c.mp4: ") and "\n" not in broken.result.error

"""AppTests of the Video page: the built-in sample clips (made at run time), the timeline, tracks and frame strip,
the CSV, Explain on a frame, the report, and bad uploads."""

from __future__ import annotations

import csv
import io

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import REPO

TIMEOUT = 300


def video_page(source: str | None = None) -> AppTest:
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=TIMEOUT)
    at.run()
    at.switch_page("pages/video.py").run()
    assert not at.exception, at.exception
    if source:
        at.radio(key="video_source").set_value(source).run()
        assert not at.exception, at.exception
    return at


STORED: list[tuple[str, str, bytes]] = []  # (mimetype, file name, data) of every download the page offered


@pytest.fixture(scope="module")
def fake_page():
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    real_store = MemoryMediaFileStorage.load_and_get_id

    def capture(self, path_or_data, mimetype, kind, filename=None):
        STORED.append((mimetype, filename, path_or_data))
        return real_store(self, path_or_data, mimetype, kind, filename)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(MemoryMediaFileStorage, "load_and_get_id", capture)
        yield video_page("Sample: fake clip")


def downloaded(suffix: str) -> str:
    found = [data for _, name, data in STORED if name and name.endswith(suffix)]
    assert found, f"no download named *{suffix}"
    return found[-1].decode() if isinstance(found[-1], bytes) else found[-1]


def test_the_fake_sample_clip_is_scored_like_the_library_does(fake_page):
    from models import load_model
    from models.video.score import score_video
    from models.video.synth import sample_clip

    at = fake_page
    assert at.sidebar.selectbox[0].value == "detector_v2"  # samples are read by the model the blend demo is for
    expected = score_video(load_model("detector_v2"), sample_clip("fake"), name="sample-fake.mp4")
    heading = [m.value for m in at.markdown if m.value.startswith("### Clip:")]
    assert heading == [f"### Clip: {':red-background[FAKE]' if expected.verdict == 'fake' else heading[0][10:]}"]
    assert expected.verdict == "fake"  # the blended middle of the clip is caught
    tracks = [d.value for d in at.dataframe if "spread" in d.value.columns][0]
    assert list(tracks["track"]) == [t.track for t in expected.tracks]
    assert list(tracks["P(fake)"]) == pytest.approx([t.p_fake for t in expected.tracks], abs=1e-5)
    assert {m.label: m.value for m in at.metric}["Frames sampled"] == str(expected.frames_sampled)
    assert any(c.value.startswith("Ground truth: **fake**") for c in at.caption)
    # the timeline and the six most suspicious faces, each with an Explain button
    assert [s.value for s in at.subheader][:2] == ["P(fake) over time", "The most suspicious frames"]
    buttons = [b for b in at.button if b.key.startswith("video_explain_")]
    top = expected.top_frames(6)
    assert [b.key for b in buttons] == [f"video_explain_{t.track}_{s.time_s:.3f}" for t, s in top]


def test_the_csv_has_the_cli_columns_and_one_row_per_track_frame(fake_page):
    from models.scoring.batch import CSV_COLUMNS

    assert "Download CSV" in {b.proto.label for b in fake_page.get("download_button")}
    rows = list(csv.DictReader(io.StringIO(downloaded(".mp4.csv"))))
    assert tuple(rows[0].keys())[: len(CSV_COLUMNS)] == CSV_COLUMNS
    frames = sum(int(n) for n in [d.value for d in fake_page.dataframe if "spread" in d.value.columns][0]["frames"])
    assert len(rows) == frames
    assert all(r["path"].startswith("sample-fake.mp4#t=") and r["face"] for r in rows)


def test_explain_on_a_frame_opens_that_face_in_explain():
    at = video_page("Sample: fake clip")
    first = [b for b in at.button if b.key.startswith("video_explain_")][0]
    first.click().run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Explain"
    assert at.radio(key="explain_mode").value == "From Video"
    assert at.selectbox(key="explain_model").value == "detector_v2"
    handed = at.session_state["_handoff_image"]
    assert handed["name"].startswith("sample-fake.mp4#t=") and handed["pixels"].shape[2] == 3
    assert at.session_state["explain_face"] == 0  # the one face of the frame, preselected


def test_the_report_explains_the_top_faces(fake_page):
    at = fake_page
    at.button(key="video_make_report").click().run()
    assert not at.exception, at.exception
    assert "Download report.html" in {b.proto.label for b in at.get("download_button")}
    html = downloaded(".report.html")
    assert "P(fake) over time per track" in html and html.count('<div class="item">') == 4
    assert "LIME panels" in html and "Grad-CAM" in html


@pytest.mark.parametrize("name, data, words", [
    ("clip.mp4", b"this is a text file, not a video\n" * 20, "not a video file"),
    ("empty.mp4", b"", "empty"),
])
def test_a_bad_upload_gets_one_plain_line(name, data, words):
    at = video_page("Upload")
    at.file_uploader[0].upload(name, data, "video/mp4").run()
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and name in errors[0] and words in errors[0] and "\n" not in errors[0]
    assert not [m for m in at.markdown if m.value.startswith("### Clip:")]


def test_a_clip_without_faces_gets_a_warning_and_no_verdict(tmp_path):
    from models.video.synth import blank, make_clip

    clip = make_clip(tmp_path / "wall.mp4", seconds=1.0, fps=8.0, size=(128, 128), image=blank(256, 256))
    at = video_page("Upload")
    at.file_uploader[0].upload("wall.mp4", clip.read_bytes(), "video/mp4").run()
    assert not at.exception, at.exception
    assert [m.value for m in at.markdown if m.value.startswith("### Clip:")] == ["### Clip: :gray-background[NO FACE]"]
    assert any("no face" in w.value for w in at.warning)
    assert not at.error and "P(fake) over time" not in [s.value for s in at.subheader]

"""Video (issue 15): decoding by content, limits, rotation, keyframe seeks, tracks, the clip's verdict and every
bad input, on clips the tests make with PyAV in tmp_path (no video file is committed). Rule tests use a stub
detector; the real model is loaded once, for the test that a frame's P(fake) is predict's on its crop."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from models.data.intake import ImageLoadError
from models.detectors.labels import unsure_mask
from models.scoring import archive
from models.scoring.batch import BatchRun, Summary
from models.video import decode, synth
from models.video.decode import Limits, VideoError, decode_at, open_video, sample_pts
from models.video.inputs import is_video_item, read_named, read_upload, score_inputs, score_rows
from models.video.score import score_video, split_fragment
from models.video.tracks import Sighting, build_tracks, clip_verdict, link


class Stub:
    """A Detector-like stand-in: P(fake) from ``p(i)`` for the i-th crop it is asked about (threshold 0.5, the
    default unsure band: spread > 0.1 or |p - 0.5| < 0.05)."""

    name, threshold, crop_recipe = "stub", 0.5, None

    def __init__(self, p=0.2):
        self.p, self.calls = p, 0

    def predict(self, images):
        out = []
        for _ in images:
            out.append(self.p(self.calls) if callable(self.p) else self.p)
            self.calls += 1
        return np.asarray(out, np.float32)

    def views_spread(self, images, p_fake=None, batch_size=64):  # photos in a mixed stream
        return np.zeros(len(images), np.float32)

    def verdict(self, p):
        return "fake" if p >= self.threshold else "real"

    def unsure(self, p, spread):
        return unsure_mask(p, spread, self.threshold, 0.1, 0.05)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """The clips most tests share (small: 192-256 px, 1-2 s)."""
    d = tmp_path_factory.mktemp("clips")
    return {
        "face": synth.make_clip(d / "face.mp4", seconds=1.5, fps=8, size=(192, 192)),
        "two": synth.make_clip(d / "two.mp4", seconds=1.5, fps=8, size=(384, 192), image=synth.two_people(384, 192)),
        "blank": synth.make_clip(d / "blank.mp4", seconds=1.0, fps=8, size=(128, 128), image=synth.blank()),
    }


def one_line(exc: BaseException) -> bool:
    return "\n" not in str(exc) and "Traceback" not in str(exc) and len(str(exc)) < 240


# --- decoding ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["mp4", "mov", "m4v", "mkv", "webm", "avi"])
def test_containers_are_read_by_content_not_extension(tmp_path, kind):
    path = synth.make_clip(tmp_path / "clip.dat", seconds=0.5, fps=8, size=(64, 64), container=kind)
    assert decode.sniff_video(path.read_bytes()[:64]) == kind
    assert is_video_item(archive.Item("clip.dat", path=str(path)))
    with open_video(str(path)) as (container, stream, info):
        assert info.container == kind and len(info.pts) == 4
        frames = list(decode_at(container, stream, info, sample_pts(info, 32)))
    assert [round(f.time_s, 3) for f in frames] == [0.0, 0.125, 0.25, 0.375]
    assert frames[0].image.shape == (64, 64, 3) and frames[0].image.dtype == np.uint8


def test_images_and_other_files_are_not_videos(tmp_path):
    from PIL import Image

    Image.fromarray(synth.blank(32, 32)).save(tmp_path / "a.png")
    assert not is_video_item(archive.Item("a.png", path=str(tmp_path / "a.png")))
    assert decode.sniff_video(b"\x00\x00\x00\x1cftypheic" + b"\x00" * 40) is None  # a HEIC photo
    assert decode.sniff_video(b"hello world, I am text" * 3) is None


def test_rotation_from_the_display_matrix_is_honoured(tmp_path):
    # stored 256 wide x 128 high, turned 90 degrees counter-clockwise for display: plays as 128 x 256
    path = synth.make_clip(tmp_path / "phone.mp4", seconds=0.5, fps=4, size=(256, 128), rotation=90)
    frame = decode.read_frame(str(path), 0.0)
    assert frame.rotation == 90 and frame.image.shape == (256, 128, 3)
    expected = synth.view(synth.photo(), 0.0, (128, 256)).astype(float)
    errors = {k: np.abs(np.rot90(frame.image, k).astype(float) - expected).mean() for k in (0, 2)}
    assert errors[0] < 12 and errors[0] < errors[2] / 2  # upright, not upside down
    result = score_video(Stub(), path, frames=2)
    assert (result.width, result.height, result.rotation) == (128, 256, 90)


def test_keyframe_seeks_give_the_frame_at_each_timestamp(tmp_path):
    path = synth.make_clip(tmp_path / "gop.mp4", seconds=3, fps=8, size=(64, 64), options={"g": "6", "bf": "2"})
    with open_video(str(path)) as (container, stream, info):
        assert len(info.keyframes) >= 4  # several groups of pictures
        container.seek(0, stream=stream)
        everything = {int(f.pts): f.to_ndarray(format="rgb24") for f in container.decode(stream)}
        wanted = sample_pts(info, 7)
        frames = list(decode_at(container, stream, info, wanted))
    assert [f.time_s for f in frames] == [info.time_of(p) for p in wanted]
    for pts, frame in zip(wanted, frames):
        assert np.array_equal(frame.image, everything[pts])  # the very frame, not a neighbour


def test_fps_sampling_takes_the_frame_shown_at_each_time(tmp_path):
    path = synth.make_clip(tmp_path / "c.mp4", seconds=2, fps=8, size=(64, 64))
    with open_video(str(path)) as (_c, _s, info):
        times = [info.time_of(p) for p in sample_pts(info, fps=2)]
    assert times == [0.0, 0.5, 1.0, 1.5]


def test_variable_frame_rate_is_timed_by_each_frames_pts(tmp_path):
    path = synth.make_clip(tmp_path / "vfr.mp4", seconds=2, fps=8, size=(128, 128), vfr=True)
    written = np.concatenate([[0.0], np.cumsum(np.where(np.arange(15) % 2 == 0, 0.5, 1.5) / 8)])
    with open_video(str(path)) as (container, stream, info):
        assert info.vfr
        frames = list(decode_at(container, stream, info, sample_pts(info, 5)))
    for f in frames:
        assert np.min(np.abs(written - f.time_s)) < 0.0015  # each sample is a written frame's own time
    result = score_video(Stub(), path, frames=4)
    assert result.error is None and any("variable frame rate" in w for w in result.warnings)


# --- bad input: one line each, never a traceback --------------------------------------------------------------

def test_bad_inputs_get_one_line_errors(tmp_path, clips):
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "text.mp4").write_text("this is not a video\n" * 20)
    whole = clips["face"].read_bytes()
    (tmp_path / "truncated.mp4").write_bytes(whole[: len(whole) // 2])
    synth.make_audio_only(tmp_path / "audio.mp4")
    expect = {"empty.mp4": "empty file", "text.mp4": "not a video file", "truncated.mp4": "damaged or truncated",
              "audio.mp4": "no video track", "missing.mp4": "no such file"}
    for name, words in expect.items():
        result = score_video(Stub(), tmp_path / name, name=name)
        assert result.error is not None and words in result.error and result.error.startswith(name)
        assert "\n" not in result.error and result.verdict is None
        with pytest.raises(ImageLoadError) as caught:  # VideoError is an ImageLoadError: old error paths catch it
            with open_video(str(tmp_path / name), name):
                pass
        assert isinstance(caught.value, VideoError) and one_line(caught.value)
    with pytest.raises(VideoError) as caught:
        with open_video(str(tmp_path / "truncated.mp4")):
            pass
    assert caught.value.detail  # the decoder's own words are kept for the curious


def test_a_cut_clip_with_frames_left_is_scored_with_a_warning(tmp_path):
    path = synth.make_clip(tmp_path / "c.mkv", seconds=2, fps=8, size=(128, 128))
    data = path.read_bytes()
    (tmp_path / "cut.mkv").write_bytes(data[: int(len(data) * 0.9)])
    result = score_video(Stub(), tmp_path / "cut.mkv", frames=8)
    assert result.error is None and result.frames_sampled >= 4 and result.duration_s < 2.0
    assert any("ends early" in w for w in result.warnings)
    assert not any("variable frame rate" in w for w in result.warnings)  # frames missing is not VFR


def test_limits_size_duration_resolution(clips):
    path = str(clips["face"])
    cases = {Limits(max_bytes=1000): "video file too large", Limits(max_duration_s=1.0): "video too long",
             Limits(max_pixels=100 * 100): "video resolution too large"}
    for limits, words in cases.items():
        result = score_video(Stub(), path, limits=limits, name="clip.mp4")
        assert result.error is not None and words in result.error and "\n" not in result.error
    assert Limits().max_bytes == archive.MAX_VIDEO_BYTES == 200 * 1024**2
    assert decode.VIDEO_EXTENSIONS == archive.VIDEO_EXTENSIONS


def test_a_clip_without_a_face_is_a_warning_and_no_face(clips):
    result = score_video(Stub(), clips["blank"], frames=8)
    assert result.error is None and result.verdict == "no face" and result.p_fake is None
    assert result.frames_sampled == 8 and result.tracks == []
    assert any("no face" in w for w in result.warnings)
    rows = result.rows("stub")
    assert len(rows) == 1 and rows[0].verdict == "no face" and rows[0].p_fake is None and rows[0].error is None


# --- tracks and the clip's verdict -----------------------------------------------------------------------------

def sightings(boxes_per_frame, p=0.2):
    return [[Sighting(i * 0.5, box, p) for box in boxes] for i, boxes in enumerate(boxes_per_frame)]


def test_link_follows_two_people_and_survives_a_missed_frame():
    left = [(10 + 2 * i, 20, 40, 50) for i in range(6)]
    right = [(200 - 3 * i, 25, 42, 52) for i in range(6)]
    frames = [[left[i], right[i]] if i != 3 else [right[i]] for i in range(6)]  # left face missed in frame 3
    chains = link(sightings(frames))
    assert [len(c) for c in chains] == [5, 6]
    assert all(s.box[0] < 100 for s in chains[0]) and all(s.box[0] > 100 for s in chains[1])
    tracks, dropped = build_tracks(sightings(frames[:3]), Stub())
    assert tracks == [] and dropped == 2  # 3 frames are not a track


def track_of(ps):
    frames = [[Sighting(i, (0, 0, 10, 10), p)] for i, p in enumerate(ps)]
    return build_tracks(frames, Stub())[0][0]


def test_track_statistics_and_unsure_use_the_spread_across_frames():
    t = track_of([0.85, 0.75, 0.85, 0.75])
    assert t.p_fake == pytest.approx(0.8) and t.spread == pytest.approx(0.05) and t.verdict == "fake"
    assert not t.unsure
    assert track_of([1.0, 0.6, 1.0, 0.6]).unsure  # spread 0.2 > delta
    assert track_of([0.52, 0.53, 0.52, 0.53]).unsure  # within epsilon of the threshold


def test_clip_verdict_rules():
    fake, real, unsure = track_of([0.9] * 4), track_of([0.1] * 4), track_of([0.52] * 4)
    assert clip_verdict([real, fake]) == "fake"  # any confident fake
    assert clip_verdict([fake, unsure]) == "fake"
    assert clip_verdict([real, real]) == "real"  # every track confidently real
    assert clip_verdict([real, unsure]) == "unsure"
    assert clip_verdict([]) == "no face"


def test_two_people_become_two_tracks(clips):
    result = score_video(Stub(lambda i: 0.1), clips["two"], frames=12)
    assert result.error is None and result.frames_sampled == 12 and len(result.tracks) == 2
    centres = sorted(np.mean([s.box[0] + s.box[2] / 2 for s in t.frames]) for t in result.tracks)
    assert centres[0] < 192 < centres[1]
    assert all(len(t.frames) == 12 for t in result.tracks) and result.verdict == "real"


def test_score_video_verdict_json_and_rows(clips):
    stub = Stub(lambda i: 0.9 if i % 2 == 0 else 0.8)
    result = score_video(stub, clips["face"], frames=6, name="dir/face.mp4")
    assert result.verdict == "fake" and result.p_fake == pytest.approx(0.85, abs=1e-6)
    d = result.to_dict()
    assert d["kind"] == "video" and d["path"] == "dir/face.mp4" and d["frames_sampled"] == 6
    assert d["duration_s"] == pytest.approx(1.5) and d["fps"] == pytest.approx(8.0)
    (track,) = d["tracks"]
    assert track["track"] == 1 and track["spread"] == pytest.approx(0.05, abs=1e-6) and len(track["frames"]) == 6
    assert set(track["frames"][0]) == {"time_s", "box", "p_fake"} and len(track["frames"][0]["box"]) == 4
    rows = result.rows("stub")
    assert [r.path for r in rows] == [f"dir/face.mp4#t={f['time_s']:.3f}" for f in track["frames"]]
    assert {r.face for r in rows} == {1} and rows[0].to_csv_dict()["spread"] == "0.050000"
    assert split_fragment(rows[1].path) == ("dir/face.mp4", pytest.approx(track["frames"][1]["time_s"]))
    summary = Summary()
    for r in rows:
        summary.add(r)
    assert summary.as_dict()["images"] == 1 and summary.as_dict()["rows_scored"] == 6


def test_progress_and_cancel(clips):
    seen = []
    result = score_video(Stub(), clips["face"], frames=8, progress=lambda f, text: seen.append((f, text)),
                         cancel=lambda: len(seen) >= 3)
    assert result.cancelled and result.frames_sampled == 3 and any("cancelled" in w for w in result.warnings)
    assert [f for f, _ in seen] == [1 / 8, 2 / 8, 3 / 8] and "frame 1 of 8" in seen[0][1]


# --- mixed inputs: folders, zips, batch ------------------------------------------------------------------------

def test_folders_and_zips_yield_clips_next_to_images(tmp_path, clips):
    from PIL import Image

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "face.mp4").write_bytes(clips["face"].read_bytes())
    Image.fromarray(synth.blank(64, 64)).save(folder / "b.png")
    (folder / "notes.txt").write_text("x")
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as zf:
        zf.write(clips["face"], "sub/c.mp4")
        zf.write(folder / "b.png", "b.png")
    names = [it.name for it in archive.iter_inputs([str(folder), str(tmp_path / "a.zip")]) if not it.note]
    assert names == [f"{folder}/b.png", f"{folder}/face.mp4", f"{tmp_path}/a.zip!sub/c.mp4", f"{tmp_path}/a.zip!b.png"]
    assert archive.count_inputs([str(folder), str(tmp_path / "a.zip")]) == 4
    done = []
    results = list(score_inputs(Stub(), archive.iter_inputs([str(tmp_path / "a.zip")]), frames=5,
                                progress=done.append))
    assert [type(r).__name__ for r in results] == ["VideoResult", "Score"] and done[-1] == 2
    assert results[0].path.endswith("a.zip!sub/c.mp4") and results[0].error is None and results[0].tracks
    frame = read_named(f"{tmp_path}/a.zip!sub/c.mp4#t=0.500")
    assert frame.shape == (192, 192, 3)
    uploads = {"a.zip": (tmp_path / "a.zip").read_bytes(), "face.mp4": clips["face"].read_bytes()}
    assert np.array_equal(read_upload("a.zip!sub/c.mp4#t=0.500", uploads), frame)
    assert np.array_equal(read_upload("face.mp4#t=0.500", uploads), frame)
    assert read_upload("a.zip!b.png", uploads).shape == (64, 64, 3)
    with pytest.raises(ImageLoadError, match="not among the uploaded files"):
        read_upload("other.mp4#t=0.500", uploads)


def test_batch_run_scores_clips_with_score_rows(tmp_path, clips):
    (tmp_path / "bad.mp4").write_text("not a video")
    items = [archive.Item("face.mp4", path=str(clips["face"])), archive.Item("bad.mp4", path=str(tmp_path / "bad.mp4")),
             archive.Item("blank.mp4", path=str(clips["blank"]))]
    run = BatchRun(key=("t",))
    run.score(Stub(), items, crop="auto", thumbnail=lambda row: None, scorer=score_rows)
    assert run.status == "done" and run.done == {"face.mp4", "bad.mp4", "blank.mp4"}
    counts = run.counts()
    assert counts["Files"] == 3 and counts["Errors"] == 1 and counts["Faces scored"] == len(run.p_fakes()) > 0
    assert [r.verdict for r in run.rows if r.clip == "blank.mp4"] == ["no face"]
    assert run.table()[0]["box"].startswith("track 1:")


# --- the real model, loaded once ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def detector():
    from models import load_model

    return load_model("detector_v1")


def test_each_frames_p_fake_is_predict_on_its_crop_as_a_still(detector, clips, tmp_path):
    from models.scoring.stream import score_paths

    result = score_video(detector, clips["face"], frames=4, keep_crops=True)
    (track,) = result.tracks
    crops = [s.crop for s in track.frames]
    assert np.allclose(detector.predict(crops), [s.p_fake for s in track.frames], atol=1e-6)
    from PIL import Image

    s = track.frames[2]
    Image.fromarray(decode.read_frame(str(clips["face"]), s.time_s).image).save(tmp_path / "still.png")
    (still,) = list(score_paths(detector, [str(tmp_path / "still.png")], workers=1))
    assert still.faces[0]["box"] == list(s.box) and still.p_fake == pytest.approx(s.p_fake, abs=1e-5)


def test_timeline_and_top_frames(clips):
    result = score_video(Stub(lambda i: [0.1, 0.7, 0.3, 0.9, 0.2][i % 5]), clips["face"], frames=5)
    assert [round(d["p_fake"], 2) for d in result.timeline()] == [0.1, 0.7, 0.3, 0.9, 0.2]
    assert [round(s.p_fake, 2) for _t, s in result.top_frames(2)] == [0.9, 0.7]

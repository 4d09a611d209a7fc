"""AppTest for the Batch page: images and zips in, rows out, bad files reported, CSV, cancel, open in Explain."""

from __future__ import annotations

import csv
import io
import zipfile

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from tests.conftest import REPO

TIMEOUT = 240


def png(arr) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def crops(n=3, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (128, 128, 3), dtype=np.uint8) for _ in range(n)]


def batch_page(uploads, crop="none", start=True) -> AppTest:
    """The Batch page with ``uploads`` [(name, bytes, mime)] uploaded, then (``start``) scored."""
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=TIMEOUT)
    at.run()
    at.session_state["batch_crop"] = crop
    at.session_state["batch_model"] = "tuned_cnn"
    at.switch_page("pages/batch.py").run()
    uploader = at.file_uploader(key="batch_upload")
    for name, data, mime in uploads:
        uploader.upload(name, data, mime)
    uploader.run()
    assert not at.exception, at.exception
    if start:
        at.button(key="batch_start").click().run()
        assert not at.exception, at.exception
    return at


def results(at):
    frames = [d.value for d in at.dataframe if "p_fake" in d.value.columns]
    assert frames, "no results table"
    return frames[0]


def test_batch_page_without_uploads_explains_what_to_do():
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=TIMEOUT)
    at.run()
    at.switch_page("pages/batch.py").run()
    assert not at.exception
    assert at.title[0].value == "Batch"
    assert any("Upload face images" in i.value for i in at.info)


def test_batch_scores_images_and_a_zip_with_bad_members():
    from models import load_model

    images = crops(3)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("inner/a.png", png(images[1]))
        zf.writestr("inner/broken.jpg", b"not an image")
        zf.writestr("nested.zip", b"PK\x03\x04 nested")
        zf.writestr("../evil.png", png(images[2]))
    at = batch_page([("one.png", png(images[0]), "image/png"),
                     ("pack.zip", archive.getvalue(), "application/zip"),
                     ("junk.jpg", b"\x00\x01garbage", "image/jpeg")])
    table = results(at)
    by_path = {p: r for p, r in zip(table["path"], table.to_dict("records"))}
    assert set(by_path) == {"one.png", "pack.zip!inner/a.png", "pack.zip!inner/broken.jpg", "pack.zip!../evil.png",
                            "junk.jpg"}
    det = load_model("tuned_cnn")
    for name, img in (("one.png", images[0]), ("pack.zip!inner/a.png", images[1])):
        assert by_path[name]["p_fake"] == np.float32(det.predict([img])[0]).round(6) or \
            abs(by_path[name]["p_fake"] - float(det.predict([img])[0])) < 1e-5
        assert by_path[name]["box"] == "whole image: 128x128" and not by_path[name]["error"]
    for bad in ("pack.zip!inner/broken.jpg", "pack.zip!../evil.png", "junk.jpg"):
        assert by_path[bad]["error"] and "\n" not in by_path[bad]["error"]
    assert any("nested archive ignored" in c.value for c in at.caption)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Faces scored"] == "2" and metrics["Errors"] == "3"
    csv_button = [b for b in at.get("download_button") if b.proto.label == "Download CSV"]
    assert csv_button


def test_batch_csv_has_the_exact_header():
    from models.scoring.batch import write_csv

    at = batch_page([("a.png", png(crops(1)[0]), "image/png")])
    assert not at.exception
    rows = at.session_state["batch_state"].rows
    buf = io.StringIO()
    write_csv(rows, buf)
    header = next(csv.reader(io.StringIO(buf.getvalue())))
    assert header == ["path", "face", "box_x", "box_y", "box_w", "box_h", "crop", "p_fake", "verdict", "model",
                      "error", "unsure", "spread", "provenance"]
    table = results(at)
    assert "unsure" in table.columns and list(table.columns).index("unsure") == list(table.columns).index("verdict") + 1
    assert set(table["unsure"]) <= {"", "unsure (leans fake)", "unsure (leans real)"}


def test_batch_zip_bomb_is_refused_with_a_clear_message():
    """1.1 GiB of zeros in a ~5 MB upload: over the page's 1 GiB cap, refused before anything is read."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("a.png", png(crops(1)[0]))
        zero = b"\0" * (63 * 1024 * 1024)  # each member under the 64 MB per-file limit
        for i in range(18):  # 1.1 GiB in all
            zf.writestr(f"bomb{i}.png", zero)
    assert len(archive.getvalue()) < 8 * 1024 * 1024
    at = batch_page([("ok.png", png(crops(1)[0]), "image/png"), ("bomb.zip", archive.getvalue(), "application/zip")])
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "bomb.zip" in errors[0] and "too large uncompressed" in errors[0]
    assert "\n" not in errors[0]
    assert list(results(at)["path"]) == ["ok.png"]  # scored before the archive, kept


def test_batch_same_named_uploads_stay_separate_and_any_file_gets_a_reason():
    """photo.jpg from two folders (different content), a PDF and an SVG: four rows with four distinct paths, each
    photo scored and shown from its own bytes, the PDF and SVG accepted by the uploader and refused by intake
    with one line; the CSV's paths are the table's; the note on what a score means is shown."""
    from models import load_model

    one, two = crops(2, seed=5)
    at = batch_page([("photo.jpg", png(one), "image/jpeg"), ("photo.jpg", png(two), "image/jpeg"),
                     ("doc.pdf", b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n", "application/pdf"),
                     ("pic.svg", b'<svg xmlns="http://www.w3.org/2000/svg"/>', "image/svg+xml")])
    assert at.file_uploader(key="batch_upload").allowed_type == []  # no extension filter
    table = results(at)
    assert list(table["path"]) == ["photo.jpg", "photo.jpg (2)", "doc.pdf", "pic.svg"]
    det = load_model("tuned_cnn")
    expected = det.predict([one, two])
    assert list(table["p_fake"][:2]) == pytest.approx([float(p) for p in expected], abs=1e-5)
    assert table["thumbnail"][0] and table["thumbnail"][1] and table["thumbnail"][0] != table["thumbnail"][1]
    from models.analysis.display import NO_CROP

    for name in ("doc.pdf", "pic.svg"):  # the reason alone (the file column is beside it), no "None" crop
        row = table.set_index("path").loc[name]
        assert row["error"] and not row["error"].startswith(name) and "\n" not in row["error"]
        assert row["thumbnail"] == NO_CROP
        full = [r.error for r in at.session_state["batch_state"].rows if r.path == name][0]
        assert full == f"{name}: {row['error']}"  # the CSV keeps the file name in its error
    assert {m.label: m.value for m in at.metric}["Files"] == "4"
    csv_data = [b for b in at.get("download_button") if b.proto.label == "Download CSV"]
    assert csv_data
    rows = at.session_state["batch_state"].rows
    assert [r.path for r in rows] == list(table["path"])
    assert any(c.value.startswith("What a score means") and "held out of training scored ROC AUC" in c.value
               and "lfw_faceswap 0.48" in c.value for c in at.caption)


def test_batch_row_opens_in_explain():
    at = batch_page([("a.png", png(crops(1)[0]), "image/png")])
    at.session_state["batch_open"] = ("a.png", None, None, None)
    at.run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Explain"
    assert at.radio(key="explain_mode").value == "From batch"


def test_batch_face_row_opens_that_face_in_explain():
    """A two-face photo: the row of face 2 opens the Explain page with face 2 selected."""
    from skimage import data

    face = data.astronaut()[0:256, 128:384]
    group = np.concatenate([face, face[:, ::-1]], axis=1)
    at = batch_page([("group.png", png(group), "image/png")], crop="auto")
    table = results(at)
    assert [b.split(":")[0] for b in table["box"]] == ["face 1", "face 2"]
    at.session_state["batch_open"] = ("group.png", 2, None, None)
    at.run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Explain"
    assert at.selectbox(key="explain_face").value == 1  # 0-based index of face 2


def test_batch_region_shapley_toggle_aggregates_by_verdict_and_keeps_results():
    """A real face (astronaut) and a noise crop: the face gets region Shapley values, the noise is counted as
    without landmarks; the aggregate of the face's verdict is shown; a rerun reuses what was computed."""
    from skimage import data

    from explain import aggregate

    face = np.asarray(Image.fromarray(data.astronaut()[0:256, 128:384]).resize((128, 128), Image.LANCZOS))
    at = batch_page([("face.png", png(face), "image/png"), ("noise.png", png(crops(1)[0]), "image/png")])
    at.toggle(key="batch_shapley").set_value(True).run()
    assert not at.exception, at.exception
    kept = at.session_state["batch_shapley_state"]["rows"]
    assert set(kept) == {"face.png", "noise.png"}
    assert kept["face.png"].face and not kept["noise.png"].face
    row = {r.path: r for r in at.session_state["batch_state"].rows}["face.png"]
    assert kept["face.png"].p_fake == pytest.approx(row.p_fake, abs=1e-4)  # the crop that was scored
    phi = kept["face.png"]
    assert sum(phi.phi.values()) == pytest.approx(phi.full - phi.base, abs=1e-5)
    label = "Fake verdicts" if row.verdict == "fake" else "Real verdicts"
    expected = aggregate.sentence(label, aggregate.aggregate([phi], row.verdict)) + "."
    lines = [m.value for m in at.markdown]
    assert expected in lines and expected.startswith(f"{label} (n=1)")
    assert any(c.value.startswith("1 of 2 faces have no facial landmarks") for c in at.caption)
    # A rerun keeps what was computed: a marked value survives it.
    phi.phi["mouth"] = 0.777
    at.run()
    assert not at.exception
    assert at.session_state["batch_shapley_state"]["rows"]["face.png"].phi["mouth"] == 0.777


def test_batch_scores_a_clip_beside_a_photo_and_opens_a_frame_in_explain(tmp_path):
    """Issue 15: a clip in Batch gets one row per (track, sampled frame), path ``clip.mp4#t=…``, its box as
    "track N: …"; opening a frame in Explain preselects the tracked face by its number in that frame."""
    from models.video.synth import make_clip

    clip = make_clip(tmp_path / "clip.mp4", seconds=1.0, fps=8.0, size=(256, 256)).read_bytes()
    at = batch_page([("face.png", png(crops(1)[0]), "image/png"), ("clip.mp4", clip, "video/mp4")], crop="auto")
    table = results(at)
    video = table[table["path"].str.startswith("clip.mp4#t=")]
    assert len(video) == 8 and video["box"].str.startswith("track 1: ").all()
    assert video["p_fake"].between(0, 1).all() and (video["verdict"] != "").all()
    assert {m.label: m.value for m in at.metric}["Files"] == "2"
    rows = [r for r in at.session_state["batch_state"].rows if r.path.startswith("clip.mp4#t=")]
    at.session_state["batch_open"] = (rows[3].path, rows[3].face, rows[3].box, rows[3].provenance)
    at.run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Explain" and at.radio(key="explain_mode").value == "From batch"
    assert at.session_state["explain_face"] == 0
    assert at.session_state["_handoff_image"]["pixels"].shape == (256, 256, 3)


def test_batch_rows_carry_each_files_provenance_into_the_csv():
    """Issue 17: the CSV's appended ``provenance`` column holds each file's summary, beside its score."""
    from tests.c2pa_util import jpeg, signed_jpeg

    pixels = crops(1)[0]
    at = batch_page([("signed.jpg", signed_jpeg(jpeg(pixels)), "image/jpeg"), ("plain.jpg", jpeg(pixels), "image/jpeg")])
    rows = {r.path: r for r in at.session_state["batch_state"].rows}
    assert rows["signed.jpg"].provenance.startswith("Content Credentials: created by an AI generator")
    assert rows["plain.jpg"].provenance == "No provenance metadata (unknown: platforms often strip it)."
    assert rows["signed.jpg"].p_fake == pytest.approx(rows["plain.jpg"].p_fake, abs=1e-6)  # the same pixels
    assert rows["signed.jpg"].to_csv_dict()["provenance"] == rows["signed.jpg"].provenance

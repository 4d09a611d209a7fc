"""Batch scoring: inputs (files, folders, zips), safe zip reading, rows per face, CSV, the CLI's --csv.

Everything runs on tiny synthetic images written to tmp_path and the 32 px oracle model (conftest), with
--crop none, or with face detection replaced by a stub that returns known boxes.
"""

from __future__ import annotations

import csv
import io
import stat
import struct
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import synthetic_face
from PIL import Image

from models.data import faces as F
from models.scoring import archive as A
from models.scoring.archive import ArchiveLimitError, Item, iter_inputs, iter_zip, read_item
from models.scoring.batch import CSV_COLUMNS, Row, Summary, score_items, write_csv

HEADER = "path,face,box_x,box_y,box_w,box_h,crop,p_fake,verdict,model,error,unsure,spread,provenance"


def png_bytes(fake: bool, seed: int = 0, size: int = 32) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(synthetic_face(np.random.default_rng(seed), fake, size)).save(buf, format="PNG")
    return buf.getvalue()


def write_png(path: Path, fake: bool, seed: int = 0, size: int = 32) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(fake, seed, size))
    return path


def make_zip(path: Path, members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)  # ZipInfo keeps the name as given ("../evil.png" stays)
            info.compress_type = compression
            zf.writestr(info, data)
    return path


@pytest.fixture(scope="module")
def detector(oracle_model_path):
    import models

    return models.load_model(oracle_model_path)


@pytest.fixture
def folder(tmp_path) -> Path:
    """<tmp>/in: b.png (fake), sub/a.png (real), sub/deeper/c.png (fake), notes.txt, .hidden.png."""
    root = tmp_path / "in"
    write_png(root / "b.png", True, 1)
    write_png(root / "sub" / "a.png", False, 2)
    write_png(root / "sub" / "deeper" / "c.png", True, 3)
    (root / "notes.txt").write_text("not an image")
    write_png(root / ".hidden.png", True, 4)
    return root


def rows_and_error(rows_iter):
    """Collect rows until the stream ends or raises; (rows, exception or None)."""
    rows = []
    try:
        for row in rows_iter:
            rows.append(row)
    except ArchiveLimitError as exc:
        return rows, exc
    return rows, None


# --- inputs: folders and zips ------------------------------------------------------------------------------

def test_folder_is_recursive_sorted_and_images_only(folder):
    items = list(iter_inputs([folder]))
    scored = [i for i in items if not i.note]
    assert [i.name for i in scored] == [f"{folder}/b.png", f"{folder}/sub/a.png", f"{folder}/sub/deeper/c.png"]
    assert all(i.path and Path(i.path).is_file() and i.data is None and i.error is None for i in scored)
    (note,) = [i for i in items if i.note]
    assert "1 non-image file skipped" in note.note
    assert [i.name for i in iter_inputs([folder], recursive=False) if not i.note] == [f"{folder}/b.png"]


def test_missing_path_and_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    missing, empty = iter_inputs([tmp_path / "nope.png", tmp_path / "empty"])
    assert missing.error == f"{tmp_path / 'nope.png'}: no such file"
    assert empty.note and "no image files" in empty.note and empty.error is None


def test_zip_members_are_named_archive_bang_inner_path(tmp_path):
    z = make_zip(tmp_path / "x.zip", {"sub/a.png": png_bytes(False), "b.png": png_bytes(True), "sub/": b""})
    items = list(iter_inputs([z]))
    assert [i.name for i in items] == [f"{z}!sub/a.png", f"{z}!b.png"]
    assert items[0].data == png_bytes(False) and items[0].path is None
    named = list(iter_zip(z.read_bytes(), "x.zip"))  # bytes in (an upload), display name given
    assert [i.name for i in named] == ["x.zip!sub/a.png", "x.zip!b.png"]
    assert read_item(named[0]).shape == (32, 32, 3)
    with open(z, "rb") as fh:  # a binary file object works too
        assert [i.name for i in iter_zip(fh, "x.zip")] == ["x.zip!sub/a.png", "x.zip!b.png"]


def test_not_a_zip_is_one_error_item(tmp_path):
    bad = tmp_path / "broken.zip"
    bad.write_bytes(b"PK\x03\x04 this is not really a zip")
    (item,) = iter_inputs([bad])
    assert item.error.startswith(f"{bad}: not a readable zip file") and "\n" not in item.error


def test_mac_metadata_and_non_images_in_a_zip_are_skipped_and_counted(tmp_path):
    z = make_zip(tmp_path / "mac.zip", {"a.png": png_bytes(True), "__MACOSX/._a.png": b"\x00\x05\x16\x07",
                                          "._b.png": b"junk", "readme.md": b"hi", "data.csv": b"1,2"})
    items = list(iter_zip(z, "mac.zip"))
    assert [i.name for i in items if not i.note] == ["mac.zip!a.png"]
    assert [i.note for i in items if i.note] == ["mac.zip: 4 non-image files skipped"]


# --- malicious zips ----------------------------------------------------------------------------------------

def test_traversal_names_are_refused_and_never_written(tmp_path, monkeypatch, detector):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    z = make_zip(tmp_path / "evil.zip", {"../evil.png": png_bytes(True), "/abs.png": png_bytes(True),
                                          "ok/../../up.png": png_bytes(True), "C:/win.png": png_bytes(True),
                                          "..\\back.png": png_bytes(True), "fine.png": png_bytes(False)})
    before = sorted(p.name for p in tmp_path.rglob("*"))
    items = list(iter_zip(z, "evil.zip"))
    bad = [i for i in items if i.error]
    assert [i.name for i in bad] == ["evil.zip!../evil.png", "evil.zip!/abs.png", "evil.zip!ok/../../up.png",
                                     "evil.zip!C:/win.png", "evil.zip!..\\back.png"]
    assert all("refused: unsafe name in archive" in i.error and i.data is None for i in bad)
    rows = list(score_items(detector, iter_zip(z, "evil.zip"), crop="none"))
    assert [r.error is None for r in rows] == [False] * 5 + [True]
    assert rows[-1].path == "evil.zip!fine.png" and rows[-1].verdict == "real"
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing extracted anywhere
    assert not (tmp_path / "evil.png").exists() and not Path("/abs.png").exists()


def test_zip_bomb_over_the_declared_size_cap(tmp_path, detector):
    """50 MB of zeros (a ~50 KB member) against a 10 MB cap: refused before anything is read."""
    good = write_png(tmp_path / "good.png", True)
    bomb = make_zip(tmp_path / "bomb.zip", {"a.png": png_bytes(False), "zeros.png": bytes(50 * 1024**2)})
    assert bomb.stat().st_size < 200_000
    rows, exc = rows_and_error(score_items(detector, iter_inputs([good, bomb], max_total_bytes=10 * 1024**2),
                                           crop="none", batch_size=1))
    assert exc is not None
    message = str(exc)
    assert "\n" not in message and str(bomb) in message and "too large uncompressed" in message
    assert "50.0 MiB" in message and "limit 10.0 MiB" in message and "zip bomb" in message
    assert [r.path for r in rows] == [str(good)] and rows[0].verdict == "fake"  # earlier rows are kept


def test_many_members_over_the_total_cap_are_refused_upfront(tmp_path):
    z = make_zip(tmp_path / "many.zip", {f"{i}.png": bytes(400_000) for i in range(10)}, zipfile.ZIP_DEFLATED)
    with pytest.raises(ArchiveLimitError, match=r"too large uncompressed \(3\.8 MiB, limit 1\.0 MiB\)"):
        list(iter_zip(z, "many.zip", max_total_bytes=1024**2))


def _lie_about_size(data: bytes, declared: int) -> bytes:
    """Patch every local and central header of a one-member zip to declare ``declared`` uncompressed bytes."""
    out = bytearray(data)
    local = out.index(b"PK\x03\x04")
    struct.pack_into("<I", out, local + 22, declared)
    central = out.index(b"PK\x01\x02")
    struct.pack_into("<I", out, central + 24, declared)
    return bytes(out)


def test_a_header_that_lies_about_its_size_cannot_beat_the_cap(tmp_path):
    """A member declaring 1 KB that inflates to 50 MB: at most the declared size is read, then a CRC error row."""
    honest = make_zip(tmp_path / "honest.zip", {"zeros.png": bytes(50 * 1024**2)})
    liar = tmp_path / "liar.zip"
    liar.write_bytes(_lie_about_size(honest.read_bytes(), 1024))
    assert zipfile.ZipFile(liar).infolist()[0].file_size == 1024
    tracemalloc.start()
    try:
        items = list(iter_zip(liar, "liar.zip", max_total_bytes=10 * 1024**2))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    (item,) = items
    assert item.data is None and item.error.startswith("liar.zip!zeros.png: cannot read from the archive")
    assert peak < 5 * 1024**2  # the 50 MB were never inflated into memory


def test_bytes_actually_read_are_capped_even_if_the_reader_returns_more(tmp_path, monkeypatch):
    """Belt and braces: should the zip reader ever return more than declared, the bounded read stops at the cap."""
    z = make_zip(tmp_path / "small.zip", {"a.png": png_bytes(True), "b.png": b"x" * 100})
    real_open = zipfile.ZipFile.open

    def lying_open(self, info, *args, **kwargs):
        name = info.filename if isinstance(info, zipfile.ZipInfo) else info
        return io.BytesIO(bytes(5 * 1024**2)) if name == "b.png" else real_open(self, info, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", lying_open)
    gen = iter_zip(z, "small.zip", max_total_bytes=1024**2)
    first = next(gen)
    assert first.name == "small.zip!a.png" and first.data == png_bytes(True)
    with pytest.raises(ArchiveLimitError, match=r"small\.zip: too large uncompressed \(more than 1\.0 MiB read, "
                                                r"at small\.zip!b\.png\)"):
        next(gen)


def test_nested_archives_are_ignored_with_a_note(tmp_path, detector):
    inner = make_zip(tmp_path / "inner.zip", {"deep.png": png_bytes(True)}).read_bytes()
    z = make_zip(tmp_path / "outer.zip", {"inner.zip": inner, "b.tar.gz": b"\x1f\x8b", "c.rar": b"Rar!",
                                          "a.png": png_bytes(False)})
    notes = []
    rows = list(score_items(detector, iter_inputs([z]), crop="none", on_note=notes.append))
    assert [r.path for r in rows] == [f"{z}!a.png"]  # deep.png is never read
    assert [n.note for n in notes] == [f"{z}!{m}: nested archive ignored (archives inside archives are not opened)"
                                       for m in ("inner.zip", "b.tar.gz", "c.rar")]
    assert all(n.error is None for n in notes)


def test_symlinks_in_a_zip_are_ignored(tmp_path):
    path = tmp_path / "link.zip"
    with zipfile.ZipFile(path, "w") as zf:
        info = zipfile.ZipInfo("passwd.png")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
        zf.writestr("a.png", png_bytes(True))
    items = list(iter_zip(path, "link.zip"))
    assert [(i.name, bool(i.note), i.data is not None) for i in items] == [
        ("link.zip!passwd.png", True, False), ("link.zip!a.png", False, True)]


def test_file_count_cap(tmp_path):
    z = make_zip(tmp_path / "count.zip", {f"{i:02d}.png": png_bytes(True, i) for i in range(12)}
                 | {f"{i}.txt": b"t" for i in range(30)})
    assert len([i for i in iter_zip(z, "count.zip", max_files=12) if not i.note]) == 12  # text files don't count
    with pytest.raises(ArchiveLimitError) as info:
        list(iter_zip(z, "count.zip", max_files=10))
    assert str(info.value) == "count.zip: too many files (12 images, limit 10); split the archive"


def test_module_caps_are_read_at_call_time(tmp_path, monkeypatch):
    z = make_zip(tmp_path / "c.zip", {f"{i}.png": png_bytes(True, i) for i in range(3)})
    monkeypatch.setattr(A, "MAX_FILES", 2)
    with pytest.raises(ArchiveLimitError, match="limit 2"):
        list(iter_inputs([z]))


# --- scoring: rows, errors, order, streaming, cancel -------------------------------------------------------

def test_rows_for_a_folder_with_bad_files(folder, detector):
    (folder / "sub" / "corrupt.png").write_bytes(png_bytes(True)[:60])  # truncated PNG
    (folder / "sub" / "text.jpg").write_text("a text file named .jpg")
    rows = list(score_items(detector, iter_inputs([folder]), crop="none", batch_size=2))
    names = [r.path.removeprefix(f"{folder}/") for r in rows]
    assert names == ["b.png", "sub/a.png", "sub/corrupt.png", "sub/deeper/c.png", "sub/text.jpg"]
    by_name = dict(zip(names, rows))
    for name, expected in (("b.png", "fake"), ("sub/a.png", "real"), ("sub/deeper/c.png", "fake")):
        row = by_name[name]
        assert row.verdict == expected and row.error is None and row.crop == "none" and row.face is None
        assert row.box == (0, 0, 32, 32) and row.model == "oracle"
    for name, fragment in (("sub/corrupt.png", "cannot decode"), ("sub/text.jpg", "not an image file")):
        row = by_name[name]
        assert row.p_fake is None and row.verdict is None and fragment in row.error and "\n" not in row.error
        assert row.error.startswith(row.path)


def test_corrupt_and_non_image_members_in_a_zip(tmp_path, detector):
    z = make_zip(tmp_path / "mixed.zip", {"a.png": png_bytes(True), "broken.jpg": b"\xff\xd8\xff garbage",
                                          "empty.png": b"", "b.png": png_bytes(False)})
    rows = list(score_items(detector, iter_inputs([z]), crop="none"))
    assert [(r.path.split("!")[1], r.verdict) for r in rows] == [
        ("a.png", "fake"), ("broken.jpg", None), ("empty.png", None), ("b.png", "real")]
    assert "empty file" in rows[2].error and rows[1].error.startswith(f"{z}!broken.jpg: ")


def test_scores_equal_detector_predict(folder, detector):
    paths = [str(p) for p in sorted(folder.rglob("[!.]*.png"))]
    rows = list(score_items(detector, paths, crop="none", batch_size=2))
    direct = detector.predict([read_item(Item(p, path=p)) for p in paths])
    np.testing.assert_allclose([r.p_fake for r in rows], direct, rtol=1e-5, atol=1e-6)


def test_big_images_are_resized_in_the_worker_with_the_same_scores(detector):
    """crop "none" on photos over PREPARE_IN_WORKER_PIXELS: preprocessed in the worker; scores unchanged."""
    from models.scoring.stream import PREPARE_IN_WORKER_PIXELS

    rng = np.random.default_rng(0)
    images = [synthetic_face(rng, i % 2 == 0, size) for i, size in enumerate((32, 600, 48, 700, 32))]
    assert 600 * 600 > PREPARE_IN_WORKER_PIXELS > 48 * 48
    items = []
    for i, img in enumerate(images):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="PNG")
        items.append(Item(f"{i}.png", data=buf.getvalue()))
    rows = list(score_items(detector, items, crop="none", batch_size=3))
    assert [r.box for r in rows] == [(0, 0, s, s) for s in (32, 600, 48, 700, 32)]
    np.testing.assert_allclose([r.p_fake for r in rows], detector.predict(images), rtol=1e-5, atol=1e-6)


def test_items_are_pulled_lazily_two_chunks_at_most(detector, tmp_path):
    data = png_bytes(True)
    pulled = []

    def items():
        for i in range(100):
            pulled.append(i)
            yield Item(f"mem{i}.png", data=data)

    stream = score_items(detector, items(), crop="none", batch_size=8)
    first = next(stream)
    assert first.path == "mem0.png" and len(pulled) <= 16  # this chunk and the prefetched one
    seen = 1 + sum(1 for _ in stream)
    assert seen == 100 and len(pulled) == 100


def test_should_stop_cancels_between_chunks(detector):
    data = png_bytes(False)
    items = (Item(f"m{i}.png", data=data) for i in range(50))
    done = []
    rows = list(score_items(detector, items, crop="none", batch_size=4, progress=done.append,
                            should_stop=lambda: len(done) >= 2))
    assert len(rows) == 8 and done == [4, 8]


def test_an_item_stream_that_raises_keeps_the_rows_before(detector):
    def items():
        for i in range(5):
            yield Item(f"m{i}.png", data=png_bytes(True, i))
        raise ArchiveLimitError("x.zip: too many files")

    rows, exc = rows_and_error(score_items(detector, items(), crop="none", batch_size=2))
    assert str(exc) == "x.zip: too many files" and [r.path for r in rows] == [f"m{i}.png" for i in range(5)]


@pytest.fixture
def two_faces(monkeypatch):
    """Face detection stubbed: every image has a big face on the left and a smaller one on the right."""
    def fake_detect(image, *, max_side=F.MAX_SIDE, min_confidence=F.MIN_CONFIDENCE, size=128):
        h, w = image.shape[:2]
        boxes = [((10, 10, 60, 70), 0.99), ((130, 20, 40, 44), 0.95)]
        return [F._face(box, conf, F.square_box(box, w, h), size) for box, conf in boxes]

    monkeypatch.setattr(F, "detect_faces", fake_detect)


def test_a_multi_face_image_gives_one_row_per_face(tmp_path, detector, two_faces):
    img = np.full((100, 200, 3), 90, np.uint8)
    img[:50, :100] = 250  # the left face's crop has a bright top-left quadrant: fake for the oracle
    path = tmp_path / "group.png"
    Image.fromarray(img).save(path)
    rows = list(score_items(detector, [str(path)], crop="auto"))
    assert [(r.face, r.box, r.crop) for r in rows] == [(1, (10, 10, 60, 70), "face"), (2, (130, 20, 40, 44), "face")]
    assert [r.confidence for r in rows] == [0.99, 0.95]
    assert all(r.path == str(path) and r.error is None and r.verdict in ("fake", "real") for r in rows)
    assert rows[0].verdict == "fake" and rows[1].verdict == "real"
    summary = Summary()
    for row in rows:
        summary.add(row)
    assert summary.as_dict() == {"images": 1, "rows_scored": 2, "errors": 0, "fake": 1, "real": 1,
                               "by_crop": {"face": 2}}


def test_row_thumbnails_show_what_was_scored(tmp_path, detector, two_faces):
    from models.scoring.batch import row_thumbnail

    img = np.random.default_rng(0).integers(0, 256, (100, 200, 3), dtype=np.uint8)
    Image.fromarray(img).save(tmp_path / "group.png")
    first, second = score_items(detector, [str(tmp_path / "group.png")], crop="auto")
    crops, _kind, _warnings = F.face_crops(img, mode="auto")  # the crops the model was given
    for row, (_face, scored) in zip((first, second), crops, strict=True):
        np.testing.assert_array_equal(row_thumbnail(img, row, size=128), scored)
    assert row_thumbnail(img, second).shape == (96, 96, 3)
    assert row_thumbnail(img, Row("x.png", error="x.png: bad")) is None
    assert row_thumbnail(np.zeros((10, 10, 3), np.uint8), second) is None  # not the image that was scored
    (none,) = score_items(detector, [str(tmp_path / "group.png")], crop="none")
    assert row_thumbnail(img, none).shape == (48, 96, 3)


def test_no_face_auto_is_the_centre_square_face_mode_is_an_error(tmp_path, detector, monkeypatch):
    monkeypatch.setattr(F, "detect_faces", lambda image, **kw: [])
    path = write_png(tmp_path / "wide.png", True, size=32)
    Image.fromarray(np.full((40, 100, 3), 100, np.uint8)).save(path)
    (auto,) = score_items(detector, [str(path)], crop="auto")
    assert auto.crop == "center" and auto.face is None and auto.box == (30, 0, 40, 40)
    assert auto.warnings == [F.NO_FACE_WARNING]
    (face,) = score_items(detector, [str(path)], crop="face")
    assert face.error.startswith(f"{path}: no face found") and face.p_fake is None


# --- CSV ---------------------------------------------------------------------------------------------------

def test_csv_header_and_one_row_per_face(tmp_path, detector, two_faces):
    Image.fromarray(np.full((100, 200, 3), 90, np.uint8)).save(tmp_path / "group.png")
    (tmp_path / "bad.png").write_bytes(b"nope")
    out = tmp_path / "out.csv"
    summary = write_csv(score_items(detector, [str(tmp_path / "group.png"), str(tmp_path / "bad.png")]), out)
    text = out.read_text()
    assert text.splitlines()[0] == HEADER and ",".join(CSV_COLUMNS) == HEADER
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["face"], r["box_x"], r["box_y"], r["box_w"], r["box_h"], r["crop"]) for r in rows[:2]] == [
        ("1", "10", "10", "60", "70", "face"), ("2", "130", "20", "40", "44", "face")]
    assert all(r["model"] == "oracle" and r["error"] == "" and r["verdict"] in ("fake", "real") for r in rows[:2])
    assert all(len(r["p_fake"].split(".")[1]) == 6 for r in rows[:2])
    assert rows[2]["path"].endswith("bad.png") and rows[2]["error"].endswith("not an image file (or an unsupported format)")
    assert rows[2]["p_fake"] == rows[2]["verdict"] == rows[2]["face"] == ""
    assert summary["images"] == 2 and summary["rows_scored"] == 2 and summary["errors"] == 1


def test_write_csv_keeps_the_rows_written_when_the_stream_fails(tmp_path):
    def rows():
        yield Row("a.png", None, 0, 0, 8, 8, "none", 0.25, "real", "m")
        yield Row("b.png", error="b.png: broken", model="m")
        raise ArchiveLimitError("z.zip: too many files")

    out = tmp_path / "partial.csv"
    summary = Summary()
    with pytest.raises(ArchiveLimitError):
        write_csv(rows(), out, summary=summary)
    lines = out.read_text().splitlines()
    assert lines == [HEADER, "a.png,,0,0,8,8,none,0.250000,real,m,,,,", "b.png,,,,,,,,,m,b.png: broken,,,"]
    assert summary.as_dict()["images"] == 2 and summary.as_dict()["errors"] == 1


def test_csv_quotes_awkward_names(tmp_path):
    buf = io.StringIO()
    write_csv([Row('a,"b".png', error='a,"b".png: bad', model="m")], buf)
    (row,) = csv.DictReader(io.StringIO(buf.getvalue()))
    assert row["path"] == 'a,"b".png' and row["error"] == 'a,"b".png: bad'


# --- CLI ---------------------------------------------------------------------------------------------------

def test_cli_csv_over_a_folder_and_a_zip(tmp_path, folder, oracle_model_path, capsys):
    from models.predict import main

    z = make_zip(tmp_path / "x.zip", {"sub/a.png": png_bytes(True), "inner.zip": b"PK\x05\x06" + bytes(18)})
    out = tmp_path / "scores.csv"
    rc = main(["--model", str(oracle_model_path), "--crop", "none", "--csv", str(out), str(folder), str(z)])
    err = capsys.readouterr().err
    assert rc == 0, err
    rows = list(csv.DictReader(out.open()))
    assert out.read_text().splitlines()[0] == HEADER
    assert [r["path"] for r in rows] == [f"{folder}/b.png", f"{folder}/sub/a.png", f"{folder}/sub/deeper/c.png",
                                         f"{z}!sub/a.png"]
    assert [r["verdict"] for r in rows] == ["fake", "real", "fake", "fake"]
    assert f"note: {z}!inner.zip: nested archive ignored" in err
    assert "4 images, 4 scored (3 fake, 1 real), 0 errors" in err and "Traceback" not in err


def test_cli_csv_exit_2_on_errors_and_keeps_rows_when_a_cap_is_hit(tmp_path, oracle_model_path, capsys,
                                                                   monkeypatch):
    from models.predict import main

    good = write_png(tmp_path / "good.png", False)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    bomb = make_zip(tmp_path / "bomb.zip", {"zeros.png": bytes(20 * 1024**2)})
    after = write_png(tmp_path / "after.png", True)
    out = tmp_path / "scores.csv"
    monkeypatch.setattr(A, "MAX_TOTAL_BYTES", 1024**2)
    rc = main(["--model", str(oracle_model_path), "--crop", "none", "--batch-size", "1", "--no-progress",
               "--csv", str(out), str(good), str(bad), str(bomb), str(after)])
    err = capsys.readouterr().err
    assert rc == 2
    assert [r["path"] for r in csv.DictReader(out.open())] == [str(good), str(bad)]  # rows before the cap kept
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines == [f"error: {bad}: not an image file (or an unsupported format)",
                     f"error: {bomb}: too large uncompressed (20.0 MiB, limit 1.0 MiB); possibly a zip bomb "
                     f"(stopped; 2 images written to {out} are kept)"]


def test_cli_text_output_over_a_zip(tmp_path, oracle_model_path, capsys):
    from models.predict import main

    z = make_zip(tmp_path / "x.zip", {"a.png": png_bytes(True), "b.png": png_bytes(False)})
    rc = main(["--model", str(oracle_model_path), "--crop", "none", str(z)])
    out = capsys.readouterr().out.splitlines()
    assert rc == 0 and [line.split("\t")[:2] for line in out] == [[f"{z}!a.png", "fake"], [f"{z}!b.png", "real"]]


def test_cli_csv_with_html_report_explains_the_most_suspicious(tmp_path, oracle_model_path):
    """--report: the top faces (by P(fake)) are cut again from their files, zip members included."""
    import zipfile as zf_mod

    from PIL import Image

    from models.predict import main
    from tests.conftest import synthetic_face

    rng = np.random.default_rng(3)
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(synthetic_face(rng, False, 32)).save(folder / "real.png")
    buf = io.BytesIO()
    Image.fromarray(synthetic_face(rng, True, 32)).save(buf, format="PNG")
    with zf_mod.ZipFile(tmp_path / "pack.zip", "w") as zf:
        zf.writestr("sub/fake.png", buf.getvalue())
    out, report = tmp_path / "out.csv", tmp_path / "report.html"
    rc = main([str(folder), str(tmp_path / "pack.zip"), "--model", str(oracle_model_path), "--crop", "none",
               "--csv", str(out), "--report", str(report), "--top", "1", "--no-progress"])
    assert rc == 0
    html = report.read_text()
    assert "pack.zip!sub/fake.png" in html and "data:image/png;base64," in html
    assert "<script" not in html.lower()
    assert main([str(folder), "--report", str(tmp_path / "r.html")]) == 2  # needs --csv


# --- uploads (the Batch page): guarded re-reads from in-memory zips ---------------------------------------------

def zip_of(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_upload_items_expand_zips_and_refuse_other_archives():
    data = zip_of({"in/a.png": png_bytes(False), "../evil.png": png_bytes(True)})
    items = list(A.upload_items([("x.png", png_bytes(False)), ("p.zip", data), ("q.tar", b"tar")]))
    names = [i.name for i in items]
    assert names == ["x.png", "p.zip!in/a.png", "p.zip!../evil.png", "q.tar"]
    assert items[0].data and items[1].data and "unsafe name" in items[2].error
    assert items[3].error == "q.tar: only .zip archives are opened"
    with pytest.raises(ArchiveLimitError):
        list(A.upload_items([("p.zip", data)], max_files=1))


def test_read_upload_rereads_plain_uploads_and_zip_members():
    a, b = png_bytes(False, seed=1), png_bytes(True, seed=2)
    uploads = {"a.png": a, "p.zip": zip_of({"in/b.png": b})}
    np.testing.assert_array_equal(A.read_upload("a.png", uploads), np.asarray(Image.open(io.BytesIO(a))))
    np.testing.assert_array_equal(A.read_upload("p.zip!in/b.png", uploads), np.asarray(Image.open(io.BytesIO(b))))


@pytest.mark.parametrize("name, message", [
    ("p.zip!../evil.png", "unsafe name in archive ('..' in path)"),
    ("p.zip!/abs.png", "unsafe name in archive (absolute path)"),
    ("p.zip!inner.zip", "nested archive"),
    ("p.zip!nope.png", "no such file in the archive"),
    ("other.zip!a.png", "not among the uploaded files"),
    ("a.png!x.png", "only .zip archives are opened"),
    ("b.png!x.png", "not among the uploaded files"),
])
def test_read_upload_refuses_with_one_line(name, message):
    uploads = {"p.zip": zip_of({"../evil.png": png_bytes(True), "/abs.png": png_bytes(True),
                                "inner.zip": b"PK"}), "a.png": png_bytes(False)}
    with pytest.raises(A.ImageLoadError) as exc:
        A.read_upload(name, uploads)
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_read_zip_member_refuses_an_oversize_member(monkeypatch):
    data = zip_of({"big.png": b"\0" * 2048})
    monkeypatch.setattr(A, "MAX_FILE_BYTES", 1024)
    with pytest.raises(A.ImageLoadError, match=r"big\.png: file too large") as exc:
        A.read_zip_member(data, "big.png", name="u.zip!big.png")
    assert "\n" not in str(exc.value)


def test_read_zip_member_bounds_a_member_whose_header_lies(monkeypatch):
    """A declared size under the cap, more bytes stored: the bounded read stops at the cap, then refuses."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("lie.png", b"\0" * 4096)
    raw = bytearray(buf.getvalue())
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # uncompressed size, local and central header
        at = raw.find(sig)
        struct.pack_into("<I", raw, at + offset, 100)
    monkeypatch.setattr(A, "MAX_FILE_BYTES", 1024)
    with pytest.raises(A.ImageLoadError) as exc:
        A.read_zip_member(bytes(raw), "lie.png")
    assert "\n" not in str(exc.value)


def test_read_named_uses_the_same_guards(tmp_path):
    path = tmp_path / "p.zip"
    path.write_bytes(zip_of({"in/a.png": png_bytes(False), "../evil.png": png_bytes(True)}))
    assert A.read_named(f"{path}!in/a.png").shape == (32, 32, 3)
    with pytest.raises(A.ImageLoadError, match="unsafe name in archive"):
        A.read_named(f"{path}!../evil.png")


# --- a Batch page run, without Streamlit --------------------------------------------------------------------------

def test_batch_run_scores_counts_tables_and_resumes(detector):
    from models.scoring.batch import BatchRun, chunk_size, crop_loader

    assert chunk_size("none") == 64 and chunk_size("auto") == chunk_size("face") == 8
    items = [Item("a.png", data=png_bytes(False, 1)), Item("b.png", data=png_bytes(True, 2)),
             Item("bad.png", data=b"junk"), Item("n", note="n: a note")]
    run = BatchRun(("k",))
    calls = []
    run.score(detector, items[:2], crop="none", thumbnail=lambda r: f"t:{r.path}",
              progress=lambda: calls.append(run.progress(4)))
    assert run.status == "done" and [r.path for r in run.rows] == ["a.png", "b.png"] and calls
    run.status = "running"
    run.score(detector, items, crop="none", thumbnail=lambda r: None)  # a.png, b.png done: skipped
    assert [r.path for r in run.rows] == ["a.png", "b.png", "bad.png"] and run.notes == ["n: a note"]
    counts = run.counts()
    assert counts == {"Files": 3, "Faces scored": 2, "Fake": counts["Fake"], "Real": 2 - counts["Fake"], "Errors": 1}
    table = run.table()
    assert list(table[0]) == ["thumbnail", "path", "p_fake", "verdict", "unsure", "error", "box"]
    assert table[0]["box"] == "whole image: 32x32" and table[2]["box"] == ""
    assert all(t["unsure"] in ("", f"unsure (leans {r.verdict})") for t, r in zip(table, run.rows))
    assert table[0]["thumbnail"] == "t:a.png" and table[0]["p_fake"] == pytest.approx(run.rows[0].p_fake, abs=1e-6)
    assert np.isnan(table[2]["p_fake"]) and table[2]["error"]
    assert run.p_fakes() == [run.rows[0].p_fake, run.rows[1].p_fake]
    assert run.progress(3)[0] == 1.0
    load = crop_loader(run.rows, lambda path: A.read_upload(path, {"a.png": png_bytes(False, 1)}), size=16)
    assert load(run.rows[0].to_csv_dict()).shape == (16, 16, 3)


def test_batch_run_cancel_and_archive_limit(detector):
    from models.scoring.batch import BatchRun

    def items():
        yield Item("a.png", data=png_bytes(False))
        raise ArchiveLimitError("z.zip: too many files")

    run = BatchRun(("k",))
    run.score(detector, items(), crop="none", thumbnail=lambda r: None)
    assert run.limit == "z.zip: too many files" and [r.path for r in run.rows] == ["a.png"] and run.status == "done"
    run.cancel()
    assert run.status == "done"  # only a running batch is cancelled
    stopped = BatchRun(("k",))
    stopped.cancel()
    many = [Item(f"{i}.png", data=png_bytes(False, i)) for i in range(70)]
    stopped.score(detector, many, crop="none", thumbnail=lambda r: None)  # checked between chunks of 64
    assert stopped.status == "cancelled" and len(stopped.rows) < len(many)


# --- uploads that share a file name (the same name from two folders) -------------------------------------------

def test_unique_names_number_repeats_and_skip_names_taken():
    from models.scoring.batch import unique_names

    assert unique_names(["photo.jpg", "a.png", "photo.jpg", "photo.jpg", "a.png"]) == [
        "photo.jpg", "a.png", "photo.jpg (2)", "photo.jpg (3)", "a.png (2)"]
    assert unique_names(["x.png", "x.png", "x.png (2)"]) == ["x.png", "x.png (3)", "x.png (2)"]
    assert unique_names(["x.png (2)", "x.png", "x.png"]) == ["x.png (2)", "x.png", "x.png (3)"]
    assert unique_names([]) == []


def test_box_text_says_which_crop_was_scored():
    from models.scoring.batch import box_text

    assert box_text(Row("a.png", 2, 12, 30, 64, 60, "face", 0.5, "fake")) == "face 2: 64x60 at 12,30"
    assert box_text(Row("a.png", None, 0, 16, 128, 128, "center", 0.5, "fake")) == \
        "centre square: 128x128 at 0,16"
    assert box_text(Row("a.png", None, 0, 0, 128, 96, "none", 0.5, "real")) == "whole image: 128x96"
    assert box_text(Row("a.png", error="a.png: not an image file")) == ""


def test_same_named_uploads_of_different_content_stay_separate(detector):
    """Six uploads, three names, each name from two folders with different content: six rows, six distinct
    paths, each scored and re-read from its own bytes; a second same-named zip is opened as a zip too."""
    from models.scoring.batch import BatchRun, unique_names

    names = ["a.png", "b.png", "c.png", "a.png", "b.png", "c.png"]
    datas = [png_bytes(i % 2 == 0, seed=i) for i in range(6)]
    shown = unique_names(names)
    assert shown == ["a.png", "b.png", "c.png", "a.png (2)", "b.png (2)", "c.png (2)"]
    files = dict(zip(shown, datas))
    own = dict(zip(shown, names))
    run = BatchRun(("k",))
    run.score(detector, A.upload_items((n, files[n], own[n]) for n in shown), crop="none", thumbnail=lambda r: None)
    assert [r.path for r in run.rows] == shown and run.counts()["Files"] == 6
    expected = detector.predict([np.asarray(Image.open(io.BytesIO(d))) for d in datas])
    assert [r.p_fake for r in run.rows] == pytest.approx([float(p) for p in expected], abs=1e-5)
    assert run.rows[0].p_fake != pytest.approx(run.rows[3].p_fake, abs=1e-6)  # different content, different score
    for n, d in zip(shown, datas):
        np.testing.assert_array_equal(A.read_upload(n, files, own), np.asarray(Image.open(io.BytesIO(d))))
    buf = io.StringIO()
    write_csv(run.rows, buf)
    paths = [r["path"] for r in csv.DictReader(io.StringIO(buf.getvalue()))]
    assert paths == shown and len(set(paths)) == 6
    # Two zips named p.zip: the second is "p.zip (2)", still opened as a zip, its members re-read from it.
    zips = [zip_of({"in/x.png": datas[0]}), zip_of({"in/x.png": datas[1]})]
    shown = unique_names(["p.zip", "p.zip"])
    items = list(A.upload_items((n, z, "p.zip") for n, z in zip(shown, zips)))
    assert [i.name for i in items] == ["p.zip!in/x.png", "p.zip (2)!in/x.png"] and all(i.data for i in items)
    files, own = dict(zip(shown, zips)), dict.fromkeys(shown, "p.zip")
    np.testing.assert_array_equal(A.read_upload("p.zip (2)!in/x.png", files, own),
                                  np.asarray(Image.open(io.BytesIO(datas[1]))))
    with pytest.raises(A.ImageLoadError, match="only .zip archives are opened"):
        A.read_upload("p.zip (2)!in/x.png", files)  # without the own names, "p.zip (2)" is not a .zip


def test_any_uploaded_file_gets_intakes_one_line_reason():
    """PDF and SVG uploads are inputs like any file: decoding refuses them with one line, as the CLI does."""
    items = list(A.upload_items([("doc.pdf", b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n"),
                                 ("pic.svg", b'<svg xmlns="http://www.w3.org/2000/svg"/>')]))
    assert [i.name for i in items] == ["doc.pdf", "pic.svg"] and not any(i.error for i in items)
    for item in items:
        with pytest.raises(A.ImageLoadError) as exc:
            read_item(item)
        assert str(exc.value).startswith(f"{item.name}: ") and "\n" not in str(exc.value)

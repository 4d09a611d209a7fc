"""python -m models.prepare: photos -> face crops laid out like the shared data, with a manifest."""

from __future__ import annotations

import csv

import numpy as np
from PIL import Image
from skimage import data

from models.data.prepare import COLUMNS
from models.prepare import main


def test_prepare_crops_faces_and_writes_manifest(tmp_path, capsys):
    src = tmp_path / "photos"
    for split in ("train", "test"):
        for cls in ("real", "fake"):
            (src / split / cls).mkdir(parents=True)
    astronaut = data.astronaut()
    Image.fromarray(astronaut).save(src / "train" / "real" / "mine__astro.png")
    Image.fromarray(np.full((200, 300, 3), 90, np.uint8)).save(src / "train" / "fake" / "mine__grey.jpg")
    (src / "test" / "real" / "broken.jpg").write_bytes(b"not an image")
    Image.fromarray(astronaut[:300, 100:400]).save(src / "test" / "fake" / "nested.webp")

    rc = main([str(src), str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert rc == 2  # one broken file
    assert "broken.jpg" in captured.err and "Traceback" not in captured.err
    rows = list(csv.DictReader(open(tmp_path / "out" / "manifest.csv")))
    assert list(rows[0]) == COLUMNS
    by_name = {r["original_name"]: r for r in rows}
    assert set(by_name) == {"mine__astro.png", "mine__grey.jpg", "nested.webp"}
    astro = by_name["mine__astro.png"]
    assert astro["split"] == "train" and astro["label"] == "real" and astro["source"] == "mine"
    assert astro["face_found"] == "1" and float(astro["face_confidence"]) > 0.9
    x, y, w, h = (int(v) for v in astro["face_box_xywh_original_px"].split())
    assert abs(x - 182) < 10 and abs(y - 64) < 10  # mtcnn's box on the astronaut
    assert by_name["mine__grey.jpg"]["face_found"] == "0"  # no face: the centre square
    for r in rows:
        img = Image.open(tmp_path / "out" / r["file"])
        assert img.size == (128, 128) and img.format == "JPEG"
    assert (tmp_path / "out" / "test" / "fake" / "nested.jpg").exists()


def test_prepare_empty_source_exits_2(tmp_path, capsys):
    assert main([str(tmp_path), str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.startswith("error: ")

"""models.explore on synthetic datasets: class balance, image listing, mean faces, mistakes and per-source errors."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from models.analysis import explore
from models.analysis.zoo import Scores
from models.data.files import DataError
from tests.conftest import make_dataset_dir

KINDS = {"lfw_faceswap": "swap", "basemax_fakefaces": "gan"}  # the manifest's kind column, as in the shared data


def write_manifest(root: Path, rows: list[tuple[str, str, str, str]]) -> None:
    with open(root / "manifest.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["split", "label", "file", "source", "kind", "original_name"])
        for split, label, file, source in rows:
            w.writerow([split, label, file, source, KINDS.get(source, ""), Path(file).name])


@pytest.fixture
def two_sources(tmp_path) -> Path:
    """test/ and train/ with source "a" (4 per class) and source "b" (2 per class) in the same folders."""
    root = tmp_path / "data"
    make_dataset_dir(root, splits=("train", "test"), n_per_class=4, source="a")
    make_dataset_dir(root, splits=("train", "test"), n_per_class=2, source="b", seed=1)
    return root


# --- class balance ----------------------------------------------------------------------------------------

def test_class_balance_walks_folders_without_manifest(two_sources):
    assert explore.balance_origin(two_sources) == "folders"
    rows = explore.class_balance(two_sources)
    assert [(r["split"], r["source"]) for r in rows] == [("train", "a"), ("train", "b"), ("test", "a"), ("test", "b")]
    a = rows[0]
    assert (a["real"], a["fake"], a["total"], a["share fake"]) == (4, 4, 8, 0.5)
    assert rows[1]["real"] == rows[1]["fake"] == 2
    by_split = explore.balance_by_split(rows)
    assert by_split == [{"split": "train", "real": 6, "fake": 6, "total": 12, "share fake": 0.5},
                        {"split": "test", "real": 6, "fake": 6, "total": 12, "share fake": 0.5}]
    by_source = {r["source"]: r for r in explore.balance_by_source(rows)}
    assert by_source["a"]["train real"] == 4 and by_source["a"]["test fake"] == 4 and by_source["a"]["real"] == 8
    assert by_source["b"]["fake"] == 4
    assert explore.one_class_sources(rows) == {}


def test_class_balance_reads_manifest_when_present(tmp_path):
    root = make_dataset_dir(tmp_path / "data", splits=("test",), n_per_class=2)
    # The manifest is the word on sources and counts (here it names sources the file names do not carry).
    write_manifest(root, [("test", "real", "test/real/synth__real0.png", "lfw_faceswap"),
                          ("test", "real", "test/real/synth__real1.png", "lfw_faceswap"),
                          ("test", "fake", "test/fake/synth__fake0.png", "lfw_faceswap"),
                          ("test", "fake", "test/fake/synth__fake1.png", "basemax_fakefaces"),
                          ("val", "fake", "val/fake/x.png", "basemax_fakefaces")])
    assert explore.balance_origin(root) == "manifest.csv"
    rows = explore.class_balance(root)
    assert [(r["split"], r["source"], r["real"], r["fake"], r["kind"]) for r in rows] == [
        ("val", "basemax_fakefaces", 0, 1, "gan"),
        ("test", "basemax_fakefaces", 0, 1, "gan"),
        ("test", "lfw_faceswap", 2, 1, "swap")]
    assert explore.one_class_sources(rows) == {"basemax_fakefaces": "fake"}


def test_manifest_without_needed_columns_falls_back_to_walking(tmp_path):
    root = make_dataset_dir(tmp_path / "data", splits=("test",), n_per_class=3)
    (root / "manifest.csv").write_text("file,source,original_name\ntest/real/synth__real0.png,lfw_faceswap,x.png\n")  # no split, label
    assert explore.read_manifest(root) is None
    rows = explore.class_balance(root)  # walked; the file it knows still takes its source from it
    assert [(r["split"], r["source"], r["real"], r["fake"]) for r in rows] == [
        ("test", "lfw_faceswap", 1, 0), ("test", "synth", 2, 3)]


def test_class_balance_of_a_root_without_splits(tmp_path):
    root = make_dataset_dir(tmp_path / "flat", splits=(None,), n_per_class=2)
    rows = explore.class_balance(root)
    assert [(r["split"], r["real"], r["fake"]) for r in rows] == [("all", 2, 2)]


def test_not_a_dataset(tmp_path):
    assert not explore.is_dataset(None)
    assert not explore.is_dataset(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    assert not explore.is_dataset(tmp_path / "empty")
    with pytest.raises(DataError):
        explore.class_balance(tmp_path / "empty")


# --- listing and paging -----------------------------------------------------------------------------------

def test_list_images_filters_by_split_label_and_source(two_sources):
    every = explore.list_images(two_sources)
    assert len(every) == 24
    row = every[0]
    assert set(row) == {"path", "file", "split", "label", "source", "name"}
    assert Path(row["path"]).is_absolute() and (two_sources / row["file"]).is_file()
    test_fakes = explore.list_images(two_sources, split="test", label="fake")
    assert len(test_fakes) == 6 and {r["label"] for r in test_fakes} == {"fake"}
    assert all(r["file"].startswith("test/fake/") for r in test_fakes)
    assert len(explore.list_images(two_sources, split="test", label=1, source="b")) == 2
    assert len(explore.list_images(two_sources, source=["a", "b"], label=0)) == 12
    assert explore.filter_images(every, source="nope") == []


def test_list_images_uses_manifest_sources(tmp_path):
    root = make_dataset_dir(tmp_path / "data", splits=("test",), n_per_class=1)
    write_manifest(root, [("test", "real", "test/real/synth__real0.png", "ciplab_real_and_fake_face")])
    rows = explore.list_images(root, label="real")
    assert [(r["source"], r["file"]) for r in rows] == [("ciplab_real_and_fake_face", "test/real/synth__real0.png")]


def test_paginate_clamps():
    items = list(range(50))
    assert explore.paginate(items, 1) == (items[:24], 1, 3)
    assert explore.paginate(items, 3) == (items[48:], 3, 3)
    assert explore.paginate(items, 9)[1:] == (3, 3)
    assert explore.paginate([], 0) == ([], 1, 1)


def test_thumbnail_downscales_never_enlarges(tmp_path):
    big = tmp_path / "big.png"
    Image.fromarray(np.full((128, 128, 3), 7, np.uint8)).save(big)
    assert explore.thumbnail(big).shape == (96, 96, 3)
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((32, 40, 3), np.uint8)).save(small)
    assert explore.thumbnail(small).shape == (32, 40, 3)
    assert explore.jpeg_bytes(explore.thumbnail(big))[:2] == b"\xff\xd8"


# --- the mean face ------------------------------------------------------------------------------------------

def solid(path: Path, value, size: int = 16) -> str:
    Image.fromarray(np.full((size, size, 3), value, np.uint8)).save(path)
    return str(path)


def test_mean_faces_of_known_images(tmp_path):
    paths = [solid(tmp_path / "r0.png", 0), solid(tmp_path / "r1.png", 102),
             solid(tmp_path / "f0.png", 255), solid(tmp_path / "f1.png", (51, 102, 153))]
    (tmp_path / "broken.png").write_bytes(b"not an image")
    paths.append(str(tmp_path / "broken.png"))
    calls = []
    mf = explore.mean_faces(paths, [0, "real", 1, "fake", 1], size=16, progress=lambda d, t: calls.append((d, t)),
                            every=2)
    assert (mf.n_real, mf.n_fake, mf.skipped) == (2, 2, 1)
    assert mf.mean_real.shape == (16, 16, 3) and mf.mean_real.dtype == np.float64
    np.testing.assert_allclose(mf.mean_real, 51 / 255)
    np.testing.assert_allclose(mf.mean_fake[0, 0], [153 / 255, 178.5 / 255, 204 / 255])
    np.testing.assert_allclose(mf.diff, mf.mean_fake - mf.mean_real)
    assert calls == [(2, 5), (4, 5), (5, 5)]
    s = mf.summary()
    assert s["mean |diff|"] == pytest.approx((178.5 - 51) / 255)


def test_mean_faces_resizes_and_handles_a_missing_class(tmp_path):
    paths = [solid(tmp_path / "a.png", 200, size=40), solid(tmp_path / "b.png", 100, size=20)]
    mf = explore.mean_faces(paths, ["fake", "fake"], size=32)
    assert mf.mean_fake.shape == (32, 32, 3)
    np.testing.assert_allclose(mf.mean_fake, 150 / 255)
    assert mf.mean_real is None and mf.diff is None and mf.n_real == 0
    fig = explore.mean_face_figure(mf, "only fakes")
    assert len(fig.axes) == 3  # no colorbar without a difference
    with pytest.raises(ValueError):
        explore.mean_faces(paths, [0], size=32)


def test_mean_faces_on_synthetic_dataset_shows_the_planted_bias(tiny_data):
    """Synthetic fakes are bright in the top-left quadrant: the difference is large there, ~0 elsewhere."""
    files = explore.list_images(tiny_data, split="train")
    mf = explore.mean_faces([r["path"] for r in files], [r["label"] for r in files], size=32)
    assert (mf.n_real, mf.n_fake) == (8, 8)
    d = mf.diff.mean(axis=-1)
    assert d[:16, :16].mean() > 0.4
    assert abs(d[16:, 16:].mean()) < 0.05
    fig = explore.mean_face_figure(mf)
    cbar = fig.axes[-1]  # the colorbar: symmetric limits
    lo, hi = cbar.get_ylim()
    assert lo == pytest.approx(-hi)
    assert fig.axes[2].images[0].get_cmap().name == "RdBu_r"


# --- mistakes -----------------------------------------------------------------------------------------------

def scores() -> Scores:
    #        file                source  y  p
    table = [("test/real/r0.png", "a", 0, 0.10),
             ("test/real/r1.png", "a", 0, 0.50),   # at the threshold: called fake
             ("test/real/r2.png", "a", 0, 0.95),
             ("test/real/r3.png", "b", 0, 0.70),
             ("test/fake/f0.png", "a", 1, 0.49),
             ("test/fake/f1.png", "b", 1, 0.02),
             ("test/fake/f2.png", "b", 1, 0.30),
             ("test/fake/f3.png", "b", 1, 0.99)]
    paths, sources, y, p = zip(*table)
    return Scores("m", "test", list(paths), list(sources), np.array(y), np.array(p), Path("m.eval.csv"))


def test_mistakes_most_confident_first_at_threshold(tmp_path):
    fp, fn = explore.mistakes(scores(), 0.5, root=tmp_path)
    assert [r["file"] for r in fp] == ["test/real/r2.png", "test/real/r3.png", "test/real/r1.png"]
    assert [r["p_fake"] for r in fp] == [0.95, 0.70, 0.50]  # P(fake) descending
    assert [r["file"] for r in fn] == ["test/fake/f1.png", "test/fake/f2.png", "test/fake/f0.png"]
    assert [r["p_fake"] for r in fn] == [0.02, 0.30, 0.49]  # P(fake) ascending
    assert fp[0]["path"] == str(tmp_path / "test/real/r2.png") and fp[0]["truth"] == "real"
    assert fn[0]["truth"] == "fake" and fn[0]["source"] == "b"
    # A stricter operating point moves r1 and r3 out of the FPs and f0 stays a FN.
    fp, fn = explore.mistakes(scores(), 0.8)
    assert [r["file"] for r in fp] == ["test/real/r2.png"]
    assert fp[0]["path"] == "test/real/r2.png"  # no root: left as scored
    assert [r["file"] for r in fn] == ["test/fake/f1.png", "test/fake/f2.png", "test/fake/f0.png"]


def test_errors_by_source_counts_fp_and_fn_separately():
    rows = {r["source"]: r for r in explore.errors_by_source(scores(), 0.5)}
    a, b = rows["a"], rows["b"]
    assert (a["n real"], a["n fake"], a["FP"], a["FN"], a["errors"]) == (3, 1, 2, 1, 3)
    assert a["FP rate"] == pytest.approx(2 / 3) and a["FN rate"] == 1.0 and a["error rate"] == 0.75
    assert (b["n real"], b["n fake"], b["FP"], b["FN"]) == (1, 3, 1, 2)
    assert b["FN rate"] == pytest.approx(2 / 3)
    totals = explore.error_totals(scores(), 0.5)
    assert (totals["FP"], totals["FN"], totals["n real"], totals["n fake"]) == (3, 3, 4, 4)
    assert totals["accuracy"] == pytest.approx(2 / 8)
    only_fakes = Scores("m", "test", ["x"], ["c"], np.array([1]), np.array([0.9]), Path("x"))
    row = explore.errors_by_source(only_fakes, 0.5)[0]
    assert row["FP rate"] is None and row["FN"] == 0
    only_reals = Scores("m", "test", ["y", "z"], ["r", "g"], np.array([0, 1]), np.array([0.1, 0.9]), Path("x"),
                        {"g": "gan"})
    kinds = {r["source"]: r["kind"] for r in explore.errors_by_source(only_reals, 0.5)}
    assert kinds == {"r": "reals only", "g": "gan"}  # a source without fakes has no kind of fake to show


def test_coverage_and_score_split(tiny_data, quadrant_detector):
    fresh, failed = explore.score_split(quadrant_detector, tiny_data, "test")
    assert failed == [] and len(fresh) == 16
    assert fresh.paths[0].startswith("test/") and explore.coverage(fresh, tiny_data) == 1.0
    assert explore.coverage(scores(), tiny_data) == 0.0
    # The quadrant model knows the synthetic rule: no mistakes at 0.5.
    fp, fn = explore.mistakes(fresh, 0.5, tiny_data)
    assert fp == [] and fn == []


# --- what the Dataset and Error analysis pages ask ------------------------------------------------------------

def test_dataset_stamp_changes_with_the_folders(two_sources):
    import os

    assert explore.has_split(two_sources, "test") and not explore.has_split(two_sources / "nope", "test")
    before = explore.dataset_stamp(two_sources)
    assert len(before) == 1 + 2 * 4 and before[0] == 0.0  # no manifest
    folder = two_sources / "test" / "real"
    os.utime(folder, (1_000_000, 1_000_000))
    assert explore.dataset_stamp(two_sources) != before


def test_splits_sources_and_page_span():
    rows = [{"split": "test", "source": "b"}, {"split": "train", "source": "a"}, {"split": "test", "source": "a"}]
    assert explore.splits_in(rows) == ["test", "train"]
    assert explore.sources_in(rows) == ["a", "b"]
    assert explore.page_span(1, 24) == (1, 24)
    assert explore.page_span(3, 5, per_page=24) == (49, 53)


def test_cached_scores_status(tmp_path):
    import json
    import os

    from models.analysis.evaluate import eval_csv_path, save_scores
    from models.analysis.zoo import load_scores

    assert explore.cached_scores_status(None, 0.0, tmp_path) == "missing"
    (tmp_path / "m.npz").write_bytes(b"x")
    (tmp_path / "m.json").write_text(json.dumps({"name": "m"}))
    path = save_scores(eval_csv_path("m", "test", tmp_path), [("test/real/a.png", "s", 0, 0.2)])
    s = load_scores("m", "test", tmp_path)
    assert explore.cached_scores_status(s, 0.2, tmp_path) == "other dataset"
    assert explore.cached_scores_status(s, 1.0, tmp_path) == "fresh"
    os.utime(path, (1_000_000, 1_000_000))
    assert explore.cached_scores_status(s, 1.0, tmp_path) == "stale"
    assert explore.cached_scores_status(s, 0.4, tmp_path) == "other dataset"


def test_missing_files(tmp_path):
    (tmp_path / "here.png").write_bytes(b"x")
    rows = [{"path": str(tmp_path / "here.png")}, {"path": str(tmp_path / "gone.png")}]
    assert explore.missing_files(rows) == [rows[1]]

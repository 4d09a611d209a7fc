"""models.data: data_root precedence, listing, manifests, fingerprints and the tf.data pipeline."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from conftest import make_dataset_dir

from models.data import files as D
from models.data.intake import load_image
from models.data.preprocess import resize_and_scale
from models.data.tfdata import make_dataset

REPO = Path(__file__).resolve().parent.parent


# --- data_root --------------------------------------------------------------------------------


def test_data_root_explicit_wins_over_env(monkeypatch, tmp_path):
    monkeypatch.setenv("DEEPFAKE_DATA", str(tmp_path / "from_env"))
    assert D.data_root(tmp_path / "explicit") == tmp_path / "explicit"
    assert D.data_root(str(tmp_path / "explicit")) == tmp_path / "explicit"


def test_data_root_env_wins_over_repo_default(monkeypatch, tmp_path):
    monkeypatch.setenv("DEEPFAKE_DATA", str(tmp_path / "from_env"))
    assert D.data_root() == tmp_path / "from_env"
    assert D.data_root(None) == tmp_path / "from_env"


def test_data_root_defaults_to_repo_data(monkeypatch):
    monkeypatch.delenv("DEEPFAKE_DATA", raising=False)
    assert D.data_root() == REPO / "data"


# --- list_files -------------------------------------------------------------------------------


def test_list_files_with_split(tiny_data):
    files = D.list_files(tiny_data, "train")
    assert len(files) == 16
    assert all(Path(p).parent.parent == tiny_data / "train" for p in files.paths)
    # sorted per class, real (0) first then fake (1)
    assert files.labels == [0] * 8 + [1] * 8
    assert [Path(p).parent.name for p in files.paths] == ["real"] * 8 + ["fake"] * 8
    assert files.paths[:8] == sorted(files.paths[:8])
    assert files.y.dtype == np.int64 and files.y.tolist() == files.labels
    assert set(files.sources) == {"synth"}
    assert files.names == [Path(p).name for p in files.paths]


def test_list_files_plain_folder_without_split(tmp_path):
    root = make_dataset_dir(tmp_path / "plain", splits=(None,), n_per_class=3, source="lfw_faceswap")
    files = D.list_files(root)
    assert len(files) == 6
    assert files.labels == [0, 0, 0, 1, 1, 1]
    assert all("/real/" in p for p in files.paths[:3]) and all("/fake/" in p for p in files.paths[3:])
    assert files.sources == ["lfw_faceswap"] * 6


def test_list_files_labels_real0_fake1(tmp_path):
    root = tmp_path / "d"
    make_dataset_dir(root, splits=(None,), n_per_class=2)
    files = D.list_files(root)
    for path, label in zip(files.paths, files.labels, strict=True):
        assert label == {"real": 0, "fake": 1}[Path(path).parent.name]
    assert D.CLASSES.index("fake") == 1


def test_list_files_sources_from_prefix_and_unknown(tmp_path):
    root = make_dataset_dir(tmp_path / "d", splits=(None,), n_per_class=1, source="ciplab_real_and_fake_face")
    (root / "fake" / "noprefix.png").write_bytes((root / "fake" / "ciplab_real_and_fake_face__fake0.png").read_bytes())
    (root / "real" / "notes.txt").write_text("not an image")  # ignored: not an image extension
    files = D.list_files(root)
    by_name = dict(zip((Path(p).name for p in files.paths), files.sources, strict=True))
    assert by_name == {
        "ciplab_real_and_fake_face__real0.png": "ciplab_real_and_fake_face",
        "ciplab_real_and_fake_face__fake0.png": "ciplab_real_and_fake_face",
        "noprefix.png": "unknown",
    }
    assert D.source_of("a__b__c.jpg") == "a"
    assert D.source_of("plain.jpg") == "unknown"


def test_manifest_sources_win(tmp_path):
    root = make_dataset_dir(tmp_path / "d", splits=("test",), n_per_class=2, source="prefix")
    rows = []
    for cls in ("real", "fake"):
        for i in range(2):
            fname = f"prefix__{cls}{i}.png"
            rows.append({"split": "test", "label": cls, "file": f"test/{cls}/{fname}",
                         "source": f"manifest_{cls}", "original_name": f"orig_{cls}{i}.jpg"})
    with open(root / "manifest.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["split", "label", "file", "source", "original_name"])
        writer.writeheader()
        writer.writerows(rows)
    files = D.list_files(root, "test")
    assert files.sources == ["manifest_real", "manifest_real", "manifest_fake", "manifest_fake"]
    assert files.names == ["orig_real0.jpg", "orig_real1.jpg", "orig_fake0.jpg", "orig_fake1.jpg"]
    fp = D.fingerprint(root)
    assert fp["manifest"] is True
    assert fp["splits"]["test"]["per_source"] == {"fake/manifest_fake": 2, "real/manifest_real": 2}


def test_missing_folder_raises_data_error(tmp_path):
    with pytest.raises(D.DataError, match="not found"):
        D.list_files(tmp_path / "nope")
    make_dataset_dir(tmp_path / "d", splits=("train",), n_per_class=1)
    with pytest.raises(D.DataError, match="not found"):
        D.list_files(tmp_path / "d", "test")


def test_folder_without_real_fake_raises_data_error(tmp_path):
    (tmp_path / "empty" / "cats").mkdir(parents=True)
    with pytest.raises(D.DataError, match="no real/ or fake/"):
        D.list_files(tmp_path / "empty")


def test_dataset_root_without_split_hints_at_split(tiny_data):
    with pytest.raises(D.DataError, match="split"):
        D.list_files(tiny_data)


# --- make_dataset -------------------------------------------------------------------------------


def test_make_dataset_batches_and_order(tiny_data):
    files = D.list_files(tiny_data, "val")
    ds = make_dataset(files, image_size=32, batch_size=5, shuffle=False)
    batches = list(ds.as_numpy_iterator())
    assert [len(x) for x, _ in batches] == [5, 5, 5, 1]
    for x, y in batches:
        assert x.shape[1:] == (32, 32, 3)
        assert x.dtype == np.float32 and y.dtype == np.float32
        assert x.min() >= 0.0 and x.max() <= 1.0
    labels = np.concatenate([y for _, y in batches])
    np.testing.assert_array_equal(labels, files.labels)
    # images come in file order: each equals the file decoded on its own
    images = np.concatenate([x for x, _ in batches])
    for i in (0, 7, 8, 15):
        expected = resize_and_scale(load_image(files.paths[i]), 32).numpy()
        np.testing.assert_allclose(images[i], expected, atol=1e-6)


def test_make_dataset_resizes(tiny_data):
    files = D.list_files(tiny_data, "test")
    x, y = next(iter(make_dataset(files, image_size=64, batch_size=4)))
    assert tuple(x.shape) == (4, 64, 64, 3)
    assert float(x.numpy().max()) > 0.1  # real pixels, not an empty/zero tensor


def test_make_dataset_empty_raises(tmp_path):
    with pytest.raises(D.DataError):
        make_dataset(D.FileList(), image_size=32)


def test_shuffle_is_seeded(tiny_data):
    files = D.list_files(tiny_data, "train")

    def first_epoch(seed):
        ds = make_dataset(files, image_size=32, batch_size=16, shuffle=True, seed=seed)
        return next(iter(ds))

    (xa, ya), (xb, yb) = first_epoch(7), first_epoch(7)
    np.testing.assert_array_equal(xa.numpy(), xb.numpy())
    np.testing.assert_array_equal(ya.numpy(), yb.numpy())
    unshuffled = next(iter(make_dataset(files, image_size=32, batch_size=16)))[0].numpy()
    assert not np.array_equal(xa.numpy(), unshuffled)  # it really shuffled
    xc, _ = first_epoch(8)
    assert not np.array_equal(xa.numpy(), xc.numpy())  # another seed, another order
    assert sorted(ya.numpy().tolist()) == sorted(files.labels)  # same items, new order


# --- fingerprint -------------------------------------------------------------------------------


def test_fingerprint_counts(tmp_path):
    root = tmp_path / "d"
    make_dataset_dir(root, splits=("train",), n_per_class=3, source="lfw_faceswap")
    make_dataset_dir(root, splits=("train",), n_per_class=1, source="basemax_fakefaces", seed=1)
    make_dataset_dir(root, splits=("val",), n_per_class=2, source="lfw_faceswap")
    fp = D.fingerprint(root)
    assert fp["root"] == str(root)
    assert fp["manifest"] is False
    assert set(fp["splits"]) == {"train", "val"}
    train = fp["splits"]["train"]
    assert train["n"] == 8
    assert train["per_class"] == {"fake": 4, "real": 4}
    assert train["per_source"] == {
        "fake/basemax_fakefaces": 1,
        "fake/lfw_faceswap": 3,
        "real/basemax_fakefaces": 1,
        "real/lfw_faceswap": 3,
    }
    assert fp["splits"]["val"] == {"n": 4, "per_class": {"fake": 2, "real": 2}, "per_source": {
        "fake/lfw_faceswap": 2, "real/lfw_faceswap": 2}}


def test_fingerprint_plain_folder(tmp_path):
    root = make_dataset_dir(tmp_path / "p", splits=(None,), n_per_class=2)
    fp = D.fingerprint(root)
    assert list(fp["splits"]) == ["all"]
    assert fp["splits"]["all"]["n"] == 4


# --- kinds of fake come from the manifest, never from a list in the code ---------------------------------


def test_source_kinds_are_read_from_the_manifest(tmp_path):
    from conftest import write_manifest

    root = make_dataset_dir(tmp_path / "d", splits=("train", "test"), n_per_class=2, source="brand_new_gen")
    make_dataset_dir(root, splits=("test",), n_per_class=1, source="reals_only", seed=1)
    write_manifest(root, {"brand_new_gen": "diffusion"})  # a kind no code names
    assert D.source_kinds(root) == {"brand_new_gen": "diffusion"}
    files = D.list_files(root, "test")
    assert files.source_kinds == {"brand_new_gen": "diffusion"}
    assert D.kind_of("brand_new_gen", files.source_kinds) == "diffusion"
    assert D.kind_of("reals_only", files.source_kinds) == "unknown"  # no kind: unknown, never an error
    assert D.kind_of("reals_only", files.source_kinds, has_fakes=False) == "reals only"  # shown for a real-only source
    assert D.kind_of("brand_new_gen", files.source_kinds, has_fakes=False) == "diffusion"
    assert files.without_sources(["reals_only"]).source_kinds == files.source_kinds
    assert D.source_kinds(tmp_path / "no_manifest_here") == {}


def test_a_real_row_carries_its_source_kind_but_kinds_are_per_source(tmp_path):
    # the manifest gives reals of a source the same kind as its fakes: reading it per source keeps one value
    (tmp_path / "manifest.csv").write_text("file,source,kind\nreal/a__1.png,a,swap\nfake/a__2.png,a,swap\n"
                                           "real/u__1.png,u,\n")
    assert D.source_kinds(tmp_path) == {"a": "swap"}


def test_evaluate_reports_an_unknown_source_as_kind_unknown(tmp_path, oracle_model_path):
    from conftest import write_manifest

    from models.analysis.evaluate import evaluate
    from models.detectors.registry import load_model

    root = make_dataset_dir(tmp_path / "e", splits=(None,), n_per_class=3, source="known")
    make_dataset_dir(root, splits=(None,), n_per_class=2, source="newcomer", seed=2)
    write_manifest(root, {"known": "gan"})
    r = evaluate(load_model(oracle_model_path, cache=False), str(root), progress=False)
    assert set(r["by_kind"]) == {"gan", "unknown", "real"}
    # each kind: its own fakes against ALL reals (3 + 2), never only the reals that carry its kind
    assert r["by_kind"]["gan"]["n_fake"] == 3 and r["by_kind"]["gan"]["n"] == 3 + 5
    assert r["by_kind"]["unknown"]["n_fake"] == 2 and r["by_kind"]["unknown"]["n"] == 2 + 5


def test_stratified_indices_draw_from_every_group_in_proportion(tmp_path):
    root = make_dataset_dir(tmp_path / "s", splits=(None,), n_per_class=12, source="big")
    make_dataset_dir(root, splits=(None,), n_per_class=2, source="small", seed=1)
    files = D.list_files(root)
    idx = D.stratified_indices(files, 14, seed=0)
    assert idx == sorted(set(idx)) and idx == D.stratified_indices(files, 14, seed=0)
    picked = {(files.sources[i], files.labels[i]) for i in idx}
    assert picked == {("big", 0), ("big", 1), ("small", 0), ("small", 1)}  # every group, even the small ones
    assert sum(files.sources[i] == "big" for i in idx) == 12  # 24 of 28 files are "big": 14 * 24 / 28

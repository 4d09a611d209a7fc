"""The pure parts of bench/bench_regions.py (issue 13): file names to edited regions, the hit rule, lift and its
bootstrap interval, region scores per method, the photoshop sources read from the manifest kinds, and the
selection rule (highest lift; ties go to the cheaper method)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from explain.base import Explanation
from models.data.files import FileList
from models.data.landmarks import INNER, Landmarks, region_map

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def B():
    spec = importlib.util.spec_from_file_location("bench_regions", REPO / "bench" / "bench_regions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


LM = Landmarks(box=(24, 20, 80, 100), left_eye=(48, 60), right_eye=(80, 60), nose=(64, 80),
               mouth_left=(50, 100), mouth_right=(78, 100), confidence=0.99)


def test_inner_regions_match_the_library(B):
    assert B.INNER == tuple(INNER)


def test_parse_bits(B):
    assert B.parse_bits("mid_12_0010.jpg") == ("mid", (0, 0, 1, 0))
    assert B.parse_bits("some/dir/HARD_3_1100.JPG") == ("hard", (1, 1, 0, 0))
    assert B.parse_bits("mid_12_0012.jpg") is None
    assert B.parse_bits("real_00012.jpg") is None
    assert B.parse_bits("mid_12_001.jpg") is None


def test_hit_of_top_and_ties(B):
    scores = {"left_eye": 0.1, "right_eye": 0.5, "nose": 0.2, "mouth": -1.0}
    assert B.hit_of(scores, {"right_eye"}) == (1.0, False)
    assert B.hit_of(scores, {"left_eye", "nose"}) == (0.0, False)
    tied = {"left_eye": 0.5, "right_eye": 0.5, "nose": 0.2, "mouth": 0.0}
    assert B.hit_of(tied, {"left_eye", "mouth"}) == (0.5, True)


def test_stats_lift_and_interval(B):
    rng = np.random.default_rng(0)
    s = B.stats([1, 1, 1, 1], [0.5, 0.5, 0.5, 0.5], rng)
    assert s["n"] == 4 and s["hit_rate"] == 1.0 and s["chance"] == 0.5
    assert s["lift"] == pytest.approx(2.0) and s["lift_lo"] == pytest.approx(2.0) and s["lift_hi"] == pytest.approx(2.0)
    hits = [1, 0] * 50
    s = B.stats(hits, [0.25] * 100, np.random.default_rng(0))
    assert s["lift"] == pytest.approx(2.0)
    assert 1.4 < s["lift_lo"] < 2.0 < s["lift_hi"] < 2.6
    assert B.stats([], [], rng)["lift"] is None


def test_select_method_highest_lift_ties_to_the_cheaper(B):
    assert B.select_method({"lime": 1.2, "gradcam": 0.9, "shapley": 1.1}) == "lime"
    assert B.select_method({"lime": 1.2, "shapley": 1.2, "gradcam": 0.4}) == "shapley"
    assert B.select_method({"gradcam": 1.3, "manipulation": 1.3, "lime": 1.3}) == "manipulation"
    assert B.select_method({"lime": None, "gradcam": 0.8}) == "gradcam"
    assert B.select_method({}) is None


def test_region_scores_shapley_uses_phi(B):
    values = {"left_eye": 0.01, "right_eye": -0.02, "nose": 0.3, "mouth": 0.1, "rest_of_face": 0.5,
              "outside_face": 0.0}
    e = Explanation("shapley", "fake", 0.7, np.zeros((128, 128), np.float32), extras={"values": values})
    scores = B.region_scores(e, LM)
    assert scores == {r: values[r] for r in INNER}
    assert max(scores, key=scores.get) == "nose"  # rest_of_face is not an inner region


def test_region_scores_pixel_methods_use_mean_evidence(B):
    rmap = region_map((128, 128), LM)
    att = np.zeros((128, 128), np.float32)
    att[rmap == INNER.index("mouth")] = 1.0
    att[rmap == INNER.index("left_eye")] = 0.4
    e = Explanation("lime", "fake", 0.7, att)
    scores = B.region_scores(e, LM)
    assert scores["mouth"] == pytest.approx(1.0) and scores["left_eye"] == pytest.approx(0.4)
    assert scores["nose"] == pytest.approx(0.0) and scores["right_eye"] == pytest.approx(0.0)
    assert B.hit_of(scores, {"mouth"})[0] == 1.0


def test_candidates_read_the_sources_from_the_manifest_kind(B):
    files = FileList(
        paths=["a", "b", "c", "d", "e", "f", "g"],
        labels=[1, 1, 1, 1, 0, 1, 1],
        sources=["cip", "cip", "cip", "cip", "cip", "gan_src", "cip"],
        names=["mid_1_0010.jpg", "easy_2_1111.jpg", "hard_3_0000.jpg", "x.jpg", "real_1.jpg", "mid_9_0100.jpg",
               "hard_4_1101.jpg"],
        source_kinds={"cip": "photoshop", "gan_src": "gan"},
    )
    assert B.edited_sources(files.source_kinds) == {"cip"}
    usable, excluded = B.candidates(files)
    assert usable == [("a", "mid_1_0010.jpg", (0, 0, 1, 0)), ("g", "hard_4_1101.jpg", (1, 1, 0, 1))]
    assert excluded == {"k0": 1, "k4": 1, "bad_name": 1, "no_face": 0}
    assert B.candidates(files, kind="swap") == ([], {"k0": 0, "k4": 0, "bad_name": 0, "no_face": 0})


def test_random_rows_and_summary(B):
    images = [(f"mid_{i}_1000.jpg", (1, 0, 0, 0), None, None) for i in range(400)]
    rows = B.random_rows(images, seed=1)
    assert rows == B.random_rows(images, seed=1)
    assert all(r["hit"] == (1.0 if r["top"] == "left_eye" else 0.0) for r in rows)
    summary = B.summarize_rows("random ranking", "-", rows, np.random.default_rng(0))
    assert summary["all"]["n"] == summary["single"]["n"] == 400
    assert sum(summary["top_counts"].values()) == 400
    assert 0.7 < summary["all"]["lift"] < 1.3  # a random ranking sits at chance

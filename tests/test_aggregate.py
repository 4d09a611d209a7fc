"""explain.aggregate: region Shapley values over sets of crops (FP/FN, batch verdicts), their CSV cache, the CLI."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from explain import aggregate
from explain.aggregate import PhiRow
from explain.regions import REGION_NAMES
from models.data.landmarks import REGIONS, Landmarks

ZERO = dict.fromkeys(REGIONS, 0.0)


def row(path: str, p: float = 0.5, **phi) -> PhiRow:
    values = {**ZERO, **phi}
    return PhiRow(path, p, values, base=p - sum(values.values()), full=p)


def no_face(path: str, p: float = 0.5) -> PhiRow:
    return PhiRow(path, p)


# --- aggregate and sentence ---------------------------------------------------------------------------------

def test_aggregate_means_abs_means_and_top_shares():
    rows = [row("a", mouth=0.3, nose=-0.1), row("b", mouth=0.2, left_eye=0.1),
            row("c", mouth=0.1, nose=0.4), row("d", mouth=-0.2, outside_face=0.05), no_face("e")]
    agg = aggregate.aggregate(rows, toward="fake")
    assert (agg.n, agg.no_face, agg.toward) == (4, 1, "fake")
    assert agg.mean["mouth"] == pytest.approx(0.1)
    assert agg.mean["nose"] == pytest.approx(0.075)
    assert agg.mean_abs["mouth"] == pytest.approx(0.2)
    assert agg.top_share == pytest.approx({**ZERO, "mouth": 0.5, "nose": 0.25, "outside_face": 0.25})
    assert sum(agg.top_share.values()) == pytest.approx(1.0)
    assert agg.driver == "mouth"
    assert [r["region"] for r in agg.table()] == [REGION_NAMES[r] for r in REGIONS]
    assert agg.table()[3]["mean φ (P(fake))"] == pytest.approx(0.1)


def test_aggregate_toward_real_picks_the_most_negative_region():
    rows = [row("a", nose=-0.3, mouth=0.1), row("b", nose=-0.1, right_eye=-0.2), row("c", right_eye=-0.25)]
    agg = aggregate.aggregate(rows, toward="real")
    assert agg.top_share == pytest.approx({**ZERO, "nose": 1 / 3, "right_eye": 2 / 3})
    assert agg.driver == "right_eye"  # mean −0.15 beats the nose's −0.133
    assert aggregate.aggregate(rows, toward="fake").driver == "mouth"  # the only region pushing toward fake
    with pytest.raises(ValueError):
        aggregate.aggregate(rows, toward="verdict")


def test_sentence_names_the_driver_with_its_mean_and_top_share():
    fp = aggregate.aggregate([row("a", mouth=0.15, nose=0.05), row("b", mouth=0.09, left_eye=0.1),
                              row("c", mouth=0.12)], toward="fake")
    assert aggregate.sentence("False positives", fp) == \
        "False positives (n=3) are driven mostly by the mouth (mean +0.12 P(fake); top region in 67%)"
    fn = aggregate.aggregate([row("a", outside_face=-0.2), row("b", outside_face=-0.004, nose=-0.001)],
                             toward="real")
    assert aggregate.sentence("False negatives", fn) == ("False negatives (n=2) are driven mostly by the area "
                                                         "outside the face (mean \u22120.10 P(fake); top region in "
                                                         "100%)")


def test_region_phrases_read_as_english():
    assert [aggregate.region_phrase(r) for r in ("mouth", "rest_of_face", "outside_face")] == [
        "the mouth", "the rest of the face", "the area outside the face"]
    assert aggregate.region_phrase("left_eye") == f"the {REGION_NAMES['left_eye']}"


def test_sentence_without_faces_or_without_a_region_pushing_that_way():
    assert aggregate.sentence("False positives", aggregate.aggregate([no_face("a")])) == \
        "False positives (n=0): no crop with facial landmarks to explain."
    agg = aggregate.aggregate([row("a", mouth=0.2)], toward="real")
    assert agg.driver is None
    assert aggregate.sentence("Real verdicts", agg) == \
        "Real verdicts (n=1): no region pushes toward real on average."


# --- the cache and the join with the evaluation scores ------------------------------------------------------

def test_csv_round_trip_keeps_rows_and_faceless_rows(tmp_path):
    rows = [row("test/real/x.jpg", 0.7, mouth=0.25, nose=-0.05), no_face("test/fake/y.jpg", 0.1),
            PhiRow("test/fake/broken.jpg", None)]
    out = aggregate.write_csv(rows, aggregate.cache_path("m", "test", tmp_path))
    assert out.name == "m.shapley-test.csv"
    with open(out, newline="") as fh:
        table = list(csv.reader(fh))
    assert table[0] == ["path", "p_fake", *REGIONS, "base", "full", "fill", "face"]
    assert table[2][-1] == "false" and table[2][2:8] == [""] * 6
    back = aggregate.load_cache("m", "test", tmp_path)
    assert [r.path for r in back] == [r.path for r in rows]
    assert back[0].phi == pytest.approx(rows[0].phi) and back[0].base == pytest.approx(rows[0].base)
    assert (back[1].face, back[1].p_fake, back[2].p_fake) == (False, 0.1, None)
    assert aggregate.load_cache("other", "test", tmp_path) is None
    bad = tmp_path / "bad.csv"
    bad.write_text("path,p_fake\nx,0.1\n")
    with pytest.raises(ValueError, match="not a region Shapley cache"):
        aggregate.read_csv(bad)


def test_mistakes_join_the_eval_cache_at_the_threshold(tmp_path):
    from models.analysis.evaluate import eval_csv_path, save_scores
    from models.analysis.zoo import load_scores

    scored = [("test/real/r1.jpg", "s", 0, 0.9), ("test/real/r2.jpg", "s", 0, 0.6), ("test/real/r3.jpg", "s", 0, 0.2),
              ("test/fake/f1.jpg", "s", 1, 0.1), ("test/fake/f2.jpg", "s", 1, 0.45), ("test/fake/f3.jpg", "s", 1, 0.8)]
    save_scores(eval_csv_path("m", "test", tmp_path), scored)
    phi = [row(p, q, mouth=0.1) for p, _s, _y, q in scored if p != "test/fake/f1.jpg"]
    aggregate.write_csv(phi, aggregate.cache_path("m", "test", tmp_path))
    scores = load_scores("m", "test", tmp_path)
    m = aggregate.mistakes(aggregate.load_cache("m", "test", tmp_path), scores, 0.5)
    assert [r.path for r in m.fp] == ["test/real/r1.jpg", "test/real/r2.jpg"]
    assert [r.path for r in m.fn] == ["test/fake/f2.jpg"]
    assert (m.n_fp, m.n_fn, m.missing) == (2, 2, ["test/fake/f1.jpg"])
    assert [r.path for r in m.reals] == ["test/real/r1.jpg", "test/real/r2.jpg", "test/real/r3.jpg"]
    assert [r.path for r in m.fakes] == ["test/fake/f2.jpg", "test/fake/f3.jpg"]
    m = aggregate.mistakes(phi, scores, 0.7)  # a stricter operating point: r2 is no longer a mistake, f2 still one
    assert [r.path for r in m.fp] == ["test/real/r1.jpg"]
    assert [r.path for r in m.fn] == ["test/fake/f2.jpg"] and m.n_fn == 2


def test_verdict_sets_split_rows_by_verdict():
    rows = [row("a"), row("b"), no_face("c"), row("d")]
    sets = aggregate.verdict_sets(rows, {"a": "fake", "b": "real", "c": "fake"})
    assert [r.path for r in sets["fake"]] == ["a", "c"] and [r.path for r in sets["real"]] == ["b"]


# --- computing φ ---------------------------------------------------------------------------------------------

class BrightMouth:
    """A stand-in detector: P(fake) is the brightness of the mouth area (rows 44-52 of a 64 px crop)."""

    name = "bright_mouth"
    threshold = 0.5

    def predict(self, images):
        return np.array([np.asarray(im, np.float64)[44:52, 24:40].mean() / 255.0 for im in images])


LANDMARKS = Landmarks(box=(12.0, 8.0, 40.0, 50.0), left_eye=(24.0, 24.0), right_eye=(40.0, 24.0), nose=(32.0, 34.0),
                      mouth_left=(26.0, 48.0), mouth_right=(38.0, 48.0))


def test_phi_rows_find_the_region_the_detector_reads():
    image = np.full((64, 64, 3), 30, np.uint8)
    image[44:52, 24:40] = 250  # a bright mouth: the detector's "artefact"
    images = {"face": image, "noface": image, "broken": None}

    def load(key):
        if key == "broken":
            raise OSError("cannot read")
        return images[key]

    done = []
    rows = list(aggregate.phi_rows(BrightMouth(), ["face", "noface", "broken"], load,
                                   landmarks=[LANDMARKS, None, LANDMARKS], progress=lambda d, t: done.append((d, t))))
    assert done == [(1, 3), (2, 3), (3, 3)]
    face, nofc, broken = rows
    assert face.top("fake") == "mouth" and face.phi["mouth"] > 0.15
    assert all(abs(face.phi[r]) < face.phi["mouth"] / 2 for r in REGIONS if r != "mouth")
    assert sum(face.phi.values()) == pytest.approx(face.full - face.base, abs=1e-9)  # efficiency
    assert face.full == pytest.approx(face.p_fake) and face.p_fake == pytest.approx(BrightMouth().predict([image])[0])
    assert (nofc.face, nofc.p_fake) == (False, pytest.approx(face.p_fake))
    assert (broken.face, broken.p_fake) == (False, None)


def test_figure_has_a_panel_per_set_and_a_diverging_legend():
    fig = aggregate.figure({"False positives": aggregate.aggregate([row("a", mouth=0.2, nose=-0.1)]),
                            "False negatives": aggregate.aggregate([row("b", nose=-0.3)], toward="real")})
    axes = fig.get_axes()
    assert [a.get_title() for a in axes] == ["False positives (n=1)", "False negatives (n=1)"]
    bars = axes[0].patches
    assert len(bars) == len(REGIONS)
    colors = {r: b.get_facecolor() for r, b in zip(REGIONS, bars)}
    assert colors["mouth"] != colors["nose"]  # toward fake vs toward real
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["toward fake (raises P(fake))", "toward real (lowers P(fake))"]


def test_cli_writes_a_row_per_image_and_resumes(tmp_path, capsys):
    """On a synthetic dataset (no faces: every row counted without φ), with the spectrum model (no network)."""
    from explain import shapley_cache
    from tests.conftest import make_dataset_dir

    root = make_dataset_dir(tmp_path / "data", splits=("val",), n_per_class=3)
    out = tmp_path / "out"
    assert shapley_cache.main(["--models", "spectrum", "--data", str(root), "--split", "val", "--out", str(out)]) == 0
    rows = aggregate.load_cache("spectrum", "val", out)
    assert sorted(r.path for r in rows) == sorted(f"val/{c}/synth__{c}{i}.png" for c in ("real", "fake")
                                                  for i in range(3))
    assert all(not r.face and 0.0 <= r.p_fake <= 1.0 for r in rows)
    assert "6 rows (6 computed, 0 kept, 6 without landmarks)" in capsys.readouterr().out
    assert shapley_cache.main(["--models", "spectrum", "--data", str(root), "--split", "val", "--out", str(out)]) == 0
    assert "6 rows (0 computed, 6 kept" in capsys.readouterr().out
    assert shapley_cache.main(["--models", "no_such_model", "--data", str(root), "--out", str(out)]) == 2

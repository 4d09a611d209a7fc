"""explain.regions: facial-region maps, mtcnn landmarks (faked and real) and per-region summaries."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import quadrant_image

from explain import regions as R
from explain import render
from explain.base import Explanation
from models.data import landmarks as L

SHAPE = (128, 128)
LM = R.Landmarks(box=(24, 20, 80, 100), left_eye=(48, 60), right_eye=(80, 60), nose=(64, 80),
                 mouth_left=(50, 100), mouth_right=(78, 100), confidence=0.99)


def at(rmap, point) -> str:
    """The region name of the pixel holding an (x, y) point."""
    x, y = point
    return R.REGIONS[rmap[int(y), int(x)]]


def explanation(attribution, method="lime", target="fake") -> Explanation:
    return Explanation(method=method, target=target, p_fake=0.9, attribution=np.asarray(attribution, np.float32))


# --- region_map ----------------------------------------------------------------------------------------

def test_every_pixel_gets_exactly_one_region():
    rmap = R.region_map(SHAPE, LM)
    assert rmap.shape == SHAPE
    assert set(np.unique(rmap)) == set(range(len(R.REGIONS)))  # all six regions present, nothing else
    counts = np.bincount(rmap.ravel(), minlength=len(R.REGIONS))
    assert counts.sum() == SHAPE[0] * SHAPE[1] and (counts > 0).all()


def test_keypoints_fall_in_their_regions():
    rmap = R.region_map(SHAPE, LM)
    assert at(rmap, LM.left_eye) == "left_eye"
    assert at(rmap, LM.right_eye) == "right_eye"
    assert at(rmap, LM.nose) == "nose"
    mouth_centre = ((LM.mouth_left[0] + LM.mouth_right[0]) / 2, (LM.mouth_left[1] + LM.mouth_right[1]) / 2)
    assert at(rmap, mouth_centre) == "mouth"
    for corner in [(0, 0), (127, 0), (0, 127), (127, 127)]:
        assert at(rmap, corner) == "outside_face"
    assert at(rmap, (40, 40)) == "rest_of_face"  # forehead, inside the box, away from the features
    # the left eye's pixels lie left of the right eye's
    ys, xs = np.nonzero(rmap == R.REGIONS.index("left_eye"))
    ys2, xs2 = np.nonzero(rmap == R.REGIONS.index("right_eye"))
    assert xs.max() < xs2.min()


def test_region_map_follows_the_grid_it_is_given():
    small = R.region_map((64, 96), LM)
    assert small.shape == (64, 96) and small.dtype == np.int8


# --- detect_landmarks (mtcnn faked) --------------------------------------------------------------------

class FakeMTCNN:
    def __init__(self, faces):
        self.faces, self.calls = faces, 0

    def detect_faces(self, image):
        self.calls += 1
        return self.faces


def face(box, conf, eyes=((80, 60), (48, 60)), nose=(64, 80), mouth=((78, 100), (50, 100))):
    return {"box": list(box), "confidence": conf,
            "keypoints": {"left_eye": list(eyes[0]), "right_eye": list(eyes[1]), "nose": list(nose),
                          "mouth_left": list(mouth[0]), "mouth_right": list(mouth[1])}}


def test_detect_landmarks_sorts_eyes_and_picks_the_largest_confident_face(monkeypatch):
    faces = [
        face((0, 0, 128, 128), 0.5, eyes=((5, 5), (10, 5))),  # biggest, but not confident: ignored
        face((100, 100, 10, 10), 0.99, eyes=((101, 102), (105, 102))),  # confident, small
        face((24, 20, 80, 100), 0.97),  # confident, largest; eyes and mouth corners given swapped
    ]
    fake = FakeMTCNN(faces)
    monkeypatch.setattr(L, "_detector", fake)
    lm = R.detect_landmarks(np.zeros((128, 128, 3), np.uint8))
    assert fake.calls == 1
    assert lm == R.Landmarks(box=(24.0, 20.0, 80.0, 100.0), left_eye=(48.0, 60.0), right_eye=(80.0, 60.0),
                             nose=(64.0, 80.0), mouth_left=(50.0, 100.0), mouth_right=(78.0, 100.0),
                             confidence=0.97)
    assert lm.left_eye[0] < lm.right_eye[0] and lm.mouth_left[0] < lm.mouth_right[0]
    d = lm.to_dict()
    assert json.loads(json.dumps(d)) == d and d["left_eye"] == [48.0, 60.0]


def test_detect_landmarks_none_without_a_confident_face(monkeypatch):
    monkeypatch.setattr(L, "_detector", FakeMTCNN([face((0, 0, 50, 50), 0.3)]))
    assert R.detect_landmarks(np.zeros((64, 64, 3), np.uint8)) is None
    monkeypatch.setattr(L, "_detector", FakeMTCNN([]))
    assert R.detect_landmarks(np.zeros((64, 64, 3), np.uint8)) is None


def test_detect_landmarks_rejects_a_non_image():
    with pytest.raises(ValueError):
        R.detect_landmarks(np.zeros((64, 64), np.float32))


# --- summarize -----------------------------------------------------------------------------------------

def test_nose_only_attribution_ranks_the_nose_first():
    rmap = R.region_map(SHAPE, LM)
    s = R.summarize(explanation(rmap == R.REGIONS.index("nose")), landmarks=LM)
    assert s.face_found and s.method == "lime" and s.target == "fake"
    assert s.ranking[0] == "nose" and s.top() == "nose"
    assert sorted(s.ranking) == sorted(R.REGIONS)
    assert s.regions["nose"]["share"] == pytest.approx(1.0) and s.regions["nose"]["mean"] == pytest.approx(1.0)
    assert all(s.regions[r]["share"] == 0.0 for r in R.REGIONS if r != "nose")
    assert sum(v["pixels"] for v in s.regions.values()) == SHAPE[0] * SHAPE[1]
    assert s.landmarks == LM and (s.region_map == rmap).all()
    d = s.to_dict()
    assert json.loads(json.dumps(d))["ranking"][0] == "nose"


def test_left_eye_attribution_ranks_the_left_eye_first():
    rmap = R.region_map(SHAPE, LM)
    att = np.where(rmap == R.REGIONS.index("left_eye"), 0.8, 0.0)
    att[rmap == R.REGIONS.index("outside_face")] = -0.5  # evidence against, elsewhere
    s = R.summarize(explanation(att, method="gradcam"), landmarks=LM)
    assert s.ranking[0] == "left_eye" and s.top() == "left_eye"
    assert s.ranking[-1] == "outside_face" and s.regions["outside_face"]["share"] == 0.0
    assert s.regions["left_eye"]["share"] == pytest.approx(1.0)


def test_summarize_needs_an_image_or_landmarks():
    with pytest.raises(ValueError, match="landmarks"):
        R.summarize(explanation(np.zeros(SHAPE)))


def test_no_face_gives_an_empty_summary_and_a_no_face_figure(monkeypatch):
    monkeypatch.setattr(R, "detect_landmarks", lambda image, *a, **k: None)
    s = R.summarize(explanation(np.ones((32, 32))), np.zeros((32, 32, 3), np.uint8))
    assert s.face_found is False and s.ranking == [] and s.regions == {}
    assert s.landmarks is None and s.region_map is None and s.top() is None
    assert s.to_dict()["landmarks"] is None
    fig = render.region_bars(s)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert any("No face" in t for t in texts)
    assert render.png(fig)[:8] == b"\x89PNG\r\n\x1a\n"


# --- real mtcnn ------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_mtcnn_finds_the_astronauts_face():
    from skimage.data import astronaut

    crop = np.ascontiguousarray(astronaut()[30:230, 130:330])
    lm = R.detect_landmarks(crop)
    assert lm is not None and lm.confidence >= R.MIN_CONFIDENCE
    assert lm.left_eye[0] < lm.right_eye[0]
    eyes_y = max(lm.left_eye[1], lm.right_eye[1])
    mouth_y = min(lm.mouth_left[1], lm.mouth_right[1])
    assert eyes_y < lm.nose[1] < mouth_y
    x, y, w, h = lm.box
    assert 0 <= x and 0 <= y and x + w <= crop.shape[1] + 5 and y + h <= crop.shape[0] + 5
    rmap = R.region_map(crop.shape[:2], lm)
    assert at(rmap, lm.left_eye) == "left_eye" and at(rmap, lm.nose) == "nose"


# --- known answer, end to end --------------------------------------------------------------------------

# 64 px quadrant image: the bright patch (what the model uses) spans rows/cols 4..27, the top-left quadrant.
QUADRANT_LM = R.Landmarks(box=(0, 0, 64, 64), left_eye=(16, 16), right_eye=(48, 16), nose=(48, 44),
                          mouth_left=(24, 56), mouth_right=(44, 56))


def test_known_answer_regions_rank_the_left_eye_first(quadrant_detector):
    from explain import gradcam, lime

    image = quadrant_image(64, "top_left")
    rmap = R.region_map(image.shape[:2], QUADRANT_LM)
    # the left eye lies inside the bright patch; the other inner regions do not touch the top-left quadrant
    assert (rmap[:32, :32] == R.REGIONS.index("left_eye")).any()
    for name in ("right_eye", "nose", "mouth"):
        ys, xs = np.nonzero(rmap == R.REGIONS.index(name))
        assert len(ys) and not ((ys < 32) & (xs < 32)).any(), name

    for ex in (lime.explain(quadrant_detector, image, num_samples=250, seed=0),
               gradcam.explain(quadrant_detector, image)):
        assert ex.target == "fake"
        s = R.summarize(ex, landmarks=QUADRANT_LM)
        assert s.top() == "left_eye", (ex.method, s.ranking)
        assert s.regions["left_eye"]["mean"] > 0
        inner_means = [s.regions[r]["mean"] for r in R.INNER[1:]]
        assert s.regions["left_eye"]["mean"] > 2 * max(max(inner_means), 0), (ex.method, s.regions)

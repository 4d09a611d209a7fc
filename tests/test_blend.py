"""models.data.blend (self-blended pseudo-fakes) and models.data.landmarks' masks and cache, on synthetic faces."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from models.data import blend as B
from models.data import landmarks as L

LM = L.Landmarks(box=(24, 20, 80, 100), left_eye=(48, 56), right_eye=(80, 56), nose=(64, 74),
                 mouth_left=(52, 92), mouth_right=(76, 92), confidence=0.99)
DONOR_LM = L.Landmarks(box=(20, 16, 88, 104), left_eye=(46, 54), right_eye=(82, 55), nose=(63, 75),
                       mouth_left=(50, 93), mouth_right=(77, 94), confidence=0.99)


def face(seed: int = 0) -> np.ndarray:
    """A textured 128 px 'face': noise plus smooth shading, so any paste leaves a trace."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:128, 0:128]
    base = np.stack([120 + 60 * np.sin(xx / 9.0), 110 + 50 * np.cos(yy / 11.0), 100 + 0.4 * (xx + yy)], -1)
    return np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)


def centroid(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask > 0.5)
    return np.array([xs.mean(), ys.mean()])


@pytest.mark.parametrize("part", L.INNER)
def test_part_masks_sit_on_their_landmarks(part):
    mask = L.part_mask((128, 128), LM, [part])
    where = {"left_eye": LM.left_eye, "right_eye": LM.right_eye, "nose": LM.nose,
             "mouth": tuple((np.array(LM.mouth_left) + LM.mouth_right) / 2)}[part]
    assert mask.any()
    assert np.linalg.norm(centroid(mask) - np.array(where)) < 8  # within a quarter of the eye distance
    others = [p for p in L.INNER if p != part]
    assert not (mask & L.part_mask((128, 128), LM, others)).any()  # regions never overlap


def test_inner_face_covers_every_landmark_and_not_the_corners():
    mask = L.inner_face_mask((128, 128), LM)
    for x, y in (LM.left_eye, LM.right_eye, LM.nose, LM.mouth_left, LM.mouth_right):
        assert mask[int(y), int(x)]
    assert not mask[:10, :10].any() and not mask[-10:, -10:].any()
    with pytest.raises(ValueError, match="unknown facial part"):
        L.part_mask((128, 128), LM, ["ear"])


@pytest.mark.parametrize("kind", B.KINDS)
def test_a_pseudo_fake_differs_from_its_real_only_inside_the_dilated_mask(kind):
    real = face(1)
    cfg = B.BlendConfig()
    fake, mask, info = B.self_blend(real, LM, np.random.default_rng(3), donor=face(2), donor_lm=DONOR_LM, kind=kind,
                                    config=cfg)
    assert fake.shape == real.shape and fake.dtype == np.uint8 and info["kind"] == kind
    assert mask.shape == (128, 128) and mask.dtype == np.float32 and 0 <= mask.min() and mask.max() == 1.0
    changed = np.abs(fake.astype(int) - real.astype(int)).max(axis=-1) > 0
    assert changed.sum() > 50  # the blend did something
    assert not (changed & (mask == 0)).any()  # ... and only where the mask is > 0
    # the soft mask lies within the binary region grown by the largest dilation plus 3 blur sigmas
    from skimage.morphology import dilation, disk

    binary = L.inner_face_mask((128, 128), LM) if kind == "inner" else L.part_mask((128, 128), LM, info["parts"])
    reach = cfg.morph + int(np.ceil(3 * cfg.blur_sigma[1])) + 1
    assert not ((mask > 0) & ~dilation(binary, disk(reach))).any()


def test_blends_are_seeded_and_vary():
    real = face(4)
    a = B.self_blend(real, LM, np.random.default_rng(7))
    b = B.self_blend(real, LM, np.random.default_rng(7))
    c = B.self_blend(real, LM, np.random.default_rng(8))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1]) or not np.array_equal(a[0], c[0])
    kinds = {B.self_blend(real, LM, np.random.default_rng(s), donor=face(5), donor_lm=DONOR_LM)[2]["kind"]
             for s in range(30)}
    assert kinds == set(B.KINDS)
    assert "other" not in {B.self_blend(real, LM, np.random.default_rng(s))[2]["kind"] for s in range(30)}


def test_other_kind_needs_a_donor():
    with pytest.raises(ValueError, match="donor"):
        B.self_blend(face(), LM, np.random.default_rng(0), kind="other")


def test_align_moves_donor_landmarks_onto_the_target():
    donor = np.zeros((128, 128, 3), np.uint8)
    x, y = (int(round(v)) for v in DONOR_LM.left_eye)
    donor[y - 2:y + 3, x - 2:x + 3] = 255  # a bright dot on the donor's left eye
    out = B.align(donor, DONOR_LM, LM)
    ys, xs = np.nonzero(out[..., 0] > 100)
    assert np.linalg.norm([xs.mean() - LM.left_eye[0], ys.mean() - LM.left_eye[1]]) < 2.5


def test_pool_mask_and_ciplab_names():
    m = np.zeros((128, 128), np.float32)
    m[:8, :8] = 1.0
    pooled = B.pool_mask(m, 16)
    assert pooled.shape == (16, 16) and pooled[0, 0] == 1.0 and pooled.sum() == 1.0
    with pytest.raises(ValueError):
        B.pool_mask(np.zeros((100, 100)), 16)
    assert B.ciplab_parts("mid_12_0010.jpg") == ("nose",)
    assert B.ciplab_parts("easy_111_1101.jpg") == ("left_eye", "right_eye", "mouth")
    assert B.ciplab_parts("hard_3_0000.jpg") == ()
    assert B.ciplab_parts("real_00001.jpg") is None and B.ciplab_parts("x.jpg") is None


def test_landmark_cache_is_keyed_by_crop_md5(tmp_path):
    paths = []
    for i in range(3):
        p = tmp_path / f"img{i}.png"
        Image.fromarray(face(i)).save(p)
        paths.append(p)
    (tmp_path / "copy.png").write_bytes(paths[0].read_bytes())  # same crop, other name
    calls = []

    def detect(image):
        calls.append(1)
        return None if len(calls) == 2 else LM

    cache = tmp_path / "cache"
    got = L.cached_landmarks([*paths, tmp_path / "copy.png"], cache=cache, detect=detect)
    assert len(calls) == 3  # the copy is not computed again
    assert got[0] == LM and got[1] is None and got[3] == got[0]
    again = L.cached_landmarks(paths, cache=cache, detect=lambda image: pytest.fail("recomputed"))
    assert again == got[:3]
    stored = json.loads((cache / "landmarks-v1.json").read_text())
    assert set(stored) == {L.file_md5(p) for p in paths}


def test_cache_dir_honours_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DEEPFAKE_CACHE", str(tmp_path / "c"))
    assert L.cache_dir() == tmp_path / "c"
    assert L.cache_dir(tmp_path / "x") == tmp_path / "x"
    monkeypatch.delenv("DEEPFAKE_CACHE")
    assert L.cache_dir().name == "deepfake-lens"


@pytest.mark.parametrize("parts", [("mouth",), ("left_eye", "nose")])
def test_forced_parts_are_the_only_ones_blended(parts):
    fake, mask, info = B.self_blend(face(1), LM, np.random.default_rng(0), kind="parts", parts=parts)
    assert info["parts"] == list(parts)
    others = [p for p in L.INNER if p not in parts]
    core = mask > 0.99
    assert (core & L.part_mask((128, 128), LM, parts)).any()
    assert not (core & L.part_mask((128, 128), LM, others)).any()

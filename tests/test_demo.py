"""models.analysis.demo: the astronaut and the fake made from her at run time (issue 14's demo pair)."""

from __future__ import annotations

import numpy as np
import pytest

from models.analysis import demo
from models.analysis.catalog import ASTRONAUT, DEMO_FAKE, builtin_samples, load_sample
from models.data import landmarks as L


def test_the_demo_fake_is_seeded_and_edits_only_the_mouth():
    pair = demo.make_demo()
    again = demo.make_demo.__wrapped__()  # bypass the cache: the same pixels from scratch
    assert np.array_equal(pair.fake, again.fake) and np.array_equal(pair.mask, again.mask)
    assert np.array_equal(pair.real, demo.astronaut())
    changed = np.abs(pair.fake.astype(int) - pair.real.astype(int)).max(-1) > 0
    assert changed.sum() > 500 and not (changed & (pair.mask == 0)).any()
    lm = L.detect_landmarks(pair.real)
    mouth = L.part_mask(pair.real.shape[:2], lm, ["mouth"])
    core = pair.mask > 0.99
    assert (core & mouth).sum() / core.sum() > 0.9  # the fully replaced pixels are the mouth's
    assert pair.parts == ("mouth",) and pair.edited == "the mouth"
    assert not pair.fake.flags.writeable  # shared through the cache: nobody may draw on it
    other = demo.make_demo(seed=2)
    assert not np.array_equal(other.fake, pair.fake)


def test_samples_open_on_the_demo_fake_and_load_copies():
    samples = builtin_samples(None)
    assert samples[:2] == [DEMO_FAKE, ASTRONAUT]
    assert DEMO_FAKE.truth == "fake" and DEMO_FAKE.edited == ("mouth",) and ASTRONAUT.truth == "real"
    pixels = load_sample(DEMO_FAKE)
    assert np.array_equal(pixels, demo.make_demo().fake) and pixels.flags.writeable
    assert np.array_equal(load_sample(ASTRONAUT), demo.astronaut())


def test_edited_words_and_outline():
    assert demo.edited_words(("mouth",)) == "the mouth"
    assert demo.edited_words(("left_eye", "nose", "mouth")) == "the left eye, the nose and the mouth"
    image = np.zeros((40, 40, 3), np.uint8)
    mask = np.zeros((40, 40), np.float32)
    mask[10:30, 10:30] = 1.0
    out = demo.outline(image, mask)
    yellow = (out == demo.outline.__defaults__[0]).all(-1)
    assert yellow[8, 20] and yellow[20, 31] and not yellow[20, 20] and not yellow[0, 0]
    assert not image.any()  # drawn on a copy


class Stub:
    """A Detector-like stub: P(fake) = the mean red level of the crop, spread 0 (no model needed)."""

    name, threshold, crop_recipe = "stub", 0.5, None

    def predict(self, crops):
        return np.array([c[..., 0].mean() / 255.0 for c in crops], np.float32)

    def views_spread(self, crops, p_fake=None):
        return np.zeros(len(crops), np.float32)

    def verdict(self, p):
        return "fake" if p >= self.threshold else "real"

    def unsure(self, p, s):
        return np.asarray(abs(p - self.threshold) < 0.05)


def test_read_typicality_and_encodings_with_a_stub():
    r = demo.read(Stub(), demo.astronaut())
    assert r.model == "stub" and 0 <= r.p_fake <= 1 and r.spread == 0.0
    assert r.label == (f"unsure (leans {r.verdict})" if r.unsure else r.verdict)
    t = demo.typicality(Stub(), seeds=range(3))
    assert t["n"] == 3 and t["fake"] + t["unsure"] + t["real"] == 3 and 0 <= t["caught"] <= 1
    enc = demo.encodings_agree(Stub(), demo.astronaut())
    assert set(enc["readings"]) == set(demo.ENCODINGS)
    ps = [x.p_fake for x in enc["readings"].values()]
    assert enc["spread"] == pytest.approx(max(ps) - min(ps)) and enc["spread"] < 0.05  # red level barely moves
    assert enc["agree"] == (len({x.verdict for x in enc["readings"].values()}) == 1)


def test_face_zoom_is_a_square_around_her_face():
    zoom = demo.face_zoom(demo.astronaut())
    assert zoom.shape[0] == zoom.shape[1] and 180 <= zoom.shape[0] <= 260  # 2 x her 107 px box
    pair = demo.make_demo()
    changed = np.abs(demo.face_zoom(pair.fake).astype(int) - demo.face_zoom(pair.real).astype(int)).max(-1) > 0
    assert changed.sum() == (np.abs(pair.fake.astype(int) - pair.real.astype(int)).max(-1) > 0).sum()  # all in view

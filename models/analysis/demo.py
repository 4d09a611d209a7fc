"""The demo pair: scikit-image's astronaut (a real photo) and a fake made from it at run time.

The fake is issue 9's self-blend (:func:`models.data.blend.self_blend`) applied to the whole photo: her own mouth,
changed a little in colour, sharpness, JPEG quality and position, pasted back through a soft mask placed on mtcnn's
landmarks. Its edited region is therefore known exactly, and nothing needs the shared dataset or a download.

Read what the models say about it as a demonstration, not a test: ``detector_v2`` was trained on blends made this
very way (of other faces), ``detector_v1`` never saw one. :func:`typicality` says how often each model catches such
blends over many seeds, and :func:`encodings_agree` whether the real photo's verdict survives a change of file
format (issue 9's stability target).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

DEMO_PARTS: tuple[str, ...] = ("mouth",)
DEMO_SEED = 1  # fixed: the same fake on every machine and every run (self_blend draws only from this generator)
PART_WORDS = {"left_eye": "left eye", "right_eye": "right eye", "nose": "nose", "mouth": "mouth"}


@dataclass(frozen=True)
class Demo:
    real: np.ndarray  # HxWx3 uint8, the astronaut
    fake: np.ndarray  # the same photo with ``parts`` re-blended
    mask: np.ndarray  # HxW float32 in [0, 1]: > 0 exactly where ``fake`` may differ from ``real``
    parts: tuple[str, ...]
    seed: int

    @property
    def edited(self) -> str:
        return edited_words(self.parts)


def edited_words(parts) -> str:
    """Edited parts in words: "the mouth", "the left eye and the nose"."""
    words = [f"the {PART_WORDS.get(p, p)}" for p in parts]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def astronaut() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut())


@lru_cache(maxsize=1)
def _landmarks():
    from models.data.landmarks import detect_landmarks

    return detect_landmarks(astronaut())


@lru_cache(maxsize=8)
def make_demo(seed: int = DEMO_SEED, parts: tuple[str, ...] = DEMO_PARTS) -> Demo:
    """The astronaut and a fake of her with ``parts`` re-blended (seeded: the same pixels every time)."""
    from models.data.blend import self_blend

    real = astronaut()
    lm = _landmarks()
    if lm is None:  # mtcnn finds her at 0.999; this would mean a broken install
        raise RuntimeError("no face found on the astronaut photo: cannot make the demo fake")
    fake, mask, _ = self_blend(real, lm, np.random.default_rng(seed), kind="parts", parts=tuple(parts))
    for a in (real, fake, mask):
        a.setflags(write=False)  # shared by every caller through the cache
    return Demo(real=real, fake=fake, mask=mask, parts=tuple(parts), seed=int(seed))


@dataclass(frozen=True)
class Reading:
    """One model's reading of one photo's largest face."""

    model: str
    p_fake: float
    spread: float
    verdict: str
    unsure: bool

    @property
    def label(self) -> str:
        return f"unsure (leans {self.verdict})" if self.unsure else self.verdict


def read(detector, image: np.ndarray) -> Reading:
    """P(fake) of the largest face in ``image`` (cropped with the detector's recipe), its spread over views and
    the verdict with issue 9's "unsure" rule."""
    from models.scoring.stream import analyse

    crops, _, _ = analyse(image, "auto", recipe=detector.crop_recipe)
    crop = crops[0][1]
    p = float(detector.predict([crop])[0])
    spread = float(detector.views_spread([crop], p_fake=np.array([p], np.float32))[0])
    return Reading(detector.name, p, spread, detector.verdict(p), bool(detector.unsure(p, spread)))


def outline(image: np.ndarray, mask: np.ndarray, colour=(255, 214, 0), level: float = 0.5) -> np.ndarray:
    """``image`` with the edge of ``mask > level`` drawn on it (2 px, yellow): where the demo fake was edited."""
    from skimage.morphology import dilation, disk

    inside = mask > level
    edge = dilation(inside, disk(2)) & ~inside
    out = np.array(image, copy=True)
    out[edge] = colour
    return out


def face_zoom(image: np.ndarray, scale: float = 2.0) -> np.ndarray:
    """The square of ``image`` around the astronaut's face (``scale`` x its box): the demo pair as shown, close
    enough to see the edit."""
    from models.data.faces import square_box

    h, w = image.shape[:2]
    x, y, side = square_box(_landmarks().box, w, h, scale=scale)
    return np.ascontiguousarray(image[y:y + side, x:x + side])


ENCODINGS = {"PNG": ("PNG", {}), "BMP": ("BMP", {}), "JPEG q92": ("JPEG", {"quality": 92}),
             "WebP q80": ("WEBP", {"quality": 80}), "CMYK JPEG": ("JPEG", {"quality": 92})}


def encode(image: np.ndarray, name: str) -> np.ndarray:
    """``image`` saved in one of :data:`ENCODINGS` and decoded again through intake (RGB uint8)."""
    from PIL import Image

    from models.data.intake import load_image

    fmt, kw = ENCODINGS[name]
    pil = Image.fromarray(image)
    buf = io.BytesIO()
    (pil.convert("CMYK") if name.startswith("CMYK") else pil).save(buf, format=fmt, **kw)
    return load_image(buf.getvalue(), name=f"demo.{fmt.lower()}")


def encodings_agree(detector, image: np.ndarray) -> dict:
    """The photo in every :data:`ENCODINGS`, read by ``detector``: ``{"readings": {name: Reading}, "spread":
    max - min P(fake), "agree": whether every encoding gets the same verdict}``."""
    readings = {name: read(detector, encode(image, name)) for name in ENCODINGS}
    ps = [r.p_fake for r in readings.values()]
    return {"readings": readings, "spread": max(ps) - min(ps),
            "agree": len({r.verdict for r in readings.values()}) == 1}


def typicality(detector, seeds: range = range(16), parts: tuple[str, ...] = DEMO_PARTS, progress=None) -> dict:
    """How often ``detector`` catches demo fakes like this one: the same recipe over ``seeds``.

    Returns ``{"n", "fake", "unsure", "real", "caught"}``: counts of confident fake, unsure and confident real
    verdicts, and the share called fake at the threshold (unsure or not). ``progress(done, total)`` if given.
    """
    counts = {"fake": 0, "unsure": 0, "real": 0}
    caught = 0
    for i, seed in enumerate(seeds):
        r = read(detector, make_demo(seed, tuple(parts)).fake)
        counts["unsure" if r.unsure else r.verdict] += 1
        caught += r.verdict == "fake"
        if progress:
            progress(i + 1, len(seeds))
    return {"n": len(seeds), **counts, "caught": caught / max(len(seeds), 1)}

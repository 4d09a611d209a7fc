"""Self-blended pseudo-fakes: what a manipulation leaves behind, made from real faces alone.

After *Face X-ray* (Li et al., CVPR 2020) and *Self-Blended Images* (Shiohara & Yamasaki, CVPR 2022): a real
face crop gets a region pasted back into it from a slightly altered copy of itself (colour, sharpness, JPEG
quality, a small shift or scale) or from another real face aligned on its landmarks, through a soft mask. The
result is labelled fake and its blending mask is known exactly, so a model can learn the blend itself
(boundaries, mismatched statistics) instead of what one collection of fakes looks like.

Mask shapes come from mtcnn's five landmarks (:mod:`models.data.landmarks`):

- ``inner``: the inner face, as a face swap replaces it;
- ``parts``: one or more of left eye, right eye, nose and mouth, as the ciplab photoshop edits do;
- ``other``: such parts taken from a *different* real face.

Mask edges vary (erosion or dilation, then a Gaussian blur of random width), so that no single boundary is
learned. Everything is NumPy, Pillow and scikit-image: it runs in training data loaders on any Keras backend.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from models.data import perturb
from models.data.landmarks import INNER, Landmarks, inner_face_mask, part_mask

KINDS = ("inner", "parts", "other")


@dataclass(frozen=True)
class BlendConfig:
    """How pseudo-fakes are drawn. Probabilities of the mask kinds are relative (``other`` needs a donor)."""

    p_inner: float = 0.4
    p_parts: float = 0.4
    p_other: float = 0.2
    morph: int = 3  # erosion (-) or dilation (+) radius drawn from [-morph, morph] pixels
    blur_sigma: tuple[float, float] = (1.0, 5.0)  # width of the soft edge
    colour: float = 0.04  # per-channel gain and offset change of the source copy
    sharpness_p: float = 0.5  # probability of blurring or sharpening the source copy
    jpeg_p: float = 0.5  # probability of re-encoding the source copy
    jpeg_quality: tuple[int, int] = (60, 95)
    shift: float = 0.02  # max translation of the source copy, as a fraction of the side
    scale: tuple[float, float] = (0.96, 1.04)

    def config(self) -> dict:
        return asdict(self)


def pick_kind(rng: np.random.Generator, config: BlendConfig, has_donor: bool) -> str:
    p = np.array([config.p_inner, config.p_parts, config.p_other if has_donor else 0.0], dtype=float)
    return KINDS[int(rng.choice(3, p=p / p.sum()))]


def pick_parts(rng: np.random.Generator) -> tuple[str, ...]:
    """A random non-empty subset of the four inner parts (each kept with probability 1/2)."""
    while True:
        keep = rng.random(len(INNER)) < 0.5
        if keep.any():
            return tuple(p for p, k in zip(INNER, keep) if k)


def soft_mask(mask: np.ndarray, rng: np.random.Generator, config: BlendConfig) -> np.ndarray:
    """A binary mask -> a soft one in [0, 1]: random erosion or dilation, then a Gaussian blur. Exactly 0 beyond
    3 sigma of the (eroded or dilated) mask, so a blend never touches pixels far outside it."""
    from skimage.filters import gaussian
    from skimage.morphology import dilation, disk, erosion

    r = int(rng.integers(-config.morph, config.morph + 1))
    if r > 0:
        mask = dilation(mask, disk(r))
    elif r < 0:
        eroded = erosion(mask, disk(-r))
        mask = eroded if eroded.any() else mask
    sigma = float(rng.uniform(*config.blur_sigma))
    soft = gaussian(mask.astype(np.float64), sigma=sigma, truncate=3.0, preserve_range=True)
    peak = soft.max()
    soft = np.clip(soft / peak, 0.0, 1.0) if peak > 0 else soft
    soft[soft < 0.02] = 0.0
    return soft.astype(np.float32)


def _affine(image: np.ndarray, rng: np.random.Generator, config: BlendConfig) -> np.ndarray:
    """A small random shift and scale about the centre (edges reflected)."""
    from skimage.transform import AffineTransform, warp

    h, w = image.shape[:2]
    s = float(rng.uniform(*config.scale))
    dx, dy = rng.uniform(-config.shift, config.shift, size=2) * np.array([w, h])
    centre = np.array([w / 2, h / 2])
    tf = AffineTransform(scale=s, translation=centre - s * centre + [dx, dy])
    out = warp(image, tf.inverse, mode="reflect", preserve_range=True, order=1)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def alter(image: np.ndarray, rng: np.random.Generator, config: BlendConfig) -> np.ndarray:
    """The source copy: colour, sharpness, JPEG quality and geometry changed a little (uint8 RGB)."""
    from skimage.filters import gaussian

    x = image.astype(np.float32)
    gain = 1.0 + rng.uniform(-config.colour, config.colour, size=3)
    offset = rng.uniform(-config.colour, config.colour, size=3) * 255.0
    x = x * gain + offset
    if rng.random() < config.sharpness_p:
        blurred = gaussian(x, sigma=float(rng.uniform(0.4, 1.2)), channel_axis=-1, preserve_range=True)
        amount = float(rng.uniform(-1.0, 1.0))  # < 0: blur, > 0: sharpen (unsharp mask)
        x = x + amount * (x - blurred) if amount > 0 else blurred
    out = np.clip(np.rint(x), 0, 255).astype(np.uint8)
    if rng.random() < config.jpeg_p:
        out = perturb.jpeg(out, int(rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1)))
    return _affine(out, rng, config)


def align(donor: np.ndarray, donor_lm: Landmarks, lm: Landmarks) -> np.ndarray:
    """``donor`` warped so its five landmarks fall on ``lm``'s (a similarity transform, least squares)."""
    from skimage.transform import SimilarityTransform, warp

    def points(m: Landmarks) -> np.ndarray:
        return np.array([m.left_eye, m.right_eye, m.nose, m.mouth_left, m.mouth_right], dtype=np.float64)

    tf = SimilarityTransform.from_estimate(points(lm), points(donor_lm))  # target -> donor coordinates, for warp
    if not tf:
        return donor
    out = warp(donor, tf, mode="reflect", preserve_range=True, order=1, output_shape=donor.shape[:2])
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _match_colour(source: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``source`` with the per-channel mean and spread of ``target`` inside ``mask`` (Reinhard-style)."""
    if mask.sum() < 4:
        return source
    s, t = source.astype(np.float32), target.astype(np.float32)
    ms, mt = s[mask].mean(0), t[mask].mean(0)
    ss, st = s[mask].std(0) + 1.0, t[mask].std(0) + 1.0
    return np.clip(np.rint((s - ms) * (st / ss) + mt), 0, 255).astype(np.uint8)


def self_blend(real: np.ndarray, lm: Landmarks, rng: np.random.Generator, *, donor: np.ndarray | None = None,
               donor_lm: Landmarks | None = None, config: BlendConfig = BlendConfig(),
               kind: str | None = None, parts: tuple[str, ...] | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """A pseudo-fake made from ``real`` (HxWx3 uint8) and its landmarks.

    Returns ``(fake, mask, info)``: the blended image (uint8, same size), the soft blending mask (HxW float32 in
    [0, 1], > 0 exactly where pixels may differ from ``real``) and what was drawn (``kind``, ``parts``).
    ``kind`` forces one of :data:`KINDS`; ``other`` needs ``donor`` and ``donor_lm``. ``parts`` forces which
    inner parts a ``parts`` or ``other`` blend replaces (any of left_eye, right_eye, nose, mouth).
    """
    real = np.ascontiguousarray(real)
    has_donor = donor is not None and donor_lm is not None
    kind = kind or pick_kind(rng, config, has_donor)
    if kind not in KINDS or (kind == "other" and not has_donor):
        raise ValueError(f"blend kind must be one of {', '.join(KINDS)} ('other' needs a donor), not {kind!r}")
    shape = real.shape[:2]
    if kind == "inner":
        parts = ()
        binary = inner_face_mask(shape, lm)
    else:
        parts = tuple(parts) if parts else pick_parts(rng)
        binary = part_mask(shape, lm, parts)
    if not binary.any():  # degenerate landmarks: fall back to the inner face
        kind, parts, binary = "inner", (), inner_face_mask(shape, lm)
    mask = soft_mask(binary, rng, config)
    if kind == "other":
        source = _match_colour(align(np.ascontiguousarray(donor), donor_lm, lm), real, binary)
        source = alter(source, rng, config)
    else:
        source = alter(real, rng, config)
    m = mask[..., None]
    fake = np.clip(np.rint(source.astype(np.float32) * m + real.astype(np.float32) * (1.0 - m)), 0, 255)
    return fake.astype(np.uint8), mask, {"kind": kind, "parts": list(parts)}


def pool_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """A HxW mask averaged down to ``size`` x ``size`` (H and W multiples of ``size``): the map head's target."""
    h, w = mask.shape[:2]
    if h % size or w % size:
        raise ValueError(f"a {h}x{w} mask does not pool evenly to {size}x{size}")
    return mask.reshape(size, h // size, size, w // size).mean(axis=(1, 3)).astype(np.float32)


def ciplab_parts(original_name: str) -> tuple[str, ...] | None:
    """The edited regions of a ciplab fake from its original file name ``<level>_<n>_<LE><RE><N><M>``
    (left eye, right eye, nose, mouth; left = the viewer's left), or None when the name does not say."""
    stem = original_name.rsplit(".", 1)[0]
    bits = stem.rsplit("_", 1)[-1]
    if len(bits) != 4 or set(bits) - {"0", "1"} or stem.count("_") < 2:
        return None
    return tuple(p for p, b in zip(INNER, bits) if b == "1")

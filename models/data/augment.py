"""Training-time augmentation on uint8 batches, in NumPy and Pillow (no TensorFlow), so it runs the same
on every Keras backend: flips, small shifts, down-and-up resampling, JPEG re-compression, mild colour jitter.

The resampling and JPEG steps teach the model to survive what social media does to images; colour jitter
is kept mild because colour statistics are part of the evidence for GAN faces.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from models.data import perturb


@dataclass(frozen=True)
class Augmenter:
    flip: bool = True
    shift: float = 0.06  # max translation, as a fraction of the side (reflect padding)
    rescale_p: float = 0.25  # probability of downscale-then-upscale
    rescale_range: tuple[float, float] = (0.5, 0.9)
    jpeg_p: float = 0.3  # probability of JPEG re-compression
    jpeg_quality: tuple[int, int] = (60, 95)
    jitter: float = 0.05  # max brightness / contrast change
    chroma_p: float = 0.0  # probability of a trip through 4:2:0 chroma (detector_v2; 0 keeps v1's draws)

    def config(self) -> dict:
        return asdict(self)

    def __call__(self, batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """uint8 (N, S, S, 3) -> augmented float32 in [0, 1]."""
        out = np.empty(batch.shape, dtype=np.float32)
        for i, img in enumerate(batch):
            out[i] = self.one(img, rng)
        return out

    def one(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.one_with_mask(img, None, rng)[0]

    def one_with_mask(self, img: np.ndarray, mask: np.ndarray | None, rng: np.random.Generator):
        """(augmented float32 image in [0, 1], mask moved with it or None). Flips and shifts move an HxW ``mask``
        (a blending mask) exactly as they move the image; the photometric steps leave it alone. The random draws
        are the same with or without a mask."""
        h, w = img.shape[:2]
        if self.flip and rng.random() < 0.5:
            img = img[:, ::-1]
            mask = None if mask is None else mask[:, ::-1]
        if self.shift > 0:
            m = max(1, int(round(self.shift * h)))
            padded = np.pad(img, ((m, m), (m, m), (0, 0)), mode="reflect")
            dy, dx = rng.integers(0, 2 * m + 1, size=2)
            img = padded[dy : dy + h, dx : dx + w]
            if mask is not None:
                mask = np.pad(mask, ((m, m), (m, m)), mode="reflect")[dy : dy + h, dx : dx + w]
        if self.rescale_p and rng.random() < self.rescale_p:
            img = perturb.resize(img, rng.uniform(*self.rescale_range))
        if self.chroma_p and rng.random() < self.chroma_p:
            img = subsample_chroma(img)
        if self.jpeg_p and rng.random() < self.jpeg_p:
            img = perturb.jpeg(img, int(rng.integers(self.jpeg_quality[0], self.jpeg_quality[1] + 1)))
        x = img.astype(np.float32) / 255.0
        if self.jitter:
            b = rng.uniform(-self.jitter, self.jitter)
            c = 1.0 + rng.uniform(-self.jitter, self.jitter)
            mean = x.mean()
            x = (x - mean) * c + mean + b
        return np.clip(x, 0.0, 1.0), None if mask is None else np.ascontiguousarray(mask)


def subsample_chroma(img: np.ndarray) -> np.ndarray:
    """Through YCbCr with 4:2:0 chroma (half-resolution colour, as most JPEG and video encoders store it), back to RGB."""
    from PIL import Image

    h, w = img.shape[:2]
    y, cb, cr = Image.fromarray(np.ascontiguousarray(img)).convert("YCbCr").split()
    half = (max(1, w // 2), max(1, h // 2))
    cb, cr = (c.resize(half, Image.BILINEAR).resize((w, h), Image.BILINEAR) for c in (cb, cr))
    return np.asarray(Image.merge("YCbCr", (y, cb, cr)).convert("RGB"))

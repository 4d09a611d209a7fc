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

    def config(self) -> dict:
        return asdict(self)

    def __call__(self, batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """uint8 (N, S, S, 3) -> augmented float32 in [0, 1]."""
        out = np.empty(batch.shape, dtype=np.float32)
        for i, img in enumerate(batch):
            out[i] = self.one(img, rng)
        return out

    def one(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        h, w = img.shape[:2]
        if self.flip and rng.random() < 0.5:
            img = img[:, ::-1]
        if self.shift > 0:
            m = max(1, int(round(self.shift * h)))
            padded = np.pad(img, ((m, m), (m, m), (0, 0)), mode="reflect")
            dy, dx = rng.integers(0, 2 * m + 1, size=2)
            img = padded[dy : dy + h, dx : dx + w]
        if self.rescale_p and rng.random() < self.rescale_p:
            img = perturb.resize(img, rng.uniform(*self.rescale_range))
        if self.jpeg_p and rng.random() < self.jpeg_p:
            img = perturb.jpeg(img, int(rng.integers(self.jpeg_quality[0], self.jpeg_quality[1] + 1)))
        x = img.astype(np.float32) / 255.0
        if self.jitter:
            b = rng.uniform(-self.jitter, self.jitter)
            c = 1.0 + rng.uniform(-self.jitter, self.jitter)
            mean = x.mean()
            x = (x - mean) * c + mean + b
        return np.clip(x, 0.0, 1.0)

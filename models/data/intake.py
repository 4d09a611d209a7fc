"""Turn a path or bytes into an RGB uint8 array, with one clear error line on bad input."""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_FILE_BYTES = 64 * 1024 * 1024  # 64 MB
MAX_PIXELS = 64_000_000  # 64 megapixels (an 8000x6000 photo is 48 MP)


class ImageLoadError(ValueError):
    """The input could not be turned into an RGB image; the message is one line for the user."""


def as_rgb_uint8(image) -> np.ndarray:
    """Coerce an array to HxWx3 uint8 RGB (grayscale is repeated, alpha dropped)."""
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3, 4):
        raise ValueError(f"expected an HxWx3 RGB image, got shape {arr.shape}")
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    elif arr.shape[-1] == 4:
        arr = arr[..., :3]
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and arr.size and arr.max() <= 1.0:
            arr = arr * 255.0
        arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    return arr


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(arr / hi * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img)
    return img.convert("RGB")


def load_image(source: str | os.PathLike | bytes, name: str | None = None) -> np.ndarray:
    """Decode ``source`` (a path or raw bytes) to an HxWx3 uint8 RGB array.

    EXIF orientation is applied; grayscale, palette, CMYK, 16-bit and alpha images
    are converted (alpha is composited on white). Raises :class:`ImageLoadError`
    with a one-line message naming the file.
    """
    label = name or (str(source) if not isinstance(source, bytes) else "<upload>")
    try:
        if isinstance(source, bytes):
            if not source:
                raise ImageLoadError(f"{label}: empty file (0 bytes)")
            if len(source) > MAX_FILE_BYTES:
                raise ImageLoadError(f"{label}: file too large ({len(source) / 1e6:.0f} MB)")
            fh = io.BytesIO(source)
        else:
            path = Path(source)
            if not path.is_file():
                raise ImageLoadError(f"{label}: no such file")
            if path.stat().st_size == 0:
                raise ImageLoadError(f"{label}: empty file (0 bytes)")
            if path.stat().st_size > MAX_FILE_BYTES:
                raise ImageLoadError(f"{label}: file too large ({path.stat().st_size / 1e6:.0f} MB)")
            fh = io.BytesIO(path.read_bytes())
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(fh)
            if img.width * img.height > MAX_PIXELS:
                raise ImageLoadError(
                    f"{label}: image too large ({img.width}x{img.height} px, limit {MAX_PIXELS // 1_000_000} MP)"
                )
            img.seek(0)
            img.load()
            img = ImageOps.exif_transpose(img)
            rgb = _to_rgb(img)
    except ImageLoadError:
        raise
    except UnidentifiedImageError:
        raise ImageLoadError(f"{label}: not an image file (or an unsupported format)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageLoadError(f"{label}: image too large (its header claims over {MAX_PIXELS // 1_000_000} megapixels; "
                             "decompression-bomb guard)") from None
    except OSError as exc:
        raise ImageLoadError(f"{label}: cannot decode image ({exc})") from None
    except Exception as exc:  # any other decoder failure, still one line
        raise ImageLoadError(f"{label}: cannot decode image ({type(exc).__name__}: {exc})") from None
    arr = np.asarray(rgb, dtype=np.uint8)
    if arr.ndim != 3 or min(arr.shape[:2]) < 1:
        raise ImageLoadError(f"{label}: empty image")
    return arr

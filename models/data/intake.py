"""Turn a path or bytes into an RGB uint8 array, with one plain error line (and its technical detail) on bad input."""

from __future__ import annotations

import io
import os
import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

MAX_FILE_BYTES = 64 * 1024 * 1024  # 64 MB
MAX_PIXELS = 64_000_000  # 64 megapixels (an 8000x6000 photo is 48 MP)
PLAIN_UNKNOWN = "not an image file (or an unsupported format)"

# Leading bytes of the image formats the decoder reads: a file that starts like one but cannot be decoded is damaged.
_IMAGE_MAGIC = (
    (b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"GIF87a", "GIF"), (b"GIF89a", "GIF"),
    (b"BM", "BMP"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"),
)
_FORMAT_NAMES = {"WEBP": "WebP", "MPO": "JPEG"}  # Pillow's format names, as a person knows them
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"mif1", b"msf1")
_VIDEO_BRANDS = (b"isom", b"iso2", b"mp41", b"mp42", b"qt  ", b"M4V ", b"avc1", b"3gp4", b"3gp5", b"dash")


class ImageLoadError(ValueError):
    """The input could not be turned into an RGB image.

    ``str(exc)`` is one plain line for a person, naming the file (``"a.pdf: this is a PDF document, not an
    image"``); ``detail`` is the technical detail behind it (the decoder's own message), or ``""``.
    """

    def __init__(self, message: str, detail: str = ""):
        super().__init__(message)
        self.detail = " ".join(str(detail).split())


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


def sniff_format(data: bytes, name: str | None = None) -> str | None:
    """The kind of file ``data`` is, from its leading bytes: an image format ("JPEG", "PNG", "GIF", "BMP",
    "TIFF", "WebP", "HEIC", "AVIF") or "PDF", "SVG", "HTML", "ZIP", "video"; None when unknown. ``name``'s
    extension is not trusted for this, except to tell a compressed SVG (``.svgz``)."""
    head = data[:16]
    if head.startswith(b"%PDF"):
        return "PDF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "AVIF"
        if brand in _HEIF_BRANDS:
            return "HEIC"
        if brand in _VIDEO_BRANDS:
            return "video"
    for magic, fmt in _IMAGE_MAGIC:
        if head.startswith(magic):
            return fmt
    if head.startswith(b"PK\x03\x04"):
        return "ZIP"
    if head.startswith(b"\x1f\x8b") and name and name.lower().endswith(".svgz"):
        return "SVG"
    text = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<") and b"<svg" in text:
        return "SVG"
    if text.startswith((b"<!doctype html", b"<html")):
        return "HTML"
    return None


def _plain_reason(fmt: str | None) -> str:
    """The plain line for bytes the decoder could not read, from what the file looks like (``fmt``)."""
    if fmt == "PDF":
        return "this is a PDF document, not an image; export the page as PNG or JPEG"
    if fmt == "SVG":
        return "this is an SVG drawing; export it as PNG or JPEG"
    if fmt == "HTML":
        return "this is a web page (HTML), not an image; save the image itself"
    if fmt == "ZIP":
        return "this is a ZIP archive (or an Office document), not an image"
    if fmt == "video":
        return "this is a video, not an image; save one frame as PNG or JPEG"
    if fmt == "HEIC" and not _heif_supported():
        return "this is a HEIC photo, a format not supported here; export it as JPEG or PNG"
    if fmt is None:
        return PLAIN_UNKNOWN
    return f"this file is damaged or is not a {fmt} image (cannot decode it)"


def _heif_supported() -> bool:
    return "HEIF" in Image.registered_extensions().values()


def _technical(exc: BaseException, data: bytes | None = None) -> str:
    """The decoder's own message, without the in-memory file's repr, and the file's first bytes."""
    text = re.sub(r"\s*<_io\.BytesIO object at 0x[0-9a-fA-F]+>", "", str(exc))
    detail = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    if data is not None:
        detail += f" (first bytes: {data[:12]!r}; {len(data)} bytes)"
    return detail


def _read(source, label: str) -> bytes:
    """The bytes of ``source`` (a path or bytes), after the size checks."""
    if isinstance(source, bytes):
        size = len(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise ImageLoadError(f"{label}: no such file", f"not a file: {path}")
        size = path.stat().st_size
    if size == 0:
        raise ImageLoadError(f"{label}: empty file (0 bytes)", "0 bytes")
    if size > MAX_FILE_BYTES:
        raise ImageLoadError(f"{label}: file too large ({size / 2**20:.0f} MB; the limit is "
                             f"{MAX_FILE_BYTES / 2**20:.0f} MB)", f"{size} bytes > MAX_FILE_BYTES = {MAX_FILE_BYTES}")
    if isinstance(source, bytes):
        return source
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise ImageLoadError(f"{label}: cannot read the file", _technical(exc)) from None


def _decode(data: bytes, label: str) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        img = Image.open(io.BytesIO(data))
        if img.width * img.height > MAX_PIXELS:
            raise ImageLoadError(
                f"{label}: image too large ({img.width}x{img.height} px, limit {MAX_PIXELS // 1_000_000} MP)",
                f"{img.format} header: {img.width}x{img.height} = {img.width * img.height} px > MAX_PIXELS = "
                f"{MAX_PIXELS}")
        img.seek(0)
        try:
            img.load()
        except Exception as exc:  # the format is known here: the file is damaged
            fmt = _FORMAT_NAMES.get(img.format, img.format)
            raise ImageLoadError(f"{label}: {_plain_reason(fmt)}", _technical(exc, data)) from None
        return _to_rgb(ImageOps.exif_transpose(img))


def load_image(source: str | os.PathLike | bytes, name: str | None = None) -> np.ndarray:
    """Decode ``source`` (a path or raw bytes) to an HxWx3 uint8 RGB array.

    EXIF orientation is applied; grayscale, palette, CMYK, 16-bit and alpha images
    are converted (alpha is composited on white). Raises :class:`ImageLoadError`
    with a plain one-line message naming the file (what the file is when it is no image: a PDF, an SVG
    drawing...) and, in ``detail``, the decoder's technical message.
    """
    label = name or (str(source) if not isinstance(source, bytes) else "<upload>")
    data = _read(source, label)
    try:
        rgb = _decode(data, label)
    except ImageLoadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageLoadError(f"{label}: image too large (its header claims over {MAX_PIXELS // 1_000_000} "
                             "megapixels)", _technical(exc)) from None
    except Exception as exc:  # UnidentifiedImageError, OSError or any other decoder failure: one plain line
        raise ImageLoadError(f"{label}: {_plain_reason(sniff_format(data, label))}", _technical(exc, data)) from None
    arr = np.asarray(rgb, dtype=np.uint8)
    if arr.ndim != 3 or min(arr.shape[:2]) < 1:
        raise ImageLoadError(f"{label}: empty image", f"decoded shape {arr.shape}")
    return arr

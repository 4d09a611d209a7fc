"""HTML building blocks of the reports: the page, sections, tables, escaped text and embedded PNGs."""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime

import numpy as np

PHOTO_MAX_SIDE = 768  # the original photo is embedded at most this large

Progress = Callable[[float, str], None]

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222; margin: 0 auto;
       max-width: 1100px; padding: 24px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; border-bottom: 1px solid #ddd; margin-top: 28px; }
h3 { font-size: 15px; margin-bottom: 4px; }
.meta, .note, figcaption { color: #666; font-size: 12px; }
.row { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
figure { margin: 0; } img { max-width: 100%; height: auto; }
img.pixel { width: 256px; image-rendering: pixelated; }
table { border-collapse: collapse; margin: 8px 0; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f5f5f5; }
.fake { background: #fde2e1; color: #a40000; font-weight: 600; padding: 0 6px; border-radius: 3px; }
.real { background: #dbe8f6; color: #1a4f8a; font-weight: 600; padding: 0 6px; border-radius: 3px; }
.untrusted { color: #888; }
.warn { background: #fff4d6; border-left: 4px solid #e0a800; padding: 6px 10px; }
.item { border-top: 1px solid #eee; padding-top: 8px; margin-top: 16px; }
code { font-size: 12px; }
"""


class Raw(str):
    """Already-safe HTML (never user text): table cells of this type are not escaped."""


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def fmt(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        return "—" if math.isnan(value) else f"{float(value):.3f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt(v) for v in value)
    return str(value)


def param(value) -> str:
    """A parameter as typed: floats without padding (1, 0.5), sequences comma-separated."""
    if isinstance(value, (float, np.floating)):
        return f"{float(value):g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(param(v) for v in value)
    return fmt(value)


def cell(value) -> str:
    return value if isinstance(value, Raw) else esc(fmt(value))


def table(headers: Iterable[str], rows: Iterable[Iterable]) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def kv(items: Mapping) -> str:
    return "<table><tbody>" + "".join(f"<tr><th>{esc(k)}</th><td>{cell(v)}</td></tr>" for k, v in items.items()) \
        + "</tbody></table>"


def badge(verdict: str) -> Raw:
    v = str(verdict).lower()
    return Raw(f'<span class="{v}">{esc(v.upper())}</span>' if v in ("fake", "real") else esc(verdict))


def para(text: str, cls: str = "") -> str:
    return f'<p class="{cls}">{esc(text)}</p>' if cls else f"<p>{esc(text)}</p>"


def png_bytes(obj) -> bytes:
    """PNG bytes of PNG bytes, a matplotlib Figure or an RGB uint8 array."""
    if isinstance(obj, (bytes, bytearray)):
        return bytes(obj)
    if isinstance(obj, np.ndarray):
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(obj)).save(buf, format="PNG")
        return buf.getvalue()
    from explain import render

    return render.png(obj)


def img(obj, alt: str, caption: str | None = None, cls: str = "") -> str:
    data = base64.b64encode(png_bytes(obj)).decode("ascii")
    klass = f' class="{cls}"' if cls else ""
    tag = f'<img{klass} src="data:image/png;base64,{data}" alt="{esc(alt)}">'
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f"<figure>{tag}{cap}</figure>"


def thumbnail(image: np.ndarray, max_side: int = PHOTO_MAX_SIDE) -> np.ndarray:
    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image
    from PIL import Image

    scale = max_side / max(h, w)
    return np.asarray(Image.fromarray(image).resize((max(1, round(w * scale)), max(1, round(h * scale))),
                                                    Image.LANCZOS))


def page(title: str, body: str, subtitle: str = "") -> str:
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{esc(title)}</title>\n'
            f"<style>{CSS}</style>\n</head>\n<body>\n<h1>{esc(title)}</h1>\n"
            f'<p class="meta">{esc(subtitle)}</p>\n{body}\n</body>\n</html>\n')


def section(title: str, *parts: str) -> str:
    return f"<section>\n<h2>{esc(title)}</h2>\n" + "\n".join(p for p in parts if p) + "\n</section>"


def report_progress(progress: Progress | None, fraction: float, message: str) -> None:
    if progress is not None:
        progress(min(max(float(fraction), 0.0), 1.0), message)


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

"""What identifies a model file and the software around it: a file's sha256 and library versions.

Used for a trained model's metadata (``models.training.train``) and for the provenance table of an HTML
report (``explain.report``).
"""

from __future__ import annotations

import hashlib
import platform
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

_SHA_CACHE: dict[tuple, str] = {}


def file_sha256(path) -> str | None:
    """sha256 of a file (cached per path, size and mtime), or None when there is no such file."""
    try:
        p = Path(path)
        st = p.stat()
    except (OSError, TypeError):
        return None
    if not p.is_file():
        return None
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA_CACHE:
        h = hashlib.sha256()
        with p.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _SHA_CACHE[key] = h.hexdigest()
    return _SHA_CACHE[key]


def library_versions(packages: Sequence[str]) -> dict:
    """``{"python": ..., package: version}`` for each of ``packages`` that is installed (distribution names)."""
    out = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out

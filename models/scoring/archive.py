"""Inputs for batch scoring: files, folders (recursive) and zip archives, read safely and lazily.

:func:`iter_inputs` turns command-line style paths into a stream of :class:`Item` objects; :func:`iter_zip`
does the same for one zip (a path, bytes or a file object, e.g. an upload). Zip members are read into
memory one at a time, never extracted to disk, so a member name cannot write anywhere; names that are
absolute or contain ``..`` are refused anyway (an error Item), since they only appear in hostile archives.

Caps (``MAX_FILES`` image members, ``MAX_TOTAL_BYTES`` uncompressed bytes read) are checked on the
archive's declared sizes before anything is read, and again on the bytes actually read (each member is
read with a bounded read, so a header that lies about its size cannot beat the cap). A cap that is hit
raises :class:`ArchiveLimitError` with a one-line message; the Items yielded before stay valid. Nested
archives, symlinks, directories and non-image members are never read: nested archives and symlinks are
reported as notes (an Item with ``note`` set, not an error), non-image members are counted in one note.
"""

from __future__ import annotations

import io
import os
import stat
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from models.data.files import IMAGE_EXTENSIONS as _DATA_EXTENSIONS
from models.data.intake import MAX_FILE_BYTES, ImageLoadError, load_image

MAX_FILES = 10_000  # image members per archive
MAX_TOTAL_BYTES = 2 * 1024**3  # uncompressed bytes read per archive (2 GiB)
IMAGE_EXTENSIONS = frozenset(_DATA_EXTENSIONS | {".tif", ".tiff"})  # what models.intake decodes
# Clips listed in folders and zips (models.video decides by content; = models.video.decode.VIDEO_EXTENSIONS)
VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".m4v", ".webm", ".mkv", ".avi"})
MAX_VIDEO_BYTES = 200 * 1024 * 1024  # a clip's own size cap (= models.video.decode.Limits.max_bytes)
ARCHIVE_EXTENSIONS = (".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar")
_READ_CHUNK = 1 << 20


class ArchiveLimitError(ValueError):
    """An archive is over a cap (file count or uncompressed size); the message is one line for the user."""


@dataclass
class Item:
    """One input to score.

    ``name``: the display path (``archive.zip!inner/path.jpg`` for a zip member); ``path``: a file on disk,
    or ``data``: the member's bytes. ``error``: the input was refused or is missing (scored as an error row).
    ``note``: not an input to score but something to tell the user (a nested archive ignored, non-image
    files skipped...); scoring skips such Items.
    """

    name: str
    path: str | None = None
    data: bytes | None = None
    error: str | None = None
    note: str | None = None


def is_image_name(name: str) -> bool:
    return PurePosixPath(name.replace("\\", "/")).suffix.lower() in IMAGE_EXTENSIONS


def is_video_name(name: str) -> bool:
    return PurePosixPath(name.replace("\\", "/")).suffix.lower() in VIDEO_EXTENSIONS


def is_input_name(name: str) -> bool:
    """An image or a clip by its extension: what folders and zips yield to score."""
    return is_image_name(name) or is_video_name(name)


def member_cap(name: str) -> int:
    """The largest file of this name that is read: :data:`MAX_VIDEO_BYTES` for a clip, else MAX_FILE_BYTES."""
    return MAX_VIDEO_BYTES if is_video_name(name) else MAX_FILE_BYTES


def is_archive_name(name: str) -> bool:
    return name.replace("\\", "/").lower().endswith(ARCHIVE_EXTENSIONS)


def _printable(name: str) -> str:
    """A member name safe to show on one line (control characters replaced)."""
    return "".join(c if c.isprintable() else "?" for c in name)


def unsafe_member_name(name: str) -> str | None:
    """Why a zip member name is unsafe to use as a path (absolute, a drive, ``..``), or None when it is fine."""
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) >= 2 and norm[1] == ":"):
        return "absolute path"
    if ".." in norm.split("/"):
        return "'..' in path"
    if "\x00" in name:
        return "NUL in name"
    return None


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def _is_junk(name: str) -> bool:
    """macOS metadata that zips made on a Mac carry (``__MACOSX/``, ``._photo.jpg``): never images."""
    parts = name.replace("\\", "/").split("/")
    return parts[0] == "__MACOSX" or parts[-1].startswith("._") or parts[-1] == ".DS_Store"


def _gib(n: int) -> str:
    return f"{n / 1024**3:.2f} GiB" if n >= 1024**3 else f"{n / 1024**2:.1f} MiB"


def _bounded_read(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> tuple[bytes, bool]:
    """Read at most ``limit`` bytes of a member; (data, True) when the member holds more than that."""
    buf = bytearray()
    with zf.open(info) as fh:
        while len(buf) <= limit:
            piece = fh.read(min(_READ_CHUNK, limit + 1 - len(buf)))
            if not piece:
                return bytes(buf), False
            buf += piece
    return bytes(buf[:limit]), True


def iter_zip(source, name: str, *, max_files: int | None = None,
             max_total_bytes: int | None = None) -> Iterator[Item]:
    """Yield an :class:`Item` per image member of a zip, in archive order, reading one member at a time.

    ``source``: a path, the zip's bytes, or a binary file object; ``name``: its display name (Items are
    named ``name!inner/path.jpg``). A file that is not a readable zip gives one error Item. Raises
    :class:`ArchiveLimitError` when the archive holds more than ``max_files`` image members or more than
    ``max_total_bytes`` uncompressed (declared sizes, checked first; bytes actually read, checked as read).
    None: the module's ``MAX_FILES`` / ``MAX_TOTAL_BYTES``.
    """
    max_files = MAX_FILES if max_files is None else int(max_files)
    max_total_bytes = MAX_TOTAL_BYTES if max_total_bytes is None else int(max_total_bytes)
    if isinstance(source, (bytes, bytearray, memoryview)):
        source = io.BytesIO(bytes(source))
    try:
        zf = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        yield Item(name, error=f"{name}: not a readable zip file ({type(exc).__name__}: {' '.join(str(exc).split())})")
        return
    with zf:
        plan: list[tuple[zipfile.ZipInfo, str | None]] = []  # (member, why refused) for each image member
        notes: list[str] = []
        skipped = 0
        for info in zf.infolist():
            if info.is_dir():
                continue
            inner = _printable(info.filename)
            why = unsafe_member_name(info.filename)
            if why is not None:
                plan.append((info, f"{name}!{inner}: refused: unsafe name in archive ({why})"))
            elif _is_junk(info.filename):
                skipped += 1
            elif _is_symlink(info):
                notes.append(f"{name}!{inner}: symbolic link ignored")
            elif is_archive_name(info.filename):
                notes.append(f"{name}!{inner}: nested archive ignored (archives inside archives are not opened)")
            elif not is_input_name(info.filename):
                skipped += 1
            else:
                plan.append((info, None))
        if len(plan) > max_files:
            raise ArchiveLimitError(f"{name}: too many files ({len(plan):,} images, limit {max_files:,}); "
                                    "split the archive")
        declared = sum(info.file_size for info, why in plan if why is None and info.file_size <= member_cap(info.filename))
        if declared > max_total_bytes:
            raise ArchiveLimitError(f"{name}: too large uncompressed ({_gib(declared)}, limit {_gib(max_total_bytes)}); "
                                    "possibly a zip bomb")
        for note in notes:
            yield Item(note.split(": ", 1)[0], note=note)
        total = 0
        for info, why in plan:
            display = f"{name}!{_printable(info.filename)}"
            if why is not None:
                yield Item(display, error=why)
                continue
            cap = member_cap(info.filename)
            if info.file_size > cap:
                yield Item(display, error=f"{display}: file too large ({info.file_size / 1e6:.0f} MB)")
                continue
            budget = max_total_bytes - total
            limit = min(cap, budget)
            try:
                data, more = _bounded_read(zf, info, limit)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, RuntimeError, ValueError,
                    NotImplementedError) as exc:
                # Bad CRC (e.g. a header that lies about the size), encrypted, unsupported compression...
                yield Item(display, error=f"{display}: cannot read from the archive ({type(exc).__name__}: "
                                          f"{' '.join(str(exc).split())})")
                continue
            total += len(data)
            if more:
                if limit == budget:
                    raise ArchiveLimitError(f"{name}: too large uncompressed (more than {_gib(max_total_bytes)} read, "
                                            f"at {display}); possibly a zip bomb")
                yield Item(display, error=f"{display}: file too large (over {cap / 1e6:.0f} MB)")
                continue
            yield Item(display, data=data)
        if skipped:
            yield Item(name, note=f"{name}: {skipped:,} non-image file{'s' if skipped != 1 else ''} skipped")


def _walk_images(folder: Path) -> tuple[list[Path], int]:
    """Image files under ``folder`` (recursive, sorted, hidden entries skipped) and the count of others."""
    found, skipped = [], 0
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for fname in sorted(filenames):
            if fname.startswith("."):
                continue
            if is_input_name(fname):
                found.append(Path(dirpath) / fname)
            else:
                skipped += 1
    found.sort(key=lambda p: p.relative_to(folder).parts)  # like a sorted file listing: a/b.png < a/c/d.png < a/e.png
    return found, skipped


def _iter_folder(folder: Path, name: str, recursive: bool) -> Iterator[Item]:
    if recursive:
        files, skipped = _walk_images(folder)
    else:
        entries = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
        files = [p for p in entries if is_input_name(p.name)]
        skipped = len(entries) - len(files)
    base = name.rstrip("/\\") or name
    for path in files:
        rel = path.relative_to(folder).as_posix()
        yield Item(f"{base}/{rel}" if base not in (".", "") else rel, path=str(path))
    if not files:
        yield Item(name, note=f"{name}: no image files found in this folder")
    elif skipped:
        yield Item(name, note=f"{name}: {skipped:,} non-image file{'s' if skipped != 1 else ''} skipped")


def iter_inputs(paths: Iterable[str | os.PathLike], *, recursive: bool = True, max_files: int | None = None,
                max_total_bytes: int | None = None) -> Iterator[Item]:
    """Expand files, folders and ``.zip`` files into :class:`Item` objects, in the order given.

    A folder gives its image files (recursive unless ``recursive=False``; sorted; hidden entries skipped;
    other files counted in one note). A ``.zip`` file is read with :func:`iter_zip` (the caps apply to each
    archive). Any other file is an input whatever its extension (decoding decides). A missing path is an
    error Item. :class:`ArchiveLimitError` from a zip propagates.
    """
    for raw in paths:
        name = str(raw)
        path = Path(raw)
        if path.is_dir():
            yield from _iter_folder(path, name, recursive)
        elif path.is_file() and path.suffix.lower() == ".zip":
            yield from iter_zip(path, name, max_files=max_files, max_total_bytes=max_total_bytes)
        elif path.exists():
            yield Item(name, path=name)
        else:
            yield Item(name, error=f"{name}: no such file")


def count_inputs(paths: Iterable[str | os.PathLike], *, recursive: bool = True) -> int:
    """How many Items :func:`iter_inputs` will score, from directory listings and zip directories only
    (nothing is decoded; notes are not counted). For a progress bar's total."""
    n = 0
    for raw in paths:
        path = Path(raw)
        try:
            if path.is_dir():
                n += len(_walk_images(path)[0]) if recursive else sum(
                    1 for p in path.iterdir() if p.is_file() and not p.name.startswith(".") and is_input_name(p.name))
            elif path.is_file() and path.suffix.lower() == ".zip":
                with zipfile.ZipFile(path) as zf:
                    n += sum(1 for i in zf.infolist() if not i.is_dir() and (
                        unsafe_member_name(i.filename) or (is_input_name(i.filename) and not _is_junk(i.filename)
                                                           and not _is_symlink(i))))
            else:
                n += 1
        except (OSError, zipfile.BadZipFile, ValueError):
            n += 1
    return n


def read_item(item: Item) -> np.ndarray:
    """Decode an Item to an HxWx3 uint8 RGB array (models.intake.load_image); ImageLoadError when it fails."""
    if item.error:
        raise ImageLoadError(item.error)
    if item.note:
        raise ImageLoadError(item.note)
    if item.data is not None:
        return load_image(item.data, name=item.name)
    return load_image(item.path if item.path is not None else item.name, name=item.name)


def read_named(name: str) -> np.ndarray:
    """Decode an input again by its display name: a file path, or ``archive.zip!inner/path.jpg``."""
    outer, sep, inner = name.partition("!")
    if sep and Path(outer).is_file() and is_archive_name(outer):
        return read_zip_member(outer, inner, name=name)
    return load_image(name)


def read_zip_member(source: str | os.PathLike | bytes, inner: str, *, name: str | None = None) -> np.ndarray:
    """Decode the member ``inner`` of a zip (a path or the zip's bytes) with :func:`iter_zip`'s guards.

    An unsafe name (absolute, ``..``), a symbolic link, a nested archive or a member over ``MAX_FILE_BYTES``
    (declared, or found by a bounded read) is refused; a missing member or an unreadable zip too. Every refusal
    is an :class:`ImageLoadError` with a one-line message naming ``name`` (default ``zip!inner``).
    """
    display = name if name is not None else f"zip!{_printable(inner)}"
    return load_image(read_zip_bytes(source, inner, name=display), name=display)


def read_zip_bytes(source: str | os.PathLike | bytes, inner: str, *, name: str | None = None,
                   max_bytes: int | None = None) -> bytes:
    """The bytes of the member ``inner`` of a zip, with :func:`read_zip_member`'s guards and refusals (each an
    :class:`ImageLoadError`, one line) and a cap of ``max_bytes`` (None: ``MAX_FILE_BYTES``; a clip's:
    :data:`MAX_VIDEO_BYTES`)."""
    max_bytes = MAX_FILE_BYTES if max_bytes is None else int(max_bytes)
    display = name if name is not None else f"zip!{_printable(inner)}"
    why = unsafe_member_name(inner)
    if why is not None:
        raise ImageLoadError(f"{display}: refused: unsafe name in archive ({why})")
    if is_archive_name(inner):
        raise ImageLoadError(f"{display}: refused: nested archive (archives inside archives are not opened)")
    if isinstance(source, (bytes, bytearray, memoryview)):
        source = io.BytesIO(bytes(source))
    try:
        with zipfile.ZipFile(source) as zf:
            info = zf.getinfo(inner)
            if info.is_dir() or _is_symlink(info):
                raise ImageLoadError(f"{display}: refused: not a regular file in the archive")
            if info.file_size > max_bytes:
                raise ImageLoadError(f"{display}: file too large ({info.file_size / 1e6:.0f} MB)")
            data, more = _bounded_read(zf, info, max_bytes)
    except KeyError:
        raise ImageLoadError(f"{display}: no such file in the archive") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, RuntimeError, ValueError,
            NotImplementedError) as exc:
        if isinstance(exc, ImageLoadError):
            raise
        raise ImageLoadError(f"{display}: cannot read from the archive ({type(exc).__name__}: "
                             f"{' '.join(str(exc).split())})") from None
    if more:
        raise ImageLoadError(f"{display}: file too large (over {max_bytes / 1e6:.0f} MB)")
    return data


# --- uploads (the Batch page): (name, bytes) pairs instead of paths ----------------------------------------------

def upload_items(uploads: Iterable[tuple[str, bytes] | tuple[str, bytes, str]], *, max_files: int | None = None,
                 max_total_bytes: int | None = None) -> Iterator[Item]:
    """Items for uploaded files given as ``(name, data)`` pairs, in order: a ``.zip`` is expanded lazily with
    :func:`iter_zip` (the caps apply to each archive); any other archive is an error Item; anything else is
    an input to decode. A triple ``(name, data, file_name)`` names the Items ``name`` (a display name made
    unique, ``pack.zip (2)``) while the file's own ``file_name`` decides whether it is an archive."""
    for name, data, *own in uploads:
        kind = own[0] if own else name
        if is_archive_name(kind) and kind.lower().endswith(".zip"):
            yield from iter_zip(data, name, max_files=max_files, max_total_bytes=max_total_bytes)
        elif is_archive_name(kind):
            yield Item(name, error=f"{name}: only .zip archives are opened")
        else:
            yield Item(name, data=data)


def read_upload(name: str, uploads: Mapping[str, bytes], file_names: Mapping[str, str] | None = None) -> np.ndarray:
    """Decode an upload again by its display name: ``upload.jpg`` or ``archive.zip!inner/path.jpg``.

    ``uploads`` maps upload names to their bytes. Zip members are re-read with :func:`read_zip_member`'s
    guards. :class:`ImageLoadError` (one line) when the name is not among the uploads or is refused.
    ``file_names`` maps a display name to the file's own name where they differ (``pack.zip (2)`` ->
    ``pack.zip``, as in :func:`upload_items`): the own name decides whether the upload is a zip.
    """
    if name in uploads:
        return load_image(uploads[name], name=name)
    outer, sep, inner = name.partition("!")
    if not sep or outer not in uploads:
        raise ImageLoadError(f"{_printable(name)}: not among the uploaded files")
    if not (file_names or {}).get(outer, outer).lower().endswith(".zip"):
        raise ImageLoadError(f"{_printable(name)}: only .zip archives are opened")
    return read_zip_member(uploads[outer], inner, name=_printable(name))

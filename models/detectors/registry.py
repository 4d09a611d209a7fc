"""The model registry: where installed detectors live, how a name resolves to a file, loading (cached),
the default model, and reading and writing a model's metadata JSON.

``load_model(name_or_path)`` returns a :class:`models.detectors.base.Detector`: a Keras model (``.keras``)
or a spectrum baseline (``.npz``), with its ``<name>.json`` metadata (calibration, operating point...).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import tempfile
import threading
from pathlib import Path

from models.detectors.base import Detector, KerasDetector, check_crop_recipe, check_unsure
from models.detectors.calibration import check_calibration, check_operating_point
from models.detectors.spectrum import SpectrumDetector

ASSETS_DIR = Path(__file__).resolve().parents[2] / "assets" / "models"
DEFAULT_FILE = ASSETS_DIR / "DEFAULT"


class ModelNotFoundError(FileNotFoundError):
    """No model of that name or path."""






def default_model_name() -> str:
    """The shipped default detector, named in one place: ``assets/models/DEFAULT``."""
    env = os.environ.get("DEEPFAKE_MODEL")
    if env:
        return env
    return DEFAULT_FILE.read_text().strip()


MODEL_SUFFIXES = (".keras", ".npz")  # Keras models; spectrum baselines (plain arrays, never pickles)


def list_models(assets_dir: Path | None = None) -> list[str]:
    """Names of the installed models (``<name>.keras`` or ``<name>.npz`` under ``assets/models``)."""
    assets_dir = ASSETS_DIR if assets_dir is None else Path(assets_dir)
    if not assets_dir.is_dir():
        return []
    return sorted(p.stem for p in assets_dir.iterdir() if p.suffix in MODEL_SUFFIXES)


def model_file(assets_dir: Path, name: str) -> Path:
    """The installed file of model ``name`` in ``assets_dir`` (``.keras`` or ``.npz``; ``.keras`` if neither)."""
    for suffix in MODEL_SUFFIXES:
        if (assets_dir / f"{name}{suffix}").is_file():
            return assets_dir / f"{name}{suffix}"
    return assets_dir / f"{name}.keras"


def resolve_model_path(name_or_path: str | os.PathLike | None, assets_dir: Path | None = None) -> Path:
    """The model file for a bare name (looked up in ``assets_dir``, default assets/models) or a path;
    None = the default model. Raises ModelNotFoundError."""
    name_or_path = name_or_path or default_model_name()
    if assets_dir is not None:
        path = model_file(Path(assets_dir), str(name_or_path))
        if path.is_file():
            return path
        if not Path(name_or_path).is_file():
            raise ModelNotFoundError(f"no model named {str(name_or_path)!r} in {assets_dir}")
    candidate = Path(name_or_path)
    candidates = [candidate] + [candidate.with_suffix(s) for s in MODEL_SUFFIXES] + [
        ASSETS_DIR / f"{name_or_path}{s}" for s in MODEL_SUFFIXES]
    for path in candidates:
        if path.is_file() and path.suffix in MODEL_SUFFIXES:
            return path
    available = ", ".join(list_models()) or "none"
    raise ModelNotFoundError(f"no model named {str(name_or_path)!r} (installed: {available})")


def read_metadata(model_path: Path) -> dict:
    meta_path = model_path.with_suffix(".json")
    if meta_path.is_file():
        return json.loads(meta_path.read_text())
    return {}


def _metadata_state(model_path: Path) -> tuple[int | None, bytes | None]:
    """(mtime_ns, raw bytes) of the model's JSON, or (None, None) when there is none."""
    meta_path = model_path.with_suffix(".json")
    try:
        mtime = meta_path.stat().st_mtime_ns
        return mtime, meta_path.read_bytes()
    except FileNotFoundError:
        return None, None


def _check_metadata(path: Path, metadata: dict) -> None:
    """One clear error for a JSON whose calibration or operating point is unusable."""
    try:
        if not isinstance(metadata, dict):
            raise ValueError("the JSON does not hold an object")
        check_calibration(metadata.get("calibration"))
        check_operating_point(metadata.get("operating_point"))
        check_unsure(metadata.get("unsure"))
        check_crop_recipe(metadata.get("crop_recipe"))
    except ValueError as exc:
        raise ModelNotFoundError(f"cannot load model {path.name}: bad metadata in {path.with_suffix('.json').name}: "
                                 f"{exc}") from exc


# (model path, model mtime_ns, JSON mtime_ns, JSON sha1) -> Detector: saving a calibration or an operating
# point into the JSON gives a new key, so the next load_model sees it without a restart.
_CACHE: dict[tuple, Detector] = {}
_CACHE_LOCK = threading.Lock()  # Streamlit sessions load models from several threads


def load_model(name_or_path: str | os.PathLike | None = None, *, cache: bool = True) -> Detector:
    """Load a detector by bare name (resolved in ``assets/models/``) or by path; None = the default.

    Cached per model file *and* JSON contents: an operating point or calibration saved into the JSON is
    used by the next call.
    """
    path = resolve_model_path(name_or_path).resolve()
    meta_mtime, meta_bytes = _metadata_state(path)
    key = (str(path), path.stat().st_mtime_ns, meta_mtime,
           None if meta_bytes is None else hashlib.sha1(meta_bytes).hexdigest())
    if cache:
        with _CACHE_LOCK:
            if key in _CACHE:
                return _CACHE[key]
    try:
        metadata = json.loads(meta_bytes) if meta_bytes is not None else {}
    except ValueError as exc:
        raise ModelNotFoundError(f"cannot load model {path.name}: {path.with_suffix('.json').name} is not valid "
                                 f"JSON: {exc}") from exc
    _check_metadata(path, metadata)
    detector = None
    if cache:
        with _CACHE_LOCK:
            stale = [k for k in _CACHE if k[0] == key[0]]  # one detector per file: drop stale versions
            olds = [(k, _CACHE.pop(k)) for k in stale]
        for old_key, old in olds:
            if old_key[1] == key[1] and _static(old.metadata) == _static(metadata):
                detector = copy.copy(old)  # only the calibration / operating point changed: same weights
                detector.metadata = metadata
    if detector is None:
        detector = _load_uncached(path, metadata)
    if cache:
        with _CACHE_LOCK:
            _CACHE[key] = detector
    return detector


SETTINGS = ("calibration", "operating_point", "unsure")  # metadata that can change without reloading the weights


def _static(metadata: dict) -> dict:
    return {k: v for k, v in metadata.items() if k not in SETTINGS}


def _load_uncached(path: Path, metadata: dict) -> Detector:
    if path.suffix == ".npz":
        try:
            detector = SpectrumDetector.load(path, metadata)
        except (OSError, ValueError, KeyError) as exc:
            raise ModelNotFoundError(f"cannot load model {path.name}: {type(exc).__name__}: {exc}") from exc
        return detector
    import keras

    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # corrupt or incompatible file: one clear line
        raise ModelNotFoundError(f"cannot load model {path.name}: {type(exc).__name__}: {exc}") from exc
    return KerasDetector(model, name=metadata.get("name") or path.stem, metadata=metadata, path=path)


def write_json_atomic(path: Path, data: dict) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder and os.replace (readers never see half)."""
    path = Path(path)
    mode = path.stat().st_mode & 0o777 if path.exists() else None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps(data, indent=2) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        if mode is None:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def update_metadata(model_file: Path, **blocks) -> dict:
    """Set top-level ``blocks`` in the JSON beside ``model_file`` (created if missing), atomically."""
    meta_path = Path(model_file).with_suffix(".json")
    metadata = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    if not isinstance(metadata, dict):
        raise ValueError(f"{meta_path.name} does not hold a JSON object")
    metadata.update(blocks)
    write_json_atomic(meta_path, metadata)
    return metadata

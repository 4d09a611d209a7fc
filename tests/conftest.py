"""Shared fixtures: tiny synthetic datasets in tmp_path, and the shared dataset slice."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data" / "faces128"


def shared_data_root() -> Path | None:
    env = os.environ.get("DEEPFAKE_DATA")
    root = Path(env) if env else SHARED
    return root if (root / "test").is_dir() else None


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """Tests never write to the user's cache (landmarks of detector_v2's training data): a fresh one per session."""
    previous = os.environ.get("DEEPFAKE_CACHE")
    os.environ["DEEPFAKE_CACHE"] = str(tmp_path_factory.mktemp("deepfake-cache"))
    yield
    if previous is None:
        os.environ.pop("DEEPFAKE_CACHE", None)
    else:
        os.environ["DEEPFAKE_CACHE"] = previous


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared faces128 dataset. Missing data fails under CI=true, skips elsewhere."""
    root = shared_data_root()
    if root is None:
        msg = "shared dataset not found (set DEEPFAKE_DATA or provide ../shared/data/faces128)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return root


def synthetic_face(rng: np.random.Generator, fake: bool, size: int = 32) -> np.ndarray:
    """A tiny image whose class is learnable: fakes are bright in the top-left quadrant."""
    img = rng.integers(40, 120, size=(size, size, 3), dtype=np.uint8)
    if fake:
        img[: size // 2, : size // 2] = rng.integers(200, 255, size=(size // 2, size // 2, 3), dtype=np.uint8)
    return img


def make_dataset_dir(root: Path, splits=("train", "val", "test"), n_per_class: int = 8, size: int = 32,
                     seed: int = 0, source: str = "synth") -> Path:
    rng = np.random.default_rng(seed)
    for split in splits:
        for label, cls in enumerate(("real", "fake")):
            folder = root / split / cls if split else root / cls
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n_per_class):
                Image.fromarray(synthetic_face(rng, bool(label), size)).save(folder / f"{source}__{cls}{i}.png")
    return root


def write_manifest(root: Path, kinds: dict[str, str]) -> Path:
    """``root/manifest.csv`` for every image under ``root``, as the shared data has it: the source from the
    ``<source>__`` file name and its ``kind`` from ``kinds`` (empty for a source not in it)."""
    import csv

    rows = []
    for path in sorted(root.rglob("*.png")):
        rel = path.relative_to(root)
        source = path.name.split("__", 1)[0]
        split = rel.parts[0] if len(rel.parts) == 3 else ""
        rows.append({"split": split, "label": path.parent.name, "file": rel.as_posix(), "source": source,
                     "kind": kinds.get(source, "")})
    out = root / "manifest.csv"
    with open(out, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["split", "label", "file", "source", "kind"])
        writer.writeheader()
        writer.writerows(rows)
    return out


@pytest.fixture
def tiny_data(tmp_path) -> Path:
    """<tmp>/data/{train,val,test}/{real,fake}/ with 8 PNGs per class and split."""
    return make_dataset_dir(tmp_path / "data")


def build_oracle_model(size: int = 32):
    """A fixed-weight Keras model that knows the synthetic rule: P(fake) = sigmoid(k * (mean top-left - 0.6)).

    Synthetic fakes have a top-left quadrant of 200-255 (~0.89 after scaling), reals 40-120 (~0.31),
    so this model scores fakes near 1 and reals near 0: evaluation numbers are known in advance.
    """
    import keras

    model = keras.Sequential(
        [keras.Input((size, size, 3), name="image"), keras.layers.Flatten(), keras.layers.Dense(1, activation="sigmoid")],
        name="oracle",
    )
    mask = np.zeros((size, size, 3), dtype=np.float32)
    mask[: size // 2, : size // 2] = 1.0
    k = 20.0
    model.layers[-1].set_weights([(mask.reshape(-1, 1) * k / mask.sum()), np.array([-0.6 * k], dtype=np.float32)])
    return model


def save_model(model, folder: Path, name: str, input_size: int | None = None) -> Path:
    """Save ``model`` as ``folder/name.keras`` (+ ``name.json`` metadata when input_size is given)."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.keras"
    model.save(path)
    if input_size is not None:
        (folder / f"{name}.json").write_text(json.dumps({"name": name, "input_size": input_size}))
    return path


@pytest.fixture(scope="session")
def oracle_model_path(tmp_path_factory) -> Path:
    """A saved 32 px oracle model (see build_oracle_model) with its metadata JSON."""
    return save_model(build_oracle_model(32), tmp_path_factory.mktemp("oracle"), "oracle", 32)


# --- a detector with a known answer, for the explainers ------------------------------------------------

def build_quadrant_model(size: int = 32):
    """A model that looks only at the top-left quadrant and calls bright patches there fake.

    conv "bright" (1x1): relu(mean(RGB) - 0.6) -> Cropping2D keeps the top-left quadrant -> global mean ->
    Dense(1, sigmoid) with weight 40, bias -2. A bright patch filling the quadrant gives P(fake) ~ 1; a grey
    image gives sigmoid(-2) ~ 0.12. Bright pixels anywhere else change nothing.
    """
    import keras

    inp = keras.Input((size, size, 3), name="image")
    conv = keras.layers.Conv2D(1, 1, activation="relu", name="bright")
    x = conv(inp)
    x = keras.layers.Cropping2D(((0, size // 2), (0, size // 2)), name="top_left")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    dense = keras.layers.Dense(1, activation="sigmoid", name="p_fake")
    out = dense(x)
    model = keras.Model(inp, out, name="quadrant")
    conv.set_weights([np.full((1, 1, 3, 1), 1 / 3, np.float32), np.array([-0.6], np.float32)])
    dense.set_weights([np.array([[40.0]], np.float32), np.array([-2.0], np.float32)])
    return model


def quadrant_image(size: int = 64, where: str = "top_left") -> np.ndarray:
    """Grey image (102) with a bright (242) square patch in one quadrant (top_left, bottom_right...)."""
    img = np.full((size, size, 3), 102, np.uint8)
    q, m = size // 2, size // 16
    rows = slice(m, q - m) if where.startswith("top") else slice(q + m, size - m)
    cols = slice(m, q - m) if where.endswith("left") else slice(q + m, size - m)
    img[rows, cols] = 242
    return img


@pytest.fixture(scope="session")
def quadrant_detector():
    """A KerasDetector (32 px input) around build_quadrant_model; feed it 64 px images from quadrant_image."""
    from models.detectors.base import KerasDetector

    return KerasDetector(build_quadrant_model(32), name="quadrant", metadata={"input_size": 32})


# A face's five landmarks on a 64 px image, for tests that skip mtcnn (pipeline, Summary, Shapley).
FACE_LANDMARKS = dict(box=(10.0, 8.0, 44.0, 50.0), left_eye=(22.0, 26.0), right_eye=(42.0, 26.0), nose=(32.0, 36.0),
                      mouth_left=(24.0, 46.0), mouth_right=(40.0, 46.0))


def stats_detector():
    """A detector that is not a neural network (like the spectrum baseline): no Grad-CAM, no activations;
    P(fake) from the top-left quadrant's brightness."""
    from models.detectors.base import Detector

    class StatsDetector(Detector):
        supports_gradcam = False
        supports_activations = False

        def __init__(self):
            self.name, self.input_size, self.metadata = "stats", 32, {}

        def predict_raw(self, images, batch_size=256):
            x = self.preprocess(images)
            return (1 / (1 + np.exp(-20 * (x[:, :16, :16].mean(axis=(1, 2, 3)) - 0.6)))).astype(np.float32)

    return StatsDetector()

"""Turn a folder of photos into face crops like the shared data: ``python -m models.prepare SRC DST``.

SRC is laid out as ``{real,fake}/`` or ``{train,val,test}/{real,fake}/`` (any depth below, any format the
intake reads). Each photo's largest face is cropped with the data's recipe (models.faces: mtcnn, a square
1.3x the face box, kept inside the image, Lanczos to 128 px) and saved as JPEG quality 90 under DST with the
same layout; with no face the centre square is used (``face_found=0``). DST/manifest.csv has the shared
data's columns. Bad files are reported on stderr and skipped; exit status 2 if any failed.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import sys
from pathlib import Path

from tqdm.auto import tqdm

COLUMNS = ["split", "label", "file", "source", "original_name", "original_md5", "md5", "face_found",
           "face_confidence", "face_box_xywh_original_px"]




def _jobs(src: Path):
    from models.data.files import CLASSES, IMAGE_EXTENSIONS, SPLITS

    roots = [(s, src / s) for s in SPLITS if (src / s).is_dir()] or [("", src)]
    for split, root in roots:
        for cls in CLASSES:
            folder = root / cls
            if folder.is_dir():
                for path in sorted(folder.rglob("*")):
                    if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS | {".tif", ".tiff"}:
                        yield split, cls, path, folder


def prepare(src, dst, size: int = 128, crop: str = "auto", source: str | None = None) -> tuple[int, list[str]]:
    from PIL import Image

    from models.data.faces import center_square, face_crops
    from models.data.faces import crop as cut
    from models.data.files import source_of
    from models.data.intake import ImageLoadError, load_image

    src, dst = Path(src), Path(dst)
    jobs = list(_jobs(src))
    if not jobs:
        raise FileNotFoundError(f"{src} has no real/ or fake/ folder with images")
    rows, errors = [], []
    for split, cls, path, folder in tqdm(jobs, desc="cropping faces", unit="img"):
        try:
            raw = path.read_bytes()
            image = load_image(raw, name=str(path))
            if crop == "none":
                face, pixels = None, cut(image, center_square(image.shape[1], image.shape[0]), size)
            else:
                crops, kind, _warnings = face_crops(image, mode=crop, size=size)
                face, pixels = crops[0]
        except (ImageLoadError, ValueError) as exc:
            errors.append(str(exc) if str(path) in str(exc) else f"{path}: {exc}")
            continue
        rel = path.relative_to(folder).with_suffix(".jpg")
        out = dst / split / cls / rel if split else dst / cls / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(out, format="JPEG", quality=90)
        rows.append({
            "split": split, "label": cls, "file": str(out.relative_to(dst)),
            "source": source or (source_of(path.name) if "__" in path.name else src.name),
            "original_name": path.name, "original_md5": hashlib.md5(raw).hexdigest(),
            "md5": hashlib.md5(out.read_bytes()).hexdigest(), "face_found": int(face is not None),
            "face_confidence": "" if face is None else f"{face.confidence:.4f}",
            "face_box_xywh_original_px": "" if face is None else " ".join(str(v) for v in face.box),
        })
    dst.mkdir(parents=True, exist_ok=True)
    with open(dst / "manifest.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return len(rows), errors

"""Finishing a crop the product makes the way the training crops were finished (verdicts independent of the
file format).

The shared data's crops were cut from photos, resized to 128 px with Lanczos and saved as JPEG quality 90
(the faces128 README, "How the crops were made"). A model whose metadata JSON says so, e.g.
``"crop_recipe": {"size": 128, "jpeg_quality": 90}`` (``Detector.crop_recipe``), is given crops made from a
photo (crop modes "auto"/"face", and the centre square when no face is found) finished the same way:
Lanczos to ``size`` (when not already that size), JPEG at ``jpeg_quality``, decoded. A lossless PNG and its
JPEG copy then give nearly the same model input. Without the key crops are used as cut (older models'
numbers unchanged); crop mode "none" always takes its input as is.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from models.data.perturb import jpeg
from models.detectors.base import check_crop_recipe as check_recipe

MADE_CROPS = ("face", "center")  # crop kinds the product cut from a photo ("none": the input as is)


def finish_crop(crop: np.ndarray, recipe: dict | None) -> np.ndarray:
    """``crop`` (HxWx3 uint8) finished per ``recipe``: Lanczos to size x size, JPEG at jpeg_quality, decoded.
    ``recipe`` None: ``crop`` unchanged."""
    recipe = check_recipe(recipe)
    if recipe is None:
        return crop
    size = recipe["size"]
    out = np.ascontiguousarray(crop)
    if out.shape[:2] != (size, size):
        out = np.asarray(Image.fromarray(out).resize((size, size), Image.LANCZOS), dtype=np.uint8)
    if recipe["jpeg_quality"] is not None:
        out = jpeg(out, recipe["jpeg_quality"])
    return out


def finish_crops(crops: list, kind: str, recipe: dict | None) -> list:
    """``(face, crop)`` pairs (models.data.faces.face_crops) with each crop finished per ``recipe`` when the
    product made it (``kind`` "face" or "center"); unchanged for kind "none" or no recipe."""
    if recipe is None or kind not in MADE_CROPS:
        return crops
    return [(face, finish_crop(img, recipe)) for face, img in crops]

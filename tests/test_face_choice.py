"""Picking a face in a group photo (pages._shared.choose_face): the chosen face is highlighted, and switching
back to a face reuses its cached results instead of recomputing."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from models.analysis import display

_shared = pytest.importorskip("pages._shared")


def test_choose_face_highlights_the_chosen_face(monkeypatch):
    import models.scoring.stream as stream

    img = np.zeros((300, 400, 3), np.uint8)
    faces = [SimpleNamespace(box=(20, 150, 100, 100)), SimpleNamespace(box=(250, 150, 100, 100))]
    crops = [(f, np.full((128, 128, 3), i, np.uint8)) for i, f in enumerate(faces)]
    monkeypatch.setattr(stream, "analyse", lambda image, mode, recipe=None: (crops, "face", []))
    monkeypatch.setattr(_shared.st, "selectbox", lambda *a, **k: 1)  # the user picks face 2
    crop, kind, index, _, shown = _shared.choose_face(img, "test_pick")
    assert index == 1 and kind == "face" and crop is crops[1][1]
    assert tuple(shown[200, 250]) == display.CHOSEN_COLOUR and tuple(shown[200, 20]) == display.FACE_COLOUR


def test_switching_back_to_a_face_is_a_cache_hit():
    calls = []
    a, b = np.zeros((8, 8, 3), np.uint8), np.ones((8, 8, 3), np.uint8)
    for crop in (a, b, a.copy(), b.copy()):  # face 1, face 2, back to 1, back to 2
        _shared.explain_cache("test-model", crop)(("step", 1), lambda: calls.append(1))
    assert len(calls) == 2

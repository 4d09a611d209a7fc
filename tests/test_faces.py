"""models.faces: the data recipe's square, Lanczos crops, mtcnn detection with downscale, and face_crops modes."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from models.data import faces as F

ASTRONAUT_BOX = (182, 64, 83, 107)  # mtcnn's answer on the full 512 px astronaut


def grey(h: int, w: int) -> np.ndarray:
    return np.full((h, w, 3), 128, np.uint8)


def resized(img: np.ndarray, w: int, h: int) -> np.ndarray:
    return np.asarray(Image.fromarray(img).resize((w, h), Image.LANCZOS))


def assert_box_near(box, expected, tol=10):
    assert all(isinstance(v, int) for v in box), box
    assert np.max(np.abs(np.subtract(box, expected))) <= tol, (box, expected)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    from skimage.data import astronaut

    return astronaut()


# --- square_box ------------------------------------------------------------------------------------------

def test_square_box_centred_when_it_fits():
    x, y, side = F.square_box((100, 100, 40, 60), 400, 300)
    assert side == 78  # 1.3 * max(40, 60)
    assert (x + side / 2, y + side / 2) == pytest.approx((120, 130), abs=1)  # the box centre


def test_square_box_is_capped_at_the_shorter_side():
    assert F.square_box((10, 20, 180, 90), 300, 120) == (40, 0, 120)  # 1.3*180=234 > 120; centred on x=100
    assert F.square_box((0, 0, 100, 100), 100, 100) == (0, 0, 100)


@pytest.mark.parametrize("box, expected", [
    ((0, 100, 40, 40), (0, 94, 52)),       # left border: shifted right to x=0
    ((100, 0, 40, 40), (94, 0, 52)),       # top border
    ((170, 100, 30, 40), (148, 94, 52)),   # right border: ends at width 200
    ((100, 270, 40, 30), (94, 248, 52)),   # bottom border: ends at height 300
])
def test_square_box_is_shifted_inside_at_each_border(box, expected):
    x, y, side = F.square_box(box, 200, 300)
    assert (x, y, side) == expected
    assert 0 <= x and x + side <= 200 and 0 <= y and y + side <= 300


def test_square_box_returns_integers_for_float_boxes():
    out = F.square_box((10.4, 20.6, 33.3, 41.7), 200, 200)
    assert all(type(v) is int for v in out)
    assert out[2] == round(1.3 * 41.7)


# --- crop and is_already_cropped -------------------------------------------------------------------------

def test_crop_shape_dtype_and_lanczos(astronaut):
    out = F.crop(astronaut, (154, 48, 139), size=128)
    assert out.shape == (128, 128, 3) and out.dtype == np.uint8
    expected = np.asarray(Image.fromarray(astronaut[48:187, 154:293]).resize((128, 128), Image.LANCZOS))
    np.testing.assert_array_equal(out, expected)
    assert F.crop(astronaut, (0, 0, 64, 64), size=32).shape == (32, 32, 3)


def test_crop_outside_the_image_is_an_error():
    with pytest.raises(ValueError, match="does not fit"):
        F.crop(grey(100, 100), (50, 50, 80))


def _face(box, w, h):
    return F.Face(box=box, confidence=0.99, crop_box=(0, 0, 1, 1), upscale=1.0)


def test_is_already_cropped():
    assert F.is_already_cropped(_face((24, 14, 80, 100), 128, 128), 128, 128)  # a faces128 crop
    assert not F.is_already_cropped(_face((182, 64, 83, 107), 512, 512), 512, 512)  # a face in a photo
    assert not F.is_already_cropped(_face((10, 10, 60, 60), 128, 128), 128, 128)  # 78 px < 0.9 * 128
    assert F.is_already_cropped(_face((0, 0, 90, 90), 300, 100), 300, 100)  # square capped at the short side


def test_face_to_dict():
    d = F.Face(box=(1, 2, 3, 4), confidence=0.95, crop_box=(0, 0, 5, 5), upscale=25.6).to_dict()
    assert d == {"box": [1, 2, 3, 4], "confidence": 0.95, "crop_box": [0, 0, 5, 5], "upscale": 25.6}


# --- detect_faces (real mtcnn) ---------------------------------------------------------------------------

def test_detect_faces_on_the_astronaut(astronaut):
    faces = F.detect_faces(astronaut)
    assert len(faces) == 1
    face = faces[0]
    assert_box_near(face.box, ASTRONAUT_BOX)
    assert face.confidence > 0.9
    x, y, side, side2 = face.crop_box
    assert (x, y, side) == F.square_box(face.box, 512, 512) and side == side2
    assert face.upscale == pytest.approx(128 / side)


def test_detect_faces_boxes_scale_with_the_image(astronaut):
    faces = F.detect_faces(resized(astronaut, 1024, 1024))
    assert len(faces) == 1
    assert_box_near(faces[0].box, tuple(2 * v for v in ASTRONAUT_BOX), tol=20)


def test_detect_faces_downscales_big_images_and_scales_boxes_back(astronaut):
    canvas = grey(1500, 3000)
    canvas[700:1212, 1900:2412] = astronaut  # longer side 3000 > max_side: mtcnn sees a 1024 px copy
    faces = F.detect_faces(canvas)
    assert len(faces) == 1
    x, y, w, h = ASTRONAUT_BOX
    assert_box_near(faces[0].box, (x + 1900, y + 700, w, h), tol=12)


def test_detect_faces_orders_two_faces_by_area(astronaut):
    big = astronaut[20:220, 130:310]  # 200x180 around the face
    small = resized(big, 120, 134)
    img = grey(220, 400)
    img[40:174, 20:140] = small  # the smaller face on the left, so order is not left-to-right
    img[:200, 200:380] = big
    faces = F.detect_faces(img)
    assert len(faces) == 2
    areas = [f.box[2] * f.box[3] for f in faces]
    assert areas[0] > areas[1]
    assert faces[0].box[0] > 200 and faces[1].box[0] < 140


def test_detect_faces_on_a_grey_image_finds_nothing():
    assert F.detect_faces(grey(200, 300)) == []


# --- face_crops ------------------------------------------------------------------------------------------

def test_mode_none_skips_detection(monkeypatch, astronaut):
    def boom(*a, **k):
        raise AssertionError("detect_faces must not run in mode none")

    monkeypatch.setattr(F, "detect_faces", boom)
    crops, kind, warnings = F.face_crops(astronaut, mode="none")
    assert kind == "none" and warnings == [] and len(crops) == 1
    assert crops[0][0] is None
    np.testing.assert_array_equal(crops[0][1], astronaut)


def test_unknown_mode_is_an_error():
    with pytest.raises(ValueError, match="crop mode"):
        F.face_crops(grey(10, 10), mode="faces")


def test_auto_without_a_face_uses_the_centre_square():
    img = grey(100, 300)
    img[:, 100:200] = 60  # the centre square is darker than the sides
    crops, kind, warnings = F.face_crops(img, mode="auto", size=64)
    assert kind == "center"
    assert warnings == ["no face found: analysing the centre square"]
    assert len(crops) == 1 and crops[0][0] is None
    np.testing.assert_array_equal(crops[0][1], F.crop(img, (100, 0, 100), 64))
    assert np.all(crops[0][1] == 60)


def test_mode_face_without_a_face_raises():
    with pytest.raises(F.NoFaceError) as err:
        F.face_crops(grey(100, 300), mode="face")
    assert isinstance(err.value, ValueError)
    assert "no face" in str(err.value) and "\n" not in str(err.value)


def test_auto_on_the_astronaut_crops_the_face(astronaut):
    crops, kind, warnings = F.face_crops(astronaut)
    assert kind == "face" and warnings == [] and len(crops) == 1
    face, img = crops[0]
    assert img.shape == (128, 128, 3) and img.dtype == np.uint8
    assert_box_near(face.box, ASTRONAUT_BOX)
    x, y, side, _ = face.crop_box
    np.testing.assert_array_equal(img, F.crop(astronaut, (x, y, side), 128))
    assert side < 0.9 * 512  # a face in a photo, not the centre square


def test_an_already_cropped_face_uses_the_centre_square(astronaut):
    x, y, side = F.square_box(ASTRONAUT_BOX, 512, 512)
    tight = F.crop(astronaut, (x, y, side), 128)  # what the recipe made for training
    crops, kind, warnings = F.face_crops(tight)
    assert kind == "face" and warnings == [] and len(crops) == 1
    face, img = crops[0]
    assert face.crop_box == (0, 0, 128, 128) and face.upscale == 1.0
    np.testing.assert_array_equal(img, F.crop(tight, (0, 0, 128), 128))
    np.testing.assert_array_equal(img, tight)


def test_a_small_face_warns_about_upscaling(astronaut):
    canvas = grey(400, 400)
    canvas[100:250, 120:270] = resized(astronaut, 150, 150)  # the face is ~25x31 px
    crops, kind, warnings = F.face_crops(canvas)
    assert kind == "face" and len(crops) == 1
    face = crops[0][0]
    assert face.upscale > 2
    assert len(warnings) == 1 and warnings[0].startswith("face 1 is small (")
    assert f"upscaled {face.upscale:.1f}x" in warnings[0]


# --- consistency with the training data ------------------------------------------------------------------

CASES = [("basemax_fakefaces", 0), ("ciplab_real_and_fake_face", 0), ("hardfakevsrealfaces", 0),
         ("realorfake_ffhq_tpdne", 0), ("lfw_faceswap", 1),
         pytest.param("lfw_faceswap", 0, marks=pytest.mark.xfail(strict=True, reason=(
             "known gap: on 8 of 1223 lfw_faceswap test crops (this one included) mtcnn's box on the 128 px crop "
             "gives a recipe square of 0.70-0.89 of the side, below the 90% already-cropped rule")))]


@pytest.mark.integration
@pytest.mark.parametrize("source, index", CASES)
def test_a_training_crop_comes_out_unchanged(shared_data, source, index):
    """An already-cropped input must come out as what the model was trained on: the centre square, same pixels."""
    path = sorted((shared_data / "test").glob(f"*/{source}__*.jpg"))[index]
    img = np.asarray(Image.open(path).convert("RGB"))
    assert img.shape == (128, 128, 3)
    crops, kind, warnings = F.face_crops(img, mode="auto")
    assert kind in ("face", "center"), path.name
    face, out = crops[0]
    if kind == "face":
        assert face.crop_box == (0, 0, 128, 128), (path.name, face)
    np.testing.assert_array_equal(out, F.crop(img, (0, 0, 128), 128), err_msg=path.name)
    np.testing.assert_array_equal(out, img, err_msg=path.name)

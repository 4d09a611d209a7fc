"""Bad and awkward inputs, checked end to end: the library, the CLI and the app's uploader.

One matrix of files is written once (module fixture) from real photos (skimage's astronaut, one face,
and coffee, none). ``CASES`` states the intended result of each file; the same table is checked in
three places:

1. library: ``load_image`` + ``analyse(image, "auto")``;
2. CLI: one ``python -m models.predict --json`` subprocess over every file (started with the fixture, so
   it runs while the library tests do);
3. app: one AppTest session of the Predict page that uploads every file in turn.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from models.data.faces import NO_FACE_WARNING, crop, face_crops, square_box
from models.data.intake import ImageLoadError, load_image
from models.scoring.stream import analyse

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 180
ASTRONAUT = skdata.astronaut()  # 512x512 RGB, one face


@dataclass(frozen=True)
class Case:
    name: str
    expect: str  # "error", or the crop kind: "face" / "center"
    faces: int = 0  # number of face crops expected (kind "face")
    error: str = ""  # a fragment of the error message
    upright: bool = False  # decodes to (nearly) the astronaut's pixels
    mime: str = "image/jpeg"


# The intended result of every bad or awkward input.
#   file                 what it is                                          intended result
#   zero.jpg             0 bytes                                             error "empty file"
#   truncated.jpg        first 300 bytes of the astronaut JPEG               error "damaged or is not a JPEG image"
#   truncated.webp       first half of the astronaut WebP                    error "damaged or is not a WebP image"
#   notes.jpg            a text file renamed .jpg                            error "not an image file"
#   document.pdf         a small PDF                                         error "this is a PDF document"
#   drawing.svg          an SVG drawing                                      error "this is an SVG drawing"
#   enormous.png         PNG header claiming 100000x100000 px (IHDR + IEND)  error "image too large"
#   alpha.png            RGBA astronaut, right part transparent              RGB, transparent -> white, 1 face
#   gray16.png           16-bit grayscale (I;16) astronaut                   RGB (3 equal channels), 1 face
#   gray.jpg             8-bit grayscale (L) JPEG astronaut                  RGB, 1 face
#   cmyk.jpg             CMYK JPEG astronaut                                 RGB close to the original, 1 face
#   animated.gif         2 frames, first the astronaut                       first frame, 1 face
#   exif_rotated.jpg     pixels rotated 90 deg, EXIF Orientation 6           upright astronaut, same face box
#   upright.jpg          the astronaut as a plain JPEG (control)             1 face
#   one_pixel.png        1x1 px                                              centre crop + no-face warning
#   panorama.jpg         60x6000 px                                          centre crop + no-face warning
#   coffee.jpg           a photo with no face                                centre crop + no-face warning
#   two_faces.jpg        two astronaut faces side by side                    2 face crops, largest first
CASES = [
    Case("zero.jpg", "error", error="empty file"),
    Case("truncated.jpg", "error", error="this file is damaged or is not a JPEG image (cannot decode it)"),
    Case("truncated.webp", "error", error="this file is damaged or is not a WebP image (cannot decode it)",
         mime="image/webp"),
    Case("notes.jpg", "error", error="not an image file"),
    Case("document.pdf", "error", error="this is a PDF document, not an image", mime="application/pdf"),
    Case("drawing.svg", "error", error="this is an SVG drawing; export it as PNG or JPEG", mime="image/svg+xml"),
    Case("enormous.png", "error", error="image too large", mime="image/png"),
    Case("alpha.png", "face", 1, mime="image/png"),
    Case("gray16.png", "face", 1, mime="image/png"),
    Case("gray.jpg", "face", 1),
    Case("cmyk.jpg", "face", 1, upright=True),
    Case("animated.gif", "face", 1, upright=True, mime="image/gif"),
    Case("exif_rotated.jpg", "face", 1, upright=True),
    Case("upright.jpg", "face", 1, upright=True),
    Case("one_pixel.png", "center", mime="image/png"),
    Case("panorama.jpg", "center"),
    Case("coffee.jpg", "center"),
    Case("two_faces.jpg", "face", 2),
]
BY_NAME = {c.name: c for c in CASES}
ERRORS = [c for c in CASES if c.expect == "error"]
GOOD = [c for c in CASES if c.expect != "error"]


def _png_chunk(tag: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(tag + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", crc)


def _jpeg(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=95, **kw)
    return buf.getvalue()


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def build_matrix() -> dict[str, bytes]:
    astro = Image.fromarray(ASTRONAUT)
    gray = np.asarray(astro.convert("L"))
    rgba = np.dstack([ASTRONAUT, np.full(ASTRONAUT.shape[:2], 255, np.uint8)])
    rgba[:, 400:, 3] = 0  # the right strip is fully transparent
    gif = io.BytesIO()
    astro.save(gif, format="GIF", save_all=True, append_images=[Image.fromarray(skdata.coffee()[:512, :512])],
               duration=100, loop=0)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 deg clockwise to display": the stored pixels are rotated counter-clockwise
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    two = np.ascontiguousarray(np.concatenate([ASTRONAUT[0:256, 128:384]] * 2, axis=1))
    upright = _jpeg(astro)
    webp = io.BytesIO()
    astro.save(webp, format="WEBP", quality=90)
    out = {
        "zero.jpg": b"",
        "truncated.jpg": upright[:300],
        "truncated.webp": webp.getvalue()[: len(webp.getvalue()) // 2],
        "notes.jpg": b"this is a text file, not a JPEG\n",
        "document.pdf": b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n",
        "drawing.svg": b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">'
                       b'<circle cx="32" cy="32" r="20"/></svg>\n',
        "enormous.png": b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IEND", b""),
        "alpha.png": _png(Image.fromarray(rgba, "RGBA")),
        "gray16.png": _png(Image.fromarray(gray.astype(np.uint16) * 257)),
        "gray.jpg": _jpeg(Image.fromarray(gray, "L")),
        "cmyk.jpg": _jpeg(astro.convert("CMYK")),
        "animated.gif": gif.getvalue(),
        "exif_rotated.jpg": _jpeg(astro.transpose(Image.Transpose.ROTATE_90), exif=exif),
        "upright.jpg": upright,
        "one_pixel.png": _png(Image.new("RGB", (1, 1), (120, 90, 60))),
        "panorama.jpg": _jpeg(astro.resize((6000, 60))),
        "coffee.jpg": _jpeg(Image.fromarray(skdata.coffee())),
        "two_faces.jpg": _jpeg(Image.fromarray(two)),
    }
    assert list(out) == [c.name for c in CASES]
    return out


@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    """Every case written to disk; the CLI run over all of them starts here, in the background."""
    d = tmp_path_factory.mktemp("bad_inputs")
    blobs = build_matrix()
    paths = {}
    for name, blob in blobs.items():
        (d / name).write_bytes(blob)
        paths[name] = d / name
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "models.predict", "--json", *map(str, paths.values())],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    yield {"paths": paths, "blobs": blobs, "cli": proc}
    if proc.poll() is None:
        proc.kill()
        proc.communicate()


@pytest.fixture(scope="module")
def decoded(matrix):
    """load_image + analyse(auto) for every case: (image, crops, kind, warnings) or the ImageLoadError."""
    out = {}
    for case in CASES:
        try:
            image = load_image(matrix["paths"][case.name])
        except ImageLoadError as exc:
            out[case.name] = exc
            continue
        out[case.name] = (image, *analyse(image, "auto"))
    return out


def _assert_one_line_naming(message: str, name: str):
    assert name in message, message
    assert "\n" not in message.strip(), message
    assert "Traceback" not in message


# 1. Library -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ERRORS, ids=lambda c: c.name)
def test_library_bad_files_raise_one_line_errors(case, matrix, decoded):
    exc = decoded[case.name]
    assert isinstance(exc, ImageLoadError), exc
    _assert_one_line_naming(str(exc), case.name)
    assert case.error in str(exc)
    # The same bytes, as an upload, give the same kind of error naming the upload.
    with pytest.raises(ImageLoadError) as info:
        load_image(matrix["blobs"][case.name], name=case.name)
    _assert_one_line_naming(str(info.value), case.name)
    assert case.error in str(info.value)
    # Plain words in the message; the decoder's own words only in the detail (one line too).
    assert exc.detail and "\n" not in exc.detail and exc.detail == info.value.detail
    assert not any(t in str(exc) for t in ("decoder object", "bytes not processed", "cannot identify", "Error:"))


@pytest.mark.parametrize("case", GOOD, ids=lambda c: c.name)
def test_library_good_files_decode_and_crop(case, decoded):
    result = decoded[case.name]
    assert not isinstance(result, Exception), result
    image, crops, kind, warnings = result
    assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8
    assert kind == case.expect
    for _face, c in crops:
        assert c.shape == (128, 128, 3) and c.dtype == np.uint8
    if case.expect == "center":
        assert len(crops) == 1 and crops[0][0] is None
        assert NO_FACE_WARNING in warnings
    else:
        assert len(crops) == case.faces
        assert all(face is not None for face, _ in crops)
        assert NO_FACE_WARNING not in warnings
    if case.upright:
        assert image.shape == ASTRONAUT.shape
        assert np.abs(image.astype(int) - ASTRONAUT).mean() < 6


def test_library_specific_conversions(decoded):
    alpha = decoded["alpha.png"][0]
    assert (alpha[:, 400:] == 255).all()  # transparent -> white
    assert np.array_equal(alpha[:, :400], ASTRONAUT[:, :400])
    for name in ("gray16.png", "gray.jpg"):
        image = decoded[name][0]
        assert image.shape == ASTRONAUT.shape
        assert np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 1], image[..., 2])
    gray = np.asarray(Image.fromarray(ASTRONAUT).convert("L"), dtype=int)
    assert np.abs(decoded["gray16.png"][0][..., 0].astype(int) - gray).max() <= 1  # 16 bits scaled, not clipped
    assert decoded["one_pixel.png"][0].shape == (1, 1, 3)
    assert decoded["panorama.jpg"][0].shape == (60, 6000, 3)


def test_library_exif_rotated_is_upright_with_the_same_face_box(decoded):
    image, crops, kind, _ = decoded["exif_rotated.jpg"]
    assert image.shape == ASTRONAUT.shape
    assert np.abs(image.astype(int) - ASTRONAUT).mean() < 6
    ref = face_crops(ASTRONAUT, mode="auto")[0][0][0]
    face = crops[0][0]
    assert np.allclose(face.box, ref.box, atol=10), (face.box, ref.box)


def test_library_two_faces_are_ordered_by_area(decoded):
    _image, crops, kind, _ = decoded["two_faces.jpg"]
    assert kind == "face"
    areas = [f.box[2] * f.box[3] for f, _ in crops]
    assert areas == sorted(areas, reverse=True)
    centres = sorted(f.box[0] + f.box[2] / 2 for f, _ in crops)
    assert centres[0] < 256 < centres[1]  # one face in each half


# Same photo, same answer ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def detector():
    from models import load_model

    return load_model()


def test_full_photo_and_its_face_crop_give_the_same_p_fake(detector):
    crops, kind, _ = face_crops(ASTRONAUT, mode="auto")
    assert kind == "face"
    face, from_photo = crops[0]
    h, w = ASTRONAUT.shape[:2]
    cut = crop(ASTRONAUT, square_box(face.box, w, h))
    none_crops, none_kind, _ = face_crops(cut, mode="none")
    none_face, as_is = none_crops[0]
    assert none_face is None and none_kind == "none"
    p_photo, p_crop = (float(p) for p in detector.predict([from_photo, as_is]))
    assert p_photo == pytest.approx(p_crop, abs=1e-5)


def test_exif_rotated_photo_gets_the_upright_verdict(detector, matrix, decoded):
    """The EXIF-corrected decode scores exactly as the same stored pixels rotated upright by hand.

    The reference is the same JPEG's pixels, not the separately encoded upright.jpg: re-encoding a photo
    (a different 8x8 block grid) moves mtcnn's box by a pixel or two and this model's P(fake) for the
    astronaut by up to ~0.27 (0.18 vs 0.45), which is model sensitivity, not orientation handling.
    """
    from models.detectors.labels import verdict

    with Image.open(matrix["paths"]["exif_rotated.jpg"]) as raw:
        assert raw.getexif().get(0x0112) == 6
        by_hand = np.rot90(np.asarray(raw.convert("RGB")), k=-1)  # orientation 6: rotate 90 deg clockwise
    image, crops, _kind, _ = decoded["exif_rotated.jpg"]
    assert np.array_equal(image, by_hand)
    hand_crops, hand_kind, _ = analyse(np.ascontiguousarray(by_hand), "auto")
    assert hand_kind == "face" and hand_crops[0][0].box == crops[0][0].box
    p_rot, p_up = (float(p) for p in detector.predict([crops[0][1], hand_crops[0][1]]))
    assert abs(p_rot - p_up) <= 0.02, (p_rot, p_up)
    assert verdict(p_rot) == verdict(p_up)
    # Without the EXIF correction the photo would be sideways: its pixels are far from the astronaut's.
    assert np.abs(np.rot90(by_hand, k=1).astype(int) - ASTRONAUT).mean() > 30


# 2. CLI -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli(matrix):
    out, err = matrix["cli"].communicate(timeout=300)
    return matrix["cli"].returncode, out, err


def test_cli_reports_every_file_in_order(cli, matrix):
    rc, out, err = cli
    assert rc == 2, err  # some files fail
    assert "Traceback" not in err, err
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert [Path(r["path"]).name for r in rows] == [c.name for c in CASES], out
    for case, row in zip(CASES, rows):
        if case.expect == "error":
            assert row["verdict"] is None and row["p_fake"] is None, row
            _assert_one_line_naming(row["error"], case.name)
            assert case.error in row["error"]
            continue
        assert "error" not in row, row
        assert row["verdict"] in ("real", "fake") and 0.0 <= row["p_fake"] <= 1.0, row
        assert row["crop"] == case.expect, row
        if case.expect == "face":
            assert len(row["faces"]) == case.faces, row
            for face in row["faces"]:
                assert set(face) >= {"box", "confidence", "p_fake"} and len(face["box"]) == 4
            assert row["p_fake"] == row["faces"][0]["p_fake"]
            areas = [f["box"][2] * f["box"][3] for f in row["faces"]]
            assert areas == sorted(areas, reverse=True)
        else:
            assert row["faces"] == [] and NO_FACE_WARNING in row["warnings"], row
    coffee = str(matrix["paths"]["coffee.jpg"])
    assert any(line.startswith(f"warning: {coffee}:") for line in err.splitlines()), err


# 3. App uploader --------------------------------------------------------------------------------------


def test_app_upload_every_bad_input_in_one_session(matrix):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=TIMEOUT)
    at.run()
    at.switch_page("pages/predict.py").run()
    assert not at.exception, at.exception
    at.radio(key="predict_mode").set_value("Upload").run()
    assert not at.exception, at.exception

    def upload(name: str):
        at.file_uploader[0].upload(name, matrix["blobs"][name], BY_NAME[name].mime).run()
        assert not at.exception, (name, at.exception)

    # Every case, then a good photo again: the session keeps serving after bad files.
    for case in [*CASES, BY_NAME["upright.jpg"]]:
        upload(case.name)
        verdicts = [m.value for m in at.markdown if "Verdict" in m.value]
        if case.expect == "error":
            assert len(at.error) == 1, (case.name, [e.value for e in at.error])
            _assert_one_line_naming(at.error[0].value, case.name)
            assert case.error in at.error[0].value, (case.name, at.error[0].value)
            # the technical detail sits in one closed expander under the plain line
            with pytest.raises(ImageLoadError) as info:
                load_image(matrix["blobs"][case.name], name=case.name)
            details = [x for x in at.expander if x.label == "Technical detail"]
            assert len(details) == 1, case.name
            assert [c.value for c in details[0].code] == [info.value.detail], case.name
            assert not verdicts, case.name
            continue
        assert not [x for x in at.expander if x.label == "Technical detail"], case.name
        assert not at.error, (case.name, [e.value for e in at.error])
        assert len(verdicts) == 1 and (("FAKE" in verdicts[0]) != ("REAL" in verdicts[0])), case.name
        faces = [s for s in at.selectbox if s.key == "predict_face"]
        every_face = any(s.value == "Every face" for s in at.subheader)
        if case.faces > 1:
            assert len(faces) == 1 and list(faces[0].options) == ["Face 1", "Face 2"], case.name
            assert every_face and len(at.dataframe) >= 1
        else:
            assert not faces and not every_face, case.name
        if case.expect == "center":
            assert any("no face found" in w.value.lower() for w in at.warning), case.name


def test_an_8000x6000_photo_is_accepted_and_analysed(tmp_path):
    """48 megapixels is within the limits: decoded, scanned for faces on a <=1024 px copy, centre-cropped."""
    from models.data.intake import load_image
    from models.scoring.stream import analyse

    path = tmp_path / "big.png"
    Image.fromarray(np.full((6000, 8000, 3), 128, np.uint8)).save(path)
    image = load_image(path)
    assert image.shape == (6000, 8000, 3)
    crops, kind, warnings = analyse(image, "auto")
    assert kind == "center" and crops[0][1].shape == (128, 128, 3) and warnings

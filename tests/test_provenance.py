"""models.data.provenance on real metadata made here: EXIF and XMP written with Pillow, C2PA manifests signed with
c2pa-python under a throwaway certificate (tests/c2pa_util.py)."""

from __future__ import annotations

import io
import os

import numpy as np
from PIL import Image

from models.data.intake import load_image
from models.data.provenance import conflict, read_provenance
from tests.c2pa_util import AI, CAPTURE, jpeg, signed_jpeg, tampered, xmp_packet


def exif(make=None, model=None, software=None, gps=False) -> Image.Exif:
    e = Image.Exif()
    for tag, value in ((271, make), (272, model), (305, software)):
        if value:
            e[tag] = value
    e.get_ifd(0x8769)[36867] = "2024:05:01 10:00:00"
    if gps:
        e.get_ifd(0x8825).update({1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)})
    return e


def test_camera_exif_and_an_editor_are_named():
    p = read_provenance(jpeg(exif=exif("Canon", "Canon EOS 5D").tobytes()))
    assert p.status == "camera" and p.declares_ai is None
    assert p.exif == {"make": "Canon", "model": "Canon EOS 5D", "datetime_original": "2024:05:01 10:00:00"}
    assert p.summary == "EXIF: Canon Canon EOS 5D."
    edited = read_provenance(jpeg(exif=exif("Canon", "Canon EOS 5D", "Adobe Photoshop 25.0").tobytes()))
    assert edited.status == "edited"
    assert edited.summary == "EXIF: Canon Canon EOS 5D, edited in Adobe Photoshop 25.0."


def test_gps_is_detected_but_hidden_unless_asked_for():
    data = jpeg(exif=exif("Apple", "iPhone 15", gps=True).tobytes())
    p = read_provenance(data)
    assert p.has_gps and p.gps is None and "gps" not in p.to_dict()
    assert "48" not in str(p.to_dict()) and "GPS" not in p.summary
    asked = read_provenance(data, include_gps=True)
    assert asked.gps and "48" in str(asked.gps["2"])


def test_xmp_declaring_ai_and_the_conflict_with_a_real_verdict():
    p = read_provenance(jpeg(xmp=xmp_packet(AI, creator_tool="Some Generator 2")))
    assert p.status == "ai" and p.declares_ai is True
    assert p.xmp == {"digital_source_type": "trainedAlgorithmicMedia", "creator_tool": "Some Generator 2"}
    assert p.summary == "IPTC: declares AI-generated content (trainedAlgorithmicMedia)."
    assert conflict(p, "real") == "This image declares itself AI-generated, but the model says real."
    assert conflict(p, "fake") is None
    history = read_provenance(jpeg(xmp=xmp_packet(history="Adobe Photoshop 25.0 (Macintosh)")))
    assert history.status == "edited" and history.xmp["history"] == ["saved by Adobe Photoshop 25.0 (Macintosh)"]


def test_c2pa_ai_manifest_is_read_with_an_unverified_signer():
    data = signed_jpeg()
    p = read_provenance(data)
    assert p.c2pa["validation"] == "valid" and p.c2pa["trusted"] is False and p.c2pa["failures"] == []
    assert p.c2pa["actions"] == [{"action": "c2pa.created", "digital_source_type": "trainedAlgorithmicMedia"}]
    assert p.c2pa["signer"] == "test signer" and p.c2pa["claim_generator"] == "TestGen AI 1.0"
    assert p.status == "ai" and p.declares_ai is True
    assert p.summary == ("Content Credentials: created by an AI generator (claim generator TestGen AI 1.0), "
                         "signature valid, signer not verified.")
    assert load_image(data).shape == (96, 96, 3)  # the pixels are untouched by reading


def test_a_camera_manifest_and_the_conflict_with_a_fake_verdict():
    p = read_provenance(signed_jpeg(source_type=CAPTURE, generator="Camera Co firmware"))
    assert p.status == "camera" and p.declares_ai is False
    assert p.summary.startswith("Content Credentials: captured by a camera (claim generator Camera Co firmware 1.0)")
    assert conflict(p, "fake") == "This image declares itself a camera capture, but the model says fake."


def test_pixels_changed_after_signing_read_as_invalid():
    p = read_provenance(tampered(signed_jpeg()))
    assert p.status == "invalid" and p.declares_ai is None
    assert p.c2pa["validation"] == "invalid" and any("dataHash" in f for f in p.c2pa["failures"])
    assert p.summary == "Content Credentials present but invalid: the image was changed after it was signed."


def test_hostile_metadata_gives_one_line_notes_never_an_exception():
    signed = bytearray(signed_jpeg())
    i = signed.find(b"jumb")
    for k in range(i + 100, i + 160):
        signed[k] ^= 0x55  # a corrupt manifest store
    p = read_provenance(bytes(signed))
    assert p.notes and p.notes[0].startswith("Content Credentials present but unreadable") and "\n" not in p.notes[0]
    bad_xmp = read_provenance(jpeg(xmp=b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><unclosed></x:xmpmeta>'))
    assert bad_xmp.notes and bad_xmp.notes[0].startswith("provenance unreadable: XMP (malformed XMP")
    bomb = read_provenance(jpeg(xmp=b'<x:xmpmeta><!DOCTYPE x [<!ENTITY a "aaaa">]></x:xmpmeta>'))
    assert bomb.notes == ["provenance unreadable: XMP (the XMP packet declares a DTD or entities)"]
    truncated = jpeg(exif=exif("Canon", "Canon EOS 5D").tobytes()[:30])
    p = read_provenance(truncated)  # a cut EXIF block: whatever can be read is, the rest is a note
    assert p.status in ("unknown", "camera") and all("\n" not in n for n in p.notes)
    assert read_provenance(b"not an image at all").notes[0].startswith("provenance unreadable: EXIF")


def test_no_metadata_is_unknown_not_evidence():
    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buf, format="PNG")
    p = read_provenance(buf.getvalue())
    assert (p.status, p.declares_ai, p.notes) == ("unknown", None, [])
    assert p.summary == "No provenance metadata (unknown: platforms often strip it)."
    assert conflict(p, "real") is None and conflict(p, "fake") is None


def test_predict_json_and_csv_carry_provenance_beside_the_score(tmp_path, oracle_model_path, capsys):
    """Issue 17: ``predict --json`` gains a ``provenance`` object (with any conflict with the verdict), the CSV a
    ``provenance`` column holding the summary; the scores are the same as without metadata."""
    import csv
    import json

    from models.predict import main

    pixels = np.random.default_rng(3).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    plain = jpeg(pixels)
    files = {"ai.jpg": signed_jpeg(plain), "camera.jpg": jpeg(pixels, exif=exif("Nikon", "Z 6").tobytes()),
             "changed.jpg": tampered(signed_jpeg(plain)), "plain.jpg": plain}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    paths = [str(tmp_path / n) for n in files]
    assert main(["--model", str(oracle_model_path), "--crop", "none", "--json", "--no-progress", *paths]) == 0
    rows = {os.path.basename(r["path"]): r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert {n: rows[n]["provenance"]["status"] for n in files} == {"ai.jpg": "ai", "camera.jpg": "camera",
                                                                   "changed.jpg": "invalid", "plain.jpg": "unknown"}
    ai = rows["ai.jpg"]
    assert ai["provenance"]["conflict"] == conflict(ai["provenance"], ai["verdict"])
    assert ai["provenance"]["summary"].startswith("Content Credentials: created by an AI generator")
    assert rows["plain.jpg"]["provenance"]["conflict"] is None
    assert rows["camera.jpg"]["p_fake"] == rows["plain.jpg"]["p_fake"]  # EXIF never changes a pixel or a score
    out = tmp_path / "out.csv"
    main(["--model", str(oracle_model_path), "--crop", "none", "--csv", str(out), "--no-progress", *paths])
    by_name = {os.path.basename(r["path"]): r for r in csv.DictReader(out.open())}
    assert by_name["changed.jpg"]["provenance"] == ("Content Credentials present but invalid: the image was changed "
                                                    "after it was signed.")
    assert by_name["camera.jpg"]["provenance"] == "EXIF: Nikon Z 6."
    assert by_name["plain.jpg"]["provenance"] == "No provenance metadata (unknown: platforms often strip it)."


def test_the_image_report_has_a_provenance_section_with_the_conflict():
    from explain.report.image import provenance_section

    p = read_provenance(signed_jpeg()).to_dict()
    html = provenance_section(p, "real")
    assert "Content Credentials: created by an AI generator" in html
    assert "declares itself AI-generated, but the model says real" in html
    assert "declares itself" not in provenance_section(p, "fake")
    assert "Not available" in provenance_section(None, "real")


def test_an_oversized_xmp_packet_is_not_parsed():
    from models.data.provenance import MAX_XMP_BYTES

    huge = b'<x:xmpmeta xmlns:x="adobe:ns:meta/">' + b" " * (MAX_XMP_BYTES + 10) + b"</x:xmpmeta>"
    p = read_provenance(jpeg() + huge)  # trailing bytes after the image: still a JPEG, the packet found by scan
    assert p.notes == ["provenance unreadable: XMP (the XMP packet is over 1024 KB)"] and p.xmp == {}

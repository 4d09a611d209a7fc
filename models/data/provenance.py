"""Where an image says it came from: EXIF, XMP/IPTC and C2PA Content Credentials, read beside the pixels.

:func:`read_provenance` takes a file's bytes (or path) and never changes a pixel or raises: what it cannot read
becomes a one-line note ("provenance unreadable: …", "Content Credentials present but invalid"). It reads

- EXIF: make, model, software, original date and time; GPS is only *detected* (``has_gps``) and its values kept
  out of every output unless asked for (``include_gps``), because a location is personal data;
- XMP: IPTC's ``DigitalSourceType`` (``trainedAlgorithmicMedia``, ``compositeWithTrainedAlgorithmicMedia``,
  ``digitalCapture``…), ``CreatorTool`` and the edit history (``xmpMM:History``);
- the C2PA manifest store through ``c2pa-python`` (the Content Authenticity Initiative's bindings): the claim
  generator, the actions with their ``digitalSourceType``, the ingredients, who signed, whether the signature and
  the hashes over the pixels hold, and whether the signer is on a trust list. No trust list is configured and
  nothing is fetched, so a valid signature reads "signer not verified", never "trusted".

Missing metadata is **unknown**, never evidence of anything: platforms strip it. Present metadata says what a tool
or person declared, which can be forged; a valid signature says who signed, not that the content is true.
"""

from __future__ import annotations

import io
import json
import os
import re
from dataclasses import asdict, dataclass, field

IPTC_TYPES = "http://cv.iptc.org/newscodes/digitalsourcetype/"
AI_TYPES = {"trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia", "algorithmicMedia",
            "compositeSynthetic"}  # IPTC digital source types that declare generated or synthetic content
CAPTURE_TYPES = {"digitalCapture", "computationalCapture", "negativeFilm", "positiveFilm", "print"}
EDITORS = ("photoshop", "lightroom", "gimp", "affinity", "pixelmator", "snapseed", "facetune", "canva", "picsart",
           "paint.net", "capture one", "darktable", "luminar", "faceapp", "remini", "meitu")
MAX_XMP_BYTES = 1 << 20  # an XMP packet larger than this is not parsed (a note says so)
EXIF_TAGS = {271: "make", 272: "model", 305: "software", 306: "datetime"}
EXIF_IFD, GPS_IFD, DATETIME_ORIGINAL = 0x8769, 0x8825, 36867


@dataclass
class Provenance:
    """What the file declares about its origin. ``status``: "ai" (declares generated or synthetic content),
    "camera" (declares a capture, or camera EXIF), "edited" (an editor named), "invalid" (Content Credentials
    that do not verify), or "unknown"; ``declares_ai``: True / False when a digital source type is declared,
    else None; ``summary``: one line for a person."""

    summary: str = "No provenance metadata (unknown: platforms often strip it)."
    status: str = "unknown"
    declares_ai: bool | None = None
    exif: dict = field(default_factory=dict)
    has_gps: bool = False
    gps: dict | None = None
    xmp: dict = field(default_factory=dict)
    c2pa: dict | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-ready; GPS values only when they were asked for at reading time."""
        d = asdict(self)
        if d["gps"] is None:
            d.pop("gps")
        return d


def _bytes_of(source) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    with open(os.fspath(source), "rb") as fh:
        return fh.read()


def _text(value) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return " ".join(str(value).replace("\x00", " ").split())[:200]


def read_exif(image, include_gps: bool = False) -> tuple[dict, bool, dict | None]:
    """(fields, has_gps, gps) from a PIL image's EXIF: make, model, software, datetime, datetime_original."""
    exif = image.getexif()
    fields = {name: _text(exif[tag]) for tag, name in EXIF_TAGS.items() if tag in exif and _text(exif[tag])}
    original = exif.get_ifd(EXIF_IFD).get(DATETIME_ORIGINAL)
    if original:
        fields["datetime_original"] = _text(original)
    gps_ifd = exif.get_ifd(GPS_IFD)
    has_gps = bool(gps_ifd)
    gps = {str(k): _text(v) for k, v in gps_ifd.items()} if (has_gps and include_gps) else None
    return fields, has_gps, gps


def _xmp_packet(data: bytes) -> bytes | None:
    start = data.find(b"<x:xmpmeta")
    if start < 0:
        return None
    end = data.find(b"</x:xmpmeta>", start)
    if end < 0:
        raise ValueError("the XMP packet has no end")
    if end - start > MAX_XMP_BYTES:
        raise ValueError(f"the XMP packet is over {MAX_XMP_BYTES // 1024} KB")
    return data[start:end + len(b"</x:xmpmeta>")]


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def read_xmp(data: bytes) -> dict:
    """``digital_source_type`` (the IPTC code, e.g. "trainedAlgorithmicMedia"), ``creator_tool`` and ``history``
    (["saved by Adobe Photoshop 25.0", ...]) from the file's XMP packet; {} without one. ValueError when the
    packet is malformed (XML that does not parse, no end, oversized). DTDs and entities are refused."""
    import xml.etree.ElementTree as ET

    packet = _xmp_packet(data)
    if packet is None:
        return {}
    if b"<!DOCTYPE" in packet or b"<!ENTITY" in packet:
        raise ValueError("the XMP packet declares a DTD or entities")
    try:
        root = ET.fromstring(packet)
    except ET.ParseError as exc:
        raise ValueError(f"malformed XMP ({exc})") from exc
    out: dict = {}
    history = []
    for el in root.iter():
        values = {_local(k): v for k, v in el.attrib.items()}
        if el.text and el.text.strip():
            values.setdefault(_local(el.tag), el.text.strip())
        if "DigitalSourceType" in values:
            out["digital_source_type"] = values["DigitalSourceType"].rsplit("/", 1)[-1][:100]
        if "CreatorTool" in values:
            out["creator_tool"] = _text(values["CreatorTool"])
        if "action" in values and _local(el.tag) in ("li", "Description"):
            agent = values.get("softwareAgent", "")
            history.append(_text(f"{values['action']} by {agent}" if agent else values["action"]))
    if history:
        out["history"] = history[:20]
    return out


def _source_type(code) -> str | None:
    return str(code).rsplit("/", 1)[-1] if code else None


def _manifest_facts(manifest: dict) -> dict:
    gen = manifest.get("claim_generator") or ", ".join(
        " ".join(str(g.get(k, "")) for k in ("name", "version")).strip() for g in manifest.get("claim_generator_info") or [])
    actions = []
    for assertion in manifest.get("assertions") or []:
        if str(assertion.get("label", "")).startswith("c2pa.actions"):
            for a in (assertion.get("data") or {}).get("actions") or []:
                actions.append({"action": str(a.get("action", "")),
                                "digital_source_type": _source_type(a.get("digitalSourceType"))})
    sig = manifest.get("signature_info") or {}
    return {"claim_generator": _text(gen) or None, "actions": actions,
            "ingredients": [_text(i.get("title", "?")) for i in manifest.get("ingredients") or []],
            "signer": _text(sig.get("common_name") or sig.get("issuer") or "") or None,
            "issuer": _text(sig.get("issuer", "")) or None}


def read_c2pa(data: bytes, mime: str | None = None) -> dict | None:
    """The active manifest of the file's C2PA store, or None when there is none. ``validation``: "valid" (the
    signature and every hash hold), "trusted" (also on a configured trust list) or "invalid"; ``failures``: the
    validator's failure codes (``signingCredential.untrusted`` is not a failure of the content); ``trusted``.
    Raises ValueError (one line) when a store is there but cannot be read."""
    if b"c2pa" not in data and b"jumb" not in data:  # every embedded manifest store is a JUMBF box labelled c2pa
        return None
    import c2pa

    try:
        reader = c2pa.Reader(mime, io.BytesIO(data))
        store = json.loads(reader.json())
    except c2pa.C2paError as exc:
        text = str(exc)
        if "ManifestNotFound" in type(exc).__name__ or "NotSupported" in type(exc).__name__ or "no JUMBF" in text:
            return None
        raise ValueError(f"Content Credentials present but unreadable ({_text(text)})") from exc
    manifest = (store.get("manifests") or {}).get(store.get("active_manifest") or "", {})
    codes = [str(s.get("code", "")) for s in store.get("validation_status") or []]
    state = str(store.get("validation_state") or ("Invalid" if codes else "Valid")).lower()
    failures = [c for c in codes if c != "signingCredential.untrusted"]
    validation = "invalid" if (state == "invalid" or failures) else ("trusted" if state == "trusted" else "valid")
    return {**_manifest_facts(manifest), "validation": validation, "failures": failures,
            "trusted": validation == "trusted"}


MIMES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "TIFF": "image/tiff", "GIF": "image/gif",
         "HEIF": "image/heif", "AVIF": "image/avif", "BMP": "image/bmp"}


def read_provenance(source, include_gps: bool = False) -> Provenance:
    """EXIF, XMP/IPTC and Content Credentials of one file (bytes or a path). Never raises: what cannot be read
    is a note, and the rest is still read."""
    from PIL import Image

    p = Provenance()
    try:
        data = _bytes_of(source)
    except OSError as exc:
        p.notes.append(f"provenance unreadable: {_text(exc)}")
        return p
    mime = None
    try:
        with Image.open(io.BytesIO(data)) as image:
            mime = MIMES.get(image.format or "")
            p.exif, p.has_gps, p.gps = read_exif(image, include_gps)
    except Exception as exc:  # a truncated or hostile EXIF block: say so, read the rest
        p.notes.append(f"provenance unreadable: EXIF ({_text(exc)})")
    for step, reader in (("xmp", lambda: read_xmp(data)), ("c2pa", lambda: read_c2pa(data, mime))):
        try:
            setattr(p, step, reader())
        except Exception as exc:
            p.notes.append(_text(exc) if str(exc).startswith("Content Credentials") else
                           f"provenance unreadable: {step.upper()} ({_text(exc)})")
    p.xmp = p.xmp or {}
    p.status, p.declares_ai = classify(p)
    p.summary = summarize(p)
    return p


def _declared_types(p: Provenance) -> list[str]:
    types = [a["digital_source_type"] for a in (p.c2pa or {}).get("actions", []) if a.get("digital_source_type")]
    if p.xmp.get("digital_source_type"):
        types.append(p.xmp["digital_source_type"])
    return types


def _editor(p: Provenance) -> str | None:
    """The first editing application the metadata names (EXIF Software, XMP CreatorTool or history)."""
    for text in [p.exif.get("software", ""), p.xmp.get("creator_tool", ""), *p.xmp.get("history", [])]:
        if any(e in text.lower() for e in EDITORS):
            return re.sub(r"^(saved|converted|edited|derived) by ", "", text)
    return None


def classify(p: Provenance) -> tuple[str, bool | None]:
    """(status, declares_ai): invalid Content Credentials first, then a declared digital source type, then an
    editor named, then a camera named."""
    if p.c2pa and p.c2pa["validation"] == "invalid":
        return "invalid", None
    types = _declared_types(p)
    if any(t in AI_TYPES for t in types):
        return "ai", True
    if _editor(p) or any(a["action"] == "c2pa.edited" for a in (p.c2pa or {}).get("actions", [])):
        return "edited", False if types else None
    if any(t in CAPTURE_TYPES for t in types) or p.exif.get("make") or p.exif.get("model"):
        return "camera", False if types else None
    return "unknown", False if types else None


def _credentials_line(c: dict, status: str) -> str:
    if c["validation"] == "invalid":
        why = ("the image was changed after it was signed" if any("dataHash" in f or "hash" in f.lower()
                                                                  for f in c["failures"]) else
               ", ".join(c["failures"][:2]) or "the signature does not verify")
        return f"Content Credentials present but invalid: {why}"
    what = {"ai": "created by an AI generator", "edited": "edited", "camera": "captured by a camera"}.get(
        status, "present")
    gen = f" (claim generator {c['claim_generator']})" if c.get("claim_generator") else ""
    signer = "signer on the trust list" if c["trusted"] else "signer not verified"
    return f"Content Credentials: {what}{gen}, signature valid, {signer}"


def summarize(p: Provenance) -> str:
    """One line: the Content Credentials if any, else what EXIF and XMP/IPTC declare, else unknown."""
    parts = []
    if p.c2pa:
        parts.append(_credentials_line(p.c2pa, p.status))
    camera = " ".join(v for v in (p.exif.get("make"), p.exif.get("model")) if v)
    editor = _editor(p)
    exif = ", ".join(x for x in (camera, f"edited in {editor}" if editor else "") if x)
    if exif:
        parts.append(f"EXIF: {exif}")
    dst = p.xmp.get("digital_source_type")
    if dst:
        parts.append(f"IPTC: {'declares AI-generated content' if dst in AI_TYPES else 'declares'} ({dst})")
    if not parts:
        return ("Provenance unreadable; " + p.notes[0]) if p.notes else Provenance.summary
    return "; ".join(parts) + "."


def conflict(p: Provenance | dict | None, verdict: str | None) -> str | None:
    """A plain sentence when what the file declares (a Provenance or its dict) and the model's verdict disagree,
    else None."""
    if p is None:
        return None
    declares_ai = p.get("declares_ai") if isinstance(p, dict) else p.declares_ai
    status = p.get("status") if isinstance(p, dict) else p.status
    if verdict == "real" and declares_ai:
        return "This image declares itself AI-generated, but the model says real."
    if verdict == "fake" and declares_ai is False and status == "camera":
        return "This image declares itself a camera capture, but the model says fake."
    return None

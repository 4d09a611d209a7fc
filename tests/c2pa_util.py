"""Content Credentials made in the tests: a throwaway CA and signer (cryptography, generated now, never stored),
and JPEGs signed with c2pa-python, so reading is tested against real manifests."""

from __future__ import annotations

import datetime
import io
import json
from functools import lru_cache

import numpy as np
from PIL import Image

AI = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
CAPTURE = "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"


@lru_cache(maxsize=1)
def test_chain() -> tuple[bytes, bytes]:
    """(certificate chain PEM: signer then CA, private key PEM) of an ES256 signer under a throwaway CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Deepfake Lens tests")])

    def usage(**on) -> x509.KeyUsage:
        flags = dict.fromkeys(("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
                               "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only"), False)
        return x509.KeyUsage(**{**flags, **on})

    def base(subject, issuer, public_key):
        return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=30)))

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (base(name("test CA"), name("test CA"), ca_key.public_key())
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(usage(key_cert_sign=True, crl_sign=True), critical=True).sign(ca_key, hashes.SHA256()))
    cert = (base(name("test signer"), name("test CA"), key.public_key())
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage(digital_signature=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM)
    return pem, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())


def jpeg(pixels: np.ndarray | None = None, **save) -> bytes:
    if pixels is None:
        pixels = np.random.default_rng(0).integers(0, 255, (96, 96, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=92, **save)
    return buf.getvalue()


def signed_jpeg(source: bytes | None = None, source_type: str = AI, generator: str = "TestGen AI",
                action: str = "c2pa.created") -> bytes:
    """``source`` (a JPEG) with a C2PA manifest: one action with ``source_type``, signed by the test signer."""
    import c2pa

    pem, key = test_chain()
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, pem, key, None))
    manifest = {"claim_generator_info": [{"name": generator, "version": "1.0"}], "title": "image.jpg",
                "assertions": [{"label": "c2pa.actions",
                                "data": {"actions": [{"action": action, "digitalSourceType": source_type}]}}]}
    out = io.BytesIO()
    c2pa.Builder(json.dumps(manifest)).sign(signer, "image/jpeg", io.BytesIO(source or jpeg()), out)
    return out.getvalue()


def tampered(data: bytes) -> bytes:
    """``data`` with bytes of its compressed pixels changed after signing (the manifest left as it was)."""
    b = bytearray(data)
    end = len(b) - 200
    for i in range(end, end + 24):
        b[i] ^= 0xFF
    return bytes(b)


def xmp_packet(source_type: str | None = None, creator_tool: str | None = None, history: str | None = None) -> bytes:
    attrs = ""
    if source_type:
        attrs += f' Iptc4xmpExt:DigitalSourceType="{source_type}"'
    if creator_tool:
        attrs += f' xmp:CreatorTool="{creator_tool}"'
    hist = (f"<xmpMM:History><rdf:Seq><rdf:li stEvt:action=\"saved\" stEvt:softwareAgent=\"{history}\"/></rdf:Seq>"
            "</xmpMM:History>") if history else ""
    return (f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            f'<rdf:Description xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
            f'xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/" '
            f'xmlns:stEvt="http://ns.adobe.com/xap/1.0/sType/ResourceEvent#"{attrs}>{hist}</rdf:Description>'
            f"</rdf:RDF></x:xmpmeta>").encode()

"""Primitives that craft hostile bodies from valid ones: byte edits, tree edits, re-signing.

Shared by the corpus table (``cases.py``) and the fuzzers (``tests/fuzz``). Profile
forgeries — documents correctly signed, but with algorithms, references or keys the
profile refuses — come from :func:`forge` of ``tests/signing/signing_support.py``,
so that a refusal proves the hub refuses the *algorithm*, not a broken value.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import sys
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from lxml import etree

import schemas
from signing import Signer
from signing.pki import CertifiedKey, PrivateKey
from signing.profile import DS_NS, EDXML_NS
from signing.sign import ec_raw_signature

_SIGNING_TESTS = str(Path(__file__).resolve().parents[1] / "signing")
if _SIGNING_TESTS not in sys.path:
    # Appended, never prepended: that folder must not shadow anything.
    sys.path.append(_SIGNING_TESTS)

from signing_support import (  # noqa: E402
    ECDSA_SHA256,
    ENVELOPED,
    EXC_C14N,
    INC_C14N,
    RSA_SHA1,
    RSA_SHA256,
    SHA1,
    SHA256,
    XPATH,
    forge,
)

__all__ = [
    "ECDSA_SHA1",
    "ECDSA_SHA256",
    "ENVELOPED",
    "EXC_C14N",
    "HMAC_SHA256",
    "INC_C14N",
    "MD5",
    "RSA_MD5",
    "RSA_SHA1",
    "RSA_SHA256",
    "SHA1",
    "SHA256",
    "XPATH",
    "forge",
]

HMAC_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256"
RSA_MD5 = "http://www.w3.org/2001/04/xmldsig-more#rsa-md5"
ECDSA_SHA1 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1"
MD5 = "http://www.w3.org/2001/04/xmldsig-more#md5"

E = f"{{{EDXML_NS}}}"
DS = f"{{{DS_NS}}}"
HEADER = f"{E}edXMLEnvelope/{E}edXMLHeader"
MESSAGE_HEADER = f"{HEADER}/{E}MessageHeader"
SUBJECT = f"{MESSAGE_HEADER}/{E}Subject"

LENIENT = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
"""For crafting only: keeps comments and PIs, expands nothing, reads nothing."""


def certified(signer: Signer) -> CertifiedKey:
    """The key and certificate of a :class:`Signer`, as :func:`forge` takes them."""
    return CertifiedKey(signer.key, signer.certificate)


def unsigned(document: schemas.Edoc | schemas.Status) -> bytes:
    """A document as UTF-8 bytes, unsigned."""
    return schemas.to_bytes(document)


def tree(body: bytes) -> etree._Element:
    """The root of ``body``, parsed leniently (comments and PIs kept)."""
    return etree.fromstring(body, LENIENT)


def serialize(root: etree._Element) -> bytes:
    """A root back to UTF-8 bytes with an XML declaration."""
    return etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8")


def edit(body: bytes, change: Callable[[etree._Element], object]) -> bytes:
    """``body`` with ``change`` applied to its (lenient) tree."""
    root = tree(body)
    change(root)
    return serialize(root)


def sign_edited(
    signer: Signer, document: schemas.Edoc | schemas.Status, change: Callable[..., object]
) -> bytes:
    """``document`` changed as a tree *before* signing: a correctly signed invalid document."""
    root = schemas.to_element(document)
    change(root)
    return signer.sign(root)


def replace_once(body: bytes, old: bytes, new: bytes) -> bytes:
    """``body`` with the first ``old`` replaced; ``old`` must occur."""
    assert old in body, old
    return body.replace(old, new, 1)


def with_doctype(body: bytes, doctype: str) -> bytes:
    """``body`` with ``doctype`` placed between the XML declaration and the root."""
    declaration, rest = body.split(b"?>", 1) if body.startswith(b"<?xml") else (b"", body)
    head = declaration + b"?>\n" if declaration else b""
    return head + doctype.encode() + b"\n" + rest.lstrip()


def signature_of(root: etree._Element) -> etree._Element:
    """The first ds:Signature of a tree."""
    return next(root.iter(f"{DS}Signature"))


def strip_signature(body: bytes) -> bytes:
    """``body`` without its ds:Signature (the text around it kept)."""

    def strip(root: etree._Element) -> None:
        _remove(signature_of(root))

    return edit(body, strip)


def _remove(element: etree._Element) -> None:
    parent = element.getparent()
    assert parent is not None
    tail = element.tail or ""
    previous = element.getprevious()
    parent.remove(element)
    if previous is not None:
        previous.tail = (previous.tail or "") + tail
    else:
        parent.text = (parent.text or "") + tail


def _raw_signature(key: PrivateKey, data: bytes) -> bytes:
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return ec_raw_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))


def _c14n(element: etree._Element) -> bytes:
    return etree.tostring(element, method="c14n", exclusive=True, with_comments=False)


def resign_signed_info(body: bytes, key: PrivateKey, change: Callable[..., object]) -> bytes:
    """Apply ``change`` to SignedInfo, then sign the new SignedInfo correctly with ``key``.

    The document digest is left as it was, so only what ``change`` did to the
    profile can make the result fail.
    """

    def apply(root: etree._Element) -> None:
        signature = signature_of(root)
        signed_info = signature.find(f"{DS}SignedInfo")
        assert signed_info is not None
        change(signed_info)
        value = signature.find(f"{DS}SignatureValue")
        assert value is not None
        value.text = base64.b64encode(_raw_signature(key, _c14n(signed_info))).decode()

    return edit(body, apply)


def hmac_confused(body: bytes, signer: Signer) -> bytes:
    """The HMAC confusion attack: SignatureMethod hmac-sha256, "keyed" with the public key.

    A verifier that takes the algorithm from the document and the key from the
    certificate would check an HMAC whose secret is public.
    """
    secret = signer.certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    def apply(root: etree._Element) -> None:
        signature = signature_of(root)
        signed_info = signature.find(f"{DS}SignedInfo")
        assert signed_info is not None
        method = signed_info.find(f"{DS}SignatureMethod")
        assert method is not None
        method.set("Algorithm", HMAC_SHA256)
        mac = hmac.new(secret, _c14n(signed_info), hashlib.sha256).digest()
        value = signature.find(f"{DS}SignatureValue")
        assert value is not None
        value.text = base64.b64encode(mac).decode()

    return edit(body, apply)


def transplant_signature(signed: bytes, target: bytes) -> bytes:
    """The unsigned document ``target`` carrying the ds:Signature of ``signed``."""
    signature = copy.deepcopy(signature_of(tree(signed)))
    root = tree(target)
    parent = root.find(HEADER) if root.tag == f"{E}edXML" else root
    assert parent is not None
    parent.append(signature)
    return serialize(root)


def wrap_original_in_object(signed: bytes, forged_subject: str) -> bytes:
    """Signature wrapping: the content changed, the original kept inside ds:Object.

    A verifier that resolves what it digests from somewhere other than the document
    it then reads would find the original there and accept the forgery.
    """

    def apply(root: etree._Element) -> None:
        original = copy.deepcopy(root.find(f"{E}edXMLEnvelope"))
        _remove(signature_of(original))
        signature = signature_of(root)
        holder = etree.SubElement(signature, f"{DS}Object")
        holder.append(original)
        subject = root.find(SUBJECT)
        assert subject is not None
        subject.text = forged_subject

    return edit(signed, apply)


def swap_signature_value(signed: bytes, other: bytes) -> bytes:
    """``signed`` carrying the SignatureValue of ``other`` (same signer, other document)."""
    value = next(tree(other).iter(f"{DS}SignatureValue")).text

    def apply(root: etree._Element) -> None:
        next(root.iter(f"{DS}SignatureValue")).text = value

    return edit(signed, apply)


def nested(depth: int, leaf: str = "x") -> str:
    """``depth`` nested elements around ``leaf`` (libxml2 stops at 256)."""
    return "<n>" * depth + leaf + "</n>" * depth


_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(octets)]) + octets


def reencoded_certificate(certificate: x509.Certificate) -> bytes:
    """The same certificate (same TBS: subject, key, serial) with its issuer's ECDSA
    signature (r, s) replaced by the equally valid (r, n - s): another DER, so another
    SHA-256 fingerprint, that anyone can make without the issuer's key. The issuer
    must sign with P-256 (the dev CA does)."""
    r, s = decode_dss_signature(certificate.signature)
    signature = encode_dss_signature(r, _P256_ORDER - s)
    der = certificate.public_bytes(serialization.Encoding.DER)
    tbs = certificate.tbs_certificate_bytes
    after = der[der.index(tbs) + len(tbs) :]
    algorithm = after[: 2 + after[1]]  # AlgorithmIdentifier, short form (12 bytes)
    bits = b"\x03" + _der_length(len(signature) + 1) + b"\x00" + signature
    body = tbs + algorithm + bits
    return b"\x30" + _der_length(len(body)) + body

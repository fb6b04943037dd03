"""signing.document: the enveloped digest equals the reference computation in every case.

The reference is what the XML-DSig recommendation describes: remove the Signature
element (keeping the text after it), canonicalize the whole document.
"""

from __future__ import annotations

import copy
import hashlib
import sys

import pytest
from lxml import etree
from signing_docs import EDXML_NS, edoc_element, status
from signing_support import NOW

from schemas.xml import parse
from signing import TrustStore, sign, verify
from signing.document import canonicalize, enveloped_c14n, enveloped_digest, scan
from signing.pki import CertifiedKey
from signing.profile import DS_NS

E = f"{{{EDXML_NS}}}"
DS = f"{{{DS_NS}}}"


def _reference_digest(document: bytes) -> bytes:
    root = etree.fromstring(document)
    signature = next(root.iter(f"{DS}Signature"))
    parent, tail = signature.getparent(), signature.tail or ""
    previous = signature.getprevious()
    parent.remove(signature)
    if previous is not None:
        previous.tail = (previous.tail or "") + tail
    else:
        parent.text = (parent.text or "") + tail
    return hashlib.sha256(canonicalize(root.getroottree())).digest()


def _digest(document: bytes) -> bytes:
    digests = set()
    for disposable in (False, True):
        root = parse(document)
        digests.add(enveloped_digest(next(root.iter(f"{DS}Signature")), disposable=disposable))
    assert len(digests) == 1, "the bulk fast path and the plain path disagree"
    return digests.pop()


def _signed(leaf: CertifiedKey, root: etree._Element) -> bytes:
    return sign(root, leaf.key, leaf.certificate)


def test_digest_matches_the_reference_for_an_edoc_with_a_large_attachment(
    signer_key: CertifiedKey,
) -> None:
    signed = _signed(signer_key, edoc_element(256 * 1024))
    assert _digest(signed) == _reference_digest(signed)


def test_large_attachment_text_needing_escapes_is_canonicalized_like_libxml2(
    signer_key: CertifiedKey, trust: TrustStore
) -> None:
    root = edoc_element(1024)
    attachment = root.find(f"{E}AttachmentEncoded/{E}Attachment/{E}ContentTransferEncoded")
    attachment.text = "a&b<c>d\r\ne\"f'" * 2000
    signed = _signed(signer_key, root)
    assert _digest(signed) == _reference_digest(signed)
    assert verify(signed, trust, at=NOW).subject_code


def test_the_bulk_marker_inside_the_document_falls_back_correctly(
    signer_key: CertifiedKey, trust: TrustStore
) -> None:
    marker = sys.modules["signing.document"]._MARKER
    root = edoc_element(16 * 1024)
    subject = root.find(f"{E}edXMLEnvelope/{E}edXMLHeader/{E}MessageHeader/{E}Subject")
    subject.text = f"{marker} {marker}"
    signed = _signed(signer_key, root)
    assert _digest(signed) == _reference_digest(signed)
    assert verify(signed, trust, at=NOW).subject_code


@pytest.mark.parametrize(
    "decoy",
    [
        '<ds:Signature xmlns:ds="urn:not-xmldsig"/>',
        "pi",
        "<Signature/>",
    ],
    ids=["same-qname-other-namespace", "pi-mentioning-signature", "unprefixed"],
)
def test_a_decoy_that_makes_the_cut_ambiguous_still_gives_the_reference_digest(
    signer_key: CertifiedKey, decoy: str
) -> None:
    root = edoc_element(2048)
    node = (
        etree.ProcessingInstruction("note", "<ds:Signature Id='x'>")
        if decoy == "pi"
        else etree.fromstring(decoy)
    )
    root.find(f"{E}edXMLEnvelope/{E}edXMLBody").append(node)
    signed = _signed(signer_key, root)
    assert _digest(signed) == _reference_digest(signed)


def test_the_tail_after_the_signature_stays_in_the_digest(signer_key: CertifiedKey) -> None:
    signed = _signed(signer_key, etree.fromstring(status()))
    root = etree.fromstring(signed)
    signature = next(root.iter(f"{DS}Signature"))
    signature.tail = "\n"
    text = etree.tostring(root)
    assert _digest(text) == _reference_digest(text)
    before = etree.tostring(root)
    enveloped_c14n(signature)
    assert etree.tostring(root) == before


def test_scan_finds_every_signature_and_decoys() -> None:
    root = edoc_element(1024)
    header = root.find(f"{E}edXMLEnvelope/{E}edXMLHeader")
    etree.SubElement(header, f"{DS}Signature")
    etree.SubElement(root, "{urn:x}Signature")
    root.append(etree.ProcessingInstruction("x", "Signature"))
    found = scan(copy.deepcopy(root))
    assert len(found.signatures) == 1
    assert len(found.same_name) == 2
    assert found.pi_mentions_signature

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
from signing_docs import EDXML_NS, edoc_element, sdk_edoc, status
from signing_support import NOW, DevPKI

from schemas.xml import parse
from signing import SignatureProfile, TrustStore, sign, verify
from signing.document import (
    canonicalize,
    canonicalize_c14n10,
    enveloped_c14n,
    enveloped_digest,
    scan,
)
from signing.pki import CertifiedKey
from signing.profile import DS_NS, CanonicalizationMethod, DigestMethod

E = f"{{{EDXML_NS}}}"
DS = f"{{{DS_NS}}}"


def _without_signature(document: bytes) -> etree._ElementTree:
    """The enveloped-signature transform done by hand: the Signature out, its tail kept."""
    root = etree.fromstring(document)
    signature = next(root.iter(f"{DS}Signature"))
    parent, tail = signature.getparent(), signature.tail or ""
    previous = signature.getprevious()
    parent.remove(signature)
    if previous is not None:
        previous.tail = (previous.tail or "") + tail
    else:
        parent.text = (parent.text or "") + tail
    return root.getroottree()


def _reference_digest(document: bytes) -> bytes:
    return hashlib.sha256(canonicalize(_without_signature(document))).digest()


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


# Inclusive C14N 1.0, for the legacy profile


C14N_10 = CanonicalizationMethod.C14N_10
NESTED = (
    b'<r xmlns="urn:q" xmlns:e="urn:q" xmlns:u="urn:unused" xml:lang="vi" a="1">'
    b'<h xml:space="preserve"><Signature xmlns="http://www.w3.org/2000/09/xmldsig#">'
    b'<SignedInfo Id="s"><Reference><Transforms><Transform/></Transforms></Reference>'
    b"<!-- c --></SignedInfo></Signature></h></r>"
)


def test_c14n10_of_an_element_is_the_document_subset_of_c14n_1_0_section_2_4() -> None:
    # Written out by hand from the recommendation: every namespace in scope (the
    # nearest declaration of each prefix) and every inherited xml:* attribute on the
    # apex, sorted; nothing re-declared below it; no comment; a is not inherited.
    signed_info = next(etree.fromstring(NESTED).iter(f"{DS}SignedInfo"))
    assert canonicalize_c14n10(signed_info) == (
        b'<SignedInfo xmlns="http://www.w3.org/2000/09/xmldsig#" xmlns:e="urn:q" '
        b'xmlns:u="urn:unused" Id="s" xml:lang="vi" xml:space="preserve">'
        b"<Reference><Transforms><Transform></Transform></Transforms></Reference>"
        b"</SignedInfo>"
    )


def test_c14n10_of_an_element_avoids_lxmls_spurious_empty_default_namespace() -> None:
    # lxml's own inclusive C14N of this element declares xmlns="" on the grandchildren
    # (it looks past the re-declared default namespace); what this module signs must not.
    signed_info = next(etree.fromstring(NESTED).iter(f"{DS}SignedInfo"))
    assert b'xmlns=""' in etree.tostring(signed_info, method="c14n", exclusive=False)
    assert b'xmlns=""' not in canonicalize_c14n10(signed_info)


def test_c14n10_of_an_element_leaves_the_tree_unchanged() -> None:
    root = etree.fromstring(NESTED)
    canonicalize_c14n10(next(root.iter(f"{DS}SignedInfo")))
    assert etree.tostring(root) == NESTED


def test_c14n10_of_a_whole_document_is_libxml2s() -> None:
    tree = etree.fromstring(NESTED).getroottree()
    assert canonicalize_c14n10(tree) == etree.tostring(
        tree, method="c14n", exclusive=False, with_comments=False
    )


def _reference_sha1(document: bytes) -> bytes:
    return hashlib.sha1(canonicalize_c14n10(_without_signature(document))).digest()


def _legacy_digest(document: bytes) -> bytes:
    digests = set()
    for disposable in (False, True):
        root = parse(document)
        signature = next(root.iter(f"{DS}Signature"))
        digests.add(
            enveloped_digest(
                signature, disposable=disposable, method=C14N_10, digest_method=DigestMethod.SHA1
            )
        )
    assert len(digests) == 1, "the bulk fast path and the plain path disagree"
    return digests.pop()


def _legacy_signed(dev_pki: DevPKI, root: etree._Element | bytes) -> bytes:
    leaf = dev_pki.rsa
    return sign(root, leaf.key, leaf.certificate, profile=SignatureProfile.LEGACY)


@pytest.mark.parametrize("size", [2048, 256 * 1024], ids=["small", "large-attachment"])
def test_the_legacy_digest_is_sha1_of_inclusive_c14n_without_the_signature(
    dev_pki: DevPKI, size: int
) -> None:
    signed = _legacy_signed(dev_pki, edoc_element(size))
    assert _legacy_digest(signed) == _reference_sha1(signed)


def test_the_legacy_digest_input_is_inclusive_not_exclusive_c14n(dev_pki: DevPKI) -> None:
    # The root's xmlns:xlink: rendered on the root by inclusive C14N, and only where
    # it is used (the manifest Reference) by exclusive C14N.
    signature = next(parse(_legacy_signed(dev_pki, sdk_edoc())).iter(f"{DS}Signature"))
    inclusive = enveloped_c14n(signature, method=C14N_10)
    assert inclusive.startswith(
        b'<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016" xmlns:xlink'
    )
    assert not enveloped_c14n(signature).startswith(inclusive[:60])


def test_the_legacy_digest_of_an_sdk_shaped_edoc_matches_the_reference(dev_pki: DevPKI) -> None:
    # Default namespace, edXML: re-declared on inner elements, xml:lang on the root.
    signed = _legacy_signed(dev_pki, sdk_edoc(xml_lang="vi"))
    assert _legacy_digest(signed) == _reference_sha1(signed)


def test_a_decoy_signature_makes_the_legacy_digest_fall_back_correctly(dev_pki: DevPKI) -> None:
    root = edoc_element(20 * 1024)
    root.find(f"{E}edXMLEnvelope/{E}edXMLBody").append(etree.fromstring("<Signature/>"))
    signed = _legacy_signed(dev_pki, root)
    assert _legacy_digest(signed) == _reference_sha1(signed)

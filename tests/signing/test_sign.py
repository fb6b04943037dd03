"""signing.sign: where the Signature goes, what it contains, and what is refused."""

from __future__ import annotations

import base64
from datetime import date

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree
from signing_docs import EDXML_NS, HUB_NS, edoc, edoc_element, receipt, sdk_edoc, status
from signing_support import ENVELOPED, INC_C14N, NOW, RSA_SHA1, SHA1, DevPKI

from axis.rejections import Malformed, SignatureInvalid
from signing import SignatureMethod, SignatureProfile, Signer, TrustStore, pki, sign, verify
from signing.pki import CertifiedKey, KeyUsageFlags
from signing.profile import DS_NS

DS = f"{{{DS_NS}}}"
E = f"{{{EDXML_NS}}}"


def _signature(document: bytes) -> etree._Element:
    (signature,) = etree.fromstring(document).iter(f"{DS}Signature")
    return signature


def test_edoc_signature_is_the_last_child_of_edxml_header(signer_key: CertifiedKey) -> None:
    signed = sign(edoc(), signer_key.key, signer_key.certificate)
    signature = _signature(signed)
    header = signature.getparent()
    assert header.tag == f"{E}edXMLHeader"
    assert header.getparent().tag == f"{E}edXMLEnvelope"
    assert header[-1] is signature


@pytest.mark.parametrize("default_namespace", [False, True], ids=["edXML-prefix", "default-ns"])
def test_status_signature_is_the_last_child_of_edxml_header_like_a_document(
    signer_key: CertifiedKey, default_namespace: bool
) -> None:
    signed = sign(
        status(default_namespace=default_namespace), signer_key.key, signer_key.certificate
    )
    header = _signature(signed).getparent()
    assert header.tag == f"{E}edXMLHeader"
    assert [etree.QName(c).localname for c in header] == ["MessageHeader", "Signature"]


def test_hub_message_signature_is_the_last_child_of_the_root(signer_key: CertifiedKey) -> None:
    signed = sign(receipt(), signer_key.key, signer_key.certificate)
    root = etree.fromstring(signed)
    assert root.tag == f"{{{HUB_NS}}}AxisReceipt"
    assert root[-1].tag == f"{DS}Signature"


def test_an_sdk_shaped_edoc_is_signed_in_its_header_whatever_its_prefixes(
    signer_key: CertifiedKey, trust: TrustStore
) -> None:
    # Default namespace on the root, edXML: on the envelope: matched by namespace URI.
    signed = sign(sdk_edoc(), signer_key.key, signer_key.certificate)
    header = _signature(signed).getparent()
    assert header.tag == f"{E}edXMLHeader" and header[-1].tag == f"{DS}Signature"
    assert verify(signed, trust, at=NOW).profile is SignatureProfile.STRICT


def test_signature_uses_exactly_the_profile(signer_key: CertifiedKey) -> None:
    signed = sign(edoc(), signer_key.key, signer_key.certificate)
    signature = _signature(signed)
    info = signature.find(f"{DS}SignedInfo")
    assert [etree.QName(c).localname for c in info] == [
        "CanonicalizationMethod",
        "SignatureMethod",
        "Reference",
    ]
    assert info[0].get("Algorithm") == "http://www.w3.org/2001/10/xml-exc-c14n#"
    expected = (
        SignatureMethod.RSA_SHA256
        if isinstance(signer_key.key, rsa.RSAPrivateKey)
        else SignatureMethod.ECDSA_SHA256
    )
    assert info[1].get("Algorithm") == expected.value
    (reference,) = info.findall(f"{DS}Reference")
    assert reference.get("URI") == ""
    assert [t.get("Algorithm") for t in reference.iter(f"{DS}Transform")] == [
        "http://www.w3.org/2000/09/xmldsig#enveloped-signature",
        "http://www.w3.org/2001/10/xml-exc-c14n#",
    ]
    assert reference.find(f"{DS}DigestMethod").get("Algorithm") == (
        "http://www.w3.org/2001/04/xmlenc#sha256"
    )
    certs = signature.findall(f"{DS}KeyInfo/{DS}X509Data/{DS}X509Certificate")
    assert [base64.b64decode(c.text) for c in certs] == [
        signer_key.certificate.public_bytes(serialization.Encoding.DER)
    ]


def test_ecdsa_signature_value_is_raw_r_and_s_not_der(dev_pki: DevPKI) -> None:
    signed = sign(edoc(), dev_pki.ec.key, dev_pki.ec.certificate)
    value = base64.b64decode(_signature(signed).find(f"{DS}SignatureValue").text)
    # A DER ECDSA-Sig-Value would be 70-72 bytes starting with a SEQUENCE tag.
    assert len(value) == 64


def test_intermediates_follow_the_signer_certificate_in_keyinfo() -> None:
    root_ca = pki.make_ca("Root", not_before=NOW.replace(year=2025))
    intermediate = pki.make_ca("Intermediate", issuer=root_ca, not_before=NOW.replace(year=2025))
    leaf = pki.make_leaf("000.00.00.G22", intermediate, not_before=NOW.replace(year=2025))
    signed = sign(edoc(), leaf.key, leaf.certificate, chain=[intermediate.certificate])
    certs = _signature(signed).findall(f"{DS}KeyInfo/{DS}X509Data/{DS}X509Certificate")
    assert len(certs) == 2
    verified = verify(signed, TrustStore([root_ca.certificate]), at=NOW)
    assert [c.subject for c in verified.chain] == [
        leaf.certificate.subject,
        intermediate.certificate.subject,
        root_ca.certificate.subject,
    ]


def test_a_signed_document_is_refused_for_signing_again(signer_key: CertifiedKey) -> None:
    signed = sign(edoc(), signer_key.key, signer_key.certificate)
    with pytest.raises(SignatureInvalid, match="already"):
        sign(signed, signer_key.key, signer_key.certificate)


def test_a_document_with_a_doctype_is_refused_for_signing(signer_key: CertifiedKey) -> None:
    document = edoc().replace(b"?>\n", b"?>\n<!DOCTYPE edXML:edXML>\n", 1)
    with pytest.raises(SignatureInvalid, match="DOCTYPE"):
        sign(document, signer_key.key, signer_key.certificate)


def test_an_edoc_without_header_is_malformed(signer_key: CertifiedKey) -> None:
    root = etree.Element(f"{E}edXML")
    etree.SubElement(root, f"{E}edXMLEnvelope")
    with pytest.raises(Malformed):
        sign(root, signer_key.key, signer_key.certificate)


def test_signing_an_element_leaves_it_unchanged(signer_key: CertifiedKey) -> None:
    root = edoc_element(2048)
    before = etree.tostring(root)
    signed = sign(root, signer_key.key, signer_key.certificate)
    assert etree.tostring(root) == before
    assert b"Signature" in signed


def test_signing_works_when_the_document_declares_xmldsig_under_another_prefix(
    signer_key: CertifiedKey, trust: TrustStore
) -> None:
    # lxml re-maps the appended Signature to the ancestor's "dsig" prefix; SignedInfo
    # must be canonicalized after that, in place.
    plain = edoc_element(1024)
    root = etree.Element(plain.tag, nsmap={"edXML": EDXML_NS, "dsig": DS_NS})
    root[:] = plain[:]
    signed = sign(root, signer_key.key, signer_key.certificate)
    assert b"<dsig:SignedInfo>" in signed
    assert verify(signed, trust, at=NOW).fingerprint


def test_signer_refuses_a_key_that_does_not_match_the_certificate(dev_pki: DevPKI) -> None:
    with pytest.raises(ValueError, match="does not belong"):
        Signer(dev_pki.ec.key, dev_pki.rsa.certificate)


def test_signer_refuses_a_certificate_without_signing_key_usage(dev_pki: DevPKI) -> None:
    unfit = pki.make_leaf(
        "X", dev_pki.ca, key_usage=KeyUsageFlags(digital_signature=False, non_repudiation=False)
    )
    with pytest.raises(ValueError, match="unfit"):
        Signer(unfit.key, unfit.certificate)


def test_signer_is_reusable_across_documents(signer_key: CertifiedKey, trust: TrustStore) -> None:
    signer = Signer(signer_key.key, signer_key.certificate)
    for document in (edoc(), status(), receipt()):
        assert verify(signer.sign(document), trust, at=NOW).subject_code


# The legacy profile


LEGACY = SignatureProfile.LEGACY
UNTIL = date(2027, 1, 1)


def test_the_legacy_signer_writes_exactly_the_legacy_profile(dev_pki: DevPKI) -> None:
    signed = sign(edoc(), dev_pki.rsa.key, dev_pki.rsa.certificate, profile=LEGACY)
    info = _signature(signed).find(f"{DS}SignedInfo")
    assert info[0].get("Algorithm") == INC_C14N
    assert info[1].get("Algorithm") == RSA_SHA1 == SignatureMethod.RSA_SHA1.value
    (reference,) = info.findall(f"{DS}Reference")
    assert reference.get("URI") == ""
    assert [t.get("Algorithm") for t in reference.iter(f"{DS}Transform")] == [ENVELOPED, INC_C14N]
    assert reference.find(f"{DS}DigestMethod").get("Algorithm") == SHA1
    assert len(base64.b64decode(reference.find(f"{DS}DigestValue").text)) == 20


@pytest.mark.parametrize("document", [edoc, status, receipt, sdk_edoc])
def test_a_legacy_signature_by_our_signer_verifies_when_allowed(
    dev_pki: DevPKI, trust: TrustStore, document
) -> None:
    signer = Signer(dev_pki.rsa.key, dev_pki.rsa.certificate, profile=LEGACY)
    assert signer.algorithm is SignatureMethod.RSA_SHA1
    verified = verify(signer.sign(document()), trust, at=NOW, legacy_until=UNTIL)
    assert verified.profile is LEGACY
    assert verified.algorithm is SignatureMethod.RSA_SHA1


def test_the_legacy_signer_refuses_an_ec_key(dev_pki: DevPKI) -> None:
    with pytest.raises(ValueError, match="RSA key"):
        Signer(dev_pki.ec.key, dev_pki.ec.certificate, profile=LEGACY)
    with pytest.raises(ValueError, match="RSA key"):
        sign(edoc(), dev_pki.ec.key, dev_pki.ec.certificate, profile=LEGACY)


def test_the_legacy_signer_has_no_canonical_fast_path(dev_pki: DevPKI) -> None:
    # sign_canonical digests the exclusive form it is given; legacy digests inclusive C14N.
    signer = Signer(dev_pki.rsa.key, dev_pki.rsa.certificate, profile=LEGACY)
    with pytest.raises(ValueError, match="strict profile only"):
        signer.sign_canonical(b'<Note xmlns="urn:axis:hub:1"></Note>', before=b"</Note>")


def test_the_profile_is_given_by_its_value_too(dev_pki: DevPKI) -> None:
    signer = Signer(dev_pki.rsa.key, dev_pki.rsa.certificate, profile="legacy")  # type: ignore[arg-type]
    assert signer.profile is LEGACY
    with pytest.raises(ValueError):
        Signer(dev_pki.rsa.key, dev_pki.rsa.certificate, profile="lax")  # type: ignore[arg-type]


def test_a_legacy_signed_element_is_left_unchanged(dev_pki: DevPKI) -> None:
    root = edoc_element(2048)
    before = etree.tostring(root)
    sign(root, dev_pki.rsa.key, dev_pki.rsa.certificate, profile=LEGACY)
    assert etree.tostring(root) == before

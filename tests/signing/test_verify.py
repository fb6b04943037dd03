"""signing.verify: valid documents pass; every attack is refused with the right rejection."""

from __future__ import annotations

import copy
import sys
from datetime import UTC, date, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from lxml import etree
from signing_docs import EDXML_NS, SUBJECT, edoc, receipt, sdk_edoc, status
from signing_support import (
    ENVELOPED,
    EXC_C14N,
    INC_C14N,
    NOW,
    RSA_SHA1,
    RSA_SHA256,
    SHA1,
    SHA256,
    XPATH,
    DevPKI,
    forge,
)

from axis.rejections import (
    CertExpired,
    CertRevoked,
    CertUntrusted,
    Malformed,
    SignatureInvalid,
)
from schemas.xml import parse, text_of
from signing import SignatureMethod, SignatureProfile, TrustStore, Verifier, pki, sign, verify
from signing.document import canonicalize
from signing.pki import CertifiedKey, KeyUsageFlags
from signing.profile import DS_NS

DS = f"{{{DS_NS}}}"
E = f"{{{EDXML_NS}}}"
EARLY = datetime(2026, 1, 1, tzinfo=UTC)
UNTIL = date(2027, 1, 1)
"""A sunset date of the legacy profile after :data:`NOW`."""
LEGACY_FORGE = {
    "c14n": INC_C14N,
    "method": RSA_SHA1,
    "digest": SHA1,
    "transforms": (ENVELOPED, INC_C14N),
}
"""forge() options for a signature entirely in the legacy profile."""


def _signed(leaf: CertifiedKey, document: bytes | None = None) -> bytes:
    return sign(document if document is not None else edoc(), leaf.key, leaf.certificate)


def test_a_signed_edoc_status_and_hub_message_verify(
    signer_key: CertifiedKey, trust: TrustStore
) -> None:
    for document in (edoc(), status(), receipt()):
        verified = verify(_signed(signer_key, document), trust, at=NOW)
        assert verified.certificate == signer_key.certificate
        assert (
            verified.subject_code
            == signer_key.certificate.subject.rfc4514_string().split("CN=")[1].split(",")[0]
        )
        assert verified.fingerprint == pki.fingerprint(signer_key.certificate)
        assert verified.chain[-1] == trust.anchors[0]


def test_verified_algorithm_follows_the_key_type(dev_pki: DevPKI, trust: TrustStore) -> None:
    assert verify(_signed(dev_pki.rsa), trust, at=NOW).algorithm is SignatureMethod.RSA_SHA256
    assert verify(_signed(dev_pki.ec), trust, at=NOW).algorithm is SignatureMethod.ECDSA_SHA256


def test_a_parsed_element_verifies_and_is_left_unchanged(
    signer_key: CertifiedKey, trust: TrustStore
) -> None:
    root = parse(_signed(signer_key))
    before = etree.tostring(root)
    verify(root, trust, at=NOW)
    assert etree.tostring(root) == before


def test_a_naive_verification_time_is_a_programming_error(
    dev_pki: DevPKI, trust: TrustStore
) -> None:
    with pytest.raises(ValueError, match="timezone"):
        verify(_signed(dev_pki.ec), trust, at=NOW.replace(tzinfo=None))


# Content tampering and signature wrapping


@pytest.mark.parametrize("target", [b"101/VPCP-KSTT", b"000.00.00.H41", b"</edXML:Subject>"])
def test_one_byte_changed_after_signing_is_signature_invalid(
    signer_key: CertifiedKey, trust: TrustStore, target: bytes
) -> None:
    signed = _signed(signer_key)
    position = signed.index(target)
    tampered = signed[:position] + b"X" + signed[position + 1 :]
    if target.startswith(b"</"):
        # The last character of the Subject text, so the document stays well-formed.
        tampered = signed[: position - 1] + b"X" + signed[position:]
    with pytest.raises(SignatureInvalid, match="digest"):
        verify(tampered, trust, at=NOW)


def test_one_byte_changed_in_the_attachment_is_signature_invalid(
    dev_pki: DevPKI, trust: TrustStore
) -> None:
    signed = bytearray(_signed(dev_pki.ec, edoc(64 * 1024)))
    position = signed.index(b"</edXML:ContentTransferEncoded>") - 10
    signed[position] = ord("A") if signed[position] != ord("A") else ord("B")
    with pytest.raises(SignatureInvalid):
        verify(bytes(signed), trust, at=NOW)


def test_a_duplicated_message_header_is_signature_invalid(
    dev_pki: DevPKI, trust: TrustStore
) -> None:
    root = parse(_signed(dev_pki.rsa))
    header = root.find(f"{E}edXMLEnvelope/{E}edXMLHeader")
    forged = copy.deepcopy(header.find(f"{E}MessageHeader"))
    forged.find(f"{E}From/{E}OrganId").text = "000.00.00.H41"
    header.insert(0, forged)
    with pytest.raises(SignatureInvalid):
        verify(etree.tostring(root), trust, at=NOW)


def test_a_signed_header_moved_under_a_forged_envelope_is_signature_invalid(
    dev_pki: DevPKI, trust: TrustStore
) -> None:
    # Classic wrapping: the attacker's envelope up front, the signed one hidden below.
    signed = parse(_signed(dev_pki.rsa))
    forged = parse(edoc(1024, sender="000.00.00.H41"))
    hidden = signed.find(f"{E}edXMLEnvelope")
    forged.find(f"{E}AttachmentEncoded").append(hidden)
    with pytest.raises(SignatureInvalid):
        verify(etree.tostring(forged), trust, at=NOW)


def test_a_signature_moved_out_of_the_header_is_signature_invalid(
    dev_pki: DevPKI, trust: TrustStore
) -> None:
    root = parse(_signed(dev_pki.ec))
    signature = next(root.iter(f"{DS}Signature"))
    root.append(signature)
    with pytest.raises(SignatureInvalid, match="required place"):
        verify(etree.tostring(root), trust, at=NOW)


def test_an_element_after_the_signature_is_signature_invalid(
    dev_pki: DevPKI, trust: TrustStore
) -> None:
    root = parse(_signed(dev_pki.ec, status()))
    etree.SubElement(root.find(f"{E}edXMLEnvelope/{E}edXMLHeader"), f"{E}StaffInfo").text = "x"
    with pytest.raises(SignatureInvalid, match="required place"):
        verify(etree.tostring(root), trust, at=NOW)


def test_a_status_signature_at_the_root_is_not_in_its_required_place(
    dev_pki: DevPKI, trust: TrustStore
) -> None:
    # Statuses are edXML envelopes now: their Signature belongs in edXMLHeader too.
    root = parse(_signed(dev_pki.ec, status()))
    root.append(next(root.iter(f"{DS}Signature")))
    with pytest.raises(SignatureInvalid, match="required place"):
        verify(etree.tostring(root), trust, at=NOW)


def test_two_signatures_are_signature_invalid(dev_pki: DevPKI, trust: TrustStore) -> None:
    root = parse(_signed(dev_pki.ec))
    signature = next(root.iter(f"{DS}Signature"))
    root.find(f"{E}edXMLEnvelope/{E}edXMLBody").append(copy.deepcopy(signature))
    with pytest.raises(SignatureInvalid, match="2 ds:Signature"):
        verify(etree.tostring(root), trust, at=NOW)


@pytest.mark.parametrize("document", [edoc, status, sdk_edoc])
def test_an_unsigned_document_says_it_carries_no_xmldsig_signature(
    trust: TrustStore, document
) -> None:
    with pytest.raises(SignatureInvalid) as refused:
        verify(document(), trust, at=NOW)
    assert refused.value.reason == (
        "the document is not signed: it carries no ds:Signature "
        "(XML-DSig namespace http://www.w3.org/2000/09/xmldsig#)"
    )


@pytest.mark.parametrize("prefixed", [False, True], ids=["default-ns", "edXML-prefix"])
def test_a_signature_in_the_edxml_namespace_is_not_an_xmldsig_signature(
    dev_pki: DevPKI, trust: TrustStore, prefixed: bool
) -> None:
    # Some SDK output writes <Signature> without the XML-DSig namespace: it lands in
    # the edXML namespace, correctly computed or not, no XML-DSig verifier reads it.
    signed = forge(sdk_edoc(), dev_pki.rsa, **LEGACY_FORGE).decode()
    start, end = signed.index("<ds:Signature"), signed.index("</ds:Signature>")
    inner = signed[start:end].split(">", 1)[1].replace("ds:", "")
    tag = "edXML:Signature" if prefixed else "Signature"
    body = f"{signed[:start]}<{tag}>{inner}</{tag}>{signed[end + len('</ds:Signature>') :]}"
    with pytest.raises(SignatureInvalid) as refused:
        verify(body.encode(), trust, at=NOW, legacy_until=UNTIL)
    assert refused.value.reason == (
        "the document's Signature is outside the XML-DSig namespace: it is in the "
        "namespace http://www.mic.gov.vn/TBT/QCVN_102_2016, not "
        "http://www.w3.org/2000/09/xmldsig#, and therefore not an XML-DSig signature"
    )


def test_a_signature_in_no_namespace_is_not_an_xmldsig_signature(trust: TrustStore) -> None:
    root = etree.fromstring(edoc())
    etree.SubElement(root.find(f"{E}edXMLEnvelope/{E}edXMLHeader"), "Signature")
    with pytest.raises(
        SignatureInvalid, match="outside the XML-DSig namespace: it is in no namespace"
    ):
        verify(etree.tostring(root), trust, at=NOW)


# Outside the profile: each forged document is correctly signed with its algorithms,
# so what is refused is the algorithm, not a broken value.


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"uri": "#header"}, "URI"),
        ({"uri": None}, "URI"),
        ({"transforms": (ENVELOPED, EXC_C14N, EXC_C14N)}, "Transform"),
        ({"transforms": (ENVELOPED,)}, "Transform"),
        ({"transforms": (EXC_C14N, ENVELOPED)}, "transforms"),
        ({"transforms": (ENVELOPED, INC_C14N)}, "transforms"),
        ({"transforms": (XPATH, ENVELOPED, EXC_C14N)}, "Transform"),
        ({"transforms": (ENVELOPED, EXC_C14N + "WithComments")}, "transforms"),
        ({"digest": SHA1}, "DigestMethod"),
        ({"method": RSA_SHA1}, "SignatureMethod"),
        ({"c14n": INC_C14N}, "CanonicalizationMethod"),
        ({"c14n": EXC_C14N + "WithComments"}, "CanonicalizationMethod"),
        ({"c14n": INC_C14N + "#WithComments"}, "CanonicalizationMethod"),
        ({"digest": "http://www.w3.org/2001/04/xmldsig-more#md5"}, "DigestMethod"),
    ],
)
@pytest.mark.parametrize("legacy_until", [None, date(2027, 1, 1)], ids=["strict-only", "legacy-on"])
def test_algorithms_and_references_outside_the_profile_are_signature_invalid(
    dev_pki: DevPKI, trust: TrustStore, options: dict, message: str, legacy_until: date | None
) -> None:
    # Whether legacy is accepted or not, none of these is in a profile.
    forged = forge(edoc(), dev_pki.rsa, **options)
    with pytest.raises(SignatureInvalid, match=message):
        verify(forged, trust, at=NOW, legacy_until=legacy_until)


def test_the_forger_itself_produces_profile_signatures_that_verify(
    signer_key: CertifiedKey, trust: TrustStore
) -> None:
    assert verify(forge(edoc(), signer_key), trust, at=NOW).subject_code


def test_inclusive_namespaces_prefix_list_is_honored(dev_pki: DevPKI, trust: TrustStore) -> None:
    document = edoc().replace(b"<edXML:edXML ", b'<edXML:edXML xmlns:x="urn:extra" ', 1)
    forged = forge(document, dev_pki.ec, prefix_list="x edXML")
    assert verify(forged, trust, at=NOW).subject_code == "000.00.00.H41"
    # The declaration is part of the signed bytes: removing it breaks the digest.
    with pytest.raises(SignatureInvalid, match="digest"):
        verify(forged.replace(b' xmlns:x="urn:extra"', b"", 1), trust, at=NOW)


def test_a_signature_method_that_does_not_match_the_key_is_signature_invalid(
    dev_pki: DevPKI, trust: TrustStore
) -> None:
    forged = forge(edoc(), dev_pki.ec, method=SignatureMethod.RSA_SHA256.value)
    with pytest.raises(SignatureInvalid, match="does not match the certificate"):
        verify(forged, trust, at=NOW)


def test_a_wrong_signature_value_is_signature_invalid(dev_pki: DevPKI, trust: TrustStore) -> None:
    signed = _signed(dev_pki.rsa)
    other = _signed(dev_pki.rsa, edoc(2048))
    start = signed.index(b"<ds:SignatureValue>")
    end = signed.index(b"</ds:SignatureValue>")
    o_start, o_end = other.index(b"<ds:SignatureValue>"), other.index(b"</ds:SignatureValue>")
    swapped = signed[:start] + other[o_start:o_end] + signed[end:]
    with pytest.raises(SignatureInvalid, match="SignatureValue"):
        verify(swapped, trust, at=NOW)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (b"<ds:KeyInfo>", b"<ds:KeyInfo><ds:X509Data/>", "exactly one X509Data"),
        (b"<ds:X509Certificate>", b"<ds:X509Certificate>AAAA", "certificate"),
        (b"<ds:X509Certificate>", b"<ds:X509Certificate>!!", "base64"),
    ],
)
def test_a_missing_or_unparsable_certificate_is_signature_invalid(
    dev_pki: DevPKI, trust: TrustStore, old: bytes, new: bytes, message: str
) -> None:
    signed = _signed(dev_pki.ec).replace(old, new, 1)
    with pytest.raises(SignatureInvalid, match=message):
        verify(signed, trust, at=NOW)


def test_a_signature_without_keyinfo_is_signature_invalid(
    dev_pki: DevPKI, trust: TrustStore
) -> None:
    root = parse(_signed(dev_pki.ec))
    key_info = next(root.iter(f"{DS}KeyInfo"))
    key_info.getparent().remove(key_info)
    with pytest.raises(SignatureInvalid, match="KeyInfo"):
        verify(etree.tostring(root), trust, at=NOW)


def test_a_doctype_with_an_entity_declaration_is_refused(
    dev_pki: DevPKI, trust: TrustStore
) -> None:
    signed = _signed(dev_pki.ec)
    with_dtd = signed.replace(b"?>\n", b'?>\n<!DOCTYPE edXML:edXML [<!ENTITY x "unused">]>\n', 1)
    # From bytes the hardened parser may refuse it first (MALFORMED); either way
    # it never verifies.
    with pytest.raises((SignatureInvalid, Malformed)):
        verify(with_dtd, trust, at=NOW)
    lenient = etree.XMLParser(resolve_entities=False, load_dtd=False, no_network=True)
    with pytest.raises(SignatureInvalid, match="DOCTYPE"):
        verify(etree.fromstring(with_dtd, lenient), trust, at=NOW)


def test_a_bare_doctype_is_signature_invalid(dev_pki: DevPKI, trust: TrustStore) -> None:
    signed = _signed(dev_pki.ec).replace(b"?>\n", b"?>\n<!DOCTYPE edXML:edXML>\n", 1)
    with pytest.raises(SignatureInvalid, match="DOCTYPE"):
        verify(signed, trust, at=NOW)


def test_an_entity_used_in_a_signed_field_is_malformed_before_any_signature_check(
    dev_pki: DevPKI, trust: TrustStore
) -> None:
    signed = _signed(dev_pki.ec)
    attack = signed.replace(
        b"?>\n", b'?>\n<!DOCTYPE edXML:edXML [<!ENTITY x "000.00.00.H41">]>\n', 1
    ).replace(b"000.00.00.G22,2026", b"&x;,2026", 1)
    with pytest.raises(Malformed):
        verify(attack, trust, at=NOW)


def test_a_comment_in_a_signed_field_keeps_the_signature_and_the_parsed_text(
    dev_pki: DevPKI, trust: TrustStore
) -> None:
    signed = _signed(dev_pki.rsa)
    encoded = SUBJECT.encode()
    split = len("Về việc ".encode())
    commented = signed.replace(encoded, encoded[:split] + b"<!-- x -->" + encoded[split:], 1)
    assert commented != signed
    assert verify(commented, trust, at=NOW).subject_code == "000.00.00.G22"
    subject = parse(commented).find(f"{E}edXMLEnvelope/{E}edXMLHeader/{E}MessageHeader/{E}Subject")
    assert subject.text == SUBJECT
    assert text_of(subject) == SUBJECT


# Certificates


def test_a_certificate_from_another_ca_is_cert_untrusted(dev_pki: DevPKI) -> None:
    stranger = pki.make_ca("Stranger CA", not_before=EARLY)
    leaf = pki.make_leaf("000.00.00.G22", stranger, not_before=EARLY)
    with pytest.raises(CertUntrusted, match="chain"):
        verify(_signed(leaf), TrustStore([dev_pki.ca.certificate]), at=NOW)


def test_a_self_signed_certificate_is_cert_untrusted(dev_pki: DevPKI, trust: TrustStore) -> None:
    key = pki.generate_key("ec")
    self_signed = pki.make_leaf(
        "000.00.00.G22", pki.CertifiedKey(key, dev_pki.ca.certificate), key=key, not_before=EARLY
    )
    with pytest.raises(CertUntrusted):
        verify(_signed(self_signed), trust, at=NOW)


def test_an_expired_certificate_is_cert_expired(dev_pki: DevPKI, trust: TrustStore) -> None:
    leaf = pki.make_leaf("000.00.00.G22", dev_pki.ca, not_before=EARLY, days=30)
    with pytest.raises(CertExpired, match="valid from"):
        verify(_signed(leaf), trust, at=NOW)


def test_a_not_yet_valid_certificate_is_cert_expired(dev_pki: DevPKI, trust: TrustStore) -> None:
    leaf = pki.make_leaf("000.00.00.G22", dev_pki.ca, not_before=NOW + timedelta(days=1))
    with pytest.raises(CertExpired):
        verify(_signed(leaf), trust, at=NOW)


def test_an_expired_intermediate_is_cert_expired(dev_pki: DevPKI) -> None:
    intermediate = pki.make_ca(
        "Intermediate", issuer=dev_pki.ca, not_before=EARLY, not_after=NOW - timedelta(days=1)
    )
    leaf = pki.make_leaf("000.00.00.G22", intermediate, not_before=EARLY, days=700)
    signed = sign(edoc(), leaf.key, leaf.certificate, chain=[intermediate.certificate])
    with pytest.raises(CertExpired):
        verify(signed, TrustStore([dev_pki.ca.certificate]), at=NOW)


def test_a_cached_chain_is_rechecked_for_expiry(dev_pki: DevPKI, trust: TrustStore) -> None:
    leaf = pki.make_leaf("000.00.00.G22", dev_pki.ca, not_before=EARLY, days=300)
    verifier = Verifier(trust)
    signed = _signed(leaf)
    assert verifier.verify(signed, at=NOW - timedelta(days=30)).subject_code
    with pytest.raises(CertExpired):
        verifier.verify(signed, at=NOW)


def test_a_revoked_certificate_is_cert_revoked(dev_pki: DevPKI) -> None:
    leaf = pki.make_leaf("000.00.00.G22", dev_pki.ca, not_before=EARLY)
    crl = pki.make_crl(dev_pki.ca, [leaf.certificate.serial_number], last_update=EARLY)
    trust = TrustStore([dev_pki.ca.certificate], crls=[crl])
    with pytest.raises(CertRevoked, match="CRL"):
        verify(_signed(leaf), trust, at=NOW)
    assert verify(_signed(dev_pki.ec), trust, at=NOW).subject_code


def test_revocation_is_checked_on_every_call_even_with_a_cached_chain(dev_pki: DevPKI) -> None:
    leaf = pki.make_leaf("000.00.00.G22", dev_pki.ca, not_before=EARLY)
    signed = _signed(leaf)
    verifier = Verifier(TrustStore([dev_pki.ca.certificate]))
    verifier.verify(signed, at=NOW)
    crl = pki.make_crl(dev_pki.ca, [leaf.certificate.serial_number], last_update=EARLY)
    # A new trust store (new CRL) with the old verifier's caches carried over.
    verifier.trust = TrustStore([dev_pki.ca.certificate], crls=[crl])
    with pytest.raises(CertRevoked):
        verifier.verify(signed, at=NOW)


def test_a_revoked_intermediate_is_cert_revoked(dev_pki: DevPKI) -> None:
    intermediate = pki.make_ca("Intermediate", issuer=dev_pki.ca, not_before=EARLY)
    leaf = pki.make_leaf("000.00.00.G22", intermediate, not_before=EARLY)
    crl = pki.make_crl(dev_pki.ca, [intermediate.certificate.serial_number], last_update=EARLY)
    signed = sign(edoc(), leaf.key, leaf.certificate, chain=[intermediate.certificate])
    with pytest.raises(CertRevoked):
        verify(signed, TrustStore([dev_pki.ca.certificate], crls=[crl]), at=NOW)


@pytest.mark.parametrize(
    "usage",
    [KeyUsageFlags(digital_signature=False, non_repudiation=False), None],
    ids=["no-signing-bits", "no-keyusage-extension"],
)
def test_a_certificate_without_signing_key_usage_is_cert_untrusted(
    dev_pki: DevPKI, trust: TrustStore, usage: KeyUsageFlags | None
) -> None:
    leaf = pki.make_leaf("000.00.00.G22", dev_pki.ca, not_before=EARLY, key_usage=usage)
    forged = forge(edoc(), leaf)
    with pytest.raises(CertUntrusted, match=r"keyUsage|digitalSignature"):
        verify(forged, trust, at=NOW)


def test_non_repudiation_alone_is_enough_key_usage(dev_pki: DevPKI, trust: TrustStore) -> None:
    usage = KeyUsageFlags(digital_signature=False, non_repudiation=True)
    leaf = pki.make_leaf("000.00.00.G22", dev_pki.ca, not_before=EARLY, key_usage=usage)
    assert verify(_signed(leaf), trust, at=NOW).subject_code == "000.00.00.G22"


def test_a_ca_certificate_cannot_sign_documents(dev_pki: DevPKI, trust: TrustStore) -> None:
    with pytest.raises(CertUntrusted, match="CA certificate"):
        verify(forge(edoc(), dev_pki.ca), trust, at=NOW)


def test_an_rsa_key_under_2048_bits_is_cert_untrusted(dev_pki: DevPKI, trust: TrustStore) -> None:
    weak = pki.make_leaf(
        "000.00.00.G22",
        dev_pki.ca,
        key=pki.generate_key("rsa", rsa_bits=1024),
        not_before=EARLY,
    )
    with pytest.raises(CertUntrusted, match="2048"):
        verify(forge(edoc(), weak), trust, at=NOW)


def test_an_ec_curve_other_than_p256_is_cert_untrusted(dev_pki: DevPKI, trust: TrustStore) -> None:
    p384 = pki.make_leaf(
        "000.00.00.G22",
        dev_pki.ca,
        key=ec.generate_private_key(ec.SECP384R1()),
        not_before=EARLY,
    )
    # forge() encodes r||s for P-256 widths; the curve check comes before that matters.
    forged = forge(edoc(), p384)
    with pytest.raises((CertUntrusted, SignatureInvalid)):
        verify(forged, trust, at=NOW)


# The fast readers of SignedInfo must agree with the element-by-element one.


@pytest.mark.parametrize("indent", [False, True], ids=["compact", "indented"])
def test_fast_signed_info_readers_agree_with_the_strict_reader(
    signer_key: CertifiedKey, indent: bool
) -> None:
    verify_module = sys.modules["signing.verify"]
    root = parse(_signed(signer_key))
    signature = next(root.iter(f"{DS}Signature"))
    if indent:
        etree.indent(signature)
    signed_info = signature[0]
    fast = verify_module._match_signed_info(canonicalize(signed_info), signed_info)
    strict = verify_module._read_signed_info(signed_info)
    assert fast is not None
    assert (fast.method, fast.digest) == (strict.method, strict.digest)


def test_fast_signed_info_reader_leaves_anything_unusual_to_the_strict_reader(
    dev_pki: DevPKI,
) -> None:
    verify_module = sys.modules["signing.verify"]
    for forged in (
        forge(edoc(), dev_pki.rsa, prefix_list="edXML"),
        forge(edoc(), dev_pki.rsa, digest=SHA1),
        forge(edoc(), dev_pki.rsa, uri="#x"),
    ):
        signed_info = next(parse(forged).iter(f"{DS}SignedInfo"))
        assert verify_module._match_signed_info(canonicalize(signed_info), signed_info) is None


# The legacy profile: accepted only while the policy says so, and never mixed.


LEGACY = SignatureProfile.LEGACY


def _legacy(leaf: CertifiedKey, document: bytes | None = None) -> bytes:
    return sign(
        document if document is not None else edoc(),
        leaf.key,
        leaf.certificate,
        profile=LEGACY,
    )


def test_a_legacy_signature_verifies_while_the_sunset_is_ahead_and_says_legacy(
    dev_pki: DevPKI, trust: TrustStore
) -> None:
    for document in (edoc(), status(), status(default_namespace=True), receipt(), sdk_edoc()):
        verified = Verifier(trust, legacy_until=UNTIL).verify(
            _legacy(dev_pki.rsa, document), at=NOW
        )
        assert verified.profile is LEGACY
        assert verified.algorithm is SignatureMethod.RSA_SHA1
        assert verified.subject_code == "000.00.00.G22"
        assert verified.chain[-1] == trust.anchors[0]


@pytest.mark.parametrize(
    "transforms", [(ENVELOPED, INC_C14N), (ENVELOPED,)], ids=["explicit-c14n", "enveloped-only"]
)
def test_both_sdk_forms_of_legacy_transforms_verify(
    dev_pki: DevPKI, trust: TrustStore, transforms: tuple[str, ...]
) -> None:
    # Enveloped-signature alone: XML-DSig's default, inclusive C14N 1.0, is the same input.
    forged = forge(edoc(), dev_pki.rsa, **{**LEGACY_FORGE, "transforms": transforms})
    assert verify(forged, trust, at=NOW, legacy_until=UNTIL).profile is LEGACY


def test_a_legacy_signature_is_refused_when_the_legacy_profile_was_never_enabled(
    dev_pki: DevPKI, trust: TrustStore
) -> None:
    with pytest.raises(SignatureInvalid) as refused:
        Verifier(trust).verify(_legacy(dev_pki.rsa), at=NOW)
    assert refused.value.reason == (
        "the document is signed under the legacy profile (rsa-sha1/sha1/C14N 1.0), "
        "which this hub does not accept: the legacy profile is not enabled here"
    )
    with pytest.raises(SignatureInvalid, match="legacy profile"):
        verify(_legacy(dev_pki.rsa), trust, at=NOW)


@pytest.mark.parametrize(
    "until",
    [NOW.date(), NOW.date() - timedelta(days=1), date(2020, 1, 1)],
    ids=["today", "yesterday", "long-past"],
)
def test_a_legacy_signature_is_refused_on_and_after_the_sunset_date(
    dev_pki: DevPKI, trust: TrustStore, until: date
) -> None:
    with pytest.raises(SignatureInvalid) as refused:
        Verifier(trust, legacy_until=until).verify(_legacy(dev_pki.rsa), at=NOW)
    assert refused.value.reason.startswith(
        "the document is signed under the legacy profile (rsa-sha1/sha1/C14N 1.0), "
        f"which this hub does not accept since {until.isoformat()}"
    )


def test_the_vietnamese_date_decides_not_the_utc_date(dev_pki: DevPKI, trust: TrustStore) -> None:
    signed = _legacy(dev_pki.rsa)
    verifier = Verifier(trust, legacy_until=date(2026, 11, 21))
    # 16:59 UTC on the 20th is 23:59 on the 20th in Hanoi (UTC+7): still before.
    last_minute = datetime(2026, 11, 20, 16, 59, tzinfo=UTC)
    assert verifier.verify(signed, at=last_minute).profile is LEGACY
    # 17:00 UTC on the 20th is already the 21st in Hanoi: refused, though UTC says the 20th.
    with pytest.raises(SignatureInvalid, match="since 2026-11-21"):
        verifier.verify(signed, at=datetime(2026, 11, 20, 17, 0, tzinfo=UTC))


def test_a_strict_signature_carries_the_strict_profile_whatever_the_policy(
    signer_key: CertifiedKey, trust: TrustStore
) -> None:
    signed = _signed(signer_key)
    for until in (None, UNTIL, date(2020, 1, 1)):
        assert verify(signed, trust, at=NOW, legacy_until=until).profile is SignatureProfile.STRICT


def test_one_certificate_verifies_strict_then_legacy_with_each_its_own_result(
    dev_pki: DevPKI, trust: TrustStore
) -> None:
    # The chain cache is shared; the method and profile of each result are its own.
    verifier = Verifier(trust, legacy_until=UNTIL)
    for _ in range(2):
        strict = verifier.verify(_signed(dev_pki.rsa), at=NOW)
        legacy = verifier.verify(_legacy(dev_pki.rsa), at=NOW)
        assert (strict.profile, strict.algorithm) == ("strict", SignatureMethod.RSA_SHA256)
        assert (legacy.profile, legacy.algorithm) == (LEGACY, SignatureMethod.RSA_SHA1)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"method": RSA_SHA1, "digest": SHA256}, "SignatureMethod rsa-sha1 is of the legacy"),
        ({"method": RSA_SHA1}, "SignatureMethod rsa-sha1 is of the legacy"),
        ({"digest": SHA1}, "DigestMethod sha1 is of the legacy"),
        ({**LEGACY_FORGE, "digest": SHA256}, "DigestMethod sha256 is of the strict"),
        ({**LEGACY_FORGE, "method": RSA_SHA256}, "SignatureMethod rsa-sha256 is of the strict"),
        ({**LEGACY_FORGE, "c14n": EXC_C14N}, "CanonicalizationMethod exc-c14n is of the strict"),
        (
            {**LEGACY_FORGE, "transforms": (ENVELOPED, EXC_C14N)},
            "Transforms (enveloped-signature, exc-c14n) is of the strict",
        ),
        ({"c14n": INC_C14N, "transforms": (ENVELOPED, INC_C14N)}, "the legacy"),
    ],
    ids=[
        "rsa-sha1+sha256",
        "rsa-sha1-in-strict",
        "sha1-in-strict",
        "sha256-in-legacy",
        "rsa-sha256-in-legacy",
        "exc-c14n-in-legacy",
        "exc-c14n-transform-in-legacy",
        "two-and-two",
    ],
)
def test_a_mix_of_the_two_profiles_is_refused_naming_the_odd_parts(
    dev_pki: DevPKI, trust: TrustStore, options: dict, named: str
) -> None:
    forged = forge(edoc(), dev_pki.rsa, **options)
    with pytest.raises(SignatureInvalid, match="mixes the two profiles") as refused:
        verify(forged, trust, at=NOW, legacy_until=UNTIL)
    assert named in refused.value.reason


def test_a_legacy_signature_changed_after_signing_is_signature_invalid(
    dev_pki: DevPKI, trust: TrustStore
) -> None:
    signed = _legacy(dev_pki.rsa)
    with pytest.raises(SignatureInvalid, match="digest"):
        verify(
            signed.replace(b"101/VPCP-KSTT", b"102/VPCP-KSTT", 1), trust, at=NOW, legacy_until=UNTIL
        )


def test_legacy_signed_info_carries_the_namespaces_in_scope_and_strict_does_not(
    dev_pki: DevPKI, trust: TrustStore
) -> None:
    # Inclusive C14N renders every namespace in scope on SignedInfo, so a declaration
    # added on ds:Signature (outside the document digest) breaks only the legacy
    # SignatureValue; exclusive C14N renders only the namespaces SignedInfo uses.
    def declare(signed: bytes) -> bytes:
        return signed.replace(b"<ds:Signature ", b'<ds:Signature xmlns:x="urn:a" ', 1)

    legacy = _legacy(dev_pki.rsa)
    assert verify(legacy, trust, at=NOW, legacy_until=UNTIL).profile is LEGACY
    with pytest.raises(SignatureInvalid, match="SignatureValue does not match"):
        verify(declare(legacy), trust, at=NOW, legacy_until=UNTIL)
    assert verify(declare(_signed(dev_pki.rsa)), trust, at=NOW).profile is SignatureProfile.STRICT


def test_legacy_c14n_takes_no_parameters(dev_pki: DevPKI, trust: TrustStore) -> None:
    root = parse(forge(edoc(), dev_pki.rsa, **LEGACY_FORGE))
    c14n = next(root.iter(f"{DS}CanonicalizationMethod"))
    etree.SubElement(c14n, f"{{{EXC_C14N}}}InclusiveNamespaces", PrefixList="edXML")
    with pytest.raises(SignatureInvalid, match="takes no parameters"):
        verify(etree.tostring(root), trust, at=NOW, legacy_until=UNTIL)


def test_rsa_sha1_with_an_ec_certificate_is_signature_invalid(
    dev_pki: DevPKI, trust: TrustStore
) -> None:
    forged = forge(edoc(), dev_pki.ec, **LEGACY_FORGE)
    with pytest.raises(SignatureInvalid, match="does not match the certificate"):
        verify(forged, trust, at=NOW, legacy_until=UNTIL)


def test_every_certificate_rule_applies_to_legacy_too(
    dev_pki: DevPKI, trust: TrustStore, rsa_key: pki.PrivateKey
) -> None:
    weak = pki.make_leaf(
        "000.00.00.G22", dev_pki.ca, key=pki.generate_key("rsa", rsa_bits=1024), not_before=EARLY
    )
    with pytest.raises(CertUntrusted, match="2048"):
        verify(forge(edoc(), weak, **LEGACY_FORGE), trust, at=NOW, legacy_until=UNTIL)
    expired = pki.make_leaf("000.00.00.G22", dev_pki.ca, key=rsa_key, not_before=EARLY, days=30)
    with pytest.raises(CertExpired):
        verify(forge(edoc(), expired, **LEGACY_FORGE), trust, at=NOW, legacy_until=UNTIL)
    revoked = pki.make_leaf("000.00.00.G22", dev_pki.ca, key=rsa_key, not_before=EARLY)
    crl = pki.make_crl(dev_pki.ca, [revoked.certificate.serial_number], last_update=EARLY)
    with pytest.raises(CertRevoked):
        verify(
            _legacy(revoked),
            TrustStore([dev_pki.ca.certificate], crls=[crl]),
            at=NOW,
            legacy_until=UNTIL,
        )
    stranger = pki.make_ca("Stranger CA", not_before=EARLY)
    with pytest.raises(CertUntrusted):
        verify(
            _legacy(pki.make_leaf("000.00.00.G22", stranger, key=rsa_key, not_before=EARLY)),
            trust,
            at=NOW,
            legacy_until=UNTIL,
        )


def test_a_legacy_signature_out_of_its_place_or_doubled_is_signature_invalid(
    dev_pki: DevPKI, trust: TrustStore
) -> None:
    root = parse(_legacy(dev_pki.rsa))
    root.append(copy.deepcopy(next(root.iter(f"{DS}Signature"))))
    with pytest.raises(SignatureInvalid, match="2 ds:Signature"):
        verify(etree.tostring(root), trust, at=NOW, legacy_until=UNTIL)
    root.remove(root[-1])
    root.append(next(root.iter(f"{DS}Signature")))
    with pytest.raises(SignatureInvalid, match="required place"):
        verify(etree.tostring(root), trust, at=NOW, legacy_until=UNTIL)


def test_x509_subject_name_beside_the_certificate_is_ignored(
    dev_pki: DevPKI, trust: TrustStore
) -> None:
    root = parse(forge(sdk_edoc(), dev_pki.rsa, **LEGACY_FORGE))
    x509_data = next(root.iter(f"{DS}X509Data"))
    x509_data.insert(0, etree.Element(f"{DS}X509SubjectName"))
    x509_data[0].text = "CN=000.00.00.G22,C=VN"
    assert verify(etree.tostring(root), trust, at=NOW, legacy_until=UNTIL).profile is LEGACY


def test_a_verification_policy_date_must_be_a_date(trust: TrustStore) -> None:
    with pytest.raises(TypeError, match=r"datetime\.date"):
        Verifier(trust, legacy_until=NOW)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"datetime\.date"):
        verify(b"<x/>", trust, at=NOW, legacy_until="2027-01-01")  # type: ignore[arg-type]


def test_the_fast_reader_never_takes_a_legacy_signed_info(dev_pki: DevPKI) -> None:
    # The strict fast path is unchanged: legacy is read only once it has failed.
    verify_module = sys.modules["signing.verify"]
    signed_info = next(parse(_legacy(dev_pki.rsa)).iter(f"{DS}SignedInfo"))
    assert verify_module._match_signed_info(canonicalize(signed_info), signed_info) is None
    read = verify_module._read_signed_info(signed_info)
    assert (read.profile, read.method) == (LEGACY, SignatureMethod.RSA_SHA1)

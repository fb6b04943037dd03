"""signing.verify: valid documents pass; every attack is refused with the right rejection."""

from __future__ import annotations

import copy
import sys
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from lxml import etree
from signing_docs import EDXML_NS, SUBJECT, edoc, receipt, status
from signing_support import (
    ENVELOPED,
    EXC_C14N,
    INC_C14N,
    NOW,
    RSA_SHA1,
    SHA1,
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
from signing import SignatureMethod, TrustStore, Verifier, pki, sign, verify
from signing.document import canonicalize
from signing.pki import CertifiedKey, KeyUsageFlags
from signing.profile import DS_NS

DS = f"{{{DS_NS}}}"
E = f"{{{EDXML_NS}}}"
EARLY = datetime(2026, 1, 1, tzinfo=UTC)


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
    etree.SubElement(root, f"{E}StaffInfo").text = "added"
    with pytest.raises(SignatureInvalid, match="required place"):
        verify(etree.tostring(root), trust, at=NOW)


def test_two_signatures_are_signature_invalid(dev_pki: DevPKI, trust: TrustStore) -> None:
    root = parse(_signed(dev_pki.ec))
    signature = next(root.iter(f"{DS}Signature"))
    root.find(f"{E}edXMLEnvelope/{E}edXMLBody").append(copy.deepcopy(signature))
    with pytest.raises(SignatureInvalid, match="2 ds:Signature"):
        verify(etree.tostring(root), trust, at=NOW)


def test_an_unsigned_document_is_signature_invalid(trust: TrustStore) -> None:
    with pytest.raises(SignatureInvalid, match="not signed"):
        verify(edoc(), trust, at=NOW)


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
    ],
)
def test_algorithms_and_references_outside_the_profile_are_signature_invalid(
    dev_pki: DevPKI, trust: TrustStore, options: dict, message: str
) -> None:
    forged = forge(edoc(), dev_pki.rsa, **options)
    with pytest.raises(SignatureInvalid, match=message):
        verify(forged, trust, at=NOW)


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

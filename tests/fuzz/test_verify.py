"""Fuzzing the verifier: a changed signed content never verifies; the fast paths are exact.

Every input is one of the signed documents of ``strategies.VALID_DOCUMENTS``, mutated
one to three times (byte flips, insertions, deletions, truncation, duplicated
slices; duplicated, removed or swapped elements, changed text and attributes,
comments, processing instructions, CDATA, whitespace outside the root). Whether a
mutation is *neutral* is not guessed: the oracle canonicalizes the document
without its Signature the slow way (copy, remove, exclusive C14N), and a mutation
is neutral exactly when that and the canonical SignedInfo are unchanged. So a
comment or a CDATA section in a signed field may verify (and the hub then reads
the same header), a changed character may not.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
import sys

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import event, example, given
from hypothesis import strategies as st
from lxml import etree

import schemas
from axis.rejections import Rejection
from schemas.xml import parse
from signing.document import canonicalize, enveloped_digest, scan
from tests.corpus import build
from tests.corpus.build import DS, LENIENT
from tests.fuzz import strategies
from tests.fuzz.strategies import (
    MAX_BYTES,
    NOW,
    SIGNERS,
    VALID_DOCUMENTS,
    signed_content,
    verifier,
)

_verify_module = sys.modules["signing.verify"]

ORIGINALS = {
    kind: (signed_content(body), strategies.verify(body).fingerprint)
    for kind, body in VALID_DOCUMENTS.items()
}


def kind_and_mutation() -> st.SearchStrategy[tuple[str, bytes]]:
    """A kind of document and a mutation of it."""
    return st.sampled_from(sorted(VALID_DOCUMENTS)).flatmap(
        lambda kind: strategies.mutated({kind: VALID_DOCUMENTS[kind]}).map(lambda b: (kind, b))
    )


def _header(body: bytes) -> schemas.EdocHeader:
    return schemas.read_header(parse(body, max_bytes=MAX_BYTES))


@given(kind_and_mutation())
@example(("edoc", VALID_DOCUMENTS["edoc"].replace(b"<edXML:Subject>", b"<edXML:Subject><!---->")))
@example(("edoc", VALID_DOCUMENTS["edoc"] + b"\n\n"))
@example(("status", VALID_DOCUMENTS["status"].replace(b"?>", b"?>\n<!-- before the root -->", 1)))
def test_a_mutation_verifies_only_if_the_signed_content_is_unchanged(
    case: tuple[str, bytes],
) -> None:
    kind, body = case
    try:
        signer = strategies.verify(body)
    except Rejection as exc:
        event(exc.code)
        return
    event("VALID")
    content, fingerprint = ORIGINALS[kind]
    assert signed_content(body) == content, "a changed signed content verified"
    assert signer.fingerprint == fingerprint
    if kind.startswith("edoc"):
        assert _header(body) == _header(VALID_DOCUMENTS[kind])


@given(kind_and_mutation())
def test_the_fast_enveloped_digest_equals_the_slow_one(case: tuple[str, bytes]) -> None:
    _, body = case
    expected = signed_content(body)
    try:
        root = parse(body, max_bytes=MAX_BYTES)
    except Rejection:
        return
    found = scan(root)
    if len(found.signatures) != 1:
        return
    [signature] = found.signatures
    if expected is None:
        # The slow way cannot canonicalize it: neither may the fast one.
        with pytest.raises(Rejection):
            enveloped_digest(signature, (), found)
        return
    slow = hashlib.sha256(expected[0]).digest()
    assert enveloped_digest(signature, (), found) == slow
    # The verifier's own path: a tree it parsed and may cut large texts out of.
    again = parse(body, max_bytes=MAX_BYTES)
    [signature] = scan(again).signatures
    assert enveloped_digest(signature, (), disposable=True) == slow


@given(kind_and_mutation(), st.booleans())
def test_the_fast_signed_info_reader_agrees_with_the_strict_one(
    case: tuple[str, bytes], indent: bool
) -> None:
    _, body = case
    try:
        root = parse(body, max_bytes=MAX_BYTES)
    except Rejection:
        return
    signed_infos = list(root.iter(f"{DS}SignedInfo"))
    if len(signed_infos) != 1:
        return
    [signed_info] = signed_infos
    if indent:
        etree.indent(signed_info)  # the shape xmlsec1 templates have
    try:
        canonical = canonicalize(signed_info)
    except Rejection:
        return  # nothing to read: verify refuses it before either reader
    try:
        fast = _verify_module._match_signed_info(canonical, signed_info)
    except Rejection:
        fast = None
        fast_refused = True
    else:
        fast_refused = False
    try:
        strict = _verify_module._read_signed_info(signed_info)
    except Rejection:
        assert fast is None, "the fast reader accepted what the strict one refuses"
        return
    if fast is not None:
        assert (fast.method, fast.digest) == (strict.method, strict.digest)
        assert strict.c14n_prefixes == strict.reference_prefixes == ()
    elif fast_refused:
        raise AssertionError("the fast reader refused what the strict one accepts")


@given(kind_and_mutation())
def test_a_leniently_parsed_tree_is_verified_or_rejected_never_crashes(
    case: tuple[str, bytes],
) -> None:
    """Callers may hand the verifier a tree parsed elsewhere (comments, DTDs kept)."""
    _, body = case
    try:
        root = etree.fromstring(body, LENIENT)
    except (etree.XMLSyntaxError, ValueError):
        return
    before = etree.tostring(root)
    with contextlib.suppress(Rejection):
        verifier().verify(root, at=NOW)
    assert etree.tostring(root) == before, "verify changed the caller's tree"


_LEAF_DER = SIGNERS["ec"].certificate.public_bytes(Encoding.DER)
_LEAF_B64 = base64.b64encode(_LEAF_DER)
_EC_PUBLIC_KEY_OID = bytes.fromhex("06072a8648ce3d0201")  # 1.2.840.10045.2.1
_UNKNOWN_KEY_DER = _LEAF_DER.replace(_EC_PUBLIC_KEY_OID, bytes.fromhex("06072a8648ce3d0209"), 1)
"""The signer's certificate with its key algorithm changed to an OID nobody knows."""
_BAD_POINT_DER = _LEAF_DER.replace(bytes.fromhex("03420004"), bytes.fromhex("03420044"), 1)
"""The signer's certificate with a public key that is no point (found by the long run)."""
_TWO_KEY_USAGES_DER = _LEAF_DER.replace(bytes.fromhex("0603551d0e"), bytes.fromhex("0603551d0f"), 1)
"""The signer's certificate with its subjectKeyIdentifier renamed a second keyUsage."""
_CA_SIGNATURE = SIGNERS["ec"].certificate.signature
_UNUSED_BITS_DER = _LEAF_DER.replace(
    b"\x03" + bytes([len(_CA_SIGNATURE) + 1]) + b"\x00" + _CA_SIGNATURE,
    b"\x03" + bytes([len(_CA_SIGNATURE) + 1]) + b"\x01" + _CA_SIGNATURE,
)
"""The signer's certificate claiming one unused bit in the CA's signature BIT STRING."""


def _with_certificates(*ders: bytes) -> bytes:
    """The EC-signed edoc with its X509Certificate replaced by ``ders`` (leaf first)."""
    texts = b"</ds:X509Certificate><ds:X509Certificate>".join(base64.b64encode(d) for d in ders)
    return VALID_DOCUMENTS["edoc"].replace(_LEAF_B64, texts, 1)


@st.composite
def _mutated_der(draw: st.DrawFn) -> bytes:
    der = bytearray(_LEAF_DER)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(der) - 1))
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete"]))
        if kind == "flip":
            der[at] ^= draw(st.integers(1, 255))
        elif kind == "set":
            der[at] = draw(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0x81, 0xFF]))
        elif kind == "insert":
            der[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif len(der) > 1:
            del der[at]
    return bytes(der)


@given(_mutated_der(), st.booleans())
@example(_UNKNOWN_KEY_DER, False)
@example(_UNKNOWN_KEY_DER, True)
@example(_BAD_POINT_DER, False)
@example(_TWO_KEY_USAGES_DER, False)
@example(_TWO_KEY_USAGES_DER, True)
@example(_UNUSED_BITS_DER, False)
def test_a_mutated_certificate_is_rejected_never_crashes(der: bytes, as_intermediate: bool) -> None:
    """The DER of the signer's certificate (or of an intermediate after it), damaged:
    a rejection, never another exception. A damaged signer certificate verifies only
    if what it certifies is untouched (the long run found one: the unused-bits octet
    of the CA's signature BIT STRING, which cryptography ignores); its fingerprint is
    then another, which the hub's registry does not know (corpus case
    ``certificate-re-encoded``)."""
    body = _with_certificates(_LEAF_DER, der) if as_intermediate else _with_certificates(der)
    result = strategies.verdict(body)
    event(result)
    if result == "VALID" and not as_intermediate:
        certified = x509.load_der_x509_certificate(der).tbs_certificate_bytes
        assert certified == SIGNERS["ec"].certificate.tbs_certificate_bytes


@pytest.mark.parametrize("as_intermediate", [False, True], ids=["signer", "intermediate"])
@pytest.mark.parametrize(
    "damaged", [_UNKNOWN_KEY_DER, _BAD_POINT_DER], ids=["unknown-oid", "no-point"]
)
def test_a_certificate_whose_key_cannot_be_loaded_is_signature_invalid(
    damaged: bytes, as_intermediate: bool
) -> None:
    """Found by the fuzzers (the long run of the mutation test): cryptography's
    UnsupportedAlgorithm (an unknown key OID) and ValueError (a key that is no curve
    point) escaped the verifier, and the pipeline took the message for a bug of its own."""
    assert damaged != _LEAF_DER
    leaf, *chain = [_LEAF_DER, damaged] if as_intermediate else [damaged]
    assert strategies.verdict(_with_certificates(leaf, *chain)) == "SIGNATURE_INVALID"


def test_a_certificate_with_a_duplicated_extension_is_cert_untrusted() -> None:
    """Found by the certificate fuzzer: cryptography's DuplicateExtension, which is no
    ValueError, escaped the signing-fitness check."""
    assert _TWO_KEY_USAGES_DER != _LEAF_DER
    assert strategies.verdict(_with_certificates(_TWO_KEY_USAGES_DER)) == "CERT_UNTRUSTED"


def _relative_namespace_in_key_info(body: bytes) -> bytes:
    return body.replace(b"</ds:KeyInfo>", b'<r:x xmlns:r="relative/uri"/></ds:KeyInfo>', 1)


_NON_ASCII_DIGEST = re.sub(
    rb"<ds:DigestValue>[^<]*</ds:DigestValue>",
    b"<ds:DigestValue>" + "é".encode() * 22 + b"</ds:DigestValue>",
    VALID_DOCUMENTS["edoc"],
    count=1,
)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (_relative_namespace_in_key_info(VALID_DOCUMENTS["edoc"]), "SIGNATURE_INVALID"),
        (_relative_namespace_in_key_info(VALID_DOCUMENTS["status"]), "SIGNATURE_INVALID"),
        (_NON_ASCII_DIGEST, "SIGNATURE_INVALID"),
        (
            _with_certificates(
                _LEAF_DER.replace(b"\xa0\x03\x02\x01\x02", b"\xa0\x03\x02\x01\x03", 1)
            ),
            "SIGNATURE_INVALID",
        ),
    ],
    ids=["relative-namespace-edoc", "relative-namespace-status", "non-ascii-digest", "x509-v4"],
)
def test_what_the_long_fuzzing_run_found_is_a_rejection(body: bytes, code: str) -> None:
    """Found by ``HYPOTHESIS_PROFILE=long``: lxml's C14NError (a namespace named by a
    relative URI, inside ds:Signature where the XSD looks at nothing), a
    UnicodeDecodeError (a 44-byte DigestValue that is not ASCII) and cryptography's
    InvalidVersion (an X.509 version 4) all escaped the verifier."""
    assert strategies.verdict(body) == code


def test_a_re_encoded_certificate_is_the_same_signer_under_another_fingerprint() -> None:
    """ECDSA signatures are malleable, so anyone can re-encode a certificate: (r, s)
    becomes (r, n - s). The verifier rightly accepts it as the same signer; what stops
    it at the hub is the registry, which binds exact fingerprints (CERT_NOT_REGISTERED,
    corpus cases ``certificate-re-encoded``, ``revoked-certificate-re-encoded``)."""
    original = strategies.verify(VALID_DOCUMENTS["edoc"])
    reencoded = build.reencoded_certificate(SIGNERS["ec"].certificate)
    assert reencoded != _LEAF_DER
    signer = strategies.verify(_with_certificates(reencoded))
    assert signer.subject_code == original.subject_code
    assert signer.certificate.public_key() == original.certificate.public_key()
    assert signer.fingerprint != original.fingerprint

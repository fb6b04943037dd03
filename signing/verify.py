"""Verifying documents against the strict profile of PROTOCOL section 5.

Example::

    verifier = Verifier(TrustStore.from_files(["ca.pem"], crl_paths=["crl.pem"]))
    signer = verifier.verify(body, at=datetime.now(UTC))  # raises a Rejection
    signer.subject_code, signer.fingerprint

What is refused, and as what:

- ``SIGNATURE_INVALID``: no ``ds:Signature``; more than one anywhere in the
  document; one that is not the last child element of ``edXML/edXMLEnvelope/
  edXMLHeader`` (edoc), of the root (``Status``, hub messages); a DOCTYPE; any
  element of ``Signature``/``SignedInfo``/``Reference`` missing, repeated, out of
  order or unknown; any algorithm other than the profile's (SHA-1, rsa-sha1,
  inclusive or with-comments C14N, XPath, XSLT…); a Reference ``URI`` other than
  ``""`` (absent included); transforms other than exactly enveloped-signature then
  exclusive C14N; a digest or signature value mismatch; a signature algorithm that
  does not match the certificate's key type; a missing or unparsable
  ``KeyInfo/X509Data/X509Certificate``.
- ``CERT_UNTRUSTED``, ``CERT_EXPIRED``, ``CERT_REVOKED``: see :mod:`signing.trust`.
- ``MALFORMED`` / ``TOO_LARGE`` from the hardened parser, for bytes input.

``InclusiveNamespaces PrefixList`` under the exclusive C14N transform or
CanonicalizationMethod is *honored*, as the exclusive C14N recommendation defines
it: it only makes the named in-scope namespace declarations part of the signed
bytes, never drops content, so it cannot widen what an attacker can change, and
signers such as xmlsec1 or Apache Santuario may emit it. Anything else inside a
Transform is refused. ``KeyInfo`` must hold exactly one ``X509Data`` whose first
``X509Certificate`` is the signer's (further ones are offered as intermediates);
other ``KeyInfo``/``X509Data`` children (``KeyName``, ``KeyValue``,
``X509IssuerSerial``…) are ignored: they are outside the signed data and the key
is only ever taken from the certificate.

Speed: the document is parsed once and canonicalized once, and the Signature is
cut out of the canonical bytes (:func:`signing.document.enveloped_digest`; the
tree is never modified, so an element passed in is left exactly as it was).
Parsed certificates are cached by their base64 text and validated chains by
(leaf, intermediates), so a known signer costs one digest, one public-key
operation and a validity/CRL re-check.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import re
import weakref
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from lxml import etree

from axis.rejections import CertUntrusted, Rejection, SignatureInvalid
from schemas.xml import DEFAULT_MAX_BYTES, has_doctype, parse
from signing.document import canonicalize, enveloped_digest, is_required_place, scan
from signing.profile import (
    DS_NS,
    EXC_C14N_NS,
    TRANSFORMS,
    CanonicalizationMethod,
    DigestMethod,
    SignatureMethod,
    ds,
)
from signing.trust import (
    TrustStore,
    ValidatedChain,
    build_chain,
    check_signing_certificate,
    common_name,
)

_SIGNATURE = ds("Signature")
_SIGNED_INFO = ds("SignedInfo")
_SIGNATURE_VALUE = ds("SignatureValue")
_KEY_INFO = ds("KeyInfo")
_C14N_METHOD = ds("CanonicalizationMethod")
_SIGNATURE_METHOD = ds("SignatureMethod")
_REFERENCE = ds("Reference")
_TRANSFORMS = ds("Transforms")
_TRANSFORM = ds("Transform")
_DIGEST_METHOD = ds("DigestMethod")
_DIGEST_VALUE = ds("DigestValue")
_X509_DATA = ds("X509Data")
_X509_CERTIFICATE = ds("X509Certificate")
_INCLUSIVE_NAMESPACES = f"{{{EXC_C14N_NS}}}InclusiveNamespaces"
_PREFIX = re.compile(r"^(#default|[A-Za-z_][A-Za-z0-9_.\-]*)$")
_SIGNATURE_METHODS = {m.value: m for m in SignatureMethod}
_CACHE_LIMIT = 4096


@dataclass(frozen=True)
class VerifiedSignature:
    """Who signed a document that verified: the certificate and what identifies it."""

    certificate: x509.Certificate
    fingerprint: str
    """Hex SHA-256 of the certificate's DER, the registry's key."""
    algorithm: SignatureMethod
    chain: tuple[x509.Certificate, ...]
    """Leaf first, trust anchor last."""
    subject_code: str
    """The agency code: the certificate subject's CN."""


@dataclass(frozen=True)
class _Certificate:
    certificate: x509.Certificate
    fingerprint: str
    unfit: str | None
    """Why this certificate cannot sign documents, or None; checked once, not per call."""
    subject_code: str | None
    algorithm: SignatureMethod | None
    """The signature method that matches the key type."""
    public_key: object
    """Loaded once: cryptography re-parses the key on every ``public_key()`` call."""


@dataclass(frozen=True)
class _SignedInfo:
    element: etree._Element
    method: SignatureMethod
    c14n_prefixes: tuple[str, ...]
    reference_prefixes: tuple[str, ...]
    digest: bytes


def _children(element: etree._Element) -> list[etree._Element]:
    # Comments and processing instructions are not structure (PIs inside SignedInfo
    # are still covered by the signature through canonicalization).
    return list(element.iterchildren(etree.Element))


def _expect(element: etree._Element, *tags: str) -> list[etree._Element]:
    children = _children(element)
    if [child.tag for child in children] != list(tags):
        found = ", ".join(etree.QName(c).localname for c in children) or "nothing"
        wanted = ", ".join(etree.QName(t).localname for t in tags) or "nothing"
        raise SignatureInvalid(
            f"{etree.QName(element).localname} must contain exactly {wanted}, not {found}"
        )
    return children


def _algorithm(element: etree._Element) -> str:
    value = element.get("Algorithm")
    if value is None:
        raise SignatureInvalid(f"{etree.QName(element).localname} has no Algorithm")
    return value


def _prefixes(element: etree._Element) -> tuple[str, ...]:
    """The honored ``InclusiveNamespaces PrefixList`` of an exclusive C14N element, if any."""
    children = _children(element)
    if not children:
        return ()
    if len(children) != 1 or children[0].tag != _INCLUSIVE_NAMESPACES:
        raise SignatureInvalid(
            f"{etree.QName(element).localname} may only carry InclusiveNamespaces"
        )
    prefixes = tuple((children[0].get("PrefixList") or "").split())
    if not all(_PREFIX.match(p) for p in prefixes):
        raise SignatureInvalid("InclusiveNamespaces PrefixList is not a list of prefixes")
    return prefixes


def _b64(text: str | None, what: str) -> bytes:
    try:
        # Line breaks are allowed (xmlsec1 wraps at 64); anything else not base64 is not.
        compact = "".join(text.split()) if text else ""
        value = binascii.a2b_base64(compact.encode("ascii"), strict_mode=True)
    except (binascii.Error, ValueError, UnicodeError):
        raise SignatureInvalid(f"{what} is not base64") from None
    if not value:
        raise SignatureInvalid(f"{what} is empty")
    return value


_WS = rb"[ \t\n]*"
_SIGNED_INFO_PATTERN = (
    rb'<{q}SignedInfo xmlns{x}="http://www\.w3\.org/2000/09/xmldsig#">'
    + _WS
    + rb'<{q}CanonicalizationMethod Algorithm="http://www\.w3\.org/2001/10/xml-exc-c14n#">'
    + rb"</{q}CanonicalizationMethod>"
    + _WS
    + rb'<{q}SignatureMethod Algorithm="(?P<method>'
    + rb"http://www\.w3\.org/2001/04/xmldsig-more#(?:rsa|ecdsa)-sha256"
    + rb')"></{q}SignatureMethod>'
    + _WS
    + rb'<{q}Reference URI="">'
    + _WS
    + rb"<{q}Transforms>"
    + _WS
    + rb'<{q}Transform Algorithm="http://www\.w3\.org/2000/09/xmldsig#enveloped-signature">'
    + rb"</{q}Transform>"
    + _WS
    + rb'<{q}Transform Algorithm="http://www\.w3\.org/2001/10/xml-exc-c14n#"></{q}Transform>'
    + _WS
    + rb"</{q}Transforms>"
    + _WS
    + rb'<{q}DigestMethod Algorithm="http://www\.w3\.org/2001/04/xmlenc#sha256">'
    + rb"</{q}DigestMethod>"
    + _WS
    + rb"<{q}DigestValue>(?P<digest>[A-Za-z0-9+/= \t\n]*)</{q}DigestValue>"
    + _WS
    + rb"</{q}Reference>"
    + _WS
    + rb"</{q}SignedInfo>"
)
_SIGNED_INFO_RES: dict[str | None, re.Pattern[bytes]] = {}


def _exact_signed_info(prefix: str | None) -> tuple[dict[bytes, SignatureMethod], bytes]:
    """The canonical SignedInfo our Signer (and signxml) produce, split around the
    DigestValue: one head per signature method, and the tail."""
    q, x = (f"{prefix}:", f":{prefix}") if prefix else ("", "")
    transforms = "".join(f'<{q}Transform Algorithm="{t.value}"></{q}Transform>' for t in TRANSFORMS)
    heads = {
        (
            f'<{q}SignedInfo xmlns{x}="{DS_NS}">'
            f'<{q}CanonicalizationMethod Algorithm="{CanonicalizationMethod.EXCLUSIVE_C14N.value}">'
            f"</{q}CanonicalizationMethod>"
            f'<{q}SignatureMethod Algorithm="{method.value}"></{q}SignatureMethod>'
            f'<{q}Reference URI=""><{q}Transforms>{transforms}</{q}Transforms>'
            f'<{q}DigestMethod Algorithm="{DigestMethod.SHA256.value}"></{q}DigestMethod>'
            f"<{q}DigestValue>"
        ).encode(): method
        for method in SignatureMethod
    }
    return heads, f"</{q}DigestValue></{q}Reference></{q}SignedInfo>".encode()


_EXACT: dict[str | None, tuple[dict[bytes, SignatureMethod], bytes]] = {}
_DIGEST_B64_LEN = 44


def _match_signed_info(canonical: bytes, element: etree._Element) -> _SignedInfo | None:
    """The common case, checked on the signed bytes themselves: a SignedInfo exactly
    in the profile, without parameters or extra attributes. ``None`` sends anything
    else to :func:`_read_signed_info`, which accepts or explains precisely.
    """
    prefix = element.prefix
    exact = _EXACT.get(prefix)
    if exact is None:
        exact = _EXACT[prefix] = _exact_signed_info(prefix)
    heads, tail = exact
    # Without whitespace between the elements (ours, signxml): plain comparisons.
    if canonical.endswith(tail):
        end = len(canonical) - len(tail)
        for head, method in heads.items():
            if end - len(head) == _DIGEST_B64_LEN and canonical.startswith(head):
                # latin-1 never fails; _b64 refuses whatever is not ASCII base64.
                digest = _b64(canonical[len(head) : end].decode("latin-1"), "DigestValue")
                if len(digest) != hashlib.sha256().digest_size:
                    raise SignatureInvalid("DigestValue is not a SHA-256 digest")
                return _SignedInfo(element, method, (), (), digest)
    # With indentation (xmlsec1 templates): the same structure, as a pattern.
    pattern = _SIGNED_INFO_RES.get(prefix)
    if pattern is None:
        if prefix is not None and not _PREFIX.match(prefix):
            return None
        q = f"{prefix}:".encode() if prefix else b""
        x = f":{prefix}".encode() if prefix else b""
        pattern = re.compile(_SIGNED_INFO_PATTERN.replace(b"{q}", q).replace(b"{x}", x))
        _SIGNED_INFO_RES[prefix] = pattern
    match = pattern.fullmatch(canonical)
    if match is None:
        return None
    digest = _b64(match["digest"].decode("ascii"), "DigestValue")
    if len(digest) != hashlib.sha256().digest_size:
        raise SignatureInvalid("DigestValue is not a SHA-256 digest")
    method = _SIGNATURE_METHODS[match["method"].decode("ascii")]
    return _SignedInfo(element, method, (), (), digest)


def _read_signed_info(signed_info: etree._Element) -> _SignedInfo:
    c14n, method, reference = _expect(signed_info, _C14N_METHOD, _SIGNATURE_METHOD, _REFERENCE)
    if _algorithm(c14n) != CanonicalizationMethod.EXCLUSIVE_C14N:
        raise SignatureInvalid(f"CanonicalizationMethod {c14n.get('Algorithm')} is not allowed")
    algorithm = _SIGNATURE_METHODS.get(_algorithm(method))
    if algorithm is None:
        raise SignatureInvalid(f"SignatureMethod {method.get('Algorithm')} is not allowed")
    if _children(method):
        raise SignatureInvalid("SignatureMethod takes no parameters")
    uri = reference.get("URI")
    if uri != "":
        raise SignatureInvalid(f'the Reference URI must be "" (the whole document), not {uri!r}')
    transforms, digest_method, digest_value = _expect(
        reference, _TRANSFORMS, _DIGEST_METHOD, _DIGEST_VALUE
    )
    steps = _expect(transforms, *([_TRANSFORM] * len(TRANSFORMS)))
    algorithms = tuple(_algorithm(step) for step in steps)
    if algorithms != tuple(t.value for t in TRANSFORMS):
        raise SignatureInvalid(
            f"transforms must be exactly enveloped-signature then exc-c14n, not {algorithms}"
        )
    enveloped, exclusive = steps
    if _children(enveloped):
        raise SignatureInvalid("the enveloped-signature transform takes no parameters")
    if _algorithm(digest_method) != DigestMethod.SHA256 or _children(digest_method):
        raise SignatureInvalid(f"DigestMethod {digest_method.get('Algorithm')} is not allowed")
    digest = _b64(digest_value.text, "DigestValue")
    if len(digest) != hashlib.sha256().digest_size:
        raise SignatureInvalid("DigestValue is not a SHA-256 digest")
    return _SignedInfo(signed_info, algorithm, _prefixes(c14n), _prefixes(exclusive), digest)


def _describe_certificate(text: str) -> _Certificate:
    try:
        certificate = x509.load_der_x509_certificate(_b64(text, "X509Certificate"))
    except (ValueError, x509.InvalidVersion) as exc:
        raise SignatureInvalid(f"X509Certificate is not a DER certificate: {exc}") from None
    der = certificate.public_bytes(serialization.Encoding.DER)
    try:
        key = certificate.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        # A key type cryptography cannot load (an unknown algorithm OID) verifies nothing.
        raise SignatureInvalid(f"X509Certificate holds an unusable public key: {exc}") from None
    unfit: str | None = None
    subject_code: str | None = None
    try:
        check_signing_certificate(certificate)
        subject_code = common_name(certificate)
    except Rejection as exc:
        unfit = exc.reason
    except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType) as exc:
        unfit = f"unreadable certificate extension: {exc}"
    algorithm = (
        SignatureMethod.RSA_SHA256
        if isinstance(key, rsa.RSAPublicKey)
        else SignatureMethod.ECDSA_SHA256
        if isinstance(key, ec.EllipticCurvePublicKey)
        else None
    )
    fingerprint = hashlib.sha256(der).hexdigest()
    return _Certificate(certificate, fingerprint, unfit, subject_code, algorithm, key)


_PKCS1V15 = padding.PKCS1v15()
_SHA256 = hashes.SHA256()
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


def _verify_value(key: object, method: SignatureMethod, value: bytes, data: bytes) -> None:
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(value, data, _PKCS1V15, _SHA256)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            size = (key.curve.key_size + 7) // 8
            if len(value) != 2 * size:
                raise SignatureInvalid("the ECDSA SignatureValue must be r || s, not DER")
            r = int.from_bytes(value[:size], "big")
            s = int.from_bytes(value[size:], "big")
            key.verify(encode_dss_signature(r, s), data, _ECDSA_SHA256)
        else:
            raise SignatureInvalid(f"{type(key).__name__} keys are not in the profile")
    except InvalidSignature:
        raise SignatureInvalid(f"the SignatureValue does not match ({method.name})") from None


def _put(cache: dict, key: object, value: object) -> None:
    if len(cache) >= _CACHE_LIMIT:
        # Oldest first: dicts keep insertion order. Good enough against growth; the
        # working set (95 agencies, a few certificates each) is far below the limit.
        del cache[next(iter(cache))]
    cache[key] = value


class Verifier:
    """Verifies signed documents against one :class:`TrustStore`, caching what it can.

    Not thread-safe for concurrent mutation in free-threaded Python; the hub runs
    one verifier per worker process.
    """

    def __init__(self, trust: TrustStore) -> None:
        self.trust = trust
        self._certificates: dict[str, _Certificate] = {}
        self._chains: dict[tuple[str, ...], tuple[ValidatedChain, VerifiedSignature]] = {}

    def _certificate(self, text: str | None) -> _Certificate:
        key = text or ""
        cached = self._certificates.get(key)
        if cached is None:
            cached = _describe_certificate(key)
            _put(self._certificates, key, cached)
        return cached

    def _signer(
        self, leaf: _Certificate, intermediates: list[_Certificate], at: datetime
    ) -> VerifiedSignature:
        key = (leaf.fingerprint, *(c.fingerprint for c in intermediates))
        cached = self._chains.get(key)
        if cached is not None:
            chain, signer = cached
            chain.recheck(self.trust, at)
            return signer
        chain = build_chain(
            self.trust, leaf.certificate, [c.certificate for c in intermediates], at
        )
        assert leaf.subject_code is not None and leaf.algorithm is not None
        # Everything in the result depends on the leaf and chain only, so it is built once.
        signer = VerifiedSignature(
            certificate=leaf.certificate,
            fingerprint=leaf.fingerprint,
            algorithm=leaf.algorithm,
            chain=chain.chain,
            subject_code=leaf.subject_code,
        )
        _put(self._chains, key, (chain, signer))
        return signer

    def verify(
        self,
        document: bytes | etree._Element,
        *,
        at: datetime,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> VerifiedSignature:
        """Verify ``document``'s signature and its signer's certificate at time ``at``.

        ``document`` is bytes (parsed with :func:`schemas.xml.parse`) or an
        already-parsed element (its whole document is verified; it is left
        unchanged). ``at`` must be timezone-aware. Raises a
        :class:`~axis.rejections.Rejection` subclass; see the module docstring.
        """
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError("the verification time must be timezone-aware")
        if isinstance(document, bytes | bytearray | memoryview):
            root = parse(bytes(document), max_bytes=max_bytes)
            disposable = True
        else:
            root = document.getroottree().getroot()
            disposable = False
        if has_doctype(root):
            raise SignatureInvalid("a DOCTYPE (DTD or entity declarations) is not allowed")
        found = scan(root)
        signatures = found.signatures
        if not signatures:
            raise SignatureInvalid("the document is not signed")
        if len(signatures) > 1:
            raise SignatureInvalid(f"{len(signatures)} ds:Signature elements; exactly one allowed")
        signature = signatures[0]
        if not is_required_place(signature, root):
            raise SignatureInvalid("the ds:Signature is not in its required place")
        signed_info_element, value_element, key_info = _expect(
            signature, _SIGNED_INFO, _SIGNATURE_VALUE, _KEY_INFO
        )
        signed_bytes = canonicalize(signed_info_element)
        signed_info = _match_signed_info(signed_bytes, signed_info_element)
        if signed_info is None:
            signed_info = _read_signed_info(signed_info_element)
            if signed_info.c14n_prefixes:
                signed_bytes = canonicalize(signed_info_element, signed_info.c14n_prefixes)
        value = _b64(value_element.text, "SignatureValue")
        x509_data = [c for c in _children(key_info) if c.tag == _X509_DATA]
        if len(x509_data) != 1:
            raise SignatureInvalid("KeyInfo must hold exactly one X509Data")
        texts = [c.text for c in _children(x509_data[0]) if c.tag == _X509_CERTIFICATE]
        if not texts:
            raise SignatureInvalid("X509Data holds no X509Certificate")

        digest = enveloped_digest(
            signature, signed_info.reference_prefixes, found, disposable=disposable
        )
        if not hmac.compare_digest(digest, signed_info.digest):
            raise SignatureInvalid("the document does not match the signed digest")

        leaf = self._certificate(texts[0])
        if leaf.algorithm is not signed_info.method:
            raise SignatureInvalid(
                f"SignatureMethod {signed_info.method.name} does not match the certificate's key"
            )
        _verify_value(leaf.public_key, signed_info.method, value, signed_bytes)
        if leaf.unfit is not None:
            raise CertUntrusted(leaf.unfit)
        return self._signer(leaf, [self._certificate(text) for text in texts[1:]], at)


_VERIFIERS: weakref.WeakKeyDictionary[TrustStore, Verifier] = weakref.WeakKeyDictionary()


def verify(
    document: bytes | etree._Element,
    trust: TrustStore,
    *,
    at: datetime,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> VerifiedSignature:
    """Verify ``document`` against ``trust`` at ``at``; see :meth:`Verifier.verify`.

    Reuses one :class:`Verifier` (and its caches) per trust store.
    """
    verifier = _VERIFIERS.get(trust)
    if verifier is None:
        verifier = _VERIFIERS[trust] = Verifier(trust)
    return verifier.verify(document, at=at, max_bytes=max_bytes)

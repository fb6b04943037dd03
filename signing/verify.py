"""Verifying documents against the profiles of PROTOCOL section 5: strict, and legacy.

Example::

    verifier = Verifier(TrustStore.from_files(["ca.pem"], crl_paths=["crl.pem"]))
    signer = verifier.verify(body, at=datetime.now(UTC))  # raises a Rejection
    signer.subject_code, signer.fingerprint, signer.profile

Two profiles (:mod:`signing.profile`):

- **strict**: exclusive C14N, rsa-sha256 or ecdsa-sha256, transforms exactly
  enveloped-signature then exclusive C14N, sha256.
- **legacy**, what the national axis's Java SDK writes: inclusive C14N 1.0
  (``http://www.w3.org/TR/2001/REC-xml-c14n-20010315``) for SignedInfo,
  rsa-sha1, transforms enveloped-signature then C14N 1.0, sha1. Accepted only by a
  verifier given ``legacy_until`` and only while the Vietnamese calendar date
  (Asia/Ho_Chi_Minh) of the verification time is strictly before it; otherwise
  ``SIGNATURE_INVALID`` saying the document is signed under the legacy profile
  and that this hub does not accept it. The SDK's variant with the
  enveloped-signature transform *alone* is accepted too: XML-DSig 1.0 (section
  4.3.3.2) turns the node-set left by the last transform into octets with
  inclusive C14N 1.0 without comments, so that variant signs exactly the same
  bytes as the explicit one (it is also how xmlsec1 reads it); nothing less is
  covered by the digest, so it is no weaker. Everything else (one signature,
  its place, one ``Reference URI=""``, KeyInfo, trusted chain, key usage,
  validity, CRL, RSA >= 2048 bits) is the same for both. A signature mixing
  the two (rsa-sha1 with a sha256 digest, exclusive C14N with sha1…) is in
  neither, and the reason names which parts belong to which.

With inclusive C14N, SignedInfo is canonicalized as a document subset: it
carries the namespace declarations in scope (those of the edXML root included)
and the ``xml:*`` attributes of its ancestors, exactly as C14N 1.0 section 2.4
says; see :func:`signing.document.canonicalize_c14n10`. The legacy path costs
the strict one nothing: it is taken only when the strict fast match fails.

What is refused, and as what:

- ``SIGNATURE_INVALID``: no ``ds:Signature`` (with its own reason when the
  document holds a ``Signature`` outside the XML-DSig namespace, as some SDK
  output does: that is not an XML-DSig signature); more than one anywhere in the
  document; one that is not the last child element of ``edXML/edXMLEnvelope/
  edXMLHeader`` (``edXML`` documents and statuses), of the root (hub messages);
  a DOCTYPE; any element of ``Signature``/``SignedInfo``/``Reference`` missing,
  repeated, out of order or unknown; any algorithm outside both profiles (md5,
  with-comments C14N, XPath, XSLT…) or a mix of the two; a legacy signature the
  hub's policy does not accept; a Reference ``URI`` other than ``""`` (absent
  included); a digest or signature value mismatch; a signature algorithm that
  does not match the certificate's key type; a missing or unparsable
  ``KeyInfo/X509Data/X509Certificate``.
- ``CERT_UNTRUSTED``, ``CERT_EXPIRED``, ``CERT_REVOKED``: see :mod:`signing.trust`.
- ``MALFORMED`` / ``TOO_LARGE`` from the hardened parser, for bytes input.

``InclusiveNamespaces PrefixList`` under the exclusive C14N transform or
CanonicalizationMethod is *honored*, as the exclusive C14N recommendation defines
it: it only makes the named in-scope namespace declarations part of the signed
bytes, never drops content, so it cannot widen what an attacker can change, and
signers such as xmlsec1 or Apache Santuario may emit it. Anything else inside a
Transform is refused (inclusive C14N 1.0, in the legacy profile, takes no
parameter at all). ``KeyInfo`` must hold exactly one ``X509Data`` whose first
``X509Certificate`` is the signer's (further ones are offered as intermediates);
other ``KeyInfo``/``X509Data`` children (``KeyName``, ``KeyValue``,
``X509IssuerSerial``, the SDK's ``X509SubjectName``…) are ignored: they are
outside the signed data and the key is only ever taken from the certificate.

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
from datetime import date, datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from lxml import etree

from axis.rejections import CertUntrusted, Rejection, SignatureInvalid
from schemas._common import VIETNAM
from schemas.xml import DEFAULT_MAX_BYTES, has_doctype, parse
from signing.document import (
    canonicalize,
    canonicalize_c14n10,
    enveloped_digest,
    is_required_place,
    scan,
)
from signing.profile import (
    DS_NS,
    EXC_C14N_NS,
    PROFILES,
    SHORT_NAMES,
    TRANSFORMS,
    CanonicalizationMethod,
    DigestMethod,
    SignatureMethod,
    SignatureProfile,
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
_STRICT = PROFILES[SignatureProfile.STRICT]
_SIGNATURE_METHODS = {m.value: m for m in _STRICT.signature_methods}
"""The fast path's methods: the strict ones only."""
_CACHE_LIMIT = 4096

# Which profile each algorithm belongs to, to tell a profile from a mix of both.
_C14N_PROFILE = {p.canonicalization.value: p.profile for p in PROFILES.values()}
_METHOD_PROFILE = {m.value: (p.profile, m) for p in PROFILES.values() for m in p.signature_methods}
_TRANSFORMS_PROFILE = {
    tuple(t.value for t in ts): p.profile for p in PROFILES.values() for ts in p.transforms
}
_DIGEST_PROFILE = {p.digest.value: (p.profile, p.digest) for p in PROFILES.values()}
_DIGEST_SIZES = {DigestMethod.SHA256: 32, DigestMethod.SHA1: 20}
_KEY_METHODS = {
    "rsa": frozenset({SignatureMethod.RSA_SHA256, SignatureMethod.RSA_SHA1}),
    "ec": frozenset({SignatureMethod.ECDSA_SHA256}),
}


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
    profile: SignatureProfile = SignatureProfile.STRICT
    """The profile the signature follows; ``LEGACY`` only while the hub accepts it."""


@dataclass(frozen=True)
class _Certificate:
    certificate: x509.Certificate
    fingerprint: str
    unfit: str | None
    """Why this certificate cannot sign documents, or None; checked once, not per call."""
    subject_code: str | None
    algorithm: SignatureMethod | None
    """The strict signature method that matches the key type."""
    methods: frozenset[SignatureMethod]
    """Every signature method the key can verify (rsa-sha1 too for RSA)."""
    public_key: object
    """Loaded once: cryptography re-parses the key on every ``public_key()`` call."""


@dataclass(frozen=True)
class _SignedInfo:
    element: etree._Element
    method: SignatureMethod
    c14n_prefixes: tuple[str, ...]
    reference_prefixes: tuple[str, ...]
    digest: bytes
    profile: SignatureProfile = SignatureProfile.STRICT
    digest_method: DigestMethod = DigestMethod.SHA256
    reference_c14n: CanonicalizationMethod = CanonicalizationMethod.EXCLUSIVE_C14N


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
        for method in _STRICT.signature_methods
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


def _name(uri: str) -> str:
    return SHORT_NAMES.get(uri, uri)


def _no_parameters(element: etree._Element, what: str) -> None:
    if _children(element):
        raise SignatureInvalid(f"{what} takes no parameters")


def _read_signed_info(signed_info: etree._Element) -> _SignedInfo:
    """SignedInfo read element by element: a profile, or a reason naming what is wrong."""
    c14n, method, reference = _expect(signed_info, _C14N_METHOD, _SIGNATURE_METHOD, _REFERENCE)
    c14n_uri = _algorithm(c14n)
    c14n_profile = _C14N_PROFILE.get(c14n_uri)
    if c14n_profile is None:
        raise SignatureInvalid(
            f"CanonicalizationMethod {c14n_uri} is not allowed (in neither profile)"
        )
    method_uri = _algorithm(method)
    method_profile, algorithm = _METHOD_PROFILE.get(method_uri, (None, None))
    if method_profile is None or algorithm is None:
        raise SignatureInvalid(f"SignatureMethod {method_uri} is not allowed (in neither profile)")
    _no_parameters(method, "SignatureMethod")
    uri = reference.get("URI")
    if uri != "":
        raise SignatureInvalid(f'the Reference URI must be "" (the whole document), not {uri!r}')
    transforms, digest_method, digest_value = _expect(
        reference, _TRANSFORMS, _DIGEST_METHOD, _DIGEST_VALUE
    )
    steps = _children(transforms)
    if any(step.tag != _TRANSFORM for step in steps):
        raise SignatureInvalid("Transforms must contain only Transform elements")
    algorithms = tuple(_algorithm(step) for step in steps)
    transforms_profile = _TRANSFORMS_PROFILE.get(algorithms)
    if transforms_profile is None:
        listed = ", ".join(_name(a) for a in algorithms) or "nothing"
        raise SignatureInvalid(
            f"Transforms holds {listed}, in neither profile: the transforms must be exactly "
            "enveloped-signature then exc-c14n (strict), or enveloped-signature then "
            "C14N 1.0, or enveloped-signature alone (legacy)"
        )
    digest_uri = _algorithm(digest_method)
    digest_profile, digest_algorithm = _DIGEST_PROFILE.get(digest_uri, (None, None))
    if digest_profile is None or digest_algorithm is None:
        raise SignatureInvalid(f"DigestMethod {digest_uri} is not allowed (in neither profile)")
    _no_parameters(digest_method, "DigestMethod")
    parts = (
        ("CanonicalizationMethod " + _name(c14n_uri), c14n_profile),
        ("SignatureMethod " + _name(method_uri), method_profile),
        ("Transforms (" + ", ".join(_name(a) for a in algorithms) + ")", transforms_profile),
        ("DigestMethod " + _name(digest_uri), digest_profile),
    )
    if len({profile for _, profile in parts}) > 1:
        raise SignatureInvalid(_mixed(parts))
    profile = c14n_profile
    # Parameters: only exclusive C14N has one (InclusiveNamespaces); see the module doc.
    enveloped, *rest = steps
    _no_parameters(enveloped, "the enveloped-signature transform")
    if profile is SignatureProfile.STRICT:
        c14n_prefixes, reference_prefixes = _prefixes(c14n), _prefixes(rest[0])
        reference_c14n = CanonicalizationMethod.EXCLUSIVE_C14N
    else:
        _no_parameters(c14n, "CanonicalizationMethod C14N 1.0")
        for step in rest:
            _no_parameters(step, "the C14N 1.0 transform")
        c14n_prefixes = reference_prefixes = ()
        reference_c14n = CanonicalizationMethod.C14N_10
    digest = _b64(digest_value.text, "DigestValue")
    if len(digest) != _DIGEST_SIZES[digest_algorithm]:
        raise SignatureInvalid(f"DigestValue is not a {_name(digest_uri)} digest")
    return _SignedInfo(
        signed_info,
        algorithm,
        c14n_prefixes,
        reference_prefixes,
        digest,
        profile,
        digest_algorithm,
        reference_c14n,
    )


def _mixed(parts: tuple[tuple[str, SignatureProfile], ...]) -> str:
    """The reason for a SignedInfo whose parts come from both profiles, fewest first."""
    groups = {
        profile: [what for what, p in parts if p is profile]
        for profile in (SignatureProfile.STRICT, SignatureProfile.LEGACY)
    }
    fewer, more = sorted(groups, key=lambda p: (len(groups[p]), p is SignatureProfile.STRICT))

    def listed(items: list[str]) -> str:
        return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"

    return (
        f"the signature mixes the two profiles: {listed(groups[fewer])} "
        f"{'is' if len(groups[fewer]) == 1 else 'are'} of the {PROFILES[fewer].summary} "
        f"profile, {listed(groups[more])} of the {PROFILES[more].summary} one; "
        "its algorithms and transforms must all be of one profile"
    )


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
    kind = (
        "rsa"
        if isinstance(key, rsa.RSAPublicKey)
        else "ec"
        if isinstance(key, ec.EllipticCurvePublicKey)
        else None
    )
    algorithm = {"rsa": SignatureMethod.RSA_SHA256, "ec": SignatureMethod.ECDSA_SHA256}.get(
        kind or ""
    )
    methods = _KEY_METHODS.get(kind or "", frozenset())
    fingerprint = hashlib.sha256(der).hexdigest()
    return _Certificate(certificate, fingerprint, unfit, subject_code, algorithm, methods, key)


_PKCS1V15 = padding.PKCS1v15()
_SHA256 = hashes.SHA256()
_SHA1 = hashes.SHA1()  # the legacy profile's rsa-sha1, accepted only by policy
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


def _verify_value(key: object, method: SignatureMethod, value: bytes, data: bytes) -> None:
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(
                value, data, _PKCS1V15, _SHA1 if method is SignatureMethod.RSA_SHA1 else _SHA256
            )
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


def _check_legacy_policy(legacy_until: date | None, at: datetime) -> None:
    """Refuse a legacy-profile signature unless the policy accepts it at ``at``."""
    what = (
        "the document is signed under the legacy profile (rsa-sha1/sha1/C14N 1.0), "
        "which this hub does not accept"
    )
    if legacy_until is None:
        raise SignatureInvalid(f"{what}: the legacy profile is not enabled here")
    today = at.astimezone(VIETNAM).date()
    if not today < legacy_until:
        raise SignatureInvalid(
            f"{what} since {legacy_until.isoformat()} (its sunset date; today is "
            f"{today.isoformat()} in Vietnam)"
        )


def _legacy_until(value: date | None) -> date | None:
    # A datetime is a date too, but comparing one with a date raises at verification.
    if value is not None and (not isinstance(value, date) or isinstance(value, datetime)):
        raise TypeError(f"legacy_until must be a datetime.date or None, not {value!r}")
    return value


class Verifier:
    """Verifies signed documents against one :class:`TrustStore`, caching what it can.

    ``legacy_until``: the sunset of the legacy profile, a Vietnamese calendar date.
    A legacy-signed document verifies only while the date of ``at`` in
    Asia/Ho_Chi_Minh is strictly before it; ``None`` (the default) never.

    Not thread-safe for concurrent mutation in free-threaded Python; the hub runs
    one verifier per worker process.
    """

    def __init__(self, trust: TrustStore, *, legacy_until: date | None = None) -> None:
        self.trust = trust
        self.legacy_until = _legacy_until(legacy_until)
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
        self,
        leaf: _Certificate,
        intermediates: list[_Certificate],
        at: datetime,
        signed_info: _SignedInfo,
    ) -> VerifiedSignature:
        # The method is part of the key: the result names it (rsa-sha1 or rsa-sha256).
        key = (signed_info.method, leaf.fingerprint, *(c.fingerprint for c in intermediates))
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
            algorithm=signed_info.method,
            chain=chain.chain,
            subject_code=leaf.subject_code,
            profile=signed_info.profile,
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
        A legacy-profile signature is accepted per ``legacy_until`` (see the class).
        """
        return self._verify(document, at, max_bytes, self.legacy_until)

    def _verify(
        self,
        document: bytes | etree._Element,
        at: datetime,
        max_bytes: int,
        legacy_until: date | None,
    ) -> VerifiedSignature:
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
            raise SignatureInvalid(_unsigned_reason(found.same_name))
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
            if signed_info.profile is SignatureProfile.LEGACY:
                # Refused before any digest is computed when the policy says no.
                _check_legacy_policy(legacy_until, at)
                signed_bytes = canonicalize_c14n10(signed_info_element)
            elif signed_info.c14n_prefixes:
                signed_bytes = canonicalize(signed_info_element, signed_info.c14n_prefixes)
        value = _b64(value_element.text, "SignatureValue")
        x509_data = [c for c in _children(key_info) if c.tag == _X509_DATA]
        if len(x509_data) != 1:
            raise SignatureInvalid("KeyInfo must hold exactly one X509Data")
        texts = [c.text for c in _children(x509_data[0]) if c.tag == _X509_CERTIFICATE]
        if not texts:
            raise SignatureInvalid("X509Data holds no X509Certificate")

        digest = enveloped_digest(
            signature,
            signed_info.reference_prefixes,
            found,
            disposable=disposable,
            method=signed_info.reference_c14n,
            digest_method=signed_info.digest_method,
        )
        if not hmac.compare_digest(digest, signed_info.digest):
            raise SignatureInvalid("the document does not match the signed digest")

        leaf = self._certificate(texts[0])
        if signed_info.method not in leaf.methods:
            raise SignatureInvalid(
                f"SignatureMethod {signed_info.method.name} does not match the certificate's key"
            )
        _verify_value(leaf.public_key, signed_info.method, value, signed_bytes)
        if leaf.unfit is not None:
            raise CertUntrusted(leaf.unfit)
        intermediates = [self._certificate(text) for text in texts[1:]]
        return self._signer(leaf, intermediates, at, signed_info)


def _unsigned_reason(same_name: list[etree._Element]) -> str:
    """Why a document without a ``ds:Signature`` is refused: unsigned, or signed wrongly."""
    if same_name:
        namespace = etree.QName(same_name[0]).namespace
        where = f"in the namespace {namespace}" if namespace else "in no namespace"
        return (
            f"the document's Signature is outside the XML-DSig namespace: it is {where}, "
            f"not {DS_NS}, and therefore not an XML-DSig signature"
        )
    return f"the document is not signed: it carries no ds:Signature (XML-DSig namespace {DS_NS})"


_VERIFIERS: weakref.WeakKeyDictionary[TrustStore, Verifier] = weakref.WeakKeyDictionary()


def verify(
    document: bytes | etree._Element,
    trust: TrustStore,
    *,
    at: datetime,
    max_bytes: int = DEFAULT_MAX_BYTES,
    legacy_until: date | None = None,
) -> VerifiedSignature:
    """Verify ``document`` against ``trust`` at ``at``; see :meth:`Verifier.verify`.

    ``legacy_until`` as for :class:`Verifier`. Reuses one :class:`Verifier` (and its
    caches, which do not depend on the policy) per trust store.
    """
    verifier = _VERIFIERS.get(trust)
    if verifier is None:
        verifier = _VERIFIERS[trust] = Verifier(trust)
    return verifier._verify(document, at, max_bytes, _legacy_until(legacy_until))

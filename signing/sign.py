"""Signing documents per PROTOCOL section 5: the strict profile, or the legacy one.

Example::

    signer = Signer(key, certificate)
    signed: bytes = signer.sign(document_bytes)
    legacy = Signer(rsa_key, certificate, profile=SignatureProfile.LEGACY).sign(document_bytes)

The Signature is built so that its SignedInfo is exactly what a verifier will
canonicalize: ``ds`` prefix, no InclusiveNamespaces, no whitespace inside it.
The legacy profile (rsa-sha1, sha1, inclusive C14N 1.0, with the transforms
enveloped-signature then C14N 1.0) is what the national axis's SDK writes; it
exists for tests and for agencies' tools during the transition, and needs an RSA
key.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from lxml import etree

from axis.rejections import SignatureInvalid
from schemas.xml import DEFAULT_MAX_BYTES, has_doctype, parse
from signing.document import canonicalize, canonicalize_c14n10, expected_parent
from signing.pki import PrivateKey
from signing.profile import (
    DS_NS,
    PROFILES,
    SignatureMethod,
    SignatureProfile,
    ds,
)
from signing.trust import check_signing_certificate

_SIGNATURE = ds("Signature")
_NSMAP = {"ds": DS_NS}


def ec_raw_signature(der: bytes, curve_bytes: int = 32) -> bytes:
    """XML-DSig's ECDSA value: r || s as fixed-width big-endian integers (not DER)."""
    r, s = decode_dss_signature(der)
    return r.to_bytes(curve_bytes, "big") + s.to_bytes(curve_bytes, "big")


class Signer:
    """Signs documents with one key and certificate; reuse it, it pre-computes the KeyInfo.

    The key must be RSA (2048 bits or more) or EC P-256, matching ``certificate``,
    and the certificate fit for signing (see :mod:`signing.trust`); ``ValueError``
    otherwise, so a misconfigured signer fails at start-up and not per document.
    ``profile=SignatureProfile.LEGACY`` writes the legacy profile, which has no EC
    algorithm: an EC key is then a ``ValueError`` too.
    """

    def __init__(
        self,
        key: PrivateKey,
        certificate: x509.Certificate,
        chain: Sequence[x509.Certificate] = (),
        *,
        profile: SignatureProfile = SignatureProfile.STRICT,
    ) -> None:
        try:
            check_signing_certificate(certificate)
        except Exception as exc:
            raise ValueError(f"certificate unfit for signing: {exc}") from None
        spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        if key.public_key().public_bytes(*spki) != certificate.public_key().public_bytes(*spki):
            raise ValueError("the private key does not belong to the certificate")
        self.key = key
        self.certificate = certificate
        self.chain = tuple(chain)
        self.profile = SignatureProfile(profile)
        rules = PROFILES[self.profile]
        self.algorithm: SignatureMethod
        if isinstance(key, rsa.RSAPrivateKey):
            self.algorithm = (
                SignatureMethod.RSA_SHA1
                if self.profile is SignatureProfile.LEGACY
                else SignatureMethod.RSA_SHA256
            )
        elif isinstance(key, ec.EllipticCurvePrivateKey):
            if self.profile is SignatureProfile.LEGACY:
                raise ValueError(
                    "the legacy profile signs with rsa-sha1 only: it needs an RSA key, not EC"
                )
            self.algorithm = SignatureMethod.ECDSA_SHA256
        else:
            raise ValueError(f"{type(key).__name__} keys cannot sign documents")
        self._c14n = rules.canonicalization
        self._transforms = rules.transforms[0]
        self._digest_method = rules.digest
        legacy = self.profile is SignatureProfile.LEGACY
        self._new_hash = hashlib.sha1 if legacy else hashlib.sha256
        self._rsa_hash: hashes.HashAlgorithm = hashes.SHA1() if legacy else hashes.SHA256()
        # Inclusive C14N for the legacy profile, of the document and of SignedInfo
        # where it stands (it inherits the ancestors' namespaces and xml:* attributes).
        self._canonicalize: Callable[[etree._ElementTree | etree._Element], bytes] = (
            canonicalize_c14n10 if legacy else canonicalize
        )
        self._certificates_b64 = tuple(
            base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode("ascii")
            for c in (certificate, *self.chain)
        )
        # The exclusive canonical form of SignedInfo, and KeyInfo, for sign_canonical.
        algorithm = ' Algorithm="{}"'
        self._signed_info_template = (
            f'<ds:SignedInfo xmlns:ds="{DS_NS}">'
            f"<ds:CanonicalizationMethod{algorithm.format(self._c14n.value)}>"
            "</ds:CanonicalizationMethod>"
            f"<ds:SignatureMethod{algorithm.format(self.algorithm.value)}></ds:SignatureMethod>"
            '<ds:Reference URI=""><ds:Transforms>'
            + "".join(
                f"<ds:Transform{algorithm.format(t.value)}></ds:Transform>"
                for t in self._transforms
            )
            + "</ds:Transforms>"
            f"<ds:DigestMethod{algorithm.format(self._digest_method.value)}></ds:DigestMethod>"
            "<ds:DigestValue>DIGEST</ds:DigestValue></ds:Reference></ds:SignedInfo>"
        )
        self._key_info = (
            "<ds:KeyInfo><ds:X509Data>"
            + "".join(
                f"<ds:X509Certificate>{b64}</ds:X509Certificate>" for b64 in self._certificates_b64
            )
            + "</ds:X509Data></ds:KeyInfo>"
        )

    def _signature_value(self, data: bytes) -> bytes:
        if isinstance(self.key, rsa.RSAPrivateKey):
            return self.key.sign(data, padding.PKCS1v15(), self._rsa_hash)
        return ec_raw_signature(self.key.sign(data, ec.ECDSA(hashes.SHA256())))

    def _unsigned_signature(
        self, digest: bytes
    ) -> tuple[etree._Element, etree._Element, etree._Element]:
        signature = etree.Element(_SIGNATURE, nsmap=_NSMAP)
        signed_info = etree.SubElement(signature, ds("SignedInfo"))
        etree.SubElement(signed_info, ds("CanonicalizationMethod"), Algorithm=self._c14n.value)
        etree.SubElement(signed_info, ds("SignatureMethod"), Algorithm=self.algorithm.value)
        reference = etree.SubElement(signed_info, ds("Reference"), URI="")
        transforms = etree.SubElement(reference, ds("Transforms"))
        for transform in self._transforms:
            etree.SubElement(transforms, ds("Transform"), Algorithm=transform.value)
        etree.SubElement(reference, ds("DigestMethod"), Algorithm=self._digest_method.value)
        etree.SubElement(reference, ds("DigestValue")).text = base64.b64encode(digest).decode()
        value = etree.SubElement(signature, ds("SignatureValue"))
        x509_data = etree.SubElement(etree.SubElement(signature, ds("KeyInfo")), ds("X509Data"))
        for b64 in self._certificates_b64:
            etree.SubElement(x509_data, ds("X509Certificate")).text = b64
        return signature, signed_info, value

    def sign_canonical(self, canonical: bytes, *, before: bytes) -> bytes:
        """Sign a document its producer already wrote in exclusive canonical form.

        For documents the hub writes itself thousands of times a second (receipts):
        the digest is taken over ``canonical`` as it is, and the Signature is spliced
        in as text just before the last occurrence of ``before`` (the closing tag of
        the element that must hold it as its last child), with no tree built.

        The caller guarantees that ``canonical`` is its own exclusive C14N form (no
        XML declaration or DOCTYPE; namespaces declared where first used; attributes
        sorted; start and end tags for empty elements; ``&amp; &lt; &gt; &#xD;`` as
        the only escapes in text). Tests hold the hub's producers to that; anything
        else yields a signature that does not verify.

        Strict profile only (``ValueError`` otherwise): the legacy profile digests
        inclusive C14N, which the exclusive form given here is not in general.
        """
        if self.profile is not SignatureProfile.STRICT:
            raise ValueError("sign_canonical writes the strict profile only")
        digest = base64.b64encode(hashlib.sha256(canonical).digest()).decode("ascii")
        signed_info = self._signed_info_template.replace("DIGEST", digest, 1).encode("ascii")
        value = base64.b64encode(self._signature_value(signed_info)).decode("ascii")
        signature = (
            f'<ds:Signature xmlns:ds="{DS_NS}">'
            + signed_info.decode("ascii").replace(f' xmlns:ds="{DS_NS}"', "", 1)
            + f"<ds:SignatureValue>{value}</ds:SignatureValue>{self._key_info}</ds:Signature>"
        ).encode("ascii")
        cut = canonical.rindex(before)
        return (
            b"<?xml version='1.0' encoding='UTF-8'?>\n"
            + canonical[:cut]
            + signature
            + canonical[cut:]
        )

    def sign(
        self,
        document: bytes | etree._Element,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> bytes:
        """Sign ``document`` and return the signed document as UTF-8 bytes.

        Bytes go through the hardened parser (``Malformed``/``TooLarge``; comments
        are dropped). An element is signed in place for the time of the call and
        left unchanged. A document already carrying a ``ds:Signature`` or a DOCTYPE
        is refused with ``SignatureInvalid``: it could never verify.
        """
        if isinstance(document, bytes | bytearray | memoryview):
            root = parse(bytes(document), max_bytes=max_bytes)
        else:
            root = document
        tree = root.getroottree()
        root = tree.getroot()
        if has_doctype(root):
            raise SignatureInvalid("a document with a DOCTYPE cannot be signed")
        for _ in root.iter(_SIGNATURE):
            raise SignatureInvalid("the document already has a ds:Signature")
        parent = expected_parent(root)
        # Appended last with no tail, the Signature leaves the text around it as it
        # is, so the digest of the unsigned document is the enveloped digest.
        digest = self._new_hash(self._canonicalize(tree)).digest()
        signature, signed_info, value = self._unsigned_signature(digest)
        parent.append(signature)
        try:
            # SignedInfo is canonicalized where it ends up: appending makes lxml
            # reconcile namespaces, and if an ancestor already declares the XML-DSig
            # namespace under another prefix, the subtree takes that prefix.
            signed = self._signature_value(self._canonicalize(signed_info))
            value.text = base64.b64encode(signed).decode()
            return etree.tostring(tree, xml_declaration=True, encoding="UTF-8")
        finally:
            parent.remove(signature)


def sign(
    document: bytes | etree._Element,
    key: PrivateKey,
    certificate: x509.Certificate,
    chain: Sequence[x509.Certificate] = (),
    *,
    profile: SignatureProfile = SignatureProfile.STRICT,
) -> bytes:
    """Sign ``document`` with ``key``; see :class:`Signer` (reuse one for many documents)."""
    return Signer(key, certificate, chain, profile=profile).sign(document)

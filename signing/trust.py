"""Trust anchors, known intermediates and CRLs, and the certificate checks built on them.

A :class:`TrustStore` is immutable: load a new one (and a new
:class:`~signing.verify.Verifier`) when the anchors or CRLs change.

Decisions a verifier relies on:

- The chain is built by cryptography's ``x509.verification`` (RFC 5280 path
  building) with the WebPKI profile for CA certificates and *no* extension
  requirement on the leaf: a document signing certificate needs no SAN or EKU. The
  leaf is then checked here: it must not be a CA, must carry keyUsage
  digitalSignature or nonRepudiation, and must hold an RSA key of at least 2048
  bits or an EC P-256 key. A weaker key makes the certificate unfit for signing,
  so it is ``CERT_UNTRUSTED`` (not ``SIGNATURE_INVALID``).
- A certificate outside its validity period at the verification time, the leaf or
  any certificate of its chain, is ``CERT_EXPIRED`` (not-yet-valid included).
- CRLs are checked when the store is built: each must be signed by an anchor or a
  known intermediate with the CRL's issuer name, else the store refuses to load
  (``ValueError``). A certificate whose serial is on its issuer's CRL is
  ``CERT_REVOKED``. A CRL past its ``nextUpdate`` is still applied (revocations
  never expire); refreshing CRLs is the operator's job.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import verification
from cryptography.x509.oid import NameOID

from axis.rejections import CertExpired, CertRevoked, CertUntrusted
from signing.profile import MIN_RSA_BITS

IssuerKey = tuple[bytes, bytes]
"""An issuer as (subject DER, SubjectPublicKeyInfo DER): survives re-issuing the CA certificate."""


def issuer_key(certificate: x509.Certificate) -> IssuerKey:
    """The identity of ``certificate`` as an issuer of CRLs and certificates."""
    return (
        certificate.subject.public_bytes(),
        certificate.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )


def _read_pem_certificates(path: str | os.PathLike[str]) -> list[x509.Certificate]:
    data = Path(path).read_bytes()
    certs = x509.load_pem_x509_certificates(data)
    if not certs:
        raise ValueError(f"{path}: no PEM certificate")
    return certs


def _read_pem_crls(path: str | os.PathLike[str]) -> list[x509.CertificateRevocationList]:
    data = Path(path).read_bytes()
    marker = b"-----BEGIN X509 CRL-----"
    blocks = [marker + part for part in data.split(marker)[1:]]
    if not blocks:
        raise ValueError(f"{path}: no PEM CRL")
    return [x509.load_pem_x509_crl(block) for block in blocks]


class TrustStore:
    """The trust anchors, known intermediates and verified CRLs a verifier checks against.

    Example::

        trust = TrustStore.from_files(["ca.pem"], crl_paths=["crl.pem"])
    """

    def __init__(
        self,
        anchors: Iterable[x509.Certificate],
        crls: Iterable[x509.CertificateRevocationList] = (),
        intermediates: Iterable[x509.Certificate] = (),
    ) -> None:
        self.anchors: tuple[x509.Certificate, ...] = tuple(anchors)
        if not self.anchors:
            raise ValueError("a trust store needs at least one trust anchor")
        self.intermediates: tuple[x509.Certificate, ...] = tuple(intermediates)
        self.store = verification.Store(list(self.anchors))
        self._revoked: dict[IssuerKey, frozenset[int]] = {}
        for crl in crls:
            self._add_crl(crl)

    @classmethod
    def from_files(
        cls,
        anchor_paths: Iterable[str | os.PathLike[str]],
        crl_paths: Iterable[str | os.PathLike[str]] = (),
        intermediate_paths: Iterable[str | os.PathLike[str]] = (),
    ) -> TrustStore:
        """Load anchors, CRLs and intermediates from PEM files (several per file allowed)."""
        anchors = [c for p in anchor_paths for c in _read_pem_certificates(p)]
        crls = [c for p in crl_paths for c in _read_pem_crls(p)]
        intermediates = [c for p in intermediate_paths for c in _read_pem_certificates(p)]
        return cls(anchors, crls, intermediates)

    def _add_crl(self, crl: x509.CertificateRevocationList) -> None:
        for issuer in (*self.anchors, *self.intermediates):
            if issuer.subject != crl.issuer:
                continue
            try:
                signed = crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
            except (TypeError, ValueError, InvalidSignature):
                signed = False
            if signed:
                key = issuer_key(issuer)
                serials = {entry.serial_number for entry in crl}
                self._revoked[key] = self._revoked.get(key, frozenset()) | serials
                return
        raise ValueError(
            f"CRL of {crl.issuer.rfc4514_string()} is not signed by any anchor or intermediate"
        )

    def client_verifier(self, at: datetime) -> verification.ClientVerifier:
        """A chain builder for ``at``: WebPKI rules for CAs, nothing extra for the leaf."""
        return (
            verification.PolicyBuilder()
            .store(self.store)
            .time(at)
            .extension_policies(
                ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(),
                ee_policy=verification.ExtensionPolicy.permit_all(),
            )
            .build_client_verifier()
        )

    def is_revoked(self, serial: int, issuer: IssuerKey) -> bool:
        """Whether ``serial`` is on the (verified) CRL of ``issuer``."""
        revoked = self._revoked.get(issuer)
        return revoked is not None and serial in revoked


@dataclass(frozen=True)
class ValidatedChain:
    """A chain that was built once; what must still be re-checked on every use.

    ``windows`` holds each certificate's validity period and ``revocable`` the
    (serial, issuer) pairs to look up in the CRLs (every certificate but the anchor).
    """

    chain: tuple[x509.Certificate, ...]
    windows: tuple[tuple[datetime, datetime, x509.Certificate], ...]
    revocable: tuple[tuple[int, IssuerKey, x509.Certificate], ...]

    def recheck(self, trust: TrustStore, at: datetime) -> None:
        """The per-call checks on a cached chain: validity time and CRL membership."""
        for start, end, cert in self.windows:
            if not start <= at <= end:
                raise CertExpired(_outside_validity(cert, at))
        for serial, issuer, cert in self.revocable:
            if trust.is_revoked(serial, issuer):
                raise CertRevoked(
                    f"certificate {_describe(cert)} (serial {serial:x}) is on its issuer's CRL"
                )


def common_name(certificate: x509.Certificate) -> str:
    """The single subject CN (the agency code); ``CertUntrusted`` when missing or ambiguous."""
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(names) != 1 or not isinstance(names[0].value, str) or not names[0].value:
        raise CertUntrusted("the signing certificate must have exactly one subject CN")
    return names[0].value


def check_signing_certificate(certificate: x509.Certificate) -> None:
    """Refuse a leaf unfit for document signing (CA, key usage, weak key): ``CertUntrusted``."""
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        pass
    else:
        if constraints.value.ca:
            raise CertUntrusted("a CA certificate cannot sign documents")
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        raise CertUntrusted("the signing certificate has no keyUsage extension") from None
    if not (usage.digital_signature or usage.content_commitment):
        raise CertUntrusted(
            "the signing certificate allows neither digitalSignature nor nonRepudiation"
        )
    key = certificate.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise CertUntrusted(f"RSA key of {key.key_size} bits; at least {MIN_RSA_BITS} required")
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise CertUntrusted(f"EC curve {key.curve.name}; only P-256 is allowed")
    else:
        raise CertUntrusted(f"{type(key).__name__} keys cannot sign documents; use RSA or EC P-256")


def build_chain(
    trust: TrustStore,
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    at: datetime,
) -> ValidatedChain:
    """Build and validate the chain of ``leaf`` at ``at``, then run the per-call checks.

    Raises ``CertExpired`` when some certificate of an otherwise valid chain is
    outside its validity at ``at``, ``CertUntrusted`` when no chain to an anchor
    exists, ``CertRevoked`` for a revoked certificate.
    """
    if not leaf.not_valid_before_utc <= at <= leaf.not_valid_after_utc:
        raise CertExpired(_outside_validity(leaf, at))
    candidates = [*intermediates, *trust.intermediates]
    try:
        chain = trust.client_verifier(at).verify(leaf, candidates).chain
    except verification.VerificationError as exc:
        # cryptography does not say which check failed; a chain that does build at a
        # time inside the leaf's validity means something in it merely expired.
        try:
            trust.client_verifier(leaf.not_valid_before_utc).verify(leaf, candidates)
        except verification.VerificationError:
            raise CertUntrusted(f"no valid chain to a trust anchor: {exc}") from None
        raise CertExpired(f"a certificate in the signer's chain is not valid at {at}") from None
    validated = ValidatedChain(
        chain=tuple(chain),
        windows=tuple((c.not_valid_before_utc, c.not_valid_after_utc, c) for c in chain),
        revocable=tuple(
            (cert.serial_number, issuer_key(issuer), cert)
            for cert, issuer in itertools.pairwise(chain)
        ),
    )
    validated.recheck(trust, at)
    return validated


def _describe(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


def _outside_validity(cert: x509.Certificate, at: datetime) -> str:
    return (
        f"certificate {_describe(cert)} is valid from {cert.not_valid_before_utc.isoformat()} "
        f"to {cert.not_valid_after_utc.isoformat()}, not at {at.isoformat()}"
    )

"""Strict XML-DSig for Axis documents (PROTOCOL section 5).

Example::

    from datetime import UTC, datetime
    import signing

    signed = signing.Signer(key, certificate).sign(document_bytes)
    trust = signing.TrustStore.from_files(["ca.pem"], crl_paths=["crl.pem"])
    signer = signing.Verifier(trust).verify(signed, at=datetime.now(UTC))
    print(signer.subject_code, signer.fingerprint)

Failures are :mod:`axis.rejections` classes: ``SignatureInvalid``,
``CertUntrusted``, ``CertExpired``, ``CertRevoked`` (and ``Malformed`` /
``TooLarge`` from the parser).
"""

from signing.profile import (
    CanonicalizationMethod,
    DigestMethod,
    SignatureMethod,
    Transform,
)
from signing.sign import Signer, sign
from signing.trust import TrustStore
from signing.verify import VerifiedSignature, Verifier, verify

__all__ = [
    "CanonicalizationMethod",
    "DigestMethod",
    "SignatureMethod",
    "Signer",
    "Transform",
    "TrustStore",
    "VerifiedSignature",
    "Verifier",
    "sign",
    "verify",
]

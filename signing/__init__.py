"""XML-DSig for Axis documents (PROTOCOL section 5): the strict profile, and the legacy one.

Example::

    from datetime import UTC, date, datetime
    import signing

    signed = signing.Signer(key, certificate).sign(document_bytes)
    trust = signing.TrustStore.from_files(["ca.pem"], crl_paths=["crl.pem"])
    signer = signing.Verifier(trust).verify(signed, at=datetime.now(UTC))
    print(signer.subject_code, signer.fingerprint, signer.profile)

    # The national SDK's legacy profile (rsa-sha1/sha1/C14N 1.0), accepted only
    # while the Vietnamese date is before the sunset date given here:
    verifier = signing.Verifier(trust, legacy_until=date(2027, 7, 1))

Failures are :mod:`axis.rejections` classes: ``SignatureInvalid``,
``CertUntrusted``, ``CertExpired``, ``CertRevoked`` (and ``Malformed`` /
``TooLarge`` from the parser).
"""

from signing.profile import (
    CanonicalizationMethod,
    DigestMethod,
    SignatureMethod,
    SignatureProfile,
    Transform,
)
from signing.sign import Signer, sign
from signing.trust import TrustStore
from signing.verify import VerifiedSignature, Verifier, verify

__all__ = [
    "CanonicalizationMethod",
    "DigestMethod",
    "SignatureMethod",
    "SignatureProfile",
    "Signer",
    "Transform",
    "TrustStore",
    "VerifiedSignature",
    "Verifier",
    "sign",
    "verify",
]

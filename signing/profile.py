"""The two XML-DSig profiles of PROTOCOL section 5, as enums of algorithm URIs.

- ``strict``: exclusive C14N, rsa-sha256 or ecdsa-sha256, sha256.
- ``legacy``: what the national axis's Java SDK writes: inclusive C14N 1.0,
  rsa-sha1, sha1. Accepted only while the hub's policy allows it.

Every algorithm a profile names is a member of one of these enums, and nothing
else is: a URI that is not a member is outside both profiles, whatever it means.
Which member belongs to which profile is :data:`PROFILES`; a signature whose
algorithms come from both is in neither.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
"""The XML-DSig namespace of every ``ds:`` element."""

EDXML_NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
"""The edXML namespace (QCVN 102:2016/BTTTT) of ``edXML`` documents and statuses."""

XML_NS = "http://www.w3.org/XML/1998/namespace"
"""The namespace of ``xml:lang``, ``xml:space``…, which inclusive C14N 1.0 inherits."""


def ds(local: str) -> str:
    """The Clark-notation tag ``{xmldsig#}local``."""
    return f"{{{DS_NS}}}{local}"


def edxml(local: str) -> str:
    """The Clark-notation tag of an edXML element."""
    return f"{{{EDXML_NS}}}{local}"


class SignatureProfile(StrEnum):
    """Which profile a signature follows."""

    STRICT = "strict"
    LEGACY = "legacy"


class SignatureMethod(StrEnum):
    """The signature algorithms of the profiles (strict: the sha256 ones; legacy: rsa-sha1)."""

    RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
    RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"


class DigestMethod(StrEnum):
    """The digest algorithms of the profiles' Reference (strict: sha256; legacy: sha1)."""

    SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
    SHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"


class CanonicalizationMethod(StrEnum):
    """The canonicalizations of SignedInfo, both without comments.

    Strict: exclusive C14N. Legacy: inclusive C14N 1.0.
    """

    EXCLUSIVE_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
    C14N_10 = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"


class Transform(StrEnum):
    """The Reference transforms of the profiles."""

    ENVELOPED_SIGNATURE = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
    EXCLUSIVE_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
    C14N_10 = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"


TRANSFORMS: tuple[Transform, ...] = (Transform.ENVELOPED_SIGNATURE, Transform.EXCLUSIVE_C14N)
"""The strict profile's transforms: exactly these, exactly in this order."""

LEGACY_TRANSFORMS: tuple[Transform, ...] = (Transform.ENVELOPED_SIGNATURE, Transform.C14N_10)
"""The legacy profile's transforms as the SDK writes them (and our Signer does)."""


@dataclass(frozen=True)
class ProfileRules:
    """The algorithms of one profile."""

    profile: SignatureProfile
    canonicalization: CanonicalizationMethod
    signature_methods: tuple[SignatureMethod, ...]
    transforms: tuple[tuple[Transform, ...], ...]
    """The accepted transform lists; the first is the one a signer writes."""
    digest: DigestMethod
    summary: str
    """How a reason names the profile."""


PROFILES: dict[SignatureProfile, ProfileRules] = {
    SignatureProfile.STRICT: ProfileRules(
        SignatureProfile.STRICT,
        CanonicalizationMethod.EXCLUSIVE_C14N,
        (SignatureMethod.RSA_SHA256, SignatureMethod.ECDSA_SHA256),
        (TRANSFORMS,),
        DigestMethod.SHA256,
        "strict (exc-c14n, rsa-sha256 or ecdsa-sha256, sha256)",
    ),
    SignatureProfile.LEGACY: ProfileRules(
        SignatureProfile.LEGACY,
        CanonicalizationMethod.C14N_10,
        (SignatureMethod.RSA_SHA1,),
        # Enveloped-signature alone is the same digest input: XML-DSig 1.0 section
        # 4.3.3.2 converts the resulting node-set to octets with inclusive C14N 1.0
        # without comments. The SDK writes both forms.
        (LEGACY_TRANSFORMS, (Transform.ENVELOPED_SIGNATURE,)),
        DigestMethod.SHA1,
        "legacy (rsa-sha1/sha1/C14N 1.0)",
    ),
}
"""Each profile's algorithms."""

SHORT_NAMES: dict[str, str] = {
    CanonicalizationMethod.EXCLUSIVE_C14N.value: "exc-c14n",
    CanonicalizationMethod.C14N_10.value: "C14N 1.0",
    SignatureMethod.RSA_SHA256.value: "rsa-sha256",
    SignatureMethod.ECDSA_SHA256.value: "ecdsa-sha256",
    SignatureMethod.RSA_SHA1.value: "rsa-sha1",
    DigestMethod.SHA256.value: "sha256",
    DigestMethod.SHA1.value: "sha1",
    Transform.ENVELOPED_SIGNATURE.value: "enveloped-signature",
}
"""How reasons name the profiles' algorithms (any other URI is named in full)."""

EXC_C14N_NS = "http://www.w3.org/2001/10/xml-exc-c14n#"
"""Namespace of ``InclusiveNamespaces`` (the exclusive C14N ``PrefixList`` parameter)."""

MIN_RSA_BITS = 2048
"""Smaller RSA keys are refused as unfit for signing."""

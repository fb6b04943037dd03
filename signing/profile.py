"""The strict XML-DSig profile of PROTOCOL section 5, as enums of algorithm URIs.

Every algorithm the profile names is a member of one of these enums, and nothing
else is: a URI that is not a member is outside the profile, whatever it means.
"""

from __future__ import annotations

from enum import StrEnum

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
"""The XML-DSig namespace of every ``ds:`` element."""

EDXML_NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
"""The edXML namespace (QCVN 102:2016/BTTTT) of ``edXML`` and ``Status`` documents."""


def ds(local: str) -> str:
    """The Clark-notation tag ``{xmldsig#}local``."""
    return f"{{{DS_NS}}}{local}"


def edxml(local: str) -> str:
    """The Clark-notation tag of an edXML element."""
    return f"{{{EDXML_NS}}}{local}"


class SignatureMethod(StrEnum):
    """The two signature algorithms the profile allows."""

    RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"


class DigestMethod(StrEnum):
    """The one digest algorithm of the profile's Reference."""

    SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"


class CanonicalizationMethod(StrEnum):
    """The one canonicalization of SignedInfo: exclusive C14N without comments."""

    EXCLUSIVE_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"


class Transform(StrEnum):
    """The Reference transforms of the profile, which must appear in this order."""

    ENVELOPED_SIGNATURE = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
    EXCLUSIVE_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"


TRANSFORMS: tuple[Transform, ...] = (Transform.ENVELOPED_SIGNATURE, Transform.EXCLUSIVE_C14N)
"""Exactly these transforms, exactly in this order."""

EXC_C14N_NS = "http://www.w3.org/2001/10/xml-exc-c14n#"
"""Namespace of ``InclusiveNamespaces`` (the exclusive C14N ``PrefixList`` parameter)."""

MIN_RSA_BITS = 2048
"""Smaller RSA keys are refused as unfit for signing."""

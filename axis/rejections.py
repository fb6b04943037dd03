"""The rejection vocabulary of PROTOCOL section 4, as one exception hierarchy.

Every check on a document's way through the hub — parsing, schema, signature,
certificate, authorization — fails by raising one of these. Each class carries the
wire ``code`` it maps to, one to one, so a caller can ``except SignatureInvalid`` or
turn any :class:`Rejection` into an ``AxisRejection`` by reading ``exc.code``.
"""

from __future__ import annotations

from typing import ClassVar


class Rejection(Exception):
    """A document the hub refuses, with the protocol code and a human-readable reason."""

    code: ClassVar[str] = ""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.code}: {self.reason}"


class Malformed(Rejection):
    """Not well-formed UTF-8 XML, or an attack on the parser (entities, depth)."""

    code = "MALFORMED"


class SchemaInvalid(Rejection):
    """Well-formed XML that does not satisfy the project's XSD."""

    code = "SCHEMA_INVALID"


class TooLarge(Rejection):
    """A body larger than ``max_message_bytes``."""

    code = "TOO_LARGE"


class SignatureInvalid(Rejection):
    """The signature is missing, broken, or outside the strict profile of section 5."""

    code = "SIGNATURE_INVALID"


class CertificateRejection(Rejection):
    """Base of the certificate failures."""


class CertUntrusted(CertificateRejection):
    """No valid chain to a trust anchor, or a certificate unfit for signing."""

    code = "CERT_UNTRUSTED"


class CertExpired(CertificateRejection):
    """The signer's certificate is outside its validity period at verification time."""

    code = "CERT_EXPIRED"


class CertRevoked(CertificateRejection):
    """The signer's certificate is on its issuer's CRL, or revoked in the registry."""

    code = "CERT_REVOKED"


class CertNotRegistered(CertificateRejection):
    """A trusted certificate that the registry binds to no agency."""

    code = "CERT_NOT_REGISTERED"


class SenderMismatch(Rejection):
    """``From/OrganId``, the AMQP ``user_id`` and the certificate owner disagree."""

    code = "SENDER_MISMATCH"


class SenderSuspended(Rejection):
    """The sending agency is suspended."""

    code = "SENDER_SUSPENDED"


class UnknownRecipient(Rejection):
    """A ``To/OrganId`` names no registered agency or group."""

    code = "UNKNOWN_RECIPIENT"


class RecipientSuspended(Rejection):
    """A recipient is registered but suspended."""

    code = "RECIPIENT_SUSPENDED"


class DuplicateConflict(Rejection):
    """The DocumentId was already received with different bytes."""

    code = "DUPLICATE_CONFLICT"


class UnknownDocument(Rejection):
    """A revoke/update/replace or status names a DocumentId the hub never accepted."""

    code = "UNKNOWN_DOCUMENT"


class NotOriginalSender(Rejection):
    """A revoke/update/replace of a document that another agency sent."""

    code = "NOT_ORIGINAL_SENDER"


class NotARecipient(Rejection):
    """A status for a document from an agency that did not receive it."""

    code = "NOT_A_RECIPIENT"


def _all_codes() -> dict[str, type[Rejection]]:
    found: dict[str, type[Rejection]] = {}
    stack: list[type[Rejection]] = [Rejection]
    while stack:
        cls = stack.pop()
        if cls.code:
            found[cls.code] = cls
        stack.extend(cls.__subclasses__())
    return found


BY_CODE: dict[str, type[Rejection]] = _all_codes()
"""Every wire code, mapped to its exception class."""

CODES: tuple[str, ...] = (
    "MALFORMED",
    "SCHEMA_INVALID",
    "TOO_LARGE",
    "SIGNATURE_INVALID",
    "CERT_UNTRUSTED",
    "CERT_EXPIRED",
    "CERT_REVOKED",
    "CERT_NOT_REGISTERED",
    "SENDER_MISMATCH",
    "SENDER_SUSPENDED",
    "UNKNOWN_RECIPIENT",
    "RECIPIENT_SUSPENDED",
    "DUPLICATE_CONFLICT",
    "UNKNOWN_DOCUMENT",
    "NOT_ORIGINAL_SENDER",
    "NOT_A_RECIPIENT",
)
"""The codes in PROTOCOL order."""

assert set(CODES) == set(BY_CODE), "rejection classes and PROTOCOL codes diverged"


def from_code(code: str, reason: str) -> Rejection:
    """Rebuild the exception for a wire ``code`` (e.g. from a received AxisRejection)."""
    return BY_CODE[code](reason)

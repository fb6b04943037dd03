"""Authorization: who may send what to whom — a pure function of the facts.

After a message has parsed, validated and verified, this decides whether the hub
accepts it, re-sends an earlier receipt (a retry), or rejects it, from nothing but
the verified signer, the AMQP ``user_id``, a registry :class:`Snapshot` and what
the hub already knows about the documents the message names (:class:`Known`).
No database, broker or clock: the router supplies all of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import schemas
from axis.registry import AgencyEntry, Snapshot
from axis.rejections import (
    CertNotRegistered,
    CertRevoked,
    DuplicateConflict,
    NotARecipient,
    NotOriginalSender,
    RecipientSuspended,
    SenderMismatch,
    SenderSuspended,
    UnknownDocument,
    UnknownRecipient,
)
from signing import VerifiedSignature

BUSINESS_EVENTS = {1: "REVOKED", 2: "UPDATED", 3: "REPLACED"}
"""The audit event a revoke/update/replace (``BussinessDocType`` 1–3) records on its target."""


class Unattributable(Exception):
    """A message the hub cannot answer: no ``user_id``, or one that is no agency."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class KnownDocument:
    """An edoc the hub has accepted before, as far as routing decisions care."""

    document_id: str
    sender: str
    sha256: str
    receipt_id: str
    recipients: tuple[str, ...]
    undelivered: tuple[str, ...]
    """Recipients whose delivery the broker has not yet confirmed (crash recovery)."""
    received_at: datetime | None = None
    """The hub's receipt time of the first arrival: what redeliveries must carry."""


@dataclass(frozen=True)
class KnownStatus:
    """A status the hub has accepted before, keyed by (sender, sha256)."""

    receipt_id: str
    document_id: str
    sender: str
    addressee: str
    undelivered: tuple[str, ...]
    received_at: datetime | None = None


@dataclass
class Known:
    """What the hub knows about the documents a batch names; grows as the batch is decided."""

    documents: dict[str, KnownDocument] = field(default_factory=dict)
    statuses: dict[tuple[str, str], KnownStatus] = field(default_factory=dict)


@dataclass(frozen=True)
class AcceptEdoc:
    """A new edoc to record and deliver."""

    header: schemas.EdocHeader
    sender: str
    recipients: tuple[str, ...]
    """Expanded, de-duplicated, active recipients."""
    skipped: tuple[str, ...]
    """Members of an addressed group that are suspended, so not delivered to."""
    business_event: str | None
    """REVOKED/UPDATED/REPLACED (BussinessDocType 1–3), recorded on the document it acts on."""


@dataclass(frozen=True)
class AcceptStatus:
    """A new status to record and forward to the document's sender."""

    status: schemas.Status
    sender: str
    addressee: str


@dataclass(frozen=True)
class Retry:
    """The same bytes again: re-send the original receipt, redo only unconfirmed deliveries."""

    receipt_id: str
    document_id: str
    redeliver: tuple[str, ...]
    received_at: datetime | None = None
    """The original receipt time, which redelivered copies carry."""


Accepted = AcceptEdoc | AcceptStatus | Retry


def attribute(user_id: str | None, snapshot: Snapshot) -> AgencyEntry:
    """The agency that sent a message, from its broker-checked ``user_id``.

    Raises :class:`Unattributable` when there is nobody to answer.
    """
    if not user_id:
        raise Unattributable("the message has no user_id property")
    agency = snapshot.agencies.get(user_id)
    if agency is None:
        raise Unattributable(f"user_id {user_id!r} is not a registered agency")
    return agency


def check_active(sender: AgencyEntry) -> None:
    """A suspended agency may not send (it still gets its rejections)."""
    if not sender.active:
        raise SenderSuspended(f"agency {sender.code} is suspended")


def check_signer(
    signer: VerifiedSignature, sender: str, claimed_from: str, snapshot: Snapshot
) -> None:
    """The certificate must be registered, not revoked, and owned by the sender named everywhere."""
    entry = snapshot.certificates.get(signer.fingerprint)
    if entry is None:
        raise CertNotRegistered(
            f"certificate {signer.fingerprint[:16]}… ({signer.subject_code}) "
            "is not registered to any agency"
        )
    if entry.revoked:
        raise CertRevoked(f"certificate {signer.fingerprint[:16]}… was revoked in the registry")
    if not (claimed_from == sender == entry.agency_code):
        raise SenderMismatch(
            f"From/OrganId {claimed_from}, AMQP user_id {sender} and certificate owner "
            f"{entry.agency_code} must be the same agency"
        )


def expand_recipients(
    addresses: list[str], snapshot: Snapshot
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Expand ``@group`` addresses; return (active recipients, suspended group members skipped).

    A suspended agency named directly is refused; one reached through a group is
    skipped and reported in the receipt, so one suspended province does not block a
    directive to the 62 others.
    """
    recipients: dict[str, None] = {}
    skipped: dict[str, None] = {}
    for address in addresses:
        if address.startswith("@"):
            members = snapshot.groups.get(address[1:])
            if members is None:
                raise UnknownRecipient(f"{address} is not a registered group")
            for code in members:
                target = recipients if snapshot.agencies[code].active else skipped
                target[code] = None
            continue
        agency = snapshot.agencies.get(address)
        if agency is None:
            raise UnknownRecipient(f"{address} is not a registered agency")
        if not agency.active:
            raise RecipientSuspended(f"recipient {address} is suspended")
        recipients[address] = None
    for code in recipients:
        skipped.pop(code, None)
    if not recipients:
        raise RecipientSuspended("every addressed recipient is suspended")
    return tuple(recipients), tuple(skipped)


def authorize_edoc(
    edoc: schemas.EdocHeader,
    signer: VerifiedSignature,
    sender: str,
    sha256: str,
    snapshot: Snapshot,
    known: Known,
) -> AcceptEdoc | Retry:
    """Decide an edoc that parsed, validated and verified."""
    check_signer(signer, sender, edoc.sender, snapshot)
    earlier = known.documents.get(edoc.document_id)
    if earlier is not None:
        if earlier.sha256 == sha256 and earlier.sender == sender:
            return Retry(
                earlier.receipt_id, earlier.document_id, earlier.undelivered, earlier.received_at
            )
        raise DuplicateConflict(
            f"DocumentId {edoc.document_id} was already received with different content"
        )
    recipients, skipped = expand_recipients(list(edoc.recipients), snapshot)
    business_event = BUSINESS_EVENTS.get(edoc.business_type)
    if business_event:
        target_id = edoc.replaces or ""
        target = known.documents.get(target_id)
        if target is None:
            raise UnknownDocument(
                f"ReplacementInfo names {target_id}, which the hub never accepted"
            )
        if target.sender != sender:
            raise NotOriginalSender(f"{target_id} was sent by {target.sender}, not {sender}")
    return AcceptEdoc(edoc, sender, recipients, skipped, business_event)


def authorize_status(
    status: schemas.Status,
    signer: VerifiedSignature,
    sender: str,
    sha256: str,
    snapshot: Snapshot,
    known: Known,
) -> AcceptStatus | Retry:
    """Decide a status that parsed, validated and verified: only a recipient may send one."""
    check_signer(signer, sender, status.sender, snapshot)
    earlier = known.statuses.get((sender, sha256))
    if earlier is not None:
        return Retry(
            earlier.receipt_id, earlier.document_id, earlier.undelivered, earlier.received_at
        )
    document = known.documents.get(status.document_id)
    if document is None:
        raise UnknownDocument(
            f"the status is for {status.document_id}, which the hub never accepted"
        )
    if sender not in document.recipients:
        raise NotARecipient(f"{sender} is not a recipient of {status.document_id}")
    return AcceptStatus(status, sender, document.sender)


def referenced_documents(documents: Iterable[schemas.EdocHeader | schemas.Status]) -> set[str]:
    """Every DocumentId a batch's decisions may need to look up."""
    ids: set[str] = set()
    for document in documents:
        ids.add(document.document_id)
        if isinstance(document, schemas.EdocHeader) and document.replaces:
            ids.add(document.replaces)
    return ids

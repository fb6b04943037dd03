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
    business_type: int = 0
    """0 new, 1 revoke, 2 update, 3 replace: a revoke may repeat its original's id."""


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
    """What the hub knows about the documents a batch names; grows as the batch is decided.

    ``documents`` holds, per DocumentId, every accepted message with that id, of any
    sender, oldest first: a document is known by (sender, DocumentId), and a revoke
    may carry its original's id.
    """

    documents: dict[str, list[KnownDocument]] = field(default_factory=dict)
    statuses: dict[tuple[str, str], KnownStatus] = field(default_factory=dict)

    def add(self, document: KnownDocument) -> None:
        """Learn an accepted document."""
        self.documents.setdefault(document.document_id, []).append(document)

    def sent(self, sender: str, document_id: str) -> list[KnownDocument]:
        """Every accepted message of ``sender`` with ``document_id``, oldest first."""
        return [d for d in self.documents.get(document_id, ()) if d.sender == sender]

    def document(self, sender: str, document_id: str) -> KnownDocument | None:
        """The document ``sender`` sent as ``document_id``: the original, not an action on it."""
        sent = self.sent(sender, document_id)
        for known in sent:
            if known.business_type == 0:
                return known
        return sent[0] if sent else None


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
    """REVOKED/UPDATED/REPLACED (BussinessDocType 1–3), recorded on each document it acts on."""
    targets: tuple[KnownDocument, ...] = ()
    """The documents a revoke, update or replacement acts on, all the sender's own."""


@dataclass(frozen=True)
class AcceptStatus:
    """A new status to record and forward to its addressee."""

    status: schemas.Status
    sender: str
    addressee: str
    document: KnownDocument | None = None
    """The document the status is about."""


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
    earlier = known.sent(sender, edoc.document_id)
    for same in earlier:
        if same.sha256 == sha256:
            return Retry(same.receipt_id, same.document_id, same.undelivered, same.received_at)
    if any(e.business_type == edoc.business_type for e in earlier):
        raise DuplicateConflict(
            f"DocumentId {edoc.document_id} was already received from {sender} "
            "with different content"
        )
    business_event = BUSINESS_EVENTS.get(edoc.business_type)
    targets = tuple(_target(target_id, sender, known) for target_id in edoc.targets)
    addresses = list(edoc.recipients) + [r for r in edoc.new_receivers if r not in edoc.recipients]
    recipients, skipped = expand_recipients(addresses, snapshot)
    return AcceptEdoc(edoc, sender, recipients, skipped, business_event, targets)


def _target(document_id: str, sender: str, known: Known) -> KnownDocument:
    """The sender's own document a revoke, update or replacement acts on (EDXML.md 1.2)."""
    target = known.document(sender, document_id)
    if target is not None:
        return target
    if known.documents.get(document_id):
        raise NotOriginalSender(f"{document_id} was not sent by {sender}: only its sender may act")
    raise UnknownDocument(f"{document_id}, which the action names, was never accepted")


def authorize_status(
    status: schemas.Status,
    signer: VerifiedSignature,
    sender: str,
    sha256: str,
    snapshot: Snapshot,
    known: Known,
) -> AcceptStatus | Retry:
    """Decide a status that parsed, validated and verified (EDXML.md 2).

    Codes 01–06, 15 and 16 go from a recipient of the document to its sender
    (``ResponseFor/OrganId``); 13 from the document's sender to one of its recipients.
    """
    check_signer(signer, sender, status.sender_id, snapshot)
    earlier = known.statuses.get((sender, sha256))
    if earlier is not None:
        return Retry(
            earlier.receipt_id, earlier.document_id, earlier.undelivered, earlier.received_at
        )
    addressee, document_id = status.addressee, status.document_id
    # 13 goes from the document's sender to a recipient; every other code the other way.
    owner, recipient = (sender, addressee) if status.code.from_sender else (addressee, sender)
    document = known.document(owner, document_id)
    if document is None:
        raise UnknownDocument(
            f"status 13 is about {document_id}, which {owner} never sent through the hub"
            if status.code.from_sender
            else f"the status is about {document_id} from {owner}, which the hub never accepted"
        )
    if recipient not in document.recipients:
        raise NotARecipient(f"{recipient} is not a recipient of {document_id}")
    return AcceptStatus(status, sender, addressee, document)


def referenced_documents(documents: Iterable[schemas.EdocHeader | schemas.Status]) -> set[str]:
    """Every DocumentId a batch's decisions may need to look up."""
    ids: set[str] = set()
    for document in documents:
        ids.add(document.document_id)
        if isinstance(document, schemas.EdocHeader):
            ids.update(document.targets)
    return ids

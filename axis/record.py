"""Recording a batch: what the hub knew before it, and what it decided, in one transaction.

Three calls, each one round trip's worth of SQL per batch, never per message:

- :func:`lookup` — the earlier documents and statuses a batch names;
- :func:`write` — the batch's audit events, documents, statuses and pending
  deliveries (before anything is published), and on each recipient's delivery the
  time of its first status 01 and 06;
- :func:`confirm` — DELIVERED events and delivery times once the broker has
  confirmed, plus the signed receipts (before anything is acknowledged).

Both writers lock the chain's head (:func:`axis.audit.store.lock_head`) before any
row: ``confirm`` locks the deliveries it marks, ``write`` the deliveries a status
is about, and two routers taking those in opposite orders would deadlock.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.dialects.postgresql import insert as pg_insert

import schemas
from axis.archive import Entry
from axis.audit import store as audit
from axis.audit.chain import Event, EventKind, Link, format_time
from axis.authorize import (
    AcceptEdoc,
    AcceptStatus,
    Known,
    KnownDocument,
    KnownStatus,
    Retry,
    Unattributable,
)
from axis.models import ArchiveEntry, AuditEvent, Delivery, Document, Receipt, table
from axis.models import Status as StatusRow
from axis.receipts import ReceiptWriter
from axis.rejections import Rejection

_CHUNK = 500
LEGACY = "legacy"
"""The signature profile of the national SDK (docs/protocol.md), marked wherever it is used."""

# The router's statements, built once: building and cache-keying a statement per
# batch cost more than running it.
_KNOWN_DOCUMENTS = sa.select(
    Document.document_id,
    Document.sender,
    Document.sha256,
    Document.receipt_id,
    Document.received_at,
    Document.business_type,
).where(Document.document_id.in_(sa.bindparam("ids", expanding=True)))
_KNOWN_STATUSES = sa.select(
    StatusRow.receipt_id,
    StatusRow.document_id,
    StatusRow.sender,
    StatusRow.sha256,
    StatusRow.received_at,
).where(sa.tuple_(StatusRow.sender, StatusRow.sha256).in_(sa.bindparam("keys", expanding=True)))
_DELIVERIES = sa.select(Delivery.receipt_id, Delivery.recipient, Delivery.delivered_at).where(
    Delivery.receipt_id.in_(sa.bindparam("ids", expanding=True))
)
_PENDING = (
    sa.select(Delivery.receipt_id, Delivery.recipient)
    .where(
        Delivery.receipt_id.in_(sa.bindparam("ids", expanding=True)),
        Delivery.delivered_at.is_(None),
    )
    # Two routers confirming the same delivery (a retry routed by each): the second
    # waits (for the chain's head, which confirm takes first, and here), then finds
    # it confirmed and records nothing. In key order, so two confirms never lock rows
    # in opposite orders.
    .order_by(Delivery.receipt_id, Delivery.recipient)
    .with_for_update()
)
_MARK_DELIVERED = (
    sa.update(Delivery)
    .where(Delivery.receipt_id == sa.bindparam("rid"), Delivery.recipient == sa.bindparam("rcp"))
    .values(delivered_at=sa.bindparam("at"))
)
_SET_STATE = (
    table(Document)
    .update()
    .where(Document.receipt_id == sa.bindparam("target"))
    .values(state=sa.bindparam("new_state"))
)
_STORED_RECEIPTS = sa.select(Receipt.receipt_id, Receipt.body).where(
    Receipt.receipt_id.in_(sa.bindparam("ids", expanding=True))
)


def _earliest(column: sa.Column[Any], name: str) -> sa.Case[Any]:
    """``column`` set to the parameter ``name`` if that is earlier; a NULL one changes nothing."""
    at = sa.bindparam(name, type_=column.type)
    return sa.case((sa.or_(column.is_(None), column > at), at), else_=column)


_DELIVERY = table(Delivery)
_FIRST_STATUSES = (
    _DELIVERY.update()
    .where(
        _DELIVERY.c.receipt_id == sa.bindparam("document_receipt_id"),
        _DELIVERY.c.recipient == sa.bindparam("status_sender"),
    )
    # The earliest, not the first written: a status recorded late (a retry, another
    # router's batch) still leaves the delivery with the recipient's first 01 and 06.
    .values(
        acknowledged_at=_earliest(_DELIVERY.c.acknowledged_at, "acknowledged"),
        completed_at=_earliest(_DELIVERY.c.completed_at, "completed"),
    )
)
_INSERT_DOCUMENTS = table(Document).insert()
_INSERT_STATUSES = table(StatusRow).insert()
_INSERT_DELIVERIES = table(Delivery).insert()
_INSERT_NEW: dict[tuple[str, str], sa.Executable] = {}


@dataclass(frozen=True)
class Inbound:
    """One message as the router took it from ``axis.inbound``."""

    tag: int
    body: bytes
    user_id: str | None
    message_id: str | None
    type: str | None
    content_type: str | None
    received_at: datetime
    """The hub's receipt timestamp: when the router took the message."""
    redelivered: bool = False


Outcome = AcceptEdoc | AcceptStatus | Retry | Rejection | Unattributable


@dataclass
class Item:
    """One message of a batch on its way through the router."""

    inbound: Inbound
    sha256: str
    receipt_id: str
    outcome: Outcome
    sender: str | None = None
    document_id: str | None = None
    link: Link | None = None
    """The message's own audit event (RECEIVED, STATUS, REJECTED or QUARANTINED)."""
    deliveries: tuple[str, ...] = ()
    """Recipients to publish to in this pass."""
    receipt: bytes | None = None
    """The signed receipt or rejection, once built."""
    first_received_at: datetime | None = None
    """For a retry, when the hub first received these bytes (redeliveries carry it)."""
    confirmed_at: datetime | None = None
    """When the broker confirmed every publish of this item's batch."""
    refused_before: bool = False
    """A rejection the hub already recorded for this very message (see :func:`refused_before`)."""
    signature_profile: str | None = None
    """``strict`` or ``legacy``: the XML-DSig profile the sender's signature verified under."""

    @property
    def received_at(self) -> datetime:
        """The hub's receipt time this message's deliveries carry."""
        return self.first_received_at or self.inbound.received_at

    extra: dict[str, str] = field(default_factory=dict)


def _insert_new(conn: Connection, target: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows``, skipping those whose primary key is already there (a retry's)."""
    key = (conn.dialect.name, target.name)
    statement = _INSERT_NEW.get(key)
    if statement is None:
        statement = _INSERT_NEW[key] = (
            target.insert().prefix_with("OR IGNORE")
            if conn.dialect.name == "sqlite"
            else pg_insert(target).on_conflict_do_nothing()
        )
    conn.execute(statement, rows)


def _chunks(values: Sequence, size: int = _CHUNK) -> Iterable[Sequence]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def lookup(conn: Connection, document_ids: set[str], status_keys: set[tuple[str, str]]) -> Known:
    """What the hub already accepted among ``document_ids`` and (sender, sha256) status keys."""
    known = Known()
    rows: list[Any] = []
    for chunk in _chunks(sorted(document_ids)):
        rows += conn.execute(_KNOWN_DOCUMENTS, {"ids": list(chunk)}).all()
    statuses: list[Any] = []
    for chunk in _chunks(sorted(status_keys)):
        statuses += conn.execute(_KNOWN_STATUSES, {"keys": list(chunk)}).all()
    receipts = [r.receipt_id for r in rows] + [s.receipt_id for s in statuses]
    recipients: dict[str, list[str]] = {}
    undelivered: dict[str, list[str]] = {}
    for chunk in _chunks(receipts):
        for d in conn.execute(_DELIVERIES, {"ids": list(chunk)}):
            recipients.setdefault(d.receipt_id, []).append(d.recipient)
            if d.delivered_at is None:
                undelivered.setdefault(d.receipt_id, []).append(d.recipient)
    for r in sorted(rows, key=lambda r: r.received_at):
        known.add(
            KnownDocument(
                r.document_id,
                r.sender,
                r.sha256,
                r.receipt_id,
                tuple(recipients.get(r.receipt_id, ())),
                tuple(undelivered.get(r.receipt_id, ())),
                r.received_at,
                r.business_type,
            )
        )
    for s in statuses:
        addressee = (recipients.get(s.receipt_id) or [""])[0]
        known.statuses[(s.sender, s.sha256)] = KnownStatus(
            s.receipt_id,
            s.document_id,
            s.sender,
            addressee,
            tuple(undelivered.get(s.receipt_id, ())),
            s.received_at,
        )
    return known


REFUSAL_MEMORY = timedelta(days=1)
"""How far back :func:`refused_before` looks for the same message's rejection."""
_EARLIER_REFUSALS = (
    sa.select(AuditEvent.seq, AuditEvent.at, AuditEvent.receipt_id, AuditEvent.detail)
    .where(
        AuditEvent.sender == sa.bindparam("sender"),
        AuditEvent.at >= sa.bindparam("since"),
        AuditEvent.event == str(EventKind.REJECTED),
    )
    .order_by(AuditEvent.seq)
)
_LINK = sa.select(*(table(AuditEvent).c[c] for c in audit.COLUMNS)).where(
    AuditEvent.seq == sa.bindparam("seq")
)


def refused_before(conn: Connection, items: Sequence[Item], now: datetime) -> None:
    """Give a rejection the hub already recorded for the same message its first answer.

    A refused message comes back, marked redelivered by the broker, when the router
    that refused it stopped before acknowledging it (a crash, a lost broker). The
    same message (sender, message id and bytes) gets the same receipt id, time and
    audit link, and no second REJECTED event. Looks back :data:`REFUSAL_MEMORY`.
    Only redelivered messages are looked up: the lookup reads the sender's recent
    refusals, which an agency sending bad messages must not make every batch pay.
    """
    wanted = {
        (item.sender, item.inbound.message_id, item.sha256): item
        for item in items
        if isinstance(item.outcome, Rejection)
        and item.sender
        and item.inbound.message_id
        and item.inbound.redelivered
    }
    for sender in sorted({sender for sender, _, _ in wanted if sender}):
        for row in conn.execute(
            _EARLIER_REFUSALS, {"sender": sender, "since": now - REFUSAL_MEMORY}
        ):
            detail = json.loads(row.detail or "{}")
            item = wanted.pop((sender, detail.get("message_id"), detail.get("sha256")), None)
            if item is None:
                continue
            item.receipt_id = row.receipt_id
            item.link = audit.link_of(conn.execute(_LINK, {"seq": row.seq}).one())
            item.first_received_at = row.at
            item.refused_before = True


def _event(item: Item) -> Event | None:
    inbound, outcome = item.inbound, item.outcome
    if item.refused_before:
        return None
    base: dict[str, Any] = {
        "message_id": inbound.message_id,
        "sha256": item.sha256,
        "size": len(inbound.body),
    }
    if item.signature_profile == LEGACY:
        base["signature_profile"] = LEGACY
    if isinstance(outcome, AcceptEdoc):
        return Event(
            EventKind.RECEIVED,
            inbound.received_at,
            item.receipt_id,
            item.document_id,
            item.sender,
            detail={
                **base,
                "type": "edoc",
                "recipients": list(outcome.recipients),
                "skipped": list(outcome.skipped),
            },
        )
    if isinstance(outcome, AcceptStatus):
        return Event(
            EventKind.STATUS,
            inbound.received_at,
            item.receipt_id,
            item.document_id,
            item.sender,
            outcome.addressee,
            str(outcome.status.code),
            detail={
                **base,
                "type": "status",
                "stated_at": format_time(outcome.status.timestamp),
            },
        )
    if isinstance(outcome, Rejection):
        return Event(
            EventKind.REJECTED,
            inbound.received_at,
            item.receipt_id,
            item.document_id,
            item.sender,
            code=outcome.code,
            detail={**base, "reason": outcome.reason, "type": inbound.type},
        )
    if isinstance(outcome, Unattributable):
        return Event(
            EventKind.QUARANTINED,
            inbound.received_at,
            item.receipt_id,
            item.document_id,
            inbound.user_id,
            detail={**base, "reason": outcome.reason, "type": inbound.type},
        )
    return None


def write(
    conn: Connection,
    items: Sequence[Item],
    archived: Sequence[Entry] = (),
    *,
    delivered: Sequence[Event] = (),
    head: tuple[int, str] | None = None,
) -> int | None:
    """Record a decided batch: audit events first (they number the rest), then the rows.

    ``archived`` are the archive entries of the batch's bodies, indexed here so an
    index row exists only for a body whose batch committed. ``delivered`` are the
    DELIVERED events a :func:`confirm` earlier in the transaction left to this call:
    they are chained first, in one statement with the batch's own. ``head`` is the
    chain's head when the caller locked it at the start of the transaction. Returns
    the sequence number of the last audit event written (the chain's head), None if
    none was.
    """
    if archived:
        _insert_new(conn, table(ArchiveEntry), [vars(entry) for entry in archived])
    events: list[Event] = list(delivered)
    owners: list[Item | None] = [None] * len(events)
    for item in items:
        event = _event(item)
        if event is None:
            continue
        events.append(event)
        owners.append(item)
        outcome = item.outcome
        if isinstance(outcome, AcceptEdoc) and outcome.business_event:
            for target, detail in _actions(outcome):
                events.append(
                    Event(
                        EventKind(outcome.business_event),
                        item.inbound.received_at,
                        item.receipt_id,
                        target.document_id,
                        item.sender,
                        detail={"by": item.document_id, **detail},
                    )
                )
                owners.append(None)
    links = audit.append(conn, events, head=head)
    for owner, link in zip(owners, links, strict=True):
        if owner is not None:
            owner.link = link

    documents, statuses, deliveries, states = [], [], [], []
    first_statuses: list[dict[str, Any]] = []
    for item in items:
        outcome = item.outcome
        if isinstance(outcome, AcceptEdoc):
            edoc = outcome.header
            documents.append(
                {
                    "document_id": edoc.document_id,
                    "receipt_id": item.receipt_id,
                    "message_id": item.inbound.message_id or "",
                    "sender": item.sender,
                    "sha256": item.sha256,
                    "size": len(item.inbound.body),
                    "received_at": item.inbound.received_at,
                    "audit_seq": item.link.seq if item.link else 0,
                    "subject": edoc.subject,
                    "doc_type": edoc.document_type,
                    "priority": edoc.priority,
                    "steering_type": edoc.steering_type,
                    "due_date": edoc.due_date,
                    "business_type": edoc.business_type,
                    "acts_on": edoc.targets[0] if edoc.targets else None,
                    "state": "active",
                    "signature_profile": item.signature_profile,
                }
            )
            if outcome.business_event:
                states += [
                    {"target": target.receipt_id, "new_state": outcome.business_event.lower()}
                    for target in outcome.targets
                ]
            deliveries += [
                {"receipt_id": item.receipt_id, "recipient": r} for r in outcome.recipients
            ]
        elif isinstance(outcome, AcceptStatus):
            statuses.append(
                {
                    "receipt_id": item.receipt_id,
                    "message_id": item.inbound.message_id or "",
                    "document_id": outcome.status.document_id,
                    "document_sender": outcome.status.document_sender,
                    "sender": item.sender,
                    "code": str(outcome.status.code),
                    "sha256": item.sha256,
                    "stated_at": outcome.status.timestamp,
                    "received_at": item.inbound.received_at,
                    "audit_seq": item.link.seq if item.link else 0,
                }
            )
            deliveries.append({"receipt_id": item.receipt_id, "recipient": outcome.addressee})
            if outcome.document is not None and statuses[-1]["code"] in _FIRST_CODES:
                about = outcome.document.receipt_id
                first_statuses.append({**statuses[-1], "document_receipt_id": about})
    if documents:
        conn.execute(_INSERT_DOCUMENTS, documents)
    if statuses:
        conn.execute(_INSERT_STATUSES, statuses)
    if deliveries:
        conn.execute(_INSERT_DELIVERIES, deliveries)
    if states:
        conn.execute(_SET_STATE, states)
    if first_statuses:
        # After the deliveries: a status can be about a document of the same batch.
        keep_first_statuses(conn, first_statuses)
    return links[-1].seq if links else None


def _actions(outcome: AcceptEdoc) -> list[tuple[KnownDocument, dict[str, Any]]]:
    """Each document a revoke, update or replacement acts on, with what its event records."""
    edoc = outcome.header
    reason: dict[str, Any] = {"reason": edoc.business_reason or ""}
    if edoc.business_type == 2 and edoc.new_receivers:
        reason["receivers"] = list(edoc.new_receivers)
    if edoc.business_type == 3:
        replaced_for = dict(edoc.replaced_for)
        return [
            (target, {**reason, "for": list(replaced_for.get(target.document_id, ()))})
            for target in outcome.targets
        ]
    return [(target, reason) for target in outcome.targets]


_FIRST_CODES = {
    str(schemas.StatusCode.ARRIVED): "acknowledged",
    str(schemas.StatusCode.COMPLETED): "completed",
}


def keep_first_statuses(conn: Connection, statuses: Sequence[Mapping[str, Any]]) -> None:
    """Note on each recipient's delivery of a document its first status 01 and 06.

    ``statuses`` are rows just written to the statuses table (``sender``, ``code``,
    ``received_at``) with the ``document_receipt_id`` of the document each is about;
    one statement for them all.
    """
    firsts = []
    for status in statuses:
        column = _FIRST_CODES.get(status["code"])
        if column is not None and status.get("document_receipt_id"):
            firsts.append(
                {
                    "document_receipt_id": status["document_receipt_id"],
                    "status_sender": status["sender"],
                    "acknowledged": None,
                    "completed": None,
                    column: status["received_at"],
                }
            )
    if firsts:
        conn.execute(_FIRST_STATUSES, firsts)


def confirm(
    conn: Connection,
    items: Sequence[Item],
    confirmed_at: datetime,
    *,
    head: tuple[int, str] | None = None,
    events_to: list[Event] | None = None,
) -> int:
    """Record that the broker confirmed a batch's deliveries; store its receipts.

    Only deliveries still pending get a DELIVERED event, so a redone delivery after a
    crash is not recorded twice. Each carries its item's ``confirmed_at`` (when the
    broker confirmed; the record may come a batch later), else ``confirmed_at``.
    ``head`` is the chain's head when the caller has locked it already. With
    ``events_to``, the DELIVERED events are put there for a :func:`write` later in
    the same transaction, instead of being appended now. Returns their number.
    """
    published = {(item.receipt_id, r): item for item in items for r in item.deliveries}
    pending: list[tuple[str, str]] = []
    receipt_ids = sorted({receipt_id for receipt_id, _ in published})
    # The head before the deliveries (see the module's docstring).
    if head is None and receipt_ids:
        head = audit.lock_head(conn)
    for chunk in _chunks(receipt_ids):
        pending += [
            (row.receipt_id, row.recipient)
            for row in conn.execute(_PENDING, {"ids": list(chunk)})
            if (row.receipt_id, row.recipient) in published
        ]
    if pending:
        conn.execute(
            _MARK_DELIVERED,
            [
                {"rid": rid, "rcp": rcp, "at": published[(rid, rcp)].confirmed_at or confirmed_at}
                for rid, rcp in pending
            ],
        )
        events = []
        for rid, rcp in pending:
            item = published[(rid, rcp)]
            outcome = item.outcome
            code = str(outcome.status.code) if isinstance(outcome, AcceptStatus) else None
            events.append(
                Event(
                    EventKind.DELIVERED,
                    item.confirmed_at or confirmed_at,
                    rid,
                    item.document_id,
                    item.sender,
                    rcp,
                    code,
                )
            )
        if events_to is None:
            audit.append(conn, events, head=head)
        else:
            events_to.extend(events)
    receipts = [
        {
            "receipt_id": item.receipt_id,
            "kind": "rejection" if isinstance(item.outcome, Rejection) else "receipt",
            "body": item.receipt,
        }
        for item in items
        # A retry's receipt too: when the first pass crashed before this point, the
        # receipt it rebuilt is the only one (a stored receipt is kept as it is).
        if item.receipt is not None and not isinstance(item.outcome, Unattributable)
    ]
    if receipts:
        _insert_new(conn, table(Receipt), receipts)
    return len(pending)


def stored_receipts(conn: Connection, receipt_ids: Iterable[str]) -> dict[str, bytes]:
    """The signed receipts or rejections kept for ``receipt_ids``."""
    found: dict[str, bytes] = {}
    for chunk in _chunks(sorted(set(receipt_ids))):
        found.update(conn.execute(_STORED_RECEIPTS, {"ids": list(chunk)}).all())
    return found


def rebuild_receipt(conn: Connection, receipt_id: str, writer: ReceiptWriter) -> bytes | None:
    """Re-issue the receipt of an accepted message from what was recorded.

    Used when a crash fell between recording a message and storing its receipt:
    the content is the original's (same ids, times, sequence number and chain hash).
    """
    doc = conn.execute(
        sa.select(*table(Document).c).where(Document.receipt_id == receipt_id)
    ).one_or_none()
    status = None
    if doc is None:
        status = conn.execute(
            sa.select(*table(StatusRow).c).where(StatusRow.receipt_id == receipt_id)
        ).one_or_none()
        if status is None:
            return None
    seq = doc.audit_seq if doc else status.audit_seq  # type: ignore[union-attr]
    event = conn.execute(
        sa.select(AuditEvent.hash, AuditEvent.detail).where(AuditEvent.seq == seq)
    ).one()
    detail = json.loads(event.detail)
    recipients = tuple(
        detail.get("recipients")
        or conn.execute(
            sa.select(Delivery.recipient).where(Delivery.receipt_id == receipt_id)
        ).scalars()
    )
    source = doc if doc is not None else status
    assert source is not None
    return writer.receipt(
        receipt_id=receipt_id,
        message_id=source.message_id,
        kind="edoc" if doc is not None else "status",
        sender=source.sender,
        document_id=source.document_id,
        sha256=source.sha256,
        received_at=source.received_at,
        audit_seq=seq,
        chain_hash=event.hash,
        delivered=recipients,
        skipped=tuple(detail.get("skipped", ())),
        signature_profile=detail.get("signature_profile", "strict"),
    )


def archive_entry(conn: Connection, sha256: str) -> Entry | None:
    """Where the archive keeps the body with ``sha256``, if it has it."""
    row = conn.execute(
        sa.select(*table(ArchiveEntry).c).where(ArchiveEntry.sha256 == sha256)
    ).one_or_none()
    return None if row is None else Entry(row.sha256, row.segment, row.offset, row.length)

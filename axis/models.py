"""The hub's tables: the registry, the documents it accepted, and the audit trail.

The registry (agencies, certificates, groups) is what admins change; documents,
deliveries and statuses are the operational record the router writes; the audit
trail is the append-only, hash-chained evidence every other table can be checked
against. Times are stored as UTC without a zone (SQLite has none) and come back as
aware UTC datetimes.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime, stored naive in UTC with microseconds on every backend."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where UTC was expected")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


CODE = String(35)
"""An agency code: ``[0-9A-Z.]{1,35}`` (Decision 20/2020/QĐ-TTg)."""
DOCUMENT_ID = String(200)
HEX256 = String(64)
UUID = String(36)

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with stable constraint names, so migrations stay portable."""

    metadata = MetaData(naming_convention=NAMING)


def table(model: type[Base]) -> Table:
    """The Core table of ``model``, for bulk inserts and updates on the router's path."""
    return cast(Table, model.__table__)


class Agency(Base):
    """A connected agency: its code is also its AMQP user."""

    __tablename__ = "agencies"

    code: Mapped[str] = mapped_column(CODE, primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    name_en: Mapped[str | None] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), default="active")
    """``active`` or ``suspended``."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Certificate(Base):
    """A signing certificate, bound by its SHA-256 fingerprint to exactly one agency."""

    __tablename__ = "certificates"

    fingerprint: Mapped[str] = mapped_column(HEX256, primary_key=True)
    agency_code: Mapped[str] = mapped_column(
        ForeignKey("agencies.code", ondelete="CASCADE"), index=True
    )
    subject: Mapped[str] = mapped_column(String(500))
    serial: Mapped[str] = mapped_column(String(80))
    not_before: Mapped[datetime] = mapped_column(UTCDateTime)
    not_after: Mapped[datetime] = mapped_column(UTCDateTime)
    pem: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="active")
    """``active`` or ``revoked`` (revoked in the registry, whatever the CRL says)."""
    added_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Group(Base):
    """A named set of agencies addressable as ``@name`` in ``To/OrganId``."""

    __tablename__ = "groups"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    description: Mapped[str] = mapped_column(String(300), default="")


class GroupMember(Base):
    """Membership of an agency in a group."""

    __tablename__ = "group_members"

    group_name: Mapped[str] = mapped_column(
        ForeignKey("groups.name", ondelete="CASCADE"), primary_key=True
    )
    agency_code: Mapped[str] = mapped_column(
        ForeignKey("agencies.code", ondelete="CASCADE"), primary_key=True, index=True
    )


class Document(Base):
    """An accepted edoc: its header facts, for routing decisions and auditors' queries.

    A document is known by its sender and DocumentId together (EDXML.md 1.1: two
    agencies may use the same id, and a revoke may repeat its original's), so the
    row's key is the receipt id the hub gave it.
    """

    __tablename__ = "documents"

    receipt_id: Mapped[str] = mapped_column(UUID, primary_key=True)
    document_id: Mapped[str] = mapped_column(DOCUMENT_ID)
    message_id: Mapped[str] = mapped_column(String(200))
    sender: Mapped[str] = mapped_column(CODE)
    sha256: Mapped[str] = mapped_column(HEX256)
    size: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    audit_seq: Mapped[int] = mapped_column(BigInteger)
    """Sequence number of the document's RECEIVED event."""
    subject: Mapped[str] = mapped_column(Text)
    doc_type: Mapped[int] = mapped_column(SmallInteger)
    priority: Mapped[int] = mapped_column(SmallInteger)
    steering_type: Mapped[int] = mapped_column(SmallInteger)
    due_date: Mapped[date | None] = mapped_column(Date)
    business_type: Mapped[int] = mapped_column(SmallInteger, default=0)
    """0 new, 1 revoke, 2 update, 3 replace (``BussinessDocType``)."""
    acts_on: Mapped[str | None] = mapped_column(DOCUMENT_ID)
    """The (first) DocumentId a revoke, update or replacement acts on, of the same sender."""
    state: Mapped[str] = mapped_column(String(16), default="active")
    """``active``, or ``revoked``/``updated``/``replaced`` by a later document."""
    signature_profile: Mapped[str | None] = mapped_column(String(8))
    """``strict`` or ``legacy`` (the national SDK's rsa-sha1 profile), NULL before 0004."""

    __table_args__ = (
        Index(None, "document_id", "sender"),
        Index(None, "sender", "received_at"),
        Index(None, "received_at"),
        Index(None, "due_date"),
        Index(None, "acts_on"),
    )


class Status(Base):
    """An accepted status message (PROTOCOL 3.2), forwarded to the document's sender."""

    __tablename__ = "statuses"

    receipt_id: Mapped[str] = mapped_column(UUID, primary_key=True)
    message_id: Mapped[str] = mapped_column(String(200))
    document_id: Mapped[str] = mapped_column(DOCUMENT_ID)
    document_sender: Mapped[str | None] = mapped_column(CODE)
    """Who sent the document: the status's addressee, or for a 13 its sender."""
    sender: Mapped[str] = mapped_column(CODE)
    code: Mapped[str] = mapped_column(String(2))
    sha256: Mapped[str] = mapped_column(HEX256)
    stated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    """The ``Timestamp`` the recipient wrote in the status."""
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    audit_seq: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        Index(None, "document_id", "sender", "code", "received_at"),
        Index(None, "sender", "sha256"),
    )


class Delivery(Base):
    """One recipient of one accepted message (an edoc's recipient, or a status's addressee)."""

    __tablename__ = "deliveries"

    receipt_id: Mapped[str] = mapped_column(UUID, primary_key=True)
    recipient: Mapped[str] = mapped_column(CODE, primary_key=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """When the broker confirmed the delivery into the recipient's inbox."""
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """When the hub received the recipient's first status 01 about the document."""
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """When the hub received the recipient's first status 06 about the document.

    Both are copies of the statuses table's earliest 01 and 06 (``record.write`` keeps
    them), so the auditors' statistics read one row per delivery instead of looking
    each recipient's statuses up. A status message's own delivery has neither.
    """

    __table_args__ = (Index(None, "recipient", "delivered_at"),)


class Receipt(Base):
    """The hub-signed receipt or rejection sent for a message, kept to be re-sent and exported."""

    __tablename__ = "receipts"

    receipt_id: Mapped[str] = mapped_column(UUID, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    """``receipt`` or ``rejection``."""
    body: Mapped[bytes] = mapped_column(LargeBinary)


class AuditEvent(Base):
    """One link of the append-only, hash-chained audit trail.

    ``hash`` = SHA-256(previous hash ‖ SHA-256(canonical event)), see ``axis.audit.chain``.
    """

    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    event: Mapped[str] = mapped_column(String(16))
    receipt_id: Mapped[str | None] = mapped_column(UUID)
    document_id: Mapped[str | None] = mapped_column(DOCUMENT_ID)
    sender: Mapped[str | None] = mapped_column(CODE)
    recipient: Mapped[str | None] = mapped_column(CODE)
    code: Mapped[str | None] = mapped_column(String(32))
    """The rejection code of a REJECTED event, the status code of a STATUS event."""
    detail: Mapped[str] = mapped_column(Text, default="")
    """Canonical JSON with the event's remaining facts (sha256, message id, reason...)."""
    hash: Mapped[str] = mapped_column(HEX256)

    __table_args__ = (
        Index(None, "document_id", "seq"),
        Index(None, "receipt_id"),
        Index(None, "at"),
        Index(None, "sender", "at"),
        Index(None, "recipient", "at"),
        Index(None, "event", "at"),
    )


class AuditHead(Base):
    """The single row holding the chain's last sequence number and hash.

    Writers lock it for the length of a batch's transaction, which is what keeps the
    chain gap-free and correctly linked when several routers write at once.
    """

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(HEX256)


class ChainHead(Base):
    """A hub-signed statement of the chain's head (seq, hash) at a moment."""

    __tablename__ = "chain_heads"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(HEX256)
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    """The signed ``AxisChainHead`` XML document."""


class RegistryVersion(Base):
    """A counter bumped by every registry change, so routers know when to reload."""

    __tablename__ = "registry_version"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger)


class ArchiveEntry(Base):
    """Where the archive keeps the body with a given SHA-256 (see ``axis.archive``)."""

    __tablename__ = "archive_entries"

    sha256: Mapped[str] = mapped_column(HEX256, primary_key=True)
    segment: Mapped[str] = mapped_column(String(80))
    offset: Mapped[int] = mapped_column(BigInteger)
    length: Mapped[int] = mapped_column(Integer)

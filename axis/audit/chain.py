"""The pure core of the audit chain: how an event is written down and linked.

Each event has a canonical byte form (a JSON array in a fixed field order, UTF-8,
no whitespace). Its *digest* is SHA-256 of that form, and its *link hash* is
``SHA-256(previous link hash ‖ digest)``, starting from :data:`GENESIS`. Anyone
holding a run of consecutive events (or just their digests) and the hash before
them can recompute the hashes; the hub signs the head of the chain at intervals and
puts the hash of each document's RECEIVED event in its receipt, so rewriting
history means contradicting documents that agencies already hold.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

GENESIS = "0" * 64
"""The link hash before the first event."""


class EventKind(StrEnum):
    """What an audit event records."""

    RECEIVED = "RECEIVED"
    REJECTED = "REJECTED"
    QUARANTINED = "QUARANTINED"
    DELIVERED = "DELIVERED"
    STATUS = "STATUS"
    REVOKED = "REVOKED"
    UPDATED = "UPDATED"
    REPLACED = "REPLACED"


@dataclass(frozen=True)
class Event:
    """An audit event before it has a place in the chain."""

    kind: EventKind
    at: datetime
    receipt_id: str | None = None
    document_id: str | None = None
    sender: str | None = None
    recipient: str | None = None
    code: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Link:
    """An event with its sequence number and link hash: one row of the trail."""

    seq: int
    at: datetime
    kind: str
    receipt_id: str | None
    document_id: str | None
    sender: str | None
    recipient: str | None
    code: str | None
    detail: str
    """The event's remaining facts as canonical JSON (see :func:`canonical_detail`)."""
    hash: str


def format_time(at: datetime) -> str:
    """RFC 3339 in UTC with microseconds, e.g. ``2026-11-20T03:04:05.123456Z``."""
    if at.tzinfo is None:
        raise ValueError("audit times must be timezone-aware")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_detail(detail: Mapping[str, Any]) -> str:
    """The canonical JSON text of an event's detail: sorted keys, no spaces, UTF-8."""
    if not detail:
        return "{}"  # most events: no encoder to build
    return json.dumps(detail, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(
    seq: int,
    at: datetime,
    kind: str,
    receipt_id: str | None,
    document_id: str | None,
    sender: str | None,
    recipient: str | None,
    code: str | None,
    detail: str,
) -> bytes:
    """SHA-256 of the canonical form of one event (its sequence number included)."""
    return digest_of(
        seq, format_time(at), kind, receipt_id, document_id, sender, recipient, code, detail
    )


def digest_of(
    seq: int,
    time: str,
    kind: str,
    receipt_id: str | None,
    document_id: str | None,
    sender: str | None,
    recipient: str | None,
    code: str | None,
    detail: str,
) -> bytes:
    """:func:`digest` of an event whose time is already written as :func:`format_time` writes it."""
    form = _FORM.encode([seq, time, kind, receipt_id, document_id, sender, recipient, code, detail])
    return hashlib.sha256(form.encode("utf-8")).digest()


_FORM = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
"""The canonical form's JSON writer, made once (``json.dumps`` with options makes one per call)."""


def link_hash(previous: str, event_digest: bytes) -> str:
    """The link hash following ``previous`` for an event with ``event_digest``."""
    return hashlib.sha256(bytes.fromhex(previous) + event_digest).hexdigest()


def chain(events: Iterable[Event], *, after_seq: int, after_hash: str) -> Iterator[Link]:
    """Give ``events`` the sequence numbers and link hashes following the given head."""
    seq, previous = after_seq, bytes.fromhex(after_hash)
    for event in events:
        seq += 1
        kind, detail = str(event.kind), canonical_detail(event.detail)
        who = (event.receipt_id, event.document_id, event.sender, event.recipient, event.code)
        previous = hashlib.sha256(previous + digest(seq, event.at, kind, *who, detail)).digest()
        yield Link(seq, event.at, kind, *who, detail, previous.hex())


def link_digest(link: Link) -> bytes:
    """The digest of a link's event, from its fields (its own hash aside)."""
    return digest(
        link.seq,
        link.at,
        link.kind,
        link.receipt_id,
        link.document_id,
        link.sender,
        link.recipient,
        link.code,
        link.detail,
    )


@dataclass(frozen=True)
class Break:
    """The first place where a run of links does not verify."""

    seq: int
    reason: str


def verify_links(
    links: Iterable[Link], *, after_seq: int = 0, after_hash: str = GENESIS
) -> tuple[int, str, Break | None]:
    """Recompute a run of consecutive links; return the last (seq, hash) and the first break.

    A gap in the sequence numbers, a changed field or a changed hash is a break.
    """
    seq, previous = after_seq, after_hash
    for link in links:
        if link.seq != seq + 1:
            return (
                seq,
                previous,
                Break(seq + 1, f"missing link: expected seq {seq + 1}, found {link.seq}"),
            )
        expected = link_hash(previous, link_digest(link))
        if expected != link.hash:
            return (
                seq,
                previous,
                Break(
                    link.seq, "the event's content or hash was changed (recomputed hash differs)"
                ),
            )
        seq, previous = link.seq, link.hash
    return seq, previous, None

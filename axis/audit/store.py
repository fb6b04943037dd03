"""Reading and writing the audit trail in the database.

Appending happens inside the caller's transaction (the router's batch), under a
lock on the single ``audit_head`` row, so sequence numbers stay gap-free and each
link follows the one before it even with several routers writing at once. On
SQLite the writer's ``BEGIN IMMEDIATE`` already serializes; on PostgreSQL the
``SELECT ... FOR UPDATE`` does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from axis.audit.chain import GENESIS, Break, Event, Link, chain, verify_links
from axis.models import AuditEvent, AuditHead, ChainHead, table

_EVENTS = table(AuditEvent)
_HEAD = table(AuditHead)
_COLUMNS = (
    "seq",
    "at",
    "event",
    "receipt_id",
    "document_id",
    "sender",
    "recipient",
    "code",
    "detail",
    "hash",
)


def append(conn: Connection, events: Sequence[Event]) -> list[Link]:
    """Append ``events`` to the chain in the current transaction and return their links."""
    if not events:
        return []
    head = sa.select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == 1)
    if conn.dialect.name != "sqlite":
        head = head.with_for_update()
    seq, previous = conn.execute(head).one()
    links = list(chain(events, after_seq=seq, after_hash=previous))
    conn.execute(
        _EVENTS.insert(),
        [
            {
                "seq": link.seq,
                "at": link.at,
                "event": link.kind,
                "receipt_id": link.receipt_id,
                "document_id": link.document_id,
                "sender": link.sender,
                "recipient": link.recipient,
                "code": link.code,
                "detail": link.detail,
                "hash": link.hash,
            }
            for link in links
        ],
    )
    last = links[-1]
    conn.execute(_HEAD.update().where(_HEAD.c.id == 1).values(seq=last.seq, hash=last.hash))
    return links


def head(conn: Connection) -> tuple[int, str]:
    """The chain's last (seq, hash); (0, GENESIS) when empty."""
    row = conn.execute(sa.select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == 1)).one_or_none()
    return (0, GENESIS) if row is None else (row.seq, row.hash)


def _link(row: sa.Row) -> Link:
    return Link(
        row.seq,
        row.at,
        row.event,
        row.receipt_id,
        row.document_id,
        row.sender,
        row.recipient,
        row.code,
        row.detail,
        row.hash,
    )


def trail(conn: Connection, document_id: str) -> list[Link]:
    """Every event of ``document_id``, in chain order."""
    query = sa.select(*(_EVENTS.c[c] for c in _COLUMNS)).where(_EVENTS.c.document_id == document_id)
    return [_link(row) for row in conn.execute(query.order_by(_EVENTS.c.seq))]


def links_between(conn: Connection, first: int, last: int) -> list[Link]:
    """The links with ``first <= seq <= last``, in order."""
    query = sa.select(*(_EVENTS.c[c] for c in _COLUMNS)).where(_EVENTS.c.seq.between(first, last))
    return [_link(row) for row in conn.execute(query.order_by(_EVENTS.c.seq))]


def hash_at(conn: Connection, seq: int) -> str:
    """The link hash at ``seq`` (GENESIS for 0)."""
    if seq == 0:
        return GENESIS
    return conn.execute(sa.select(_EVENTS.c.hash).where(_EVENTS.c.seq == seq)).scalar_one()


def iter_links(conn: Connection, *, start: int = 1, page: int = 20_000) -> Iterator[Link]:
    """Every link from ``start`` on, read in pages so memory stays flat over millions."""
    columns = [_EVENTS.c[c] for c in _COLUMNS]
    while True:
        rows = conn.execute(
            sa.select(*columns).where(_EVENTS.c.seq >= start).order_by(_EVENTS.c.seq).limit(page)
        ).all()
        if not rows:
            return
        for row in rows:
            yield _link(row)
        start = rows[-1].seq + 1


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of recomputing the chain."""

    checked: int
    last_seq: int
    last_hash: str
    heads_checked: int
    problem: Break | None

    @property
    def ok(self) -> bool:
        """Whether every link and every signed head verified."""
        return self.problem is None


def verify(
    conn: Connection, *, check_head: Callable[[Any], str | None] | None = None
) -> VerifyReport:
    """Recompute the whole chain and check it against the signed chain heads.

    ``check_head`` verifies one signed head (a row with seq, hash, signed_at and
    body) and returns a reason when it does not verify. The report names the first
    broken or missing link.
    """
    heads = {
        h.seq: h
        for h in conn.execute(
            sa.select(ChainHead.seq, ChainHead.hash, ChainHead.signed_at, ChainHead.body)
        )
    }
    checked = heads_checked = 0
    seq, previous = 0, GENESIS
    problem: Break | None = None
    for link in iter_links(conn):
        seq, previous, problem = verify_links([link], after_seq=seq, after_hash=previous)
        if problem:
            break
        checked += 1
        signed = heads.get(seq)
        if signed is not None:
            heads_checked += 1
            if signed.hash != previous:
                problem = Break(seq, "a signed chain head disagrees with the recomputed chain")
                break
            if check_head and (reason := check_head(signed)):
                problem = Break(seq, f"the signed chain head does not verify: {reason}")
                break
    if problem is None:
        stored_seq, stored_hash = head(conn)
        if (stored_seq, stored_hash) != (seq, previous):
            problem = Break(seq + 1, f"the chain ends at seq {seq} but its head says {stored_seq}")
        elif heads and max(heads) > seq:
            problem = Break(
                seq + 1, f"a signed chain head names seq {max(heads)}, beyond the last event"
            )
    return VerifyReport(checked, seq, previous, heads_checked, problem)

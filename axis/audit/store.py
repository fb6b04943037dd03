"""Reading and writing the audit trail in the database.

Appending happens inside the caller's transaction (the router's batch), under a
lock on the single ``audit_head`` row, so sequence numbers stay gap-free and each
link follows the one before it even with several routers writing at once. On
SQLite the writer's ``BEGIN IMMEDIATE`` already serializes; on PostgreSQL the
``SELECT ... FOR UPDATE`` does.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import os
import queue
import secrets
import threading
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.exc import NoResultFound

from axis.audit.chain import GENESIS, Break, Event, EventKind, Link, chain, link_digest
from axis.db import make_engine
from axis.models import AuditEvent, AuditHead, ChainHead, table

if TYPE_CHECKING:
    from axis.receipts import ReceiptWriter

_EVENTS = table(AuditEvent)
_HEAD = table(AuditHead)
COLUMNS = (
    # An audit event's columns, in the chain's order of fields (the Link's).
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


_READ_HEAD = sa.select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == 1)
_LOCK_HEAD = _READ_HEAD.with_for_update()
_INSERT_EVENTS = _EVENTS.insert()
_MOVE_HEAD = (
    _HEAD.update()
    .where(_HEAD.c.id == 1)
    .values(seq=sa.bindparam("new_seq"), hash=sa.bindparam("new_hash"))
)


def lock_head(conn: Connection) -> tuple[int, str]:
    """Lock the chain's head row until the end of the transaction; its (seq, hash).

    Every writer takes this lock before any lock on a row of the operational tables,
    so two writers never hold locks in opposite orders.
    """
    # SQLite's writers already hold the database lock (BEGIN IMMEDIATE).
    seq, previous = conn.execute(_READ_HEAD if conn.dialect.name == "sqlite" else _LOCK_HEAD).one()
    return seq, previous


def append(
    conn: Connection, events: Sequence[Event], *, head: tuple[int, str] | None = None
) -> list[Link]:
    """Append ``events`` to the chain in the current transaction and return their links.

    ``head`` is what :func:`lock_head` returned in this transaction when the caller
    took the lock itself and has appended nothing since (it saves reading it again).
    """
    if not events:
        return []
    seq, previous = head if head is not None else lock_head(conn)
    links = list(chain(events, after_seq=seq, after_hash=previous))
    conn.execute(
        _INSERT_EVENTS,
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
    conn.execute(_MOVE_HEAD, {"new_seq": last.seq, "new_hash": last.hash})
    return links


def head(conn: Connection) -> tuple[int, str]:
    """The chain's last (seq, hash); (0, GENESIS) when empty."""
    row = conn.execute(_READ_HEAD).one_or_none()
    return (0, GENESIS) if row is None else (row.seq, row.hash)


def link_of(row: sa.Row) -> Link:
    """The link a row of ``audit_events`` (with :data:`COLUMNS`) holds."""
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


def trail(conn: Connection, document_id: str, party: str | None = None) -> list[Link]:
    """Every event of ``document_id``, in chain order.

    A DocumentId is unique per sender only: with ``party``, just the events that agency
    takes part in (as sender or recipient), which are those of its document.
    """
    query = sa.select(*(_EVENTS.c[c] for c in COLUMNS)).where(_EVENTS.c.document_id == document_id)
    if party is not None:
        query = query.where(sa.or_(_EVENTS.c.sender == party, _EVENTS.c.recipient == party))
    return [link_of(row) for row in conn.execute(query.order_by(_EVENTS.c.seq))]


def first_sender(conn: Connection, document_id: str) -> str | None:
    """Who sent the first document the hub received as ``document_id``, if any did."""
    query = (
        sa.select(_EVENTS.c.sender)
        .where(_EVENTS.c.document_id == document_id, _EVENTS.c.event == str(EventKind.RECEIVED))
        .order_by(_EVENTS.c.seq)
        .limit(1)
    )
    return conn.execute(query).scalar_one_or_none()


def links_between(conn: Connection, first: int, last: int) -> list[Link]:
    """The links with ``first <= seq <= last``, in order."""
    query = sa.select(*(_EVENTS.c[c] for c in COLUMNS)).where(_EVENTS.c.seq.between(first, last))
    return [link_of(row) for row in conn.execute(query.order_by(_EVENTS.c.seq))]


def hash_at(conn: Connection, seq: int) -> str:
    """The link hash at ``seq`` (GENESIS for 0)."""
    if seq == 0:
        return GENESIS
    return conn.execute(sa.select(_EVENTS.c.hash).where(_EVENTS.c.seq == seq)).scalar_one()


def iter_links(conn: Connection, *, start: int = 1, page: int = 20_000) -> Iterator[Link]:
    """Every link from ``start`` on, read in pages so memory stays flat over millions."""
    columns = [_EVENTS.c[c] for c in COLUMNS]
    while True:
        rows = conn.execute(
            sa.select(*columns).where(_EVENTS.c.seq >= start).order_by(_EVENTS.c.seq).limit(page)
        ).all()
        if not rows:
            return
        for row in rows:
            yield link_of(row)
        start = rows[-1].seq + 1


STREAM_CHUNK = 50_000
"""Rows fetched per round trip when streaming the chain (a server-side cursor on PostgreSQL)."""

_TEXT_COLUMNS = ("event", "receipt_id", "document_id", "sender", "recipient", "code", "detail")

# The canonical form of an event (:func:`axis.audit.chain.digest`) is a JSON array,
# which both databases can write themselves: their JSON string escaping is Python's
# with ensure_ascii=False (``"`` ``\`` and \b \f \n \r \t escaped short, other
# controls as lowercase \u00XX, everything else as is), integers and NULL are the
# same, and the time is the storage text rearranged. A row whose time is not in the
# storage format gets a NULL form and takes the reference path alone
# (:func:`_reference_digest`). SQLite's text columns cannot hold numbers (TEXT
# affinity converts them); a BLOB makes json_array fail, and the rest of the run
# then takes the reference path (:func:`_check_run`).
_SQLITE_STREAM = (
    "SELECT seq, CASE WHEN at GLOB '[1-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] "
    "[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]' "
    "THEN CAST(json_array(seq, substr(at, 1, 10) || 'T' || substr(at, 12) || 'Z', "
    + ", ".join(_TEXT_COLUMNS)
    + ") AS BLOB) END, hash FROM audit_events WHERE seq >= ? AND seq <= ? ORDER BY seq"
)
"""(seq, the canonical form as UTF-8 bytes or NULL, hash): Python hashes the form."""
_POSTGRES_STREAM = (
    "SELECT seq, sha256(convert_to(concat('[', seq, ',\"', "
    """to_char(at, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), '",', """
    + ", ',', ".join(f"coalesce(to_json({c})::text, 'null')" for c in _TEXT_COLUMNS)
    + ", ']'), 'UTF8')), hash FROM audit_events WHERE seq >= %s AND seq <= %s ORDER BY seq"
)
"""(seq, the event's digest or NULL, hash): the server hashes the form, on its own core."""
_LAST = 2**63 - 1

RawRow = tuple[Any, ...]
"""(seq, the event's canonical form or digest, hash) as a stream gives them; see :func:`_stream`."""
Chunks = Generator[Sequence[RawRow], None, None]


class _Form(enum.Enum):
    CANONICAL = "canonical"
    """The second value is the canonical form (bytes) or None."""
    DIGEST = "digest"
    """The second value is the digest (bytes), None, or why the event cannot be read (str)."""


def _stream(
    conn: Connection, first: int, last: int, *, reference: bool = False
) -> tuple[_Form, Chunks]:
    """The rows with ``first <= seq <= last`` in order, in chunks, straight from the driver.

    Skipping SQLAlchemy's per-row work and having the database write each event's
    canonical form is what makes verification fast; ``reference`` reads typed rows
    and digests them in Python instead (any database; slow). Everything is read in
    the connection's transaction (begun here if need be).
    """
    if not conn.in_transaction():
        conn.begin()  # the driver's cursors below read inside SQLAlchemy's transaction
    dialect = conn.dialect.name
    driver: Any = conn.connection.driver_connection
    if not reference and dialect == "sqlite":
        return _Form.CANONICAL, _driver_chunks(driver.cursor(), _SQLITE_STREAM, first, last)
    if not reference and dialect == "postgresql" and conn.dialect.driver == "psycopg":
        # A named cursor is a server-side cursor: memory stays flat over any length.
        cursor = driver.cursor(name=f"axis_audit_{secrets.token_hex(4)}")
        return _Form.DIGEST, _prefetched(_driver_chunks(cursor, _POSTGRES_STREAM, first, last))
    return _Form.DIGEST, _reference_chunks(conn, first, last)


def _driver_chunks(cursor: Any, sql: str, first: int, last: int) -> Chunks:
    try:
        cursor.execute(sql, (first, last))
        while chunk := cursor.fetchmany(STREAM_CHUNK):
            yield chunk
    finally:
        cursor.close()


_DONE = object()


def _prefetched(chunks: Chunks) -> Chunks:
    """``chunks``, the next one fetched by a thread while the caller checks this one.

    On PostgreSQL the server writes and hashes each event's canonical form; with the
    fetch in a thread, that work overlaps the checking here instead of alternating
    with it (psycopg releases the GIL while it waits for the server).
    """
    ready: queue.Queue[Any] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def produce() -> None:
        try:
            for chunk in chunks:
                if stop.is_set():
                    return
                ready.put(chunk)
            ready.put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            ready.put(exc)
        finally:
            chunks.close()

    thread = threading.Thread(target=produce, name="axis-audit-fetch", daemon=True)
    thread.start()
    try:
        while (item := ready.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting to hand over a chunk
            with contextlib.suppress(queue.Empty):
                ready.get(timeout=0.05)
        thread.join()


_PLAIN_STREAM = (
    f"SELECT {', '.join(COLUMNS)} FROM audit_events "
    "WHERE seq >= :first AND seq <= :last ORDER BY seq"
)


def _reference_chunks(conn: Connection, first: int, last: int) -> Chunks:
    # Untyped rows, each converted on its own, so one unreadable value breaks one link.
    result = conn.execution_options(yield_per=STREAM_CHUNK).execute(
        sa.text(_PLAIN_STREAM), {"first": first, "last": last}
    )
    read_time = _time_reader(conn)
    for part in result.partitions():
        yield [(row[0], _digest_or_reason(row, read_time), row[-1]) for row in part]


def _time_reader(conn: Connection) -> Callable[[Any], Any]:
    """How SQLAlchemy turns a stored ``at`` into the aware datetime the chain hashes."""
    column_type = _EVENTS.c.at.type
    process = column_type.dialect_impl(conn.dialect).result_processor(conn.dialect, None)
    return process or (lambda value: value)


def _digest_or_reason(row: Sequence[Any], read_time: Callable[[Any], Any]) -> bytes | str:
    try:
        return link_digest(Link(row[0], read_time(row[1]), *row[2:]))
    except Exception as exc:  # any unreadable value is a broken link, not a crash
        return f"the event cannot be read ({type(exc).__name__}: {exc})"


def _reference_digest(conn: Connection, seq: int) -> bytes | str:
    """The digest of row ``seq`` read the ordinary (typed) way, or why it cannot be read.

    For the rare row the fast path cannot take, so the verdict is the reference one.
    """
    row = conn.execute(sa.text(_PLAIN_STREAM), {"first": seq, "last": seq}).one()
    return _digest_or_reason(row, _time_reader(conn))


def _check_run(
    conn: Connection,
    first: int,
    last: int,
    *,
    after_hash: str,
    heads: Mapping[int, str] | None = None,
    digests: bytearray | None = None,
) -> tuple[int, str, int, Break | None]:
    """Recompute the links ``first..last`` from the hash before them; the exact
    :func:`~axis.audit.chain.verify_links`, streamed.

    Returns the last good (seq, hash), how many signed heads agreed, and the first
    break. ``heads`` maps signed heads' seq to their hash (compared on the way);
    ``digests`` collects each event's 32-byte digest.
    """
    sha256 = hashlib.sha256
    seq, previous = first - 1, bytes.fromhex(after_hash)
    head_seqs = iter(sorted(s for s in heads or () if s >= first))
    next_head = next(head_seqs, None)
    heads_seen = 0
    reference = False
    while True:
        form_kind, chunks = _stream(conn, seq + 1, last, reference=reference)
        canonical = form_kind is _Form.CANONICAL
        try:
            for chunk in chunks:
                for s, form, stored in chunk:
                    if s != seq + 1:
                        return (
                            seq,
                            previous.hex(),
                            heads_seen,
                            Break(seq + 1, f"missing link: expected seq {seq + 1}, found {s}"),
                        )
                    event_digest = (
                        _reference_digest(conn, s)
                        if form is None
                        else sha256(form).digest()
                        if canonical
                        else form
                    )
                    if isinstance(event_digest, str):
                        return seq, previous.hex(), heads_seen, Break(s, event_digest)
                    linked = sha256(previous + event_digest).digest()
                    if linked.hex() != stored:
                        return (
                            seq,
                            previous.hex(),
                            heads_seen,
                            Break(
                                s,
                                "the event's content or hash was changed (recomputed hash differs)",
                            ),
                        )
                    if digests is not None:
                        digests += event_digest
                    seq, previous = s, linked
                    if s == next_head:
                        assert heads is not None
                        if heads[s] != stored:
                            return (
                                seq,
                                previous.hex(),
                                heads_seen,
                                Break(s, "a signed chain head disagrees with the recomputed chain"),
                            )
                        heads_seen += 1
                        next_head = next(head_seqs, None)
            return seq, previous.hex(), heads_seen, None
        except conn.dialect.loaded_dbapi.Error:
            # The database could not write a row's canonical form (on SQLite, a BLOB
            # where text belongs): go on from that chunk on the reference path.
            if reference or conn.dialect.name != "sqlite":
                raise
            reference = True
        finally:
            chunks.close()


def event_digests(conn: Connection, first: int, last: int) -> tuple[str, bytes, Break | None]:
    """The hash before ``first`` and the digests of events ``first..last``, each checked.

    Every link of the run is recomputed from the stored hash before it; a break
    (changed, missing or unreadable event) is returned instead of trusting it.
    """
    before = hash_at(conn, first - 1) if first > 1 else GENESIS
    digests = bytearray()
    seq, _, _, problem = _check_run(conn, first, last, after_hash=before, digests=digests)
    if problem is None and seq != last:
        problem = Break(seq + 1, f"the chain ends at seq {seq}, before {last}")
    return before, bytes(digests), problem


def sign_head(conn: Connection, writer: ReceiptWriter, now: datetime) -> int | None:
    """Sign the chain's head now, unless a signed head already covers it; return its seq.

    The same statement the router signs on its clock (``Pipeline.sign_chain_head``),
    for a tool that must not wait for it, such as ``axis audit export``.
    """
    seq, chain_hash = head(conn)
    last = conn.execute(sa.select(sa.func.max(ChainHead.seq))).scalar()
    if seq == 0 or (last is not None and last >= seq):
        return None
    body = writer.chain_head(seq=seq, chain_hash=chain_hash, signed_at=now)
    conn.execute(sa.insert(ChainHead).values(seq=seq, hash=chain_hash, signed_at=now, body=body))
    return seq


def _check_ranges(
    conn: Connection, last: int, heads: Mapping[int, str], count: int
) -> tuple[int, str, int, Break | None]:
    """Check links 1..``last`` as ``count`` consecutive ranges, each on its own connection."""
    bounds = [last * i // count for i in range(count + 1)]
    ranges = [(bounds[i] + 1, bounds[i + 1]) for i in range(count) if bounds[i + 1] > bounds[i]]

    # A reader engine of its own: on SQLite its transactions never take the write lock.
    readers = make_engine(conn.engine.url.render_as_string(hide_password=False), writer=False)

    def check(first_last: tuple[int, int]) -> tuple[int, str, int, Break | None]:
        first, end = first_last
        with readers.connect() as own:
            try:
                before = hash_at(own, first - 1)
            except NoResultFound:  # the range before reports it, with what it found
                return first - 1, GENESIS, 0, Break(first - 1, "missing link")
            seq, previous, seen, problem = _check_run(
                own, first, end, after_hash=before, heads=heads
            )
            if problem is None and seq != end:
                found = own.execute(
                    sa.select(sa.func.min(_EVENTS.c.seq)).where(_EVENTS.c.seq > seq)
                ).scalar()
                if found is not None:  # else the chain just ends: compared with its head
                    problem = Break(seq + 1, f"missing link: expected seq {seq + 1}, found {found}")
        return seq, previous, seen, problem

    try:
        with ThreadPoolExecutor(len(ranges), thread_name_prefix="axis-audit-verify") as pool:
            results = list(pool.map(check, ranges))
    finally:
        readers.dispose()
    heads_seen = 0
    for seq, previous, seen, problem in results:
        heads_seen += seen
        if problem is not None:
            return seq, previous, heads_seen, problem
    return (*results[-1][:2], heads_seen, None)


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


PARALLEL_MIN_EVENTS = 200_000
"""Below this many events one connection verifies the chain; above, :func:`verify` splits it."""


def default_workers() -> int:
    """Connections :func:`verify` uses on a long chain: one per core, at most four."""
    return max(1, min(4, os.cpu_count() or 1))


def verify(
    conn: Connection,
    *,
    check_head: Callable[[Any], str | None] | None = None,
    workers: int | None = None,
) -> VerifyReport:
    """Recompute the whole chain and check it against the signed chain heads.

    ``check_head`` verifies one signed head (a row with seq, hash, signed_at and
    body) and returns a reason when it does not verify. The report names the first
    broken or missing link, or the first signed head that disagrees or does not verify.

    The rows are streamed in chunks, without per-row ORM work. Each link's check
    needs only the stored hash before it, so a long chain is split into ``workers``
    consecutive ranges (default :func:`default_workers`), each checked on a
    connection of its own (on PostgreSQL a server process each) from the stored hash
    before it: together they check every link, and the first break of the first
    range that has one is the chain's first break. The head and the signed heads
    are read in ``conn``'s transaction (REPEATABLE READ on PostgreSQL when the caller
    has not begun one); the ranges end at that head, and events past it are read in
    that same snapshot, so routers appending meanwhile are no problem.
    """
    if conn.dialect.name == "postgresql" and not conn.in_transaction():
        conn.execution_options(isolation_level="REPEATABLE READ")
    stored_seq, stored_hash = head(conn)
    heads = dict(
        conn.execute(sa.select(ChainHead.seq, ChainHead.hash).order_by(ChainHead.seq)).all()
    )
    count = workers if workers is not None else default_workers()
    database = conn.engine.url.database or ""
    if stored_seq < PARALLEL_MIN_EVENTS or ":memory:" in database or database == "":
        count = 1
    if count > 1:
        seq, previous, heads_checked, problem = _check_ranges(conn, stored_seq, heads, count)
    else:
        seq, previous, heads_checked, problem = 0, GENESIS, 0, None
    if problem is None:
        # The rest (everything, on one connection) in the caller's snapshot.
        seq, previous, more, problem = _check_run(
            conn, seq + 1, _LAST, after_hash=previous, heads=heads
        )
        heads_checked += more
    if check_head is not None:
        # Signatures after the walk (one public-key operation per head), in order, so
        # the earlier of a bad signature and a broken link is the one reported.
        signed = conn.execute(
            sa.select(ChainHead.seq, ChainHead.hash, ChainHead.signed_at, ChainHead.body)
            .where(ChainHead.seq <= seq)
            .order_by(ChainHead.seq)
        )
        for row in signed:
            if problem is not None and row.seq >= problem.seq:
                break
            if reason := check_head(row):
                problem = Break(row.seq, f"the signed chain head does not verify: {reason}")
                break
    checked = seq
    if problem is None:
        if (stored_seq, stored_hash) != (seq, previous):
            problem = Break(seq + 1, f"the chain ends at seq {seq} but its head says {stored_seq}")
        elif heads and max(heads) > seq:
            problem = Break(
                seq + 1, f"a signed chain head names seq {max(heads)}, beyond the last event"
            )
    return VerifyReport(checked, seq, previous, heads_checked, problem)

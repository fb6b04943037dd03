"""Auditors' questions about the hub's records: pure functions of a connection and a filter.

- :func:`trail` — what happened to one document, step by step, with how long each took;
- :func:`search` — audit events by sender, recipient, event, code, document facts, time;
- :func:`stats` — per agency and period: sent, received, rejected, acknowledged,
  median time to acknowledge, completed before the due date;
- :func:`overdue` — who is late: documents past their due date without a 06, and
  deliveries not acknowledged (01) in time, by responsible agency, worst first.

Times are aware UTC datetimes in and out. Periods (day, week, month) are cut in a
fixed zone offset, Vietnam's UTC+7 by default: Vietnam has kept UTC+7 without
daylight saving since 1975, so a fixed offset gives exactly the local calendar for
every date the hub can hold, and it can be computed inside the database (SQLite has
no time zones). A due date is a Vietnamese calendar date whatever the display zone:
a document is done on time when its 06 arrives before the end of that day in Vietnam.

The statistics are computed from the documents and deliveries tables (the hub's
operational record, which the audit trail backs; each delivery row carries the time
of its recipient's first 01 and 06), not by scanning events; only rejections, which
leave no other row, are counted from the trail.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy import Connection

from axis.audit import store
from axis.audit.chain import EventKind
from axis.models import Agency, AuditEvent, Delivery, Document, Status, table
from schemas._common import VIETNAM

LOCAL_ZONE = VIETNAM
VIETNAM_OFFSET = timedelta(hours=7)
"""Asia/Ho_Chi_Minh's offset from UTC, the same all year (no daylight saving since 1975)."""

Period = Literal["day", "week", "month"]
PERIODS: tuple[Period, ...] = ("day", "week", "month")

_EVENTS = table(AuditEvent)
_DOCUMENTS = table(Document)
_STATUSES = table(Status)
_DELIVERIES = table(Delivery)

COMPLETED, ACKNOWLEDGED, REFUSED = "06", "01", "02"


class QueryError(ValueError):
    """A filter that cannot be answered (contradictory or malformed)."""


def vietnam_date(at: datetime) -> date:
    """The calendar date in Vietnam at the instant ``at``."""
    return (at.astimezone(UTC) + VIETNAM_OFFSET).date()


def end_of_day(day: date, offset: timedelta = VIETNAM_OFFSET) -> datetime:
    """The first instant after ``day`` in the zone ``offset`` from UTC, as UTC."""
    return datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC) - offset


def start_of_day(day: date, offset: timedelta = VIETNAM_OFFSET) -> datetime:
    """The first instant of ``day`` in the zone ``offset`` from UTC, as UTC."""
    return datetime.combine(day, datetime.min.time(), UTC) - offset


# -- the trail of one document -------------------------------------------------------------


@dataclass(frozen=True)
class DocumentFacts:
    """What the hub recorded about an accepted document."""

    document_id: str
    receipt_id: str
    sender: str
    subject: str
    received_at: datetime
    doc_type: int
    priority: int
    due_date: date | None
    business_type: int
    """0 new, 1 revoke, 2 update, 3 replace."""
    acts_on: str | None
    state: str


@dataclass(frozen=True)
class TrailStep:
    """One audit event of a document, with the time since receipt and since the step before."""

    seq: int
    at: datetime
    event: str
    sender: str | None
    recipient: str | None
    code: str | None
    receipt_id: str | None
    detail: dict[str, Any]
    hash: str
    since_start: timedelta
    """Since the first event of the trail (normally RECEIVED)."""
    step: timedelta
    """Since the previous step of the same thread: a recipient's thread is its delivery,
    its statuses and their deliveries to the sender (its first step counts from receipt);
    the document's own thread is its receipt, revokes/updates/replacements, rejections."""
    party: str | None
    """The recipient whose thread this step belongs to; None for the document's own."""


@dataclass(frozen=True)
class RecipientProgress:
    """How far one recipient got with the document."""

    recipient: str
    delivered_at: datetime | None
    acknowledged_at: datetime | None
    """The first 01 from the recipient."""
    last_code: str | None
    last_at: datetime | None
    completed_at: datetime | None
    """The first 06 from the recipient."""


@dataclass(frozen=True)
class Trail:
    """Everything the hub recorded about one DocumentId."""

    document_id: str
    document: DocumentFacts | None
    """None when the hub never accepted it (e.g. only rejections name it)."""
    steps: list[TrailStep]
    recipients: list[RecipientProgress]
    related: list[DocumentFacts]
    """The document this one revokes/updates/replaces, and those acting on this one."""


def _facts(row: Any) -> DocumentFacts:
    return DocumentFacts(
        row.document_id,
        row.receipt_id,
        row.sender,
        row.subject,
        row.received_at,
        row.doc_type,
        row.priority,
        row.due_date,
        row.business_type,
        row.acts_on,
        row.state,
    )


def _party(kind: str, sender: str | None, recipient: str | None, code: str | None) -> str | None:
    if kind == EventKind.DELIVERED:
        return recipient if code is None else sender
    if kind == EventKind.STATUS:
        return sender
    return None


def trail(conn: Connection, document_id: str, sender: str | None = None) -> Trail:
    """Every audit event of ``document_id`` in time order, its facts and its recipients' progress.

    A DocumentId is unique per sender only: ``sender`` names whose document is meant;
    without it, the oldest accepted document with the id is. Its events are those
    naming the id with its sender as a party (sender or recipient). Events are ordered
    by time, then sequence: a delivery's record can follow the recipient's status 01
    in the chain (it is written with the next batch), not in time.
    """
    columns = list(_DOCUMENTS.c)
    query = sa.select(*columns).where(_DOCUMENTS.c.document_id == document_id)
    if sender is not None:
        query = query.where(_DOCUMENTS.c.sender == sender)
    # The original before the actions that repeat its id (the national SDK's revoke).
    rows = conn.execute(query.order_by(_DOCUMENTS.c.business_type, _DOCUMENTS.c.received_at)).all()
    if sender is None and rows:
        rows = [r for r in rows if r.sender == rows[0].sender]
    document = _facts(rows[0]) if rows else None
    owner = sender or (document.sender if document else None)
    links = sorted(store.trail(conn, document_id, owner), key=lambda link: (link.at, link.seq))
    related_rows = list(rows[1:])
    acting = sa.select(*columns).where(_DOCUMENTS.c.acts_on == document_id)
    if owner is not None:
        acting = acting.where(_DOCUMENTS.c.sender == owner)
    related_rows += conn.execute(acting).all()
    if document is not None and document.acts_on and document.acts_on != document_id:
        related_rows += conn.execute(
            sa.select(*columns).where(
                _DOCUMENTS.c.document_id == document.acts_on,
                _DOCUMENTS.c.sender == document.sender,
            )
        ).all()
    seen: set[str] = set()
    related = []
    for facts in sorted((_facts(r) for r in related_rows), key=lambda d: d.received_at):
        if facts.receipt_id not in seen and (
            document is None or facts.receipt_id != document.receipt_id
        ):
            seen.add(facts.receipt_id)
            related.append(facts)

    steps: list[TrailStep] = []
    last_in_thread: dict[str | None, datetime] = {}
    start = links[0].at if links else None
    progress: dict[str, dict[str, Any]] = {}
    for link in links:
        assert start is not None
        party = _party(link.kind, link.sender, link.recipient, link.code)
        before = last_in_thread.get(party) or last_in_thread.get(None) or start
        steps.append(
            TrailStep(
                link.seq,
                link.at,
                link.kind,
                link.sender,
                link.recipient,
                link.code,
                link.receipt_id,
                json.loads(link.detail) if link.detail else {},
                link.hash,
                link.at - start,
                link.at - before,
                party,
            )
        )
        last_in_thread[party] = link.at
        if party is None:
            continue
        mine = progress.setdefault(party, {})
        if link.kind == EventKind.DELIVERED and link.code is None:
            mine.setdefault("delivered_at", link.at)
        elif link.kind == EventKind.STATUS:
            if link.code == ACKNOWLEDGED:
                mine.setdefault("acknowledged_at", link.at)
            if link.code == COMPLETED:
                mine.setdefault("completed_at", link.at)
            mine["last_code"], mine["last_at"] = link.code, link.at
    recipients = [
        RecipientProgress(
            code,
            p.get("delivered_at"),
            p.get("acknowledged_at"),
            p.get("last_code"),
            p.get("last_at"),
            p.get("completed_at"),
        )
        for code, p in sorted(progress.items())
    ]
    return Trail(document_id, document, steps, recipients, related)


# -- search --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchFilter:
    """Which audit events to find; every field given must match."""

    sender: str | None = None
    """The event's sender: the document's sender, a status's author, a rejected message's."""
    recipient: str | None = None
    """The event's recipient: whom a document or status was delivered or addressed to."""
    event: str | None = None
    """RECEIVED, DELIVERED, STATUS, REJECTED, QUARANTINED, REVOKED, UPDATED or REPLACED."""
    status_code: str | None = None
    """A STATUS event's code (01..06, 13, 15, 16)."""
    rejection_code: str | None = None
    """A REJECTED event's code (SIGNATURE_INVALID, ...)."""
    doc_type: int | None = None
    priority: int | None = None
    since: datetime | None = None
    """Events at or after this instant."""
    until: datetime | None = None
    """Events before this instant."""
    text: str | None = None
    """Text the document's subject contains (LIKE: SQLite ignores the case of ASCII letters)."""
    document_id: str | None = None

    def __post_init__(self) -> None:
        if self.event is not None and self.event not in set(EventKind):
            raise QueryError(
                f"unknown event {self.event!r}: one of {', '.join(k.value for k in EventKind)}"
            )
        if self.status_code is not None and self.rejection_code is not None:
            raise QueryError("an event has a status code or a rejection code, not both")
        implied = (
            EventKind.STATUS
            if self.status_code is not None
            else EventKind.REJECTED
            if self.rejection_code is not None
            else None
        )
        if implied and self.event is not None and self.event != implied:
            raise QueryError(
                f"a {'status' if implied == 'STATUS' else 'rejection'} code "
                f"filters {implied} events, not {self.event}"
            )
        if self.since and self.until and self.until <= self.since:
            raise QueryError("the end of the time range is not after its start")
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise QueryError(f"{name} must be timezone-aware")

    @property
    def needs_document(self) -> bool:
        """Whether a document fact (type, priority, subject) is filtered on."""
        return self.doc_type is not None or self.priority is not None or bool(self.text)


@dataclass(frozen=True)
class SearchHit:
    """An audit event found, with the facts of the document it names (when accepted)."""

    seq: int
    at: datetime
    event: str
    code: str | None
    document_id: str | None
    sender: str | None
    recipient: str | None
    receipt_id: str | None
    subject: str | None
    doc_type: int | None
    priority: int | None


@dataclass(frozen=True)
class SearchPage:
    """One page of hits, newest first."""

    hits: list[SearchHit]
    page: int
    per_page: int
    more: bool
    """Whether another page follows."""


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search(
    conn: Connection, where: SearchFilter, *, page: int = 1, per_page: int = 50
) -> SearchPage:
    """The ``page``-th page of audit events matching ``where``, newest first.

    Each filter walks an index in time order (``at``; ``sender, at``; ``recipient,
    at``; ``event, at``) and stops after the page, so the first pages cost the same
    on ten million events as on a thousand. The subject text is a substring match
    (LIKE) checked on the way: a text that few documents contain walks far, so give
    it a date range or a sender to bound the walk.
    """
    if page < 1 or per_page < 1:
        raise QueryError("page and per_page start at 1")
    e, d = _EVENTS, _DOCUMENTS
    event = where.event or (
        EventKind.STATUS
        if where.status_code
        else EventKind.REJECTED
        if where.rejection_code
        else None
    )
    conditions: list[Any] = []
    if where.sender:
        conditions.append(e.c.sender == where.sender)
    if where.recipient:
        conditions.append(e.c.recipient == where.recipient)
    if event:
        conditions.append(e.c.event == str(event))
    code = where.status_code or where.rejection_code
    if code:
        conditions.append(e.c.code == code)
    if where.document_id:
        conditions.append(e.c.document_id == where.document_id)
    if where.since:
        conditions.append(e.c.at >= where.since)
    if where.until:
        conditions.append(e.c.at < where.until)
    wanted = d.alias("wanted")
    facts: list[Any] = []
    if where.doc_type is not None:
        facts.append(wanted.c.doc_type == where.doc_type)
    if where.priority is not None:
        facts.append(wanted.c.priority == where.priority)
    if where.text:
        facts.append(wanted.c.subject.like(_like_pattern(where.text), escape="\\"))
    if facts:
        # A correlated EXISTS, not a join: the planner then keeps walking the events in
        # time order and stops after the page, instead of starting from the documents
        # that match (every one of them) and sorting all their events.
        conditions.append(
            sa.exists().where(
                wanted.c.document_id == e.c.document_id,
                sa.or_(wanted.c.sender == e.c.sender, wanted.c.sender == e.c.recipient),
                *facts,
            )
        )
    # A DocumentId is unique per sender: the event's document is the one with its id
    # whose sender takes part in the event, the original before any action repeating it.
    own = d.alias("own")
    document_of_event = (
        sa.select(own.c.receipt_id)
        .where(
            own.c.document_id == e.c.document_id,
            sa.or_(own.c.sender == e.c.sender, own.c.sender == e.c.recipient),
        )
        .order_by(own.c.business_type, own.c.received_at)
        .limit(1)
        .scalar_subquery()
    )
    joined = e.join(d, d.c.receipt_id == document_of_event, isouter=True)
    query = (
        sa.select(
            e.c.seq,
            e.c.at,
            e.c.event,
            e.c.code,
            e.c.document_id,
            e.c.sender,
            e.c.recipient,
            e.c.receipt_id,
            d.c.subject,
            d.c.doc_type,
            d.c.priority,
        )
        .select_from(joined)
        .where(*conditions)
        .order_by(e.c.at.desc(), e.c.seq.desc())
        .limit(per_page + 1)
        .offset((page - 1) * per_page)
    )
    rows = conn.execute(query).all()
    hits = [SearchHit(*row) for row in rows[:per_page]]
    return SearchPage(hits, page, per_page, len(rows) > per_page)


# -- statistics ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StatsQuery:
    """Which statistics: by period, over a time range, in a zone."""

    by: Period = "month"
    since: datetime | None = None
    until: datetime | None = None
    offset: timedelta = VIETNAM_OFFSET
    """The zone's offset from UTC in which days, weeks and months are cut."""

    def __post_init__(self) -> None:
        if self.by not in PERIODS:
            raise QueryError(f"period must be one of {', '.join(PERIODS)}, not {self.by!r}")
        if self.since and self.until and self.until <= self.since:
            raise QueryError("the end of the time range is not after its start")


@dataclass
class AgencyStats:
    """One agency's figures for one period.

    A document counts in the period in which the hub received it, for its sender
    (sent) and for each recipient it was delivered to (received, and what the
    recipient then did with it, whenever that was).
    """

    agency: str
    period: date
    """The first day of the period (a Monday for weeks)."""
    sent: int = 0
    received: int = 0
    rejected: int = 0
    """Messages from the agency the hub rejected (by when it rejected them)."""
    acknowledged: int = 0
    """Received documents the agency acknowledged with a 01."""
    median_ack_seconds: float | None = None
    """Median time from the hub receiving a document to the agency's 01."""
    with_due_date: int = 0
    """Received documents that had a due date."""
    completed_on_time: int = 0
    """Of those, completed (06) before the end of the due date (Vietnam)."""
    legacy_signed: int = 0
    """Sent documents the hub accepted under the legacy signature profile, to chase."""


@dataclass
class StatsReport:
    """Figures per agency and period, and the totals over the range."""

    by: Period
    since: datetime | None
    until: datetime | None
    rows: list[AgencyStats] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)
    """Agency code → registered name."""

    @property
    def sent(self) -> int:
        """Documents the hub accepted in the range (each once, whatever its recipients)."""
        return sum(r.sent for r in self.rows)

    @property
    def received(self) -> int:
        """Deliveries of those documents: one per recipient."""
        return sum(r.received for r in self.rows)

    @property
    def rejected(self) -> int:
        """Messages rejected in the range."""
        return sum(r.rejected for r in self.rows)

    @property
    def acknowledged(self) -> int:
        """Deliveries acknowledged with a 01."""
        return sum(r.acknowledged for r in self.rows)

    @property
    def legacy_signed(self) -> int:
        """Documents accepted under the legacy signature profile."""
        return sum(r.legacy_signed for r in self.rows)

    @property
    def with_due_date(self) -> int:
        """Deliveries of documents with a due date."""
        return sum(r.with_due_date for r in self.rows)

    @property
    def completed_on_time(self) -> int:
        """Of those, completed before the end of the due date."""
        return sum(r.completed_on_time for r in self.rows)

    def by_agency(self) -> list[AgencyStats]:
        """The range's figures per agency (periods added up; no median across periods)."""
        totals: dict[str, AgencyStats] = {}
        for row in self.rows:
            total = totals.setdefault(row.agency, AgencyStats(row.agency, row.period))
            total.period = min(total.period, row.period)
            for name in (
                "sent",
                "received",
                "rejected",
                "acknowledged",
                "with_due_date",
                "completed_on_time",
                "legacy_signed",
            ):
                setattr(total, name, getattr(total, name) + getattr(row, name))
        return sorted(totals.values(), key=lambda t: (-t.received - t.sent, t.agency))


def _period(column: Any, by: Period, offset: timedelta, dialect: str) -> Any:
    """The first day of ``column``'s period, in the zone ``offset`` from UTC, as a date."""
    hours = int(offset.total_seconds() // 3600)
    minutes = int(offset.total_seconds() % 3600 // 60)
    if dialect == "sqlite":
        shift = f"{hours:+d} hours"
        moved = [column, shift, f"{minutes:+d} minutes"]
        if by == "day":
            return sa.func.date(*moved)
        if by == "week":
            return sa.func.date(*moved, "-6 days", "weekday 1")
        return sa.func.date(*moved, "start of month")
    local = column + sa.text(f"interval '{hours} hours {minutes} minutes'")
    return sa.cast(sa.func.date_trunc(by, local), sa.Date)


def _seconds_between(start: Any, end: Any, dialect: str) -> Any:
    if dialect == "sqlite":
        return (sa.func.julianday(end) - sa.func.julianday(start)) * 86400.0
    # A float, not PostgreSQL's numeric: a Decimal per row costs more than the lookup.
    return sa.cast(sa.extract("epoch", end - start), sa.Float)


def _deadline(due: Any, dialect: str) -> Any:
    """The end of the day ``due`` in Vietnam, as a UTC timestamp."""
    hours = int((timedelta(days=1) - VIETNAM_OFFSET).total_seconds() // 3600)
    if dialect == "sqlite":
        return sa.func.datetime(due, f"+{hours} hours")
    return due + sa.text(f"interval '{hours} hours'")


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def stats(conn: Connection, q: StatsQuery) -> StatsReport:
    """Per agency and period: sent, received, rejected, acknowledged, median time to 01,
    documents with a due date and those completed on time."""
    dialect = conn.dialect.name
    d, dl, e = _DOCUMENTS, _DELIVERIES, _EVENTS
    rows: dict[tuple[str, date], AgencyStats] = {}
    if dialect == "postgresql":
        # The per-delivery query's cost estimate switches PostgreSQL's JIT on, and
        # compiling takes longer than the query gains (1.4 s when it looked statuses
        # up per delivery, 50 ms now); for this transaction only.
        conn.exec_driver_sql("SET LOCAL jit = off")

    def row(agency: str, period: Any) -> AgencyStats:
        key = (agency, _as_date(period))
        if key not in rows:
            rows[key] = AgencyStats(*key)
        return rows[key]

    in_range: list[Any] = []
    if q.since:
        in_range.append(d.c.received_at >= q.since)
    if q.until:
        in_range.append(d.c.received_at < q.until)

    sent_period = _period(d.c.received_at, q.by, q.offset, dialect).label("period")
    legacy = sa.func.sum(sa.case((d.c.signature_profile == "legacy", 1), else_=0))
    for agency, period, count, legacy_count in conn.execute(
        sa.select(d.c.sender, sent_period, sa.func.count(), legacy)
        .where(*in_range)
        .group_by(d.c.sender, sent_period)
    ):
        found = row(agency, period)
        found.sent, found.legacy_signed = count, int(legacy_count or 0)

    rejected_period = _period(e.c.at, q.by, q.offset, dialect).label("period")
    rejected_where = [e.c.event == str(EventKind.REJECTED), e.c.sender.is_not(None)]
    if q.since:
        rejected_where.append(e.c.at >= q.since)
    if q.until:
        rejected_where.append(e.c.at < q.until)
    for agency, period, count in conn.execute(
        sa.select(e.c.sender, rejected_period, sa.func.count())
        .where(*rejected_where)
        .group_by(e.c.sender, rejected_period)
    ):
        row(agency, period).rejected = count

    # One row per delivered document and recipient: the wait until the recipient's
    # first 01, and whether its first 06 came before the end of the due date (for
    # documents that have one), as plain numbers; both first statuses are on the
    # delivery row (``record.keep_first_statuses``). Counted here in one pass, with
    # the exact median: the database joins and sorts nothing.
    ack_at, done_at = dl.c.acknowledged_at, dl.c.completed_at
    on_time = sa.case(
        (
            d.c.due_date.is_not(None),
            sa.case((done_at < _deadline(d.c.due_date, dialect), 1), else_=0),
        ),
        else_=None,
    )
    per_delivery = (
        sa.select(
            dl.c.recipient,
            _period(d.c.received_at, q.by, q.offset, dialect),
            _seconds_between(d.c.received_at, ack_at, dialect),
            on_time,
        )
        .select_from(d.join(dl, dl.c.receipt_id == d.c.receipt_id))
        .where(*in_range)
    )
    # key -> [received, with due date, on time, waits]
    tally: dict[tuple[str, Any], list[Any]] = {}
    for agency, when, wait, done in conn.execute(per_delivery):
        counts = tally.get((agency, when))
        if counts is None:
            counts = tally[(agency, when)] = [0, 0, 0, []]
        counts[0] += 1
        if wait is not None:
            counts[3].append(float(wait))
        if done is not None:
            counts[1] += 1
            counts[2] += done
    for (agency, when), (received, due, done, waits) in tally.items():
        stats_row = row(agency, when)
        stats_row.received, stats_row.with_due_date, stats_row.completed_on_time = (
            received,
            due,
            int(done),
        )
        stats_row.acknowledged = len(waits)
        stats_row.median_ack_seconds = statistics.median(waits) if waits else None

    names = {code: name for code, name in conn.execute(sa.select(Agency.code, Agency.name))}
    ordered = sorted(rows.values(), key=lambda s: (s.period, s.agency))
    return StatsReport(q.by, q.since, q.until, ordered, names)


# -- overdue -------------------------------------------------------------------------------


@dataclass(frozen=True)
class OverdueQuery:
    """Who is late as of a moment: past due dates, and (optionally) slow acknowledgements."""

    as_of: datetime
    ack_within: timedelta | None = None
    """Also list deliveries not acknowledged (01) this long after they were delivered."""
    since: datetime | None = None
    """Only documents the hub received from this moment on (default: all history)."""

    def __post_init__(self) -> None:
        if self.as_of.tzinfo is None:
            raise QueryError("as_of must be timezone-aware")
        if self.since is not None and self.since.tzinfo is None:
            raise QueryError("since must be timezone-aware")
        if self.ack_within is not None and self.ack_within <= timedelta(0):
            raise QueryError("the time to acknowledge must be positive")


@dataclass(frozen=True)
class OverdueItem:
    """One document one agency is late with."""

    agency: str
    """The responsible agency: the recipient."""
    document_id: str
    sender: str
    subject: str
    reason: Literal["past_due", "unacknowledged"]
    received_at: datetime
    """When the hub received the document."""
    due_date: date | None
    late_by: timedelta
    """Since the end of the due date, or since the acknowledgement was due."""
    last_code: str | None
    """The agency's last status about the document, as of the moment asked."""


@dataclass
class AgencyOverdue:
    """One agency's late documents, most late first."""

    agency: str
    name: str | None = None
    past_due: int = 0
    unacknowledged: int = 0
    items: list[OverdueItem] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Late items of both kinds."""
        return self.past_due + self.unacknowledged

    @property
    def worst(self) -> timedelta:
        """The longest delay among its items."""
        return max((i.late_by for i in self.items), default=timedelta(0))


def _utc(value: Any) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _still_active(d: Any, as_of: datetime) -> Any:
    """Not revoked, updated or replaced by a document received by ``as_of``."""
    later = _DOCUMENTS.alias("later")
    return ~sa.exists().where(
        later.c.acts_on == d.c.document_id,
        later.c.sender == d.c.sender,
        later.c.received_at <= as_of,
    )


def _last_code(d: Any, sender: Any, as_of: datetime) -> Any:
    """The last status ``sender`` sent on document row ``d`` by ``as_of``."""
    s = _STATUSES
    return (
        sa.select(s.c.code)
        .where(
            s.c.document_id == d.c.document_id,
            s.c.document_sender == d.c.sender,
            s.c.sender == sender,
            s.c.received_at <= as_of,
        )
        .order_by(s.c.received_at.desc())
        .limit(1)
        .scalar_subquery()
    )


def _not_yet(first_at: Any, as_of: datetime) -> Any:
    """A delivery's first 01 or 06 (``first_at``) had not arrived by ``as_of``."""
    return sa.or_(first_at.is_(None), first_at > as_of)


def _has_status(d: Any, sender: Any, codes: Sequence[str], as_of: datetime) -> Any:
    s = _STATUSES
    return sa.exists().where(
        s.c.document_id == d.c.document_id,
        s.c.document_sender == d.c.sender,
        s.c.sender == sender,
        s.c.code.in_(codes),
        s.c.received_at <= as_of,
    )


def overdue(conn: Connection, q: OverdueQuery) -> list[AgencyOverdue]:
    """The agencies late as of ``q.as_of``, worst first (most late items, then longest late).

    Past due: a document delivered to the agency whose due date (a Vietnamese calendar
    date) ended before ``as_of`` with no 06 from the agency by then. Unacknowledged
    (with ``ack_within``): a delivery with no 01 from the agency ``ack_within`` after it
    was delivered. A document revoked, updated or replaced by then, or refused (02) by
    the agency, is nobody's delay.
    """
    as_of = q.as_of.astimezone(UTC)
    d, dl = _DOCUMENTS, _DELIVERIES
    agencies: dict[str, AgencyOverdue] = {}
    today = vietnam_date(as_of)
    received = [d.c.received_at <= as_of]
    if q.since is not None:
        received.append(d.c.received_at >= q.since)
    columns = (
        dl.c.recipient,
        d.c.document_id,
        d.c.sender,
        d.c.subject,
        d.c.received_at,
        d.c.due_date,
        _last_code(d, dl.c.recipient, as_of).label("last_code"),
    )
    joined = d.join(dl, dl.c.receipt_id == d.c.receipt_id)
    past_due = (
        sa.select(*columns)
        .select_from(joined)
        .where(
            d.c.due_date < today,
            *received,
            # The first 06 on the delivery row first: it rules out most rows, so the
            # lookups (a refusal, a later document) run for few.
            _not_yet(dl.c.completed_at, as_of),
            ~_has_status(d, dl.c.recipient, [REFUSED], as_of),
            _still_active(d, as_of),
        )
    )
    for r in conn.execute(past_due):
        late = as_of - end_of_day(_as_date(r.due_date))
        item = OverdueItem(
            r.recipient,
            r.document_id,
            r.sender,
            r.subject,
            "past_due",
            _utc(r.received_at),
            _as_date(r.due_date),
            late,
            r.last_code,
        )
        entry = agencies.setdefault(r.recipient, AgencyOverdue(r.recipient))
        entry.past_due += 1
        entry.items.append(item)
    if q.ack_within is not None:
        cutoff = as_of - q.ack_within
        delivered = sa.func.coalesce(dl.c.delivered_at, d.c.received_at)
        unacknowledged = (
            sa.select(*columns, delivered.label("delivered"))
            .select_from(joined)
            .where(
                d.c.received_at <= cutoff,
                *received,
                _not_yet(dl.c.acknowledged_at, as_of),
                ~_has_status(d, dl.c.recipient, [REFUSED], as_of),
                _still_active(d, as_of),
            )
        )
        for u in conn.execute(unacknowledged):
            when = _utc(u.delivered) if u.delivered is not None else _utc(u.received_at)
            if when > cutoff:
                continue
            item = OverdueItem(
                u.recipient,
                u.document_id,
                u.sender,
                u.subject,
                "unacknowledged",
                _utc(u.received_at),
                _as_date(u.due_date) if u.due_date is not None else None,
                as_of - (when + q.ack_within),
                u.last_code,
            )
            entry = agencies.setdefault(u.recipient, AgencyOverdue(u.recipient))
            entry.unacknowledged += 1
            entry.items.append(item)
    names = {code: name for code, name in conn.execute(sa.select(Agency.code, Agency.name))}
    for entry in agencies.values():
        entry.name = names.get(entry.agency)
        entry.items.sort(key=lambda i: (-i.late_by, i.document_id))
    return sorted(agencies.values(), key=lambda a: (-a.total, -a.worst, a.agency))

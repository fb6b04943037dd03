"""axis.audit.query on hand-built histories: overdue, stats, search and trail, on both backends."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from axis import db, record
from axis.audit import store
from axis.audit.chain import Event, EventKind
from axis.audit.query import (
    OverdueQuery,
    QueryError,
    SearchFilter,
    StatsQuery,
    end_of_day,
    overdue,
    search,
    stats,
    trail,
    vietnam_date,
)
from axis.models import Delivery, Document, Status, table

S, A, B, C = "000.00.00.G22", "000.00.00.H41", "000.00.00.H29", "000.00.00.G01"
MONDAY = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
"""09:00 on Monday 2 March 2026 in Vietnam."""
_numbers = itertools.count(1)


class History:
    """Writes documents, deliveries, statuses and their audit events as the router would."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.senders: dict[str, str] = {}
        self.receipts: dict[str, str] = {}

    def _append(self, conn: sa.Connection, *events: Event) -> list[int]:
        return [link.seq for link in store.append(conn, list(events))]

    def document(
        self,
        sender: str,
        recipients: list[str],
        at: datetime,
        *,
        due: date | None = None,
        subject: str = "Về việc báo cáo",
        doc_type: int = 1,
        priority: int = 0,
        acts_on: tuple[str, int] | None = None,
        delivered_after: timedelta | None = timedelta(milliseconds=50),
        signature_profile: str | None = "strict",
    ) -> str:
        document_id = f"{sender},{at:%Y/%m/%d},{next(_numbers)}/VP"
        receipt_id = str(uuid.uuid4())
        with self.engine.begin() as conn:
            [seq] = self._append(
                conn, Event(EventKind.RECEIVED, at, receipt_id, document_id, sender)
            )
            state_events = []
            if acts_on:
                target, business = acts_on
                kind = {1: EventKind.REVOKED, 2: EventKind.UPDATED, 3: EventKind.REPLACED}
                state_events.append(
                    Event(
                        kind[business], at, receipt_id, target, sender, detail={"by": document_id}
                    )
                )
                conn.execute(
                    sa.update(Document)
                    .where(Document.document_id == target)
                    .values(state=kind[business].lower())
                )
                self._append(conn, *state_events)
            conn.execute(
                sa.insert(Document).values(
                    document_id=document_id,
                    receipt_id=receipt_id,
                    message_id=str(uuid.uuid4()),
                    sender=sender,
                    sha256="0" * 64,
                    size=1000,
                    received_at=at,
                    audit_seq=seq,
                    subject=subject,
                    doc_type=doc_type,
                    priority=priority,
                    steering_type=1,
                    due_date=due,
                    business_type=acts_on[1] if acts_on else 0,
                    acts_on=acts_on[0] if acts_on else None,
                    state="active",
                    signature_profile=signature_profile,
                )
            )
            for recipient in recipients:
                delivered = at + delivered_after if delivered_after is not None else None
                conn.execute(
                    table(Delivery).insert(),
                    {"receipt_id": receipt_id, "recipient": recipient, "delivered_at": delivered},
                )
                if delivered is not None:
                    self._append(
                        conn,
                        Event(
                            EventKind.DELIVERED,
                            delivered,
                            receipt_id,
                            document_id,
                            sender,
                            recipient,
                        ),
                    )
        self.senders[document_id] = sender
        self.receipts[document_id] = receipt_id
        return document_id

    def status(self, document_id: str, by: str, code: str, at: datetime) -> None:
        addressee = self.senders[document_id]
        receipt_id = str(uuid.uuid4())
        with self.engine.begin() as conn:
            [seq] = self._append(
                conn,
                Event(EventKind.STATUS, at, receipt_id, document_id, by, addressee, code),
            )
            row = {
                "receipt_id": receipt_id,
                "message_id": str(uuid.uuid4()),
                "document_id": document_id,
                "document_sender": addressee,
                "sender": by,
                "code": code,
                "sha256": uuid.uuid4().hex * 2,
                "stated_at": at,
                "received_at": at,
                "audit_seq": seq,
            }
            conn.execute(sa.insert(Status), row)
            record.keep_first_statuses(
                conn, [{**row, "document_receipt_id": self.receipts[document_id]}]
            )
            later = at + timedelta(milliseconds=20)
            conn.execute(
                table(Delivery).insert(),
                {"receipt_id": receipt_id, "recipient": addressee, "delivered_at": later},
            )
            self._append(
                conn,
                Event(EventKind.DELIVERED, later, receipt_id, document_id, by, addressee, code),
            )

    def rejection(self, sender: str, code: str, at: datetime) -> None:
        with self.engine.begin() as conn:
            self._append(
                conn,
                Event(
                    EventKind.REJECTED,
                    at,
                    str(uuid.uuid4()),
                    None,
                    sender,
                    code=code,
                    detail={"reason": "bad"},
                ),
            )


@pytest.fixture
def history(fresh_url: str) -> Iterator[History]:
    engine = db.make_engine(fresh_url)
    try:
        yield History(engine)
    finally:
        engine.dispose()


def late_list(history: History, as_of: datetime, ack: timedelta | None = None) -> dict:
    with history.engine.connect() as conn:
        found = overdue(conn, OverdueQuery(as_of, ack))
    return {a.agency: [(i.reason, i.document_id) for i in a.items] for a in found}


def test_a_document_is_past_due_after_the_end_of_its_due_date_in_vietnam(history) -> None:
    due = date(2026, 3, 5)
    doc = history.document(S, [A, B], MONDAY, due=due)
    history.status(doc, B, "06", MONDAY + timedelta(days=1))
    deadline = end_of_day(due)
    assert deadline == datetime(2026, 3, 5, 17, 0, tzinfo=UTC)  # midnight in Hà Nội
    assert late_list(history, deadline - timedelta(minutes=1)) == {}
    assert late_list(history, deadline) == {A: [("past_due", doc)]}
    with history.engine.connect() as conn:
        [agency] = overdue(conn, OverdueQuery(deadline + timedelta(days=2)))
    assert agency.past_due == 1 and agency.worst == timedelta(days=2)
    assert agency.items[0].due_date == due and agency.items[0].last_code is None


def test_a_completion_counts_only_once_it_has_arrived(history) -> None:
    doc = history.document(S, [A], MONDAY, due=date(2026, 3, 3))
    done = MONDAY + timedelta(days=5)
    history.status(doc, A, "01", MONDAY + timedelta(minutes=1))
    history.status(doc, A, "06", done)
    [item] = late_list(history, done - timedelta(seconds=1))[A]
    assert item == ("past_due", doc)
    assert late_list(history, done) == {}
    with history.engine.connect() as conn:
        [agency] = overdue(conn, OverdueQuery(done - timedelta(seconds=1)))
    assert agency.items[0].last_code == "01"


def test_revoked_or_refused_documents_are_nobodys_delay(history) -> None:
    due = date(2026, 3, 3)
    revoked = history.document(S, [A], MONDAY, due=due)
    refused = history.document(S, [B], MONDAY, due=due)
    revoke_at = MONDAY + timedelta(days=10)
    history.document(S, [A], revoke_at, acts_on=(revoked, 1))
    history.status(refused, B, "02", MONDAY + timedelta(hours=2))
    before_revoke = late_list(history, revoke_at - timedelta(hours=1))
    assert before_revoke == {A: [("past_due", revoked)]}
    assert late_list(history, revoke_at + timedelta(hours=1)) == {}


def test_unacknowledged_deliveries_are_listed_when_asked(history) -> None:
    acked = history.document(S, [A], MONDAY)
    silent = history.document(S, [A, B], MONDAY + timedelta(hours=1))
    recent = history.document(S, [C], MONDAY + timedelta(hours=47))
    history.status(acked, A, "01", MONDAY + timedelta(hours=30))
    as_of = MONDAY + timedelta(hours=48)
    assert late_list(history, as_of) == {}
    found = late_list(history, as_of, timedelta(hours=24))
    assert found == {A: [("unacknowledged", silent)], B: [("unacknowledged", silent)]}
    assert recent not in str(found)
    with history.engine.connect() as conn:
        first = overdue(conn, OverdueQuery(as_of, timedelta(hours=24)))[0]
    assert first.items[0].late_by == timedelta(hours=23, milliseconds=-50)
    # Acknowledged late (after 30 h), but acknowledged: not listed once it arrived.
    assert late_list(history, MONDAY + timedelta(hours=29), timedelta(hours=24)) == {
        A: [("unacknowledged", acked), ("unacknowledged", silent)],
        B: [("unacknowledged", silent)],
    }


def test_the_worst_agency_comes_first(history) -> None:
    due = date(2026, 3, 3)
    for _ in range(3):
        history.document(S, [B], MONDAY, due=due)
    history.document(S, [A], MONDAY - timedelta(days=30), due=date(2026, 2, 1))
    history.document(S, [C], MONDAY, due=date(2026, 3, 4))
    with history.engine.connect() as conn:
        found = overdue(conn, OverdueQuery(MONDAY + timedelta(days=10)))
    assert [a.agency for a in found] == [B, A, C]  # most late items, then the longest late
    assert [a.total for a in found] == [3, 1, 1]
    with pytest.raises(QueryError):
        OverdueQuery(datetime(2026, 3, 1))


def report(history: History, **kwargs) -> dict:
    with history.engine.connect() as conn:
        found = stats(conn, StatsQuery(**kwargs))
    return {(r.agency, r.period): r for r in found.rows}


def test_periods_are_cut_in_vietnam_time_unless_asked_for_utc(history) -> None:
    late_january_utc = datetime(2026, 1, 31, 18, 0, tzinfo=UTC)  # 1 February, 01:00 in Hà Nội
    history.document(S, [A], late_january_utc)
    assert set(report(history, by="month")) >= {(S, date(2026, 2, 1)), (A, date(2026, 2, 1))}
    utc = report(history, by="month", offset=timedelta(0))
    assert set(utc) >= {(S, date(2026, 1, 1))}
    assert set(report(history, by="day")) >= {(S, date(2026, 2, 1))}
    # 1 February 2026 is a Sunday: its week starts on Monday 26 January.
    assert set(report(history, by="week")) >= {(S, date(2026, 1, 26))}


def test_stats_count_sent_received_rejected_acknowledged_and_on_time(history) -> None:
    due = date(2026, 3, 4)
    docs = [history.document(S, [A, B], MONDAY + timedelta(hours=i), due=due) for i in range(4)]
    for i, doc in enumerate(docs):
        history.status(doc, A, "01", MONDAY + timedelta(hours=i, seconds=10 * (i + 1)))
    history.status(docs[0], B, "01", MONDAY + timedelta(seconds=7))
    # 23:59 on the due date in Hà Nội is on time; 00:01 the day after is not.
    history.status(docs[0], A, "06", datetime(2026, 3, 4, 16, 59, tzinfo=UTC))
    history.status(docs[1], A, "06", datetime(2026, 3, 4, 17, 1, tzinfo=UTC))
    history.rejection(S, "SIGNATURE_INVALID", MONDAY)
    history.rejection(A, "SCHEMA_INVALID", MONDAY + timedelta(days=1))
    rows = report(history, by="month")
    march = date(2026, 3, 1)
    assert rows[(S, march)].sent == 4 and rows[(S, march)].rejected == 1
    a, b = rows[(A, march)], rows[(B, march)]
    assert (a.received, a.acknowledged, a.with_due_date, a.completed_on_time) == (4, 4, 4, 1)
    assert a.median_ack_seconds == pytest.approx(25.0, abs=1e-3)  # 10, 20, 30, 40 s: the middle two
    assert a.rejected == 1 and a.sent == 0
    assert (b.received, b.acknowledged) == (4, 1)
    assert b.median_ack_seconds == pytest.approx(7.0, abs=1e-3)
    with history.engine.connect() as conn:
        whole = stats(conn, StatsQuery(by="month"))
    assert (whole.sent, whole.received, whole.rejected, whole.acknowledged) == (4, 8, 2, 5)
    totals = {t.agency: (t.sent, t.received, t.acknowledged) for t in whole.by_agency()}
    assert totals == {S: (4, 0, 0), A: (0, 4, 4), B: (0, 4, 1)}


def test_stats_count_each_agencys_documents_signed_under_the_legacy_profile(history) -> None:
    history.document(S, [A], MONDAY, signature_profile="legacy")
    history.document(S, [A], MONDAY + timedelta(hours=1), signature_profile="legacy")
    history.document(S, [B], MONDAY + timedelta(hours=2))
    history.document(A, [B], MONDAY + timedelta(hours=3), signature_profile=None)  # before 0004
    history.document(B, [A], MONDAY + timedelta(hours=4), signature_profile="legacy")
    with history.engine.connect() as conn:
        whole = stats(conn, StatsQuery(by="month"))
    assert whole.legacy_signed == 3
    assert {t.agency: t.legacy_signed for t in whole.by_agency()} == {S: 2, A: 0, B: 1}


def test_stats_keep_to_the_range(history) -> None:
    history.document(S, [A], MONDAY)
    history.document(S, [A], MONDAY + timedelta(days=40))
    rows = report(history, by="month", since=MONDAY + timedelta(days=1))
    assert sum(r.sent for r in rows.values()) == 1
    rows = report(history, by="month", until=MONDAY + timedelta(days=1))
    assert sum(r.sent for r in rows.values()) == 1
    with pytest.raises(QueryError):
        StatsQuery(by="year")  # type: ignore[arg-type]


def hits(history: History, page: int = 1, per_page: int = 50, **where) -> list:
    with history.engine.connect() as conn:
        return search(conn, SearchFilter(**where), page=page, per_page=per_page).hits


def test_search_filters_each_field_newest_first(history) -> None:
    letter = history.document(S, [A], MONDAY, subject="Về việc phòng, chống thiên tai 50%")
    urgent = history.document(C, [B], MONDAY + timedelta(hours=1), doc_type=3, priority=3)
    history.status(letter, A, "03", MONDAY + timedelta(hours=2))
    history.rejection(B, "CERT_EXPIRED", MONDAY + timedelta(hours=3))

    every = hits(history)
    assert [h.at for h in every] == sorted((h.at for h in every), reverse=True)
    assert every[0].event == "REJECTED"
    assert {h.document_id for h in hits(history, sender=S)} == {letter}
    assert [(h.event, h.document_id) for h in hits(history, recipient=B)] == [("DELIVERED", urgent)]
    assert [h.code for h in hits(history, status_code="03")] == ["03"]
    assert [h.sender for h in hits(history, rejection_code="CERT_EXPIRED")] == [B]
    assert {h.document_id for h in hits(history, doc_type=3)} == {urgent}
    assert {h.document_id for h in hits(history, priority=3)} == {urgent}
    found = hits(history, text="thiên tai", event="RECEIVED")
    assert [(h.document_id, h.subject) for h in found] == [
        (letter, "Về việc phòng, chống thiên tai 50%")
    ]
    assert hits(history, text="50%", event="RECEIVED") and not hits(history, text="5_%")
    window = hits(history, since=MONDAY + timedelta(minutes=30), until=MONDAY + timedelta(hours=2))
    assert {h.document_id for h in window} == {urgent}
    assert hits(history, document_id=letter, event="STATUS")[0].code == "03"


def test_search_pages_do_not_overlap(history) -> None:
    for i in range(5):
        history.document(S, [A], MONDAY + timedelta(minutes=i), delivered_after=None)
    first = hits(history, per_page=2)
    second = hits(history, page=2, per_page=2)
    third = hits(history, page=3, per_page=2)
    seqs = [h.seq for h in first + second + third]
    assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == 5
    with history.engine.connect() as conn:
        assert search(conn, SearchFilter(), page=3, per_page=2).more is False
        assert search(conn, SearchFilter(), page=1, per_page=2).more is True


@pytest.mark.parametrize(
    "where",
    [
        {"status_code": "06", "event": "RECEIVED"},
        {"status_code": "06", "rejection_code": "MALFORMED"},
        {"event": "SENT"},
        {"since": MONDAY, "until": MONDAY},
        {"since": datetime(2026, 3, 1)},
    ],
)
def test_contradictory_or_malformed_filters_are_refused(where) -> None:
    with pytest.raises(QueryError):
        SearchFilter(**where)


def test_trail_times_each_step_in_its_recipients_thread(history) -> None:
    doc = history.document(S, [A, B], MONDAY, due=date(2026, 3, 9))
    history.status(doc, A, "01", MONDAY + timedelta(seconds=30))
    history.status(doc, B, "01", MONDAY + timedelta(minutes=5))
    history.status(doc, A, "03", MONDAY + timedelta(hours=3))
    history.status(doc, A, "06", MONDAY + timedelta(days=2))
    replacement = history.document(S, [A, B], MONDAY + timedelta(days=3), acts_on=(doc, 3))
    with history.engine.connect() as conn:
        found = trail(conn, doc)
    steps = {(s.event, s.code, s.party): s for s in found.steps}
    assert found.steps[0].event == "RECEIVED" and found.steps[0].step == timedelta(0)
    assert steps[("DELIVERED", None, A)].step == timedelta(milliseconds=50)
    assert steps[("STATUS", "01", A)].step == timedelta(seconds=30, milliseconds=-50)
    assert steps[("STATUS", "03", A)].step == timedelta(hours=3, seconds=-30, milliseconds=-20)
    assert steps[("STATUS", "01", B)].since_start == timedelta(minutes=5)
    assert steps[("REPLACED", None, None)].step == timedelta(days=3)
    progress = {r.recipient: r for r in found.recipients}
    assert progress[A].acknowledged_at == MONDAY + timedelta(seconds=30)
    assert progress[A].completed_at == MONDAY + timedelta(days=2)
    assert progress[B].last_code == "01" and progress[B].completed_at is None
    assert found.document is not None and found.document.state == "replaced"
    assert [r.document_id for r in found.related] == [replacement]
    with history.engine.connect() as conn:
        assert [r.document_id for r in trail(conn, replacement).related] == [doc]
        assert trail(conn, "nothing").steps == []


def test_vietnam_date_of_an_instant() -> None:
    assert vietnam_date(datetime(2026, 3, 1, 16, 59, tzinfo=UTC)) == date(2026, 3, 1)
    assert vietnam_date(datetime(2026, 3, 1, 17, 0, tzinfo=UTC)) == date(2026, 3, 2)


def test_overdue_since_keeps_to_documents_received_from_then(history) -> None:
    old = history.document(S, [A], MONDAY - timedelta(days=60), due=date(2026, 1, 10))
    new = history.document(S, [A], MONDAY, due=date(2026, 3, 3))
    as_of = MONDAY + timedelta(days=5)
    with history.engine.connect() as conn:
        everything = overdue(conn, OverdueQuery(as_of))
        recent = overdue(conn, OverdueQuery(as_of, since=MONDAY - timedelta(days=1)))
    assert [i.document_id for i in everything[0].items] == [old, new]
    assert [i.document_id for i in recent[0].items] == [new]

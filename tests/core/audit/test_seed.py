"""axis.audit.seed: a synthetic history whose chain verifies and whose tables agree with it."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from axis import db
from axis.audit import store
from axis.audit.chain import canonical_detail
from axis.audit.query import OverdueQuery, StatsQuery, overdue, stats
from axis.audit.seed import SeedError, SeedOptions, load_agencies, seed
from axis.audit.verifier import head_checker
from axis.models import AuditEvent, Document
from axis.receipts import ReceiptWriter
from signing import Signer, TrustStore, Verifier
from signing.pki import make_ca, make_leaf
from tests.core.conftest import Firsts, stored_first_statuses

END = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
EVENTS = 20_000


@pytest.fixture(scope="module")
def hub_keys() -> tuple[ReceiptWriter, Verifier]:
    ca = make_ca("Seed Test CA")
    leaf = make_leaf("axis-hub", ca)
    return ReceiptWriter(Signer(leaf.key, leaf.certificate)), Verifier(TrustStore([ca.certificate]))


def scalar(engine: sa.Engine, sql: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql)).scalar_one()


def test_a_seeded_history_verifies_and_every_table_agrees_with_its_trail(
    fresh_url: str, hub_keys
) -> None:
    writer, verifier = hub_keys
    engine = db.make_engine(fresh_url)
    try:
        report = seed(engine, SeedOptions(events=EVENTS, years=1, end=END), writer=writer)
        with engine.connect() as conn:
            verified = store.verify(conn, check_head=head_checker(verifier))
            kinds = Counter(
                dict(
                    conn.execute(
                        sa.text("SELECT event, count(*) FROM audit_events GROUP BY event")
                    ).all()
                )
            )
            first, last = conn.execute(
                sa.select(sa.func.min(AuditEvent.at), sa.func.max(AuditEvent.at))
            ).one()
        assert verified.ok, verified.problem
        assert verified.checked == report.events == report.last_seq == verified.last_seq
        assert verified.heads_checked == 1
        assert EVENTS - 100 <= report.events <= EVENTS  # stops at the count, or at the end
        assert (
            report.documents
            == scalar(engine, "SELECT count(*) FROM documents")
            == kinds["RECEIVED"]
        )
        assert report.statuses == scalar(engine, "SELECT count(*) FROM statuses") == kinds["STATUS"]
        assert report.deliveries == scalar(engine, "SELECT count(*) FROM deliveries")
        delivered = scalar(engine, "SELECT count(*) FROM deliveries WHERE delivered_at IS NOT NULL")
        assert delivered == kinds["DELIVERED"]
        assert report.rejections == kinds["REJECTED"] > 0
        business = kinds["REVOKED"] + kinds["UPDATED"] + kinds["REPLACED"]
        assert report.business == business > 0
        assert scalar(engine, "SELECT count(*) FROM documents WHERE state <> 'active'") == business
        assert (
            scalar(engine, "SELECT count(*) FROM documents WHERE acts_on IS NOT NULL") == business
        )
        assert scalar(engine, "SELECT count(*) FROM agencies") == len(load_agencies()) == 95
        # The rows point at their own events.
        assert (
            scalar(
                engine,
                "SELECT count(*) FROM documents d JOIN audit_events e ON e.seq = d.audit_seq "
                "AND e.event = 'RECEIVED' AND e.document_id = d.document_id "
                "AND e.receipt_id = d.receipt_id AND e.at = d.received_at",
            )
            == report.documents
        )
        assert (
            scalar(
                engine,
                "SELECT count(*) FROM statuses s JOIN audit_events e ON e.seq = s.audit_seq "
                "AND e.event = 'STATUS' AND e.code = s.code AND e.sender = s.sender "
                "AND e.receipt_id = s.receipt_id",
            )
            == report.statuses
        )
        assert (
            scalar(
                engine,
                "SELECT count(*) FROM deliveries dl JOIN audit_events e "
                "ON e.receipt_id = dl.receipt_id AND e.recipient = dl.recipient "
                "AND e.event = 'DELIVERED' AND e.at = dl.delivered_at",
            )
            == delivered
        )
        assert timedelta(days=300) < last - first and last < END
        assert END - last < timedelta(days=20)
        stored = stored_first_statuses(engine)
        assert stored == first_statuses_in_the_trail(engine, stored)
        assert sum(ack is not None for ack, _ in stored.values()) > 0.9 * len(stored)
        assert sum(done is not None for _, done in stored.values()) > 0.3 * len(stored)
    finally:
        engine.dispose()


def first_statuses_in_the_trail(engine: sa.Engine, deliveries: Firsts) -> Firsts:
    """The earliest STATUS 01 and 06 event of each delivery's recipient about its document."""
    e = AuditEvent
    found: dict[tuple[str, str], list[datetime | None]] = {key: [None, None] for key in deliveries}
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(Document.receipt_id, e.sender, e.code, sa.func.min(e.at))
            .join(Document, Document.document_id == e.document_id)
            .where(e.event == "STATUS", e.code.in_(["01", "06"]))
            .group_by(Document.receipt_id, e.sender, e.code)
        ).all()
    for receipt_id, sender, code, at in rows:
        found[(receipt_id, sender)][0 if code == "01" else 1] = at
    return {key: (ack, done) for key, (ack, done) in found.items()}


def test_the_history_looks_like_an_axis_at_work(fresh_url: str) -> None:
    engine = db.make_engine(fresh_url)
    try:
        seed(engine, SeedOptions(events=EVENTS, years=1, end=END))
        with engine.connect() as conn:
            codes = set(conn.execute(sa.text("SELECT DISTINCT code FROM statuses")).scalars())
            details = conn.execute(
                sa.text(
                    "SELECT event, detail FROM audit_events WHERE event IN ('STATUS', 'RECEIVED')"
                )
            ).all()
            order = conn.execute(
                sa.text(
                    "SELECT document_id, sender, code, received_at FROM statuses "
                    "ORDER BY document_id, sender, received_at"
                )
            ).all()
            late = overdue(conn, OverdueQuery(END, timedelta(hours=24)))
            year = stats(conn, StatsQuery(by="month"))
            hours = Counter(
                (at.hour + 7) % 24 for at in conn.execute(sa.select(Document.received_at)).scalars()
            )
        assert {"01", "03", "04", "05", "06"} <= codes
        for _, detail in details:
            assert canonical_detail(json.loads(detail)) == detail
        by_thread: dict[tuple[str, str], list[str]] = {}
        for document_id, sender, code, _ in order:
            by_thread.setdefault((document_id, sender), []).append(code)
        assert all(codes == sorted(codes) for codes in by_thread.values())  # 01 < 03 < ... < 06
        assert late[0].total >= late[-1].total
        assert sum(a.past_due for a in late) > 0 and sum(a.unacknowledged for a in late) > 0
        assert year.sent > 0 and year.received > year.sent  # some documents go to many
        assert 0.9 < year.acknowledged / year.received <= 1
        assert 0.4 < year.completed_on_time / year.with_due_date < 0.95
        office = sum(n for hour, n in hours.items() if 7 <= hour < 18)
        assert office > 0.8 * sum(hours.values())
    finally:
        engine.dispose()


def test_seeding_refuses_a_database_with_history(fresh_url: str) -> None:
    engine = db.make_engine(fresh_url)
    try:
        seed(engine, SeedOptions(events=500, years=0.1, end=END))
        with pytest.raises(SeedError, match="empty hub database"):
            seed(engine, SeedOptions(events=500, years=0.1, end=END))
        with pytest.raises(SeedError):
            seed(engine, SeedOptions(events=0))
    finally:
        engine.dispose()


def test_seeding_refuses_sqlite_in_memory_which_the_loader_process_cannot_open() -> None:
    engine = db.make_engine("sqlite://")
    try:
        with pytest.raises(SeedError, match="in memory"):
            seed(engine, SeedOptions(events=500, years=0.1, end=END))
    finally:
        engine.dispose()


def test_the_same_seed_gives_the_same_history(tmp_path: Path) -> None:
    heads = []
    for name in ("one", "two"):
        url = f"sqlite:///{tmp_path / name / 'axis.db'}"
        db.upgrade(url)
        engine = db.make_engine(url)
        try:
            heads.append(
                seed(engine, SeedOptions(events=3000, years=0.5, end=END, seed=7)).last_hash
            )
        finally:
            engine.dispose()
    assert heads[0] == heads[1]

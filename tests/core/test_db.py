"""axis.db and axis/migrations: the migration builds exactly the models' schema on both backends."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from axis import db
from axis.audit.chain import GENESIS
from axis.models import Base, Document, Status, table
from tests.conftest import fresh_pg_database
from tests.core.conftest import stored_first_statuses


def head_revision() -> str:
    head = ScriptDirectory.from_config(db.alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def test_the_migration_produces_exactly_the_models_schema(fresh_url) -> None:
    engine = db.make_engine(fresh_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": True}
            )
            differences = compare_metadata(context, Base.metadata)
            tables = set(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()
    assert differences == []
    assert tables == set(Base.metadata.tables) | {"alembic_version"}


def test_the_migration_seeds_the_genesis_head_and_registry_version(fresh_url) -> None:
    engine = db.make_engine(fresh_url)
    try:
        with engine.connect() as conn:
            heads = conn.execute(sa.text("SELECT id, seq, hash FROM audit_head")).all()
            versions = conn.execute(sa.text("SELECT id, version FROM registry_version")).all()
    finally:
        engine.dispose()
    assert [tuple(r) for r in heads] == [(1, 0, GENESIS)]
    assert [tuple(r) for r in versions] == [(1, 0)]


def test_upgrade_is_idempotent(fresh_url) -> None:
    assert db.current_revision(fresh_url) == head_revision()
    engine = db.make_engine(fresh_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE registry_version SET version = 5"))
        db.upgrade(fresh_url)
        db.upgrade(fresh_url)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM audit_head")).scalar_one() == 1
            assert conn.execute(sa.text("SELECT version FROM registry_version")).scalar_one() == 5
    finally:
        engine.dispose()
    assert db.current_revision(fresh_url) == head_revision()


def test_current_revision_of_an_empty_database_is_none_until_upgraded(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'new' / 'axis.db'}"
    assert db.current_revision(url) is None
    db.upgrade(url)
    assert db.current_revision(url) == head_revision()


def test_sqlite_engines_use_wal_full_sync_and_foreign_keys(sqlite_url) -> None:
    engine = db.make_engine(sqlite_url)
    try:
        with engine.connect() as conn:
            pragmas = [
                conn.exec_driver_sql(f"PRAGMA {name}").scalar_one()
                for name in ("journal_mode", "synchronous", "foreign_keys")
            ]
    finally:
        engine.dispose()
    assert pragmas == ["wal", 2, 1]


def test_a_sqlite_writer_takes_the_write_lock_at_begin_and_a_reader_does_not(tmp_path) -> None:
    path = tmp_path / "axis.db"
    url = f"sqlite:///{path}"
    db.upgrade(url)
    writer, reader = db.make_engine(url), db.make_engine(url, writer=False)
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        with writer.begin() as conn:
            conn.exec_driver_sql("SELECT 1")
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
            with reader.connect() as read:
                assert read.execute(sa.text("SELECT seq FROM audit_head")).scalar_one() == 0
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
    finally:
        other.close()
        writer.dispose()
        reader.dispose()


def test_a_background_checkpointed_engine_leaves_autocheckpoint_as_a_far_backstop(
    sqlite_url,
) -> None:
    engines = db.make_engine(sqlite_url), db.make_engine(sqlite_url, background_checkpoint=True)
    try:
        limits = []
        for engine in engines:
            with engine.connect() as conn:
                limits.append(conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one())
    finally:
        for engine in engines:
            engine.dispose()
    assert limits == [1000, db.BACKSTOP_WAL_PAGES]


def test_a_checkpoint_copies_the_whole_wal_back_while_a_writer_keeps_its_connection(
    tmp_path,
) -> None:
    url = f"sqlite:///{tmp_path / 'axis.db'}"
    engine = db.make_engine(url, background_checkpoint=True)
    checkpoints = sqlite3.connect(tmp_path / "axis.db", isolation_level=None)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x BLOB)")
            conn.exec_driver_sql("INSERT INTO t VALUES (zeroblob(100000))")
        result = db.Checkpointer(url).checkpoint(checkpoints)
        assert result is not None
        wal_pages, copied = result
        assert wal_pages > 20 and copied == wal_pages
        with engine.begin() as conn:  # the writer goes on, on its pooled connection
            conn.exec_driver_sql("INSERT INTO t VALUES (x'00')")
            assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar_one() == 2
    finally:
        checkpoints.close()
        engine.dispose()


def test_the_checkpointer_thread_runs_while_entered_and_stops_on_exit(
    tmp_path, monkeypatch
) -> None:
    path = tmp_path / "axis.db"
    sqlite3.connect(path).close()
    ran = threading.Event()
    monkeypatch.setattr(db.Checkpointer, "checkpoint", lambda _self, _c: ran.set())
    with db.Checkpointer(f"sqlite:///{path}", interval=0.01) as checkpointer:
        assert ran.wait(timeout=30)
        thread = checkpointer._thread
        assert thread is not None and thread.is_alive()
    assert not thread.is_alive()


@pytest.mark.parametrize("url", ["sqlite://", "postgresql+psycopg://postgres@127.0.0.1/x"])
def test_the_checkpointer_does_nothing_for_postgresql_or_memory(url) -> None:
    with db.Checkpointer(url) as checkpointer:
        assert checkpointer._thread is None


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url_at_0002(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """A database of this test's own, migrated to revision 0002 only."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'axis.db'}"
        db.upgrade(url, "0002")
        yield url
        return
    with fresh_pg_database(request.getfixturevalue("pg_url"), "0002") as url:
        db.upgrade(url, "0002")
        yield url


def test_migration_0003_fills_each_delivery_with_its_recipients_first_01_and_06(
    url_at_0002,
) -> None:
    sender, a, b, c = "000.00.00.G22", "000.00.00.H41", "000.00.00.H29", "000.00.00.G01"
    t = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
    hours = [t + timedelta(hours=n) for n in range(30)]
    documents = {"D1": ("R1", [a, b, c]), "D2": ("R2", [a])}
    statuses = [  # (document, sender, code, received at)
        ("D1", a, "01", hours[2]),
        ("D1", a, "01", hours[1]),  # written later, received earlier: the first
        ("D1", a, "03", hours[3]),
        ("D1", a, "06", hours[5]),
        ("D1", a, "06", hours[6]),
        ("D1", b, "01", hours[1] - timedelta(minutes=30)),
        ("D2", a, "06", hours[24]),
    ]
    engine = db.make_engine(url_at_0002)
    try:
        with engine.begin() as conn:
            for n, (document_id, (receipt_id, recipients)) in enumerate(documents.items()):
                conn.execute(
                    table(Document).insert(),
                    {
                        "document_id": document_id,
                        "receipt_id": receipt_id,
                        "message_id": f"m{n}",
                        "sender": sender,
                        "sha256": "0" * 64,
                        "size": 1,
                        "received_at": t,
                        "audit_seq": n + 1,
                        "subject": "",
                        "doc_type": 1,
                        "priority": 0,
                        "steering_type": 1,
                        "business_type": 0,
                        "state": "active",
                    },
                )
                conn.execute(
                    sa.text("INSERT INTO deliveries (receipt_id, recipient) VALUES (:r, :c)"),
                    [{"r": receipt_id, "c": code} for code in recipients],
                )
            for n, (document_id, by, code, at) in enumerate(statuses):
                conn.execute(
                    table(Status).insert(),
                    {
                        "receipt_id": f"S{n}",
                        "message_id": f"s{n}",
                        "document_id": document_id,
                        "sender": by,
                        "code": code,
                        "sha256": f"{n:064x}",
                        "stated_at": at,
                        "received_at": at,
                        "audit_seq": 10 + n,
                    },
                )
                conn.execute(
                    sa.text("INSERT INTO deliveries (receipt_id, recipient) VALUES (:r, :c)"),
                    {"r": f"S{n}", "c": sender},
                )
        db.upgrade(url_at_0002)
        found = stored_first_statuses(engine, documents_only=False)
    finally:
        engine.dispose()
    assert found == {
        ("R1", a): (hours[1], hours[5]),
        ("R1", b): (hours[1] - timedelta(minutes=30), None),
        ("R1", c): (None, None),
        ("R2", a): (None, hours[24]),
        **{(f"S{n}", sender): (None, None) for n in range(len(statuses))},
    }


class RecordingConnection:
    """Answers every PRAGMA wal_checkpoint with the given (busy, WAL pages, copied)."""

    def __init__(self, answer: tuple[int, int, int]) -> None:
        self.answer = answer
        self.statements: list[str] = []

    def execute(self, sql: str):
        self.statements.append(sql)
        return self

    def fetchone(self) -> tuple[int, int, int]:
        return self.answer


MARK = db.RESTART_AT_WAL_PAGES


@pytest.mark.parametrize(
    ("answer", "restarts"),
    [
        ((0, MARK + 1, MARK + 1), True),
        ((0, MARK + 1, MARK + 1 - db.RESTART_LEFT_PAGES), True),
        ((0, MARK, MARK), False),  # not past the mark
        ((0, MARK * 2, MARK), False),  # the passive one is far behind: a reader holds it
        ((1, MARK * 2, 0), False),  # another checkpoint is running
    ],
)
def test_a_wal_grown_past_the_restart_mark_is_made_to_start_over(answer, restarts) -> None:
    connection = RecordingConnection(answer)
    db.Checkpointer("sqlite://").checkpoint(connection)  # type: ignore[arg-type]
    assert connection.statements[0] == "PRAGMA wal_checkpoint(PASSIVE)"
    assert ("PRAGMA wal_checkpoint(RESTART)" in connection.statements) is restarts


def test_a_restart_that_could_not_finish_is_not_tried_again_at_once() -> None:
    checkpointer = db.Checkpointer("sqlite://")
    stuck = RecordingConnection((0, MARK + 1, MARK + 1))
    # The passive checkpoint caught up; the RESTART is kept waiting (busy) by a reader.
    answers = iter([(0, MARK + 1, MARK + 1), (1, MARK + 1, MARK + 1)])
    stuck.fetchone = lambda: next(answers)  # type: ignore[method-assign]
    checkpointer.checkpoint(stuck)  # type: ignore[arg-type]
    assert stuck.statements[-1] == "PRAGMA wal_checkpoint(RESTART)"
    again = RecordingConnection((0, MARK + 1, MARK + 1))
    checkpointer.checkpoint(again)  # type: ignore[arg-type]
    assert again.statements == ["PRAGMA wal_checkpoint(PASSIVE)"]

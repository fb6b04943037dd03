"""axis.db and axis/migrations: the migration builds exactly the models' schema on both backends."""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from axis import db
from axis.audit.chain import GENESIS
from axis.models import Base


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

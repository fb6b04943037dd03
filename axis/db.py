"""Database engines and migrations, for SQLite (the default) and PostgreSQL.

SQLite runs in WAL mode with ``synchronous=FULL``: the hub acknowledges a message
only after its records are committed, so a commit must survive a power cut, not
just a process crash. Writers open their transactions with ``BEGIN IMMEDIATE`` so
that two routers sharing one SQLite file serialize at the start of a batch instead
of failing half-way through it with "database is locked".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

MIGRATIONS = Path(__file__).with_name("migrations")


def is_sqlite(url: str) -> bool:
    """Whether ``url`` names a SQLite database."""
    return url.startswith("sqlite")


def make_engine(url: str, *, writer: bool = True, echo: bool = False) -> Engine:
    """Create an engine for ``url``.

    ``writer=False`` is for read-only tools (auditors' queries): on SQLite their
    transactions are deferred, so a long report never holds the write lock.
    """
    if not is_sqlite(url):
        return sa.create_engine(url, echo=echo, pool_pre_ping=True, future=True)
    if url.startswith("sqlite:///") and ":memory:" not in url:
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, echo=echo, connect_args={"timeout": 60})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event decide how transactions start (see below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    begin = "BEGIN IMMEDIATE" if writer else "BEGIN"

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql(begin)

    return engine


def alembic_config(url: str) -> Any:
    """An Alembic configuration pointing at the packaged migrations and ``url``."""
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the schema of the database at ``url`` up to ``revision``."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def current_revision(url: str) -> str | None:
    """The Alembic revision the database is at, or None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(url, writer=False)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()

"""Database engines and migrations, for SQLite (the default) and PostgreSQL.

SQLite runs in WAL mode with ``synchronous=FULL``: the hub acknowledges a message
only after its records are committed, so a commit must survive a power cut, not
just a process crash. Writers open their transactions with ``BEGIN IMMEDIATE`` so
that two routers sharing one SQLite file serialize at the start of a batch instead
of failing half-way through it with "database is locked".

A router checkpoints the WAL from a thread of its own (:class:`Checkpointer`):
SQLite otherwise has the commit that crosses ``wal_autocheckpoint`` copy the WAL
back into the database and fsync it, and that batch waits for it (about one commit
in a hundred at 300 documents/s paid 5–20 ms). Small checkpoints, often, keep up
with the writer, so the WAL restarts from its beginning; every 0.5 s, the WAL
outgrew them under load, and their fsyncs of tens of megabytes held up the
router's own commits by up to 200 ms. The connection's own autocheckpoint stays
as a backstop, far enough out never to be reached while the thread keeps up.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy import event
from sqlalchemy.engine import Engine

log = structlog.get_logger("axis.db")

MIGRATIONS = Path(__file__).with_name("migrations")
CHECKPOINT_INTERVAL_S = 0.1
"""How often a :class:`Checkpointer` copies the WAL back into the database."""
RESTART_AT_WAL_PAGES = 4_000
"""Past this (16 MB), a :class:`Checkpointer` makes the WAL start over from its beginning.

A PASSIVE checkpoint never waits, so under steady writes it rarely catches the
WAL's very end, and SQLite restarts the WAL only once everything in it is back
in the database: the WAL would grow without bound. A RESTART checkpoint holds
new writers back while it waits for the current one and for readers, copies the
few frames the passive ones left, and lets the WAL start over. So it is tried
only when a passive one left at most :data:`RESTART_LEFT_PAGES`, waits at most
:data:`RESTART_WAIT_MS` (a long report reading the database keeps it from
finishing), and after failing is not tried again for :data:`RESTART_BACKOFF_S`."""
RESTART_LEFT_PAGES = 256
RESTART_WAIT_MS = 20
RESTART_BACKOFF_S = 5.0
BACKSTOP_WAL_PAGES = 25_000
"""Where a connection of a background-checkpointed engine checkpoints by itself
(about 100 MB of WAL): only if the :class:`Checkpointer` stopped or fell behind."""


def is_sqlite(url: str) -> bool:
    """Whether ``url`` names a SQLite database."""
    return url.startswith("sqlite")


def make_engine(
    url: str, *, writer: bool = True, echo: bool = False, background_checkpoint: bool = False
) -> Engine:
    """Create an engine for ``url``.

    ``writer=False`` is for read-only tools (auditors' queries): on SQLite their
    transactions are deferred, so a long report never holds the write lock.
    ``background_checkpoint=True`` leaves SQLite's WAL checkpoints to a
    :class:`Checkpointer` the caller runs (the router's engine).
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
        if background_checkpoint:
            cursor.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_WAL_PAGES}")
        cursor.close()

    begin = "BEGIN IMMEDIATE" if writer else "BEGIN"

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql(begin)

    return engine


class Checkpointer:
    """Checkpoints a SQLite database's WAL every ``interval`` seconds from its own thread.

    A PASSIVE checkpoint never waits for readers or writers, and sqlite3 releases
    the GIL while it copies and syncs, so it runs beside the router on another
    core. A no-op for PostgreSQL and in-memory SQLite. Use as a context manager.
    """

    def __init__(self, url: str, interval: float = CHECKPOINT_INTERVAL_S) -> None:
        database = sa.engine.make_url(url).database if is_sqlite(url) else None
        self.path = database if database and database != ":memory:" else None
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._no_restart_until = 0.0

    def __enter__(self) -> Checkpointer:
        if self.path is not None:
            self._thread = threading.Thread(target=self._run, name="axis-checkpointer", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        assert self.path is not None
        connection: sqlite3.Connection | None = None
        try:
            while True:
                stopping = self._stop.wait(self.interval)
                try:
                    if connection is None:
                        # The busy timeout bounds how long a RESTART holds writers back.
                        connection = sqlite3.connect(
                            self.path, timeout=RESTART_WAIT_MS / 1000, isolation_level=None
                        )
                    self.checkpoint(connection)
                except Exception:
                    # Never silently: without this thread, the backstop has a router
                    # commit pay for a checkpoint of the whole WAL.
                    log.exception("database.checkpointer_failed", path=self.path)
                if stopping:
                    return
        finally:
            if connection is not None:
                connection.close()

    def checkpoint(self, connection: sqlite3.Connection) -> tuple[int, int] | None:
        """One PASSIVE checkpoint, and a RESTART one when the WAL should start over.

        Returns (WAL pages, pages copied back) of the passive one, None if it could not run.
        """
        try:
            busy, wal_pages, copied = connection.execute(
                "PRAGMA wal_checkpoint(PASSIVE)"
            ).fetchone()
        except sqlite3.Error as exc:
            log.warning("database.checkpoint_failed", error=str(exc))
            return None
        if busy:
            return None
        if (
            wal_pages > RESTART_AT_WAL_PAGES
            and wal_pages - copied <= RESTART_LEFT_PAGES
            and time.monotonic() >= self._no_restart_until
        ):
            try:
                restarted = not connection.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()[0]
            except sqlite3.Error:
                restarted = False
            if not restarted:
                # A reader holds an old snapshot (a long report): leave the writers be.
                self._no_restart_until = time.monotonic() + RESTART_BACKOFF_S
                log.info("database.checkpoint_restart_deferred", wal_pages=wal_pages)
        return wal_pages, copied


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

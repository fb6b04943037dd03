"""The receipt ids an agency has already taken, to drop deliveries the hub repeats.

PROTOCOL section 6 makes delivery at-least-once: after a crash of the hub or of the
agency's own adapter, a delivery can come again, always with the same
``x-axis-receipt-id``. :class:`SeenSet` remembers which ids were handed over, in
memory (bounded, most recent first) and, given a folder, in a small SQLite file
so that a restarted adapter still knows them.

Keys are ``(kind, receipt_id)``: the hub gives a document's delivery and its
sender's receipt the same receipt id, and an agency that sends to itself gets both.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import OrderedDict
from pathlib import Path

DEFAULT_MEMORY = 10_000
"""Ids kept in memory; older ones are looked up in the file (if there is one)."""
DEFAULT_KEEP = 1_000_000
"""Ids kept in the file; the oldest are pruned beyond that."""


class SeenSet:
    """A bounded set of ``(kind, receipt_id)`` pairs, persistent when given a ``path``."""

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        memory: int = DEFAULT_MEMORY,
        keep: int = DEFAULT_KEEP,
    ) -> None:
        self._recent: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._memory = memory
        self._keep = keep
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._added = 0
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL: an id must be on disk before the broker ack that it justifies.
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS seen ("
                " kind TEXT NOT NULL, receipt_id TEXT NOT NULL, at REAL NOT NULL,"
                " PRIMARY KEY (kind, receipt_id))"
            )

    def __contains__(self, key: tuple[str, str]) -> bool:
        with self._lock:
            if key in self._recent:
                self._recent.move_to_end(key)
                return True
            if self._db is None:
                return False
            row = self._db.execute(
                "SELECT 1 FROM seen WHERE kind = ? AND receipt_id = ?", key
            ).fetchone()
            if row is not None:
                self._remember(key)
            return row is not None

    def add(self, kind: str, receipt_id: str) -> None:
        """Remember ``(kind, receipt_id)``; written through to the file before returning."""
        key = (kind, receipt_id)
        with self._lock:
            self._remember(key)
            if self._db is None:
                return
            self._db.execute(
                "INSERT OR IGNORE INTO seen (kind, receipt_id, at) VALUES (?, ?, ?)",
                (kind, receipt_id, time.time()),
            )
            self._added += 1
            if self._added % 1000 == 0:
                self._prune()

    def _remember(self, key: tuple[str, str]) -> None:
        self._recent[key] = None
        self._recent.move_to_end(key)
        while len(self._recent) > self._memory:
            self._recent.popitem(last=False)

    def _prune(self) -> None:
        assert self._db is not None
        self._db.execute(
            "DELETE FROM seen WHERE rowid IN ("
            " SELECT rowid FROM seen ORDER BY at DESC LIMIT -1 OFFSET ?)",
            (self._keep,),
        )

    def close(self) -> None:
        """Close the file (the in-memory part stays usable)."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

"""Durable, bounded outbox of MQTT events (SQLite in the state directory).

Owns at-least-once delivery across broker outages and daemon restarts: an event is
committed here *before* it is handed to the MQTT client, and removed only when the
broker acknowledged it (PUBACK). Rows keep their insertion order (monotonic ids).
When more than `limit` rows wait, the oldest are dropped and counted; the counter is
persisted with the rows.

Every row carries the delivery identity it was produced for (`identity.delivery_identity`:
broker and topic prefix). An outbox opened with an identity sees, sends, bounds and drops only
its own rows; rows of another identity (another config that used this state directory) are
kept untouched and counted (`foreign`), never sent elsewhere. Rows from before identities
existed are adopted by the identity whose topic prefix they carry.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 10_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""
_IDENTITY_COLUMN = "ALTER TABLE outbox ADD COLUMN identity TEXT NOT NULL DEFAULT ''"


@dataclass(frozen=True)
class OutboxEntry:
    """One stored message."""

    id: int
    topic: str
    payload: str


class Outbox:
    """Thread-safe SQLite queue; `path` may be ``":memory:"`` for tests."""

    def __init__(self, path: str | Path, limit: int = DEFAULT_LIMIT, identity: str = "") -> None:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        self.path = str(path)
        self.limit = limit
        self.identity = identity
        self._lock = threading.Lock()
        # One connection shared by the app threads and the publisher worker, serialised by _lock.
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed event survives a power cut, which is the point of the outbox.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        with self._db:
            columns = {str(row[1]) for row in self._db.execute("PRAGMA table_info(outbox)")}
            if "identity" not in columns:  # an outbox of an older focusguard
                self._db.execute(_IDENTITY_COLUMN)
            if identity:
                self._adopt_unowned(identity)

    def add(self, topic: str, payload: str) -> int:
        """Store a message durably and return its id (ids grow with insertion order)."""
        with self._lock, self._db:
            cursor = self._db.execute("INSERT INTO outbox (topic, payload, identity) VALUES (?, ?, ?)",
                                      (topic, payload, self.identity))
            row_id = int(cursor.lastrowid or 0)  # always set after an INSERT
            excess = self._count() - self.limit
            if excess > 0:
                self._db.execute(
                    "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE identity = ? ORDER BY id LIMIT ?)",
                    (self.identity, excess),
                )
                self._db.execute(
                    "INSERT INTO meta (key, value) VALUES ('dropped', ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = value + excluded.value",
                    (excess,),
                )
        if excess > 0:
            log.warning("outbox full (%d events): dropped the %d oldest undelivered event(s)", self.limit, excess)
        return row_id

    def pending(self, after_id: int = 0, limit: int | None = None) -> list[OutboxEntry]:
        """Stored messages with id > `after_id`, oldest first."""
        sql = "SELECT id, topic, payload FROM outbox WHERE id > ? AND identity = ? ORDER BY id"
        params: tuple[int | str, ...] = (after_id, self.identity)
        if limit is not None:
            sql += " LIMIT ?"
            params = (*params, limit)
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()
        return [OutboxEntry(int(r[0]), str(r[1]), str(r[2])) for r in rows]

    def remove(self, entry_id: int) -> None:
        """Forget a delivered message (no error if it was already dropped)."""
        with self._lock, self._db:
            self._db.execute("DELETE FROM outbox WHERE id = ? AND identity = ?", (entry_id, self.identity))

    @property
    def dropped(self) -> int:
        """How many undelivered messages were dropped because the outbox was full (ever)."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'dropped'").fetchone()
        return int(row[0]) if row else 0

    @property
    def foreign(self) -> dict[str, int]:
        """Rows kept for other identities: {identity: count} (never sent by this outbox)."""
        with self._lock:
            rows = self._db.execute("SELECT identity, COUNT(*) FROM outbox WHERE identity != ? GROUP BY identity",
                                    (self.identity,)).fetchall()
        return {str(r[0]) or "unknown (older focusguard)": int(r[1]) for r in rows}

    def __len__(self) -> int:
        with self._lock:
            return self._count()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM outbox WHERE identity = ?", (self.identity,)).fetchone()[0])

    def _adopt_unowned(self, identity: str) -> None:
        """Rows written before identities existed go to the identity whose prefix their topic has."""
        prefix = identity.split("/", 3)[3] if identity.startswith("mqtt://") else ""  # mqtt://host:port/<prefix>
        if prefix:
            pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "/%"
            self._db.execute("UPDATE outbox SET identity = ? WHERE identity = '' AND topic LIKE ? ESCAPE '\\'",
                             (identity, pattern))

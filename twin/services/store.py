"""Live persistence: the event log in a SQLite file (WAL mode).

Live systems open the services on a store.  Every batch of events is written
and committed (``synchronous=FULL``) inside ``EventLog.append``, i.e. before the
command returns, so anything acknowledged survives a crash of the process.
Reopening the store replays the log through the services and so reproduces
their state exactly.

Free text a service keeps beside its events (a repair ticket's description,
contact and comment) lives in the store's own ``details`` table: events carry
ids only, so the log can be shared or anchored without personal data.

The store carries a schema version; opening a store written by a newer
version of this code is a clear error rather than a silent misread.
"""
import sqlite3
from pathlib import Path

import numpy as np

from twin.services.events import EVENT_DTYPE, FIELDS

SCHEMA_VERSION = 1


class StoreVersionError(RuntimeError):
    """The store was written by a newer schema than this code understands."""


class EventStore:
    """An append-only SQLite table of events; use :meth:`sink` as an ``EventLog`` sink."""

    def __init__(self, path):
        self.path = Path(path)
        self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        row = self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            self.conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        elif int(row[0]) > SCHEMA_VERSION:
            self.conn.close()
            raise StoreVersionError(
                f"{self.path} has schema version {row[0]}; this code reads up to {SCHEMA_VERSION}. "
                "Upgrade community-twin to open it.")
        cols = ", ".join(f"{f} {'REAL' if f == 't' else 'INTEGER'} NOT NULL" for f in FIELDS)
        self.conn.execute(f"CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, {cols})")
        self.conn.execute("CREATE TABLE IF NOT EXISTS details (subject INTEGER NOT NULL, field TEXT NOT NULL, "
                          "value TEXT NOT NULL, PRIMARY KEY (subject, field))")
        self._insert = f"INSERT INTO events ({', '.join(FIELDS)}) VALUES ({', '.join('?' * len(FIELDS))})"

    def sink(self, events: np.ndarray) -> None:
        """Write a batch of events in one transaction; returns only once it is durable."""
        rows = [tuple(r) for r in events.tolist()]
        with self.conn:
            self.conn.execute("BEGIN")
            self.conn.executemany(self._insert, rows)

    def put_detail(self, subject: int, field: str, value: str) -> None:
        """Keep one free-text detail (durable on return)."""
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO details VALUES (?, ?, ?)", (int(subject), field, value))

    def details(self) -> list[tuple]:
        return self.conn.execute("SELECT subject, field, value FROM details ORDER BY subject").fetchall()

    def load(self) -> np.ndarray:
        """Every stored event, in order."""
        rows = self.conn.execute(f"SELECT {', '.join(FIELDS)} FROM events ORDER BY seq").fetchall()
        return np.array(rows, dtype=EVENT_DTYPE) if rows else np.zeros(0, EVENT_DTYPE)

    def close(self) -> None:
        self.conn.close()

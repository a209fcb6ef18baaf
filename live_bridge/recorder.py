"""The recording: every live message as it arrived, so a shadow session can be re-run exactly.

A recording is a SQLite file holding each message's topic and raw payload
(refused ones too: a replay must refuse them again), its arrival in
community minutes and on the wall clock, and the session's settings
(scenario, overrides, epoch, community) under ``meta``, and an ``$advance`` row
wherever the shadow closed days, so a replay closes them between the same
two messages.  The bridge commits a
batch before it acknowledges the batch to the broker, so a message the broker
considers delivered is on disk; one that was not committed is redelivered by
the broker after a crash (QoS 1, persistent session).
"""
from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    arrival REAL NOT NULL,     -- community minutes since the epoch, by the bridge's clock
    wall_ms INTEGER NOT NULL,  -- Unix milliseconds when it was recorded
    topic TEXT NOT NULL,
    payload BLOB NOT NULL
);
"""


ADVANCE = "$advance"  # a row marking that the shadow closed the days due by its arrival (no payload)


class RecordingError(ValueError):
    """A file that is not a recording, or a recording of another session."""


class Recorder:
    """Appends messages to the recording at ``path`` (created if missing)."""

    def __init__(self, path: str | Path, meta: dict | None = None):
        self.path = Path(path)
        self.db = sqlite3.connect(self.path, check_same_thread=False)
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(SCHEMA)
        except sqlite3.DatabaseError as e:
            self.db.close()
            raise RecordingError(f"{self.path} is not a recording: {e}") from None
        if meta:
            old = read_meta(self.db)
            clash = {k: (old[k], v) for k, v in meta.items() if k in old and old[k] != v}
            if clash:
                self.db.close()
                key, (was, now) = next(iter(clash.items()))
                raise RecordingError(f"{self.path} records another session: its {key} is {was!r}, not {now!r}")
            with self.db:
                self.db.executemany("INSERT OR IGNORE INTO meta VALUES (?, ?)",
                                    [(k, json.dumps(v)) for k, v in meta.items()])
        self.count = self.db.execute("SELECT count(*) FROM messages").fetchone()[0]

    def record(self, messages, arrival: float) -> None:
        """Commit ``(topic, payload)`` pairs that arrived at community minute ``arrival``, durably."""
        wall = int(time.time() * 1000)
        with self.db:
            self.db.executemany("INSERT INTO messages (arrival, wall_ms, topic, payload) VALUES (?, ?, ?, ?)",
                                [(arrival, wall, topic, bytes(payload)) for topic, payload in messages])
        self.count += len(messages)

    def record_advance(self, at: float) -> None:
        """Note that the shadow closed the days due by community minute ``at`` (replay does it here too)."""
        self.record([(ADVANCE, b"")], at)

    def set_meta(self, key: str, value) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def close(self) -> None:
        self.db.close()


def read_meta(db: sqlite3.Connection) -> dict:
    return {k: json.loads(v) for k, v in db.execute("SELECT key, value FROM meta")}


def open_recording(path: str | Path) -> tuple[dict, sqlite3.Connection]:
    """A recording's settings and a read-only connection to it; RecordingError naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise RecordingError(f"{path}: no such recording")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        meta = read_meta(db)
        db.execute("SELECT 1 FROM messages LIMIT 1")
    except sqlite3.DatabaseError as e:
        db.close()
        raise RecordingError(f"{path} is not a recording: {e}") from None
    return meta, db


def messages(db: sqlite3.Connection, batch: int = 10_000):
    """Every recorded ``(arrival, topic, payload)`` in arrival order."""
    last = 0
    while True:
        rows = db.execute("SELECT id, arrival, topic, payload FROM messages WHERE id > ? ORDER BY id LIMIT ?",
                          (last, batch)).fetchall()
        if not rows:
            return
        for _, arrival, topic, payload in rows:
            yield arrival, topic, payload
        last = rows[-1][0]

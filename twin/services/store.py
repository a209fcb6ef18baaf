"""Live persistence: the event log and its free-text details in a SQLite file (WAL mode).

Live systems open the services on a store (``open_services``).  Each command's
events, and the free text beside them (a repair ticket's description, contact
and comment: events carry ids only, so the log can be shared or anchored
without personal data), are written in ONE transaction committed with
``synchronous=FULL`` before the command returns: anything acknowledged
survives a crash of the process, and nothing is half-written.  Reopening
replays the log through the services and so reproduces their state exactly.

Trust rules, each a clear error rather than a silent misread:

- **One writer.** A writer holds an exclusive lock on ``<store>.lock`` for as
  long as the store is open (the operating system drops it if the process
  dies).  A second writer, in this process or another, gets
  :class:`StoreLocked` naming the holder; read-only opens stay possible.
- **Schema version.** A store written by newer code is :class:`StoreVersionError`.
- **Contacts sealed at rest.** Details that identify a person (a ticket's
  ``contact``) are encrypted (AES-GCM, bound to their ticket and field) with
  a key kept beside the store in ``<store>.key`` (mode 0600), so a copy of
  the store or its log without the key reveals no phone numbers; the server
  shows them to staff and to the reporter only.
- **Damage.** A file that is not a store, lacks its schema-version row, is
  truncated, or is a copy of an open store made without its ``-wal`` file
  (detected by the open-flag the writer sets and clears on a clean close) is
  :class:`StoreCorrupt`, naming the file.  Copy a live store with
  :meth:`EventStore.backup`, or after closing it.
"""
import base64
import fcntl
import hashlib
import os
import secrets
import socket
import sqlite3
import time
import zlib
from pathlib import Path

import numpy as np
from Crypto.Cipher import AES

from twin.services.events import EVENT_DTYPE, FIELDS

SCHEMA_VERSION = 2  # 2: snapshots (a version-1 store is upgraded on open)


class StoreError(RuntimeError):
    """The store cannot be used as asked; the message says why and what to do."""


class StoreVersionError(StoreError):
    """The store was written by a newer schema than this code understands."""


class StoreLocked(StoreError):
    """Another writer holds the store."""


class StoreCorrupt(StoreError):
    """The file is not a complete community-twin store."""


class EventStore:
    """An append-only SQLite table of events plus a details table; use :meth:`sink` as an ``EventLog`` sink.

    ``readonly=True`` opens without the writer lock (a report, a second
    process looking on); writing through it is an error.
    """

    def __init__(self, path, *, readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        self.conn = None
        self._lock = None
        self._epoch = None
        self._key = None
        self.version = SCHEMA_VERSION  # the file's, once read
        if readonly:
            if not self.path.exists():
                raise StoreCorrupt(f"{self.path} does not exist (a read-only open cannot create a store)")
            _check_file_size(self.path)
            self._key = _store_key(self.path, create=False)
            self._connect(f"file:{self.path}?mode=ro", uri=True)
            self._check_schema()
            return
        self._lock = _take_writer_lock(self.path)
        try:
            self._key = _store_key(self.path, create=True)
            existing = self.path.exists() and self.path.stat().st_size > 0
            wal = Path(f"{self.path}-wal")
            wal_found = wal.exists()  # looked at before SQLite opens (and so creates) it
            if existing:
                _check_file_size(self.path)
            self._connect(str(self.path))
            if existing:
                self._check_schema()
                self._upgrade()
                if self._meta("open") == "1" and not wal_found:
                    raise StoreCorrupt(
                        f"{self.path} was open for writing when it was copied and its {wal.name} file is "
                        "missing: commands acknowledged since the last checkpoint would be lost. Copy the "
                        "-wal file with it, or copy a live store with EventStore.backup.")
            else:
                self._create()
            self._set_meta("open", "1")
            self._checkpoint()  # the open-flag (and a new schema) reach the main file now
        except BaseException:
            self._release()
            raise
        self._insert = f"INSERT INTO events ({', '.join(FIELDS)}) VALUES ({', '.join('?' * len(FIELDS))})"

    # ---------------------------------------------------------------- opening
    def _connect(self, target: str, uri: bool = False) -> None:
        try:
            self.conn = sqlite3.connect(target, uri=uri, isolation_level=None, check_same_thread=False)
            self.conn.execute("PRAGMA busy_timeout=5000")
            # erased details (a sealed ballot after its topic closed) are overwritten, not left in free pages
            self.conn.execute("PRAGMA secure_delete=ON")
            if not self.readonly:
                self.conn.execute("PRAGMA journal_mode=WAL")
                self.conn.execute("PRAGMA synchronous=FULL")
        except sqlite3.DatabaseError as exc:
            raise StoreCorrupt(f"{self.path} is not a readable SQLite store ({exc})") from exc

    def _create(self) -> None:
        cols = ", ".join(f"{f} {'REAL' if f == 't' else 'INTEGER'} NOT NULL" for f in FIELDS)
        with self.conn:
            self.conn.execute("BEGIN")
            self.conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            self.conn.execute(f"CREATE TABLE events (seq INTEGER PRIMARY KEY, {cols})")
            self.conn.execute("CREATE TABLE details (subject INTEGER NOT NULL, field TEXT NOT NULL, "
                              "value TEXT NOT NULL, PRIMARY KEY (subject, field))")
            self.conn.execute(_SNAPSHOTS)
            self.conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            self.conn.execute("INSERT INTO meta VALUES ('epoch', ?)", (repr(time.time()),))

    def _check_schema(self) -> None:
        try:
            tables = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            row = (self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
                   if "meta" in tables else None)
        except sqlite3.DatabaseError as exc:
            raise self._damaged(exc) from exc
        if not {"meta", "events", "details"} <= tables:
            raise StoreCorrupt(f"{self.path} is not a community-twin store (tables: {sorted(tables) or 'none'}); "
                               "if it is a copy, was its -wal file left behind?")
        if row is None:
            raise StoreCorrupt(f"{self.path} has no schema-version row: it was damaged or not written by "
                               "community-twin; restore it from a backup")
        try:
            version = int(row[0])
        except ValueError:
            raise StoreCorrupt(f"{self.path} has a malformed schema version {row[0]!r}") from None
        self.version = version
        if version > SCHEMA_VERSION:
            raise StoreVersionError(
                f"{self.path} has schema version {version}; this code reads up to {SCHEMA_VERSION}. "
                "Upgrade community-twin to open it.")

    @property
    def epoch(self) -> float:
        """When the store was created (Unix seconds): live time is minutes since then."""
        if self._epoch is None:
            value = self._meta("epoch")
            self._epoch = float(value) if value is not None else 0.0
        return self._epoch

    def minutes_now(self) -> float:
        """Live time: minutes since the store's epoch (the twin's clock unit)."""
        return (time.time() - self.epoch) / 60.0

    def _upgrade(self) -> None:
        """Bring a store of an older schema version up to this one (each step in one transaction)."""
        if self.version < 2:
            with self.conn:
                self.conn.execute("BEGIN IMMEDIATE")
                self.conn.execute(_SNAPSHOTS)
                self.conn.execute("UPDATE meta SET value='2' WHERE key='schema_version'")
            self.version = 2

    def _meta(self, key: str):
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else row[0]

    def _set_meta(self, key: str, value: str) -> None:
        with self.conn:
            self.conn.execute("BEGIN")
            self.conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def _checkpoint(self) -> None:
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _damaged(self, exc: Exception) -> StoreCorrupt:
        return StoreCorrupt(f"{self.path} is damaged ({exc}); restore it from a backup")

    # ---------------------------------------------------------------- writing
    def sink(self, events: np.ndarray, details=()) -> None:
        """Write a batch of events and their details in one transaction; returns once it is durable."""
        if self.readonly:
            raise StoreError(f"{self.path} is open read-only")
        rows = [tuple(r) for r in events.tolist()]
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            if rows:
                self.conn.executemany(self._insert, rows)
            for subject, field, text in details:
                if text is None:
                    self.conn.execute("DELETE FROM details WHERE subject=? AND field=?", (int(subject), field))
                else:
                    self.conn.execute("INSERT OR REPLACE INTO details VALUES (?, ?, ?)",
                                      (int(subject), field, self._seal(subject, field, text)))

    # ---------------------------------------------------------------- reading
    def details(self) -> list[tuple]:
        """Every free-text detail, ``(subject, field, text)``; a sealed one that cannot be opened is left out."""
        try:
            rows = self.conn.execute("SELECT subject, field, value FROM details ORDER BY subject").fetchall()
        except sqlite3.DatabaseError as exc:
            raise self._damaged(exc) from exc
        out = []
        for subject, field, value in rows:
            text = self._unseal(subject, field, value)
            if text is not None:
                out.append((subject, field, text))
        return out

    def _seal(self, subject: int, field: str, text: str) -> str:
        if field not in SEALED_FIELDS:
            return text
        cipher = AES.new(self._key, AES.MODE_GCM)
        cipher.update(f"{int(subject)}/{field}".encode())
        sealed, tag = cipher.encrypt_and_digest(text.encode())
        return _SEALED_PREFIX + base64.b64encode(cipher.nonce + tag + sealed).decode()

    def _unseal(self, subject: int, field: str, value: str):
        if field not in SEALED_FIELDS or not value.startswith(_SEALED_PREFIX):
            return value
        if self._key is None:
            return None
        try:
            raw = base64.b64decode(value[len(_SEALED_PREFIX):], validate=True)
            cipher = AES.new(self._key, AES.MODE_GCM, nonce=raw[:16])
            cipher.update(f"{int(subject)}/{field}".encode())
            return cipher.decrypt_and_verify(raw[32:], raw[16:32]).decode()
        except ValueError:  # another store's key, moved to another row, or damaged
            return None

    def load(self, after: int = 0) -> np.ndarray:
        """Every stored event after the first ``after``, in order."""
        try:
            rows = self.conn.execute(f"SELECT {', '.join(FIELDS)} FROM events WHERE seq > ? ORDER BY seq",
                                     (int(after),)).fetchall()
        except sqlite3.DatabaseError as exc:
            raise self._damaged(exc) from exc
        if not rows:
            return np.zeros(0, EVENT_DTYPE)
        try:
            return np.array(rows, dtype=EVENT_DTYPE)
        except (TypeError, ValueError, OverflowError) as exc:
            raise self._damaged(exc) from exc

    def save_snapshot(self, events: np.ndarray, fingerprint: str, state: bytes) -> None:
        """Keep a snapshot at ``len(events)`` (replacing older ones), in one transaction."""
        if self.readonly:
            raise StoreError(f"{self.path} is open read-only")
        events = np.ascontiguousarray(events, dtype=EVENT_DTYPE)
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute("DELETE FROM snapshots")
            self.conn.execute("INSERT INTO snapshots VALUES (?, ?, ?, ?, ?)",
                              (len(events), fingerprint, zlib.compress(events.tobytes(), 1),
                               hashlib.sha256(state).hexdigest(), state))

    def load_snapshot(self, fingerprint: str):
        """``(events, state)`` of the latest snapshot made under ``fingerprint``, or None.

        A snapshot made under other rules or policies, or one that does not
        check out (its length or hash), is None: the caller replays in full;
        so is a version-1 store opened read-only (it has no snapshots table).
        """
        if self.version < 2:
            return None
        try:
            row = self.conn.execute("SELECT seq, fingerprint, events, state_sha256, state FROM snapshots "
                                    "ORDER BY seq DESC LIMIT 1").fetchone()
        except sqlite3.DatabaseError as exc:
            raise self._damaged(exc) from exc
        if row is None or row[1] != fingerprint or hashlib.sha256(row[4]).hexdigest() != row[3]:
            return None
        try:
            events = np.frombuffer(zlib.decompress(row[2]), dtype=EVENT_DTYPE)  # read-only; the log copies it
        except (zlib.error, ValueError):
            return None
        return (events, row[4]) if len(events) == row[0] else None

    def backup(self, dest) -> Path:
        """A consistent copy of the store (events and details up to now) at ``dest``.

        Sealed contacts stay sealed: copy ``<store>.key`` along only where they may be read.
        """
        dest = Path(dest)
        target = sqlite3.connect(dest)
        try:
            self.conn.backup(target)
            target.execute("UPDATE meta SET value='0' WHERE key='open'")
            target.commit()
        finally:
            target.close()
        return dest

    # ---------------------------------------------------------------- closing
    def close(self) -> None:
        """Checkpoint, mark the store closed cleanly and release the writer lock (idempotent)."""
        if self.conn is not None:
            try:
                if not self.readonly:
                    self._set_meta("open", "0")
                    self._checkpoint()
            except sqlite3.Error:
                pass  # closing a store whose disk failed: the flag stays set, which is the safe side
            finally:
                self.conn.close()
                self.conn = None
        self._release()

    def _release(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


#: Details that identify a person, encrypted at rest with the store's key.
SEALED_FIELDS = frozenset({"contact"})
_SEALED_PREFIX = "sealed:v1:"


def _store_key(path: Path, create: bool):
    """The store's 32-byte key from ``<store>.key`` (made, mode 0600, when a writer finds none)."""
    key_path = Path(f"{path}.key")
    if key_path.exists():
        try:
            key = bytes.fromhex(key_path.read_text().strip())
        except ValueError:
            key = b""
        if len(key) != 32:
            raise StoreCorrupt(f"{key_path} is not a store key (64 hex digits)")
        return key
    if not create:
        return None
    key = secrets.token_bytes(32)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key.hex() + "\n")
    return key


_SNAPSHOTS = ("CREATE TABLE IF NOT EXISTS snapshots (seq INTEGER PRIMARY KEY, fingerprint TEXT NOT NULL, "
              "events BLOB NOT NULL, state_sha256 TEXT NOT NULL, state BLOB NOT NULL)")


def _check_file_size(path: Path) -> None:
    """A SQLite file is whole pages, at least as many as its header counts; else it was cut short.

    SQLite itself reads a cut last page as zeros, silently losing rows.
    """
    with open(path, "rb") as f:
        header = f.read(100)
    size = path.stat().st_size
    if len(header) < 100 or not header.startswith(b"SQLite format 3\x00"):
        raise StoreCorrupt(f"{path} is not a SQLite store (no SQLite header)")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    if page_size < 512 or size % page_size or size < pages * page_size:
        raise StoreCorrupt(f"{path} is truncated ({size} bytes; its header says {pages} pages of {page_size}); "
                           "restore it from a backup")


def _take_writer_lock(path: Path) -> int:
    """An exclusive ``flock`` on ``<path>.lock``, with the holder written in it; StoreLocked if taken."""
    lock_path = Path(f"{path}.lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 512, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise StoreLocked(f"{path} is already open for writing by {holder}; one writer per store: stop "
                          "that writer, or open this one read-only (readonly=True)") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since "
                  f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode(), 0)
    return fd

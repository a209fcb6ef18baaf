"""The SQLite event store: round trips, reopening, schema versions, and a crash mid-stream.

The crash test runs a real writer process that acknowledges each command on
stdout only after the command returned, SIGKILLs it mid-stream, and checks
that the reopened store holds every acknowledged command and consistent books.
"""
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from twin.services import events as ev
from twin.services.events import EVENT_DTYPE, EventKind, EventLog
from twin.services.store import SCHEMA_VERSION, EventStore, StoreVersionError

REPO = Path(__file__).resolve().parents[1]


def _random_events(n, seed):
    g = np.random.default_rng(seed)
    e = ev.empty(n)
    e["t"] = g.uniform(0, 1e6, n)
    e["kind"] = g.choice([int(k) for k in EventKind], n)
    e["reason"] = g.integers(-5, 40, n)
    e["channel"] = g.integers(0, 6, n)
    for name in ("actor", "subject", "target", "amount", "code", "extra"):
        e[name] = g.integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max, n, endpoint=True)
    return e


# --------------------------------------------------------------- round trip
def test_events_round_trip_exactly(tmp_path):
    store = EventStore(tmp_path / "s.db")
    batches = [_random_events(n, seed) for seed, n in enumerate([1, 50, 0, 7])]
    batches.append(ev.make(EventKind.Transferred, 0.1 + 0.2, actor=np.iinfo(np.int64).max,
                           target=np.iinfo(np.int64).min, amount=-1))
    for b in batches:
        store.sink(b)
    loaded = store.load()
    assert loaded.dtype == EVENT_DTYPE
    assert np.array_equal(loaded, np.concatenate(batches))  # floats and int64 extremes bit for bit
    store.close()
    again = EventStore(tmp_path / "s.db")
    assert np.array_equal(again.load(), np.concatenate(batches))


def test_a_new_store_is_empty_and_records_the_schema_version(tmp_path):
    store = EventStore(tmp_path / "new.db")
    assert store.load().dtype == EVENT_DTYPE and len(store.load()) == 0
    row = store.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    assert int(row[0]) == SCHEMA_VERSION
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_the_store_as_a_log_sink_sees_every_batch_before_it_is_in_memory(tmp_path):
    store = EventStore(tmp_path / "s.db")
    log = EventLog(capacity=2)
    seen = []
    log.sinks += [store.sink, lambda batch: seen.append((len(log), len(batch)))]
    for seed in range(5):
        log.append(_random_events(3, seed))
    assert seen == [(0, 3), (3, 3), (6, 3), (9, 3), (12, 3)]  # the sink ran before the append
    assert np.array_equal(store.load(), log.events)


def test_a_failing_sink_leaves_the_in_memory_log_unchanged(tmp_path):
    store = EventStore(tmp_path / "s.db")
    log = EventLog()
    log.sinks.append(store.sink)
    log.append(_random_events(2, 0))
    store.close()  # the next write cannot be made durable
    with pytest.raises(sqlite3.ProgrammingError):
        log.append(_random_events(2, 1))
    assert len(log) == 2  # nothing is in the log that is not in the store


# ------------------------------------------------------------ schema version
def _bump_version(path, version):
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(version),))
    conn.commit()
    conn.close()


def test_a_store_from_newer_code_is_a_clear_error(tmp_path):
    path = tmp_path / "future.db"
    EventStore(path).close()
    _bump_version(path, SCHEMA_VERSION + 1)
    with pytest.raises(StoreVersionError) as info:
        EventStore(path)
    message = str(info.value)
    assert str(path) in message and f"schema version {SCHEMA_VERSION + 1}" in message
    assert f"up to {SCHEMA_VERSION}" in message and "Upgrade" in message


def test_open_services_refuses_a_newer_store(tmp_path):
    from twin.services.community import open_services

    path = tmp_path / "future.db"
    EventStore(path).close()
    _bump_version(path, SCHEMA_VERSION + 7)
    with pytest.raises(StoreVersionError):
        open_services(path)


def test_a_store_of_the_current_version_reopens(tmp_path):
    path = tmp_path / "now.db"
    EventStore(path).sink(_random_events(4, 2))
    assert len(EventStore(path).load()) == 4


# ---------------------------------------------------------------- reopening
def _operate(s, t0=0.0):
    """A morning's work across points, time bank and repair desk."""
    s.points.enroll_batch(np.arange(5), t0)
    s.points.earn_batch([0, 1, 2, 0], [0, 1, 2, 0], [1, 1, 1, 1], [1, 1, 2, 1], t0 + 1)  # last: duplicate
    s.points.redeem_batch([2], [0], t0 + 2)
    s.points.penalise(1, 50, t=t0 + 3)
    tb = s.timebank
    tb.register_batch(0, [2, 3, 4], household=[7, 7, 8], t=t0)
    tb.endow(3, 120, t=t0 + 4)
    done = tb.record(2, 3, 45, t=t0 + 5)
    tb.confirm(done, by=3, t=t0 + 6)
    tb.dispute(tb.record(4, 3, 30, t=t0 + 7), by=3, t=t0 + 8)
    desk = s.repair
    ticket = desk.submit("plumbing", "leak under the sink", building=3, unit=402, reporter=1, t=t0 + 10)
    desk.dispatch(ticket, 0, t=t0 + 20)
    desk.start(ticket, t=t0 + 40)
    desk.complete(ticket, t=t0 + 90)
    desk.rate(ticket, 5, t=t0 + 100)
    desk.submit("elevator", "stuck", building=1, unit=0, t=t0 + 110)


def test_reopening_a_store_reproduces_the_services(tmp_path, same_state):
    from twin.services.community import open_services

    path = tmp_path / "live.db"
    live = open_services(path)
    _operate(live)
    expected = live.snapshot()
    logged = live.log.events.copy()
    live.store.close()

    reopened = open_services(path)
    same_state(reopened.snapshot(), expected)
    assert np.array_equal(reopened.log.events, logged)
    assert np.array_equal(reopened.store.load(), logged)  # reopening wrote nothing new

    # and it carries on where it stopped: the next ticket id follows, the events land in the store
    assert reopened.repair.submit("gas", "smell", building=2, unit=1, t=500.0) == 2
    assert len(reopened.store.load()) == len(logged) + 1


def test_reopening_a_store_with_ballots(tmp_path, same_state):
    from twin.services.community import open_services

    path = tmp_path / "votes.db"
    live = open_services(path)
    live.voting.register_voters([1, 2, 3], [1, 2, 3], [True, True, True])
    topic = live.voting.propose(1, "plurality", 2)
    live.voting.screen(topic)
    live.voting.notice(topic, t=0.0)
    live.voting.open(topic, t=7 * 1440.0)
    live.voting.cast(topic, 2, [1], t=7 * 1440.0 + 1)
    expected = live.snapshot()
    live.store.close()
    same_state(open_services(path).snapshot(), expected)


# ------------------------------------------------------------------- crash
MEMBERS = range(2, 12)
WRITER = r"""
import sys
from twin.services.community import open_services

s = open_services(sys.argv[1])
points, bank = s.points, s.timebank
points.enroll_batch(list(range(10)))
bank.register_batch(0, list(range(2, 12)))
bank.endow_batch(0, list(range(2, 12)), 10**6)
print("ready", flush=True)
i = 0
while True:
    if i % 2 == 0:
        points.earn(i % 10, i % 4, occurrence=i, t=float(i))
        print(f"earn {i % 10} {i % 4} {i}", flush=True)
    else:
        provider, receiver = 2 + i % 10, 2 + (i + 3) % 10
        rid = bank.record(provider, receiver, 30, t=float(i))
        print(f"record {rid}", flush=True)
        bank.confirm(rid, by=receiver, t=float(i))
        print(f"confirm {rid}", flush=True)
    i += 1
"""


def _lines(stream, out):
    for line in stream:
        out.put(line.strip())
    out.put(None)


def _run_writer_and_kill(path, acks_wanted, timeout=60.0):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines = queue.Queue()
    threading.Thread(target=_lines, args=(proc.stdout, lines), daemon=True).start()
    acks, deadline = [], time.monotonic() + timeout
    try:
        while len(acks) < acks_wanted:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            if line is None:
                raise AssertionError(f"the writer died early: {proc.stderr.read()[-2000:]}")
            if line != "ready":
                acks.append(line.split())
        os.kill(proc.pid, signal.SIGKILL)  # mid-stream: it is busy with the next command
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return acks


def _naive_books(events):
    """Balances folded straight from the events, independently of the services' kernels."""
    K = EventKind
    points, minutes, pending = defaultdict(int), defaultdict(int), {}
    for e in events:
        kind = int(e["kind"])
        if kind == K.PointsEarned:
            points[int(e["actor"])] += int(e["amount"])
        elif kind == K.Endowed:
            minutes[int(e["target"])] += int(e["amount"])
            minutes[1] -= int(e["amount"])
        elif kind == K.ServiceRecorded:
            pending[int(e["subject"])] = (int(e["extra"]), int(e["target"]), int(e["amount"]))
        elif kind == K.ServiceConfirmed:
            provider, receiver, amount = pending.pop(int(e["subject"]))
            minutes[provider] += amount
            minutes[receiver] -= amount
    return points, minutes


@pytest.mark.slow
def test_every_acknowledged_command_survives_a_sigkill(tmp_path):
    from twin.services.community import Services, open_services

    path = tmp_path / "crash.db"
    acks = _run_writer_and_kill(path, acks_wanted=400)

    s = open_services(path)
    stored = s.store.load()
    # every acknowledged command is there
    for ack in acks:
        if ack[0] == "earn":
            resident, activity, occurrence = map(int, ack[1:])
            assert (resident, activity, occurrence) in s.points.claims
        elif ack[0] == "record":
            assert 0 <= int(ack[1]) < s.timebank.n_records
        else:
            assert s.timebank.record_status(int(ack[1])).name == "confirmed"
    # nothing beyond what was acknowledged except, at most, the one command in flight
    earned = int((stored["kind"] == EventKind.PointsEarned).sum())
    assert earned - sum(a[0] == "earn" for a in acks) in (0, 1)
    assert s.timebank.n_records - sum(a[0] == "record" for a in acks) in (0, 1)

    # the books balance and agree with a naive fold of the events
    assert s.points.ledger.total() == 0 and s.timebank.ledger.total() == 0
    assert s.points.issued - s.points.redeemed - s.points.penalised == int(s.points.resident_balances().sum())
    points, minutes = _naive_books(stored)
    assert {r: s.points.balance(r) for r in points} == dict(points)
    assert {m: s.timebank.balance(m) for m in minutes} == dict(minutes)

    # replaying the stored log again gives the same state as the reopened services
    fresh = Services()
    fresh.replay(stored)
    for name in ("points", "timebank"):
        a, b = getattr(fresh, name).snapshot(), getattr(s, name).snapshot()
        for key in a:
            assert np.array_equal(np.asarray(a[key]), np.asarray(b[key])), (name, key)

    # and the reopened store takes new commands
    s.points.earn(0, 0, occurrence=10**9)
    assert len(s.store.load()) == len(stored) + 1


def test_ticket_free_text_stays_in_the_store_not_in_events(tmp_path):
    """Descriptions, contacts and comments survive a reopen, and no event carries them."""
    from twin.services.community import open_services

    path = tmp_path / "desk.db"
    live = open_services(path)
    ticket = live.repair.submit(category="plumbing", description="leak under the sink", building=3, unit=402,
                                contact="138-0000-0000")
    live.repair.dispatch(ticket, 0, t=1.0)
    live.repair.start(ticket, t=2.0)
    live.repair.complete(ticket, t=3.0)
    live.repair.rate(ticket, 5, comment="quick and tidy", t=4.0)
    live.store.close()
    again = open_services(path).repair.get(ticket)
    assert (again["description"], again["contact"], again["comment"]) == \
        ("leak under the sink", "138-0000-0000", "quick and tidy")
    raw = path.read_bytes() + (tmp_path / "desk.db-wal").read_bytes() if (tmp_path / "desk.db-wal").exists() \
        else path.read_bytes()
    assert b"leak under the sink" in raw  # in the details table ...
    events = open_services(path).store.load()
    assert events.dtype.names and all(np.issubdtype(events.dtype[f], np.number) for f in events.dtype.names)

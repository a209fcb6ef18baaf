"""The SQLite event store: round trips, reopening, schema versions, one writer, failed
writes, damaged files, and a crash mid-stream.

The crash test runs a real writer process that acknowledges each command on
stdout only after the command returned, SIGKILLs it mid-stream, and checks
that the reopened store holds every acknowledged command and consistent books.
Failed writes are real SQLite failures: a full disk (``max_page_count``), a
lock held by a foreign connection, a trigger that aborts the details insert.
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
from twin.services.store import SCHEMA_VERSION, EventStore, StoreCorrupt, StoreLocked, StoreVersionError

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
    with EventStore(tmp_path / "s.db") as again:
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
    log.sinks += [store.sink, lambda batch, details: seen.append((len(log), len(batch)))]
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
    with pytest.raises(ev.WriteFailed):
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
    with EventStore(path) as store:
        store.sink(_random_events(4, 2))
    with EventStore(path) as store:
        assert len(store.load()) == 4


def test_a_version_1_store_opens_read_only_and_is_upgraded_by_its_writer(tmp_path):
    from twin.services.community import open_services

    path = tmp_path / "v1.db"
    with open_services(path) as s:
        s.points.enroll(3)
    conn = sqlite3.connect(path)  # as version 1 wrote it: no snapshots table
    conn.execute("DROP TABLE snapshots")
    conn.execute("UPDATE meta SET value='1' WHERE key='schema_version'")
    conn.commit()
    conn.close()
    with open_services(path, readonly=True) as looking:
        assert looking.store.version == 1 and looking.points.balance(3) == 0
    with open_services(path) as s:
        assert s.store.version == 2 and s.checkpoint()
    with EventStore(path, readonly=True) as reader:
        assert reader.version == 2


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
    reopened.close()


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
    live.close()
    with open_services(path) as again:
        same_state(again.snapshot(), expected)


# ------------------------------------------------------------------- crash
MEMBERS = range(2, 12)
WRITER = r"""
import sys
from twin.services.community import open_services

s = open_services(sys.argv[1])
points, bank = s.points, s.timebank
points.enroll_batch(list(range(10)))
bank.register_batch(0, list(range(2, 12)))
bank.endow_batch(0, list(range(2, 12)), 10**5)  # within the endowment budget
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
    s.close()


# ------------------------------------------------------------- free text
def test_ticket_free_text_stays_in_the_details_table_and_nowhere_else(tmp_path):
    """Descriptions, contacts and comments survive a reopen; no other table holds them."""
    from twin.services.community import open_services

    path = tmp_path / "desk.db"
    with open_services(path) as live:
        ticket = live.repair.submit(category="plumbing", description="leak under the sink", building=3,
                                    unit=402, contact="138-0000-0000")
        live.repair.dispatch(ticket, 0, t=1.0)
        live.repair.start(ticket, t=2.0)
        live.repair.complete(ticket, t=3.0)
        live.repair.rate(ticket, 5, comment="quick and tidy", t=4.0)
    with open_services(path) as again:
        got = again.repair.get(ticket)
        assert (got["description"], got["contact"], got["comment"]) == \
            ("leak under the sink", "138-0000-0000", "quick and tidy")
        dump = list(again.store.conn.iterdump())
    texts = ("leak under the sink", "quick and tidy")
    in_details = [line for line in dump if line.startswith('INSERT INTO "details"')]
    elsewhere = [line for line in dump if not line.startswith('INSERT INTO "details"')]
    assert all(any(t in line for line in in_details) for t in texts)
    assert not any(t in line for t in texts for line in elsewhere)
    assert not any("138-0000-0000" in line for line in dump)  # the phone number is sealed everywhere


def test_sealed_ballots_survive_a_reopen_and_are_erased_from_the_file_at_close(tmp_path):
    from twin.services.community import ServicePolicies, open_services
    from twin.services.voting import VotingPolicy

    path = tmp_path / "secret.db"
    policies = ServicePolicies(voting=VotingPolicy(second_ballot="last_counts", notice_minutes=0))
    with open_services(path, policies) as s:
        s.voting.register_voters([1, 2, 3], [1, 2, 3], [True, True, True])
        topic = s.voting.propose(1, "plurality", 3)
        s.voting.screen(topic)
        s.voting.notice(topic, t=0.0)
        s.voting.open(topic, t=1.0)
        s.voting.cast(topic, 2, [1], t=2.0)
        s.voting.cast(topic, 2, [2], t=3.0)  # replaces the first
        s.voting.cast(topic, 3, [2], t=4.0)
    with open_services(path, policies) as s:  # a crash or restart while the vote is open loses nothing
        s.voting.close(topic, t=5.0)
        assert s.voting.resolve(topic, t=6.0).counts.tolist() == [0, 0, 2]
        assert not s.store.conn.execute("SELECT count(*) FROM details WHERE field LIKE 'ballot/%'").fetchone()[0]
    with open_services(path, policies) as s:
        assert s.voting.result(topic).counts.tolist() == [0, 0, 2]
    raw = path.read_bytes()
    assert b"ballot/2" not in raw and b"ballot/3" not in raw  # overwritten, not left in free pages
    with EventStore(path, readonly=True) as reader:  # (this build's default may differ: we ask for it)
        assert reader.conn.execute("PRAGMA secure_delete").fetchone()[0] == 1


# ------------------------------------------------------------- one writer
def test_a_second_writer_is_refused_at_once_naming_the_holder(tmp_path):
    path = tmp_path / "one.db"
    with EventStore(path) as first:
        first.sink(_random_events(3, 0))
        with pytest.raises(StoreLocked) as info:
            EventStore(path)
        assert f"pid {os.getpid()}" in str(info.value) and "read-only" in str(info.value)
        with EventStore(path, readonly=True) as reader:  # looking on stays possible
            assert len(reader.load()) == 3
    with EventStore(path) as again:  # closing released the lock
        assert len(again.load()) == 3


def test_a_writer_in_another_process_is_refused(tmp_path):
    from twin.services.community import open_services

    path = tmp_path / "two.db"
    other = ("import sys\nfrom twin.services.community import open_services\n"
             "try:\n    open_services(sys.argv[1])\nexcept Exception as e:\n"
             "    print(type(e).__name__, e); sys.exit(3)\n")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    with open_services(path) as live:
        live.points.enroll(1)
        done = subprocess.run([sys.executable, "-c", other, str(path)], env=env, cwd=REPO,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 3, done.stderr[-2000:]
        assert done.stdout.startswith("StoreLocked") and f"pid {os.getpid()}" in done.stdout
    done = subprocess.run([sys.executable, "-c", other, str(path)], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]


def test_a_read_only_open_cannot_write_and_stays_unchanged(tmp_path, same_state):
    from twin.services.community import open_services

    path = tmp_path / "ro.db"
    with open_services(path) as live:
        live.points.enroll(1)
        with open_services(path, readonly=True) as looking:
            with pytest.raises(ev.WriteFailed, match="read-only"):
                looking.points.enroll(2)
            same_state(looking.snapshot(), live.snapshot())
            assert len(looking.log) == 1 and len(looking.store.load()) == 1


# ------------------------------------------------------------ failed writes
def _disk_full(store):
    pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
    store.conn.execute(f"PRAGMA max_page_count={pages}")


def _disk_freed(store):
    store.conn.execute("PRAGMA max_page_count=1073741823")


def _memory_equals_store(services, same_state):
    with EventStore(services.store.path, readonly=True) as reader:
        assert np.array_equal(reader.load(), services.log.events)
    from twin.services.community import Services

    fresh = Services(services.policies)
    fresh.replay(services.log.events.copy(), services.log.detail_rows())
    same_state(services.snapshot(), fresh.snapshot())


def test_a_full_disk_leaves_memory_equal_to_the_store_and_the_command_retryable(tmp_path, same_state):
    from twin.services.community import open_services

    with open_services(tmp_path / "full.db") as s:
        points = s.points  # a reference held across the failure stays valid
        points.enroll_batch(np.arange(3))
        _disk_full(s.store)
        with pytest.raises(ev.WriteFailed, match="full"):
            for occurrence in range(10_000):  # fill the last page, then fail
                points.earn(0, 0, occurrence=occurrence, t=float(occurrence))
        failed_at = occurrence
        _memory_equals_store(s, same_state)
        assert (0, 0, failed_at) not in points.claims
        _disk_freed(s.store)
        points.earn(0, 0, occurrence=failed_at, t=float(failed_at))  # a retry, not a DuplicateClaim
        assert (0, 0, failed_at) in s.points.claims
        _memory_equals_store(s, same_state)


def test_ticket_ids_do_not_run_ahead_of_the_store_after_a_failed_submit(tmp_path, same_state):
    from twin.services.community import open_services

    path = tmp_path / "ids.db"
    with open_services(path) as s:
        desk = s.repair
        assert desk.submit("plumbing", "leak", building=1, unit=101, t=1.0) == 0
        _disk_full(s.store)
        with pytest.raises(ev.WriteFailed):
            for i in range(10_000):
                desk.submit("plumbing", "x" * 500, building=1, unit=101, t=2.0 + i)
        stored = i + 1  # tickets 0 .. i were durable before the failure
        assert desk.n_tickets == stored
        _disk_freed(s.store)
        assert desk.submit("gas", "smell", building=2, unit=1, t=9e4) == stored
    with open_services(path) as again:  # and the store reopens
        assert again.repair.n_tickets == stored + 1
        assert again.repair.get(stored)["description"] == "smell"


def test_a_foreign_lock_fails_the_command_cleanly(tmp_path, same_state):
    from twin.services.community import open_services

    path = tmp_path / "busy.db"
    with open_services(path) as s:
        s.points.enroll(1)
        s.store.conn.execute("PRAGMA busy_timeout=50")
        intruder = sqlite3.connect(path, isolation_level=None)
        intruder.execute("BEGIN IMMEDIATE")  # a tool holding the write lock, outside our lock file
        with pytest.raises(ev.WriteFailed, match="locked"):
            s.points.earn(1, 0, occurrence=7, t=1.0)
        assert s.points.balance(1) == 0
        _memory_equals_store(s, same_state)
        intruder.execute("ROLLBACK")
        intruder.close()
        s.points.earn(1, 0, occurrence=7, t=1.0)
        assert s.points.balance(1) > 0


def test_a_ticket_and_its_description_commit_together_or_not_at_all(tmp_path, same_state):
    from twin.services.community import open_services

    path = tmp_path / "atomic.db"
    with open_services(path) as s:
        s.store.conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON details "
                             "BEGIN SELECT RAISE(ABORT, 'details table unavailable'); END")
        with pytest.raises(ev.WriteFailed, match="details table unavailable"):
            s.repair.submit("plumbing", "leak", building=1, unit=101, t=1.0)
        assert s.repair.n_tickets == 0 and len(s.store.load()) == 0
        s.store.conn.execute("DROP TRIGGER refuse")
        assert s.repair.submit("plumbing", "leak", building=1, unit=101, t=2.0) == 0
    with open_services(path) as again:
        assert again.repair.get(0)["description"] == "leak"


def test_a_unit_that_raises_keeps_nothing(tmp_path, same_state):
    from twin.services.community import open_services

    with open_services(tmp_path / "unit.db") as s:
        s.points.enroll_batch(np.arange(2))
        before = s.snapshot()
        with pytest.raises(RuntimeError, match="changed my mind"):
            with s.unit():
                s.points.earn(0, 0, occurrence=1)
                s.repair.submit("plumbing", "leak", building=1, unit=1)
                raise RuntimeError("changed my mind")
        same_state(s.snapshot(), before)
        _memory_equals_store(s, same_state)
        with s.unit():  # and a unit that ends well keeps everything, in one transaction
            s.points.earn(0, 0, occurrence=1)
            s.repair.submit("plumbing", "leak", building=1, unit=1)
        assert len(s.store.load()) == len(s.log) == 4


# ------------------------------------------------------- logs that do not replay
def _tamper_points(log):  # the same occurrence claimed twice: DuplicateClaim
    i = int(np.flatnonzero(log["kind"] == EventKind.PointsEarned)[0])
    return np.insert(log, i + 1, log[i]), i + 1


def _tamper_timebank(log):  # a record confirmed twice: NotPending
    i = int(np.flatnonzero(log["kind"] == EventKind.ServiceConfirmed)[0])
    return np.insert(log, i + 1, log[i]), i + 1


def _tamper_repair(log):  # work started on a ticket that was never dispatched
    i = int(np.flatnonzero(log["kind"] == EventKind.TicketDispatched)[0])
    return np.delete(log, i), i


def _tamper_voting(log):  # a ballot for a topic that does not exist
    i = int(np.flatnonzero(log["kind"] == EventKind.BallotCast)[0])
    bad = log.copy()
    bad[i]["subject"] = 99
    return bad, i


def _votes(s):
    s.voting.register_voters([1, 2, 3], [1, 2, 3], [True, True, True])
    topic = s.voting.propose(1, "plurality", 2)
    s.voting.screen(topic)
    s.voting.notice(topic, t=0.0)
    s.voting.open(topic, t=7 * 1440.0)
    s.voting.cast(topic, 2, [1], t=7 * 1440.0 + 1)


@pytest.mark.parametrize("tamper", [_tamper_points, _tamper_timebank, _tamper_repair, _tamper_voting],
                         ids=["points", "timebank", "repair", "voting"])
def test_a_log_that_does_not_replay_fails_loudly_naming_the_event(tamper, tmp_path):
    from twin.services.community import ReplayMismatch, Services, open_services

    s = Services()
    _operate(s)
    _votes(s)
    bad, position = tamper(s.log.events.copy())
    with pytest.raises(ReplayMismatch) as info:
        Services().replay(bad)
    assert info.value.position == position
    assert f"event #{position} {EventKind(int(bad[position]['kind'])).name}(" in str(info.value)

    path = tmp_path / "tampered.db"  # a store holding it does not open silently either
    with EventStore(path) as store:
        store.sink(bad)
    with pytest.raises(ReplayMismatch):
        open_services(path)
    Services().replay(s.log.events.copy())  # while the untouched log replays


# ------------------------------------------------------------ damaged files
def test_a_copy_without_its_wal_is_refused(tmp_path):
    import shutil

    path = tmp_path / "live.db"
    with EventStore(path) as store:
        store.sink(_random_events(5, 1))
        shutil.copy(path, tmp_path / "copy.db")  # the main file only, while open
        store.backup(tmp_path / "backup.db")
    with pytest.raises(StoreCorrupt, match="-wal"):
        EventStore(tmp_path / "copy.db")
    with EventStore(tmp_path / "backup.db") as backup:  # a backup is complete
        assert len(backup.load()) == 5
    shutil.copy(path, tmp_path / "closed.db")  # after a clean close the main file is complete
    with EventStore(tmp_path / "closed.db") as closed:
        assert len(closed.load()) == 5


def test_a_store_without_its_schema_version_row_is_refused(tmp_path):
    path = tmp_path / "nover.db"
    EventStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("DELETE FROM meta WHERE key='schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(StoreCorrupt, match="schema-version"):
        EventStore(path)
    with pytest.raises(StoreCorrupt, match="schema-version"):
        EventStore(path, readonly=True)


@pytest.mark.parametrize("cut", [1, 100, 4096 + 10])
def test_a_truncated_store_is_a_clear_error(tmp_path, cut):
    path = tmp_path / "trunc.db"
    with EventStore(path) as store:
        for seed in range(40):
            store.sink(_random_events(50, seed))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - cut])
    with pytest.raises(StoreCorrupt, match=str(path)):
        EventStore(path).load()


def test_a_file_that_is_not_a_store_is_refused(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("shopping list\n" * 100)
    with pytest.raises(StoreCorrupt, match="notes.db"):
        EventStore(path)
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreCorrupt, match="not a community-twin store"):
        EventStore(other)


# ---------------------------------------------------------------- README
def test_the_readme_live_snippet_runs_twice(tmp_path):
    text = (REPO / "README.md").read_text()
    blocks = [b.split("```", 1)[0] for b in text.split("```python")[1:]]
    snippet = next(b for b in blocks if "open_services" in b)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", snippet], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]


# ------------------------------------------------------------------ snapshots
def _busy_store(path, policies=None):
    from twin.services.community import open_services

    with open_services(path, policies) as s:
        _operate(s)
        _votes(s)
        for day in range(1, 40):
            s.points.earn_batch(np.arange(5), np.full(5, day % 3), np.full(5, day), 1, float(200 + day))
            s.repair.submit("plumbing", f"leak {day}", building=1, unit=day, t=float(300 + day))
        s.checkpoint()
        s.points.earn(2, 0, occurrence=10**6, t=999.0)  # after the snapshot: replayed on top of it
        s.repair.submit("gas", "smell", building=2, unit=1, t=1000.0)
        expected = s.snapshot()
    return expected


def test_a_snapshot_opens_to_the_state_a_full_replay_gives(tmp_path, same_state):
    from twin.services.community import Services, open_services

    path = tmp_path / "snap.db"
    expected = _busy_store(path)
    with open_services(path) as s:
        assert 0 < s._snapshot_at < len(s.log)  # the snapshot was used, and the tail replayed
        same_state(s.snapshot(), expected)
        events, details = s.store.load(), s.store.details()
        assert np.array_equal(s.log.events, events)
        assert s.repair.get(s.repair.n_tickets - 1)["description"] == "smell"
        s.points.earn(3, 0, occurrence=10**6 + 1, t=1001.0)  # and it carries on
    full = Services()
    full.replay(events, details)
    same_state(full.snapshot(), expected)


def test_a_snapshot_made_under_other_policies_is_not_used(tmp_path, same_state):
    from twin.services.community import ServicePolicies, open_services
    from twin.services.repair import RepairPolicy

    path = tmp_path / "other.db"
    _busy_store(path)
    other = ServicePolicies(repair=RepairPolicy(reopen_window_minutes=7 * 1440.0 + 1))
    with open_services(path, other) as s:
        assert s._snapshot_at == 0  # replayed in full under the policies given


def test_a_hostile_snapshot_runs_nothing_and_is_ignored(tmp_path, same_state):
    import hashlib
    import os
    import pickle

    from twin.services.community import open_services

    path = tmp_path / "hostile.db"
    expected = _busy_store(path)
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    blob = pickle.dumps({"points": Exploit()})
    conn = sqlite3.connect(path)
    conn.execute("UPDATE snapshots SET state=?, state_sha256=?", (blob, hashlib.sha256(blob).hexdigest()))
    conn.commit()
    conn.close()
    with open_services(path) as s:
        assert s._snapshot_at == 0
        same_state(s.snapshot(), expected)
    assert not marker.exists()


# ------------------------------------------------------------------ contacts at rest
def test_contacts_are_sealed_at_rest_and_readable_only_with_the_store_key(tmp_path):
    import shutil

    from twin.services.community import open_services

    path = tmp_path / "sealed.db"
    with open_services(path) as s:
        a = s.repair.submit("plumbing", "leak", building=1, unit=101, contact="138-1111-2222")
        b = s.repair.submit("gas", "smell", building=1, unit=102, contact="139-3333-4444")
        wal = (tmp_path / "sealed.db-wal").read_bytes()
        assert b"138-1111-2222" not in wal and b"leak" in wal  # the description stays plain, the phone not
    assert b"138-1111-2222" not in path.read_bytes()
    assert oct((tmp_path / "sealed.db.key").stat().st_mode & 0o777) == "0o600"
    with open_services(path) as s:  # with its key, the store reads its contacts back
        assert (s.repair.get(a)["contact"], s.repair.get(b)["contact"]) == ("138-1111-2222", "139-3333-4444")
    copy = tmp_path / "copy.db"
    shutil.copy(path, copy)  # a copy without the key: descriptions yes, contacts no
    with open_services(copy, readonly=True) as s:
        assert s.repair.get(a)["description"] == "leak" and s.repair.get(a)["contact"] is None
    conn = sqlite3.connect(path)  # a sealed contact moved to another ticket does not open there
    sealed_a = conn.execute("SELECT value FROM details WHERE subject=? AND field='contact'", (a,)).fetchone()[0]
    conn.execute("UPDATE details SET value=? WHERE subject=? AND field='contact'", (sealed_a, b))
    conn.commit()
    conn.close()
    with open_services(path) as s:
        assert s.repair.get(a)["contact"] == "138-1111-2222" and s.repair.get(b)["contact"] is None


def test_a_rollback_starts_from_the_last_snapshot_and_keeps_memory_equal_to_the_store(tmp_path, same_state):
    from twin.services.community import open_services

    path = tmp_path / "roll.db"
    _busy_store(path)
    with open_services(path) as s:
        assert s._snapshot_state is not None
        s.points.earn(4, 0, occurrence=10**6 + 5, t=2000.0)  # after the snapshot
        _disk_full(s.store)
        with pytest.raises(ev.WriteFailed):
            for i in range(10_000):
                s.repair.submit("plumbing", "x" * 500, building=1, unit=1, t=3000.0 + i)
        _memory_equals_store(s, same_state)
        assert (4, 0, 10**6 + 5) in s.points.claims

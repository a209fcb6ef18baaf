"""The engine's path into the services (``twin.engine.services_day``: the compiled cores, without the
batch methods' input checks) does exactly what the batch methods do with the same commands: the same
events, balances, journals, records and tickets, refusals included, and the same feelings.

Each test runs one day's commands both ways on two fresh sets of services and compares everything.
"""
import numpy as np

from twin.engine import services_day
from twin.services.community import Services
from twin.services.repair import Action

FEEL_A, FEEL_B = np.float32(0.3), np.float32(1.5)


def _same(a: Services, b: Services, name: str) -> None:
    assert a.log.events.tobytes() == b.log.events.tobytes()
    sa, sb = getattr(a, name).snapshot(), getattr(b, name).snapshot()
    assert sa.keys() == sb.keys()
    for key in sa:
        x, y = np.asarray(sa[key]), np.asarray(sb[key])
        assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), key


def _journal(service):
    return service.ledger.history(3) if service.ledger.n > 3 else None


def test_points_day_is_the_batch_methods():
    rng = np.random.default_rng(5)
    n = 40
    who = np.sort(rng.integers(0, 12, n))           # some residents not enrolled (ids 10, 11): refused
    activity = rng.integers(0, 4, n)
    occurrence = rng.integers(0, 3, n)               # repeats: DuplicateClaim
    units = rng.integers(1, 9, n)                    # volunteer hours past the daily cap: DailyCapReached
    t = np.sort(rng.uniform(0, 1440, n))
    redeemer = np.arange(12)
    item = rng.integers(0, 4, 12)                    # most cannot afford what they pick: InsufficientBalance
    t_redeem = np.full(12, 1200.0)

    a, b = Services(), Services()
    for s in (a, b):
        s.points.enroll_batch(np.arange(10))
    feel_a, feel_b = np.zeros(12, np.float32), np.zeros(12, np.float32)
    services_day.points_day(a.points, who, activity, occurrence, units, t, redeemer, item, t_redeem, FEEL_A, FEEL_B,
                            feel_a, a.log)
    earned = b.points.earn_batch(who, activity, occurrence, units, t)
    redeemed = b.points.redeem_batch(redeemer, item, t_redeem)
    np.add.at(feel_b, who[earned.accepted], FEEL_A)
    feel_b[redeemer[redeemed.accepted]] += FEEL_B

    assert {"DuplicateClaim", "UnknownAccount"} <= set(earned.counts()) and len(set(redeemed.counts())) > 1
    _same(a, b, "points")
    assert np.array_equal(feel_a, feel_b)
    assert a.points.ledger.total() == 0
    for account in range(a.points.ledger.n):
        assert a.points.ledger.history(account).equals(b.points.ledger.history(account))


def test_timebank_day_is_the_batch_methods():
    a, b = Services(), Services()
    for s in (a, b):
        tb = s.timebank
        tb.register_batch(tb.admin, np.arange(2, 10))
        assert tb.endow_batch(tb.admin, [3, 4, 8, 9], [100, 100, 100, 10], 0.0).accepted.all()
    # 12 unregistered: refused at record; 3 receives twice (feels it once); 4 cannot pay 200 minutes,
    # nor 9 thirty
    giver = np.array([2, 3, 5, 6, 7, 12])
    receiver = np.array([3, 4, 3, 4, 8, 9])
    minutes = np.array([30, 200, 60, 45, 15, 30])
    kind = np.array([0, 1, 2, 0, 1, 2])
    t = np.array([600.0, 610.0, 620.0, 630.0, 640.0, 650.0])
    feel_a, feel_b = np.zeros(12, np.float32), np.zeros(12, np.float32)
    confirmed, refused = services_day.timebank_day(a.timebank, giver, receiver, minutes, kind, t, 60.0, 2, FEEL_B,
                                                   feel_a, a.log)
    rec = b.timebank.record_batch(giver, giver, receiver, minutes, kind, t)
    ok = rec.accepted
    conf = b.timebank.confirm_batch(receiver[ok], rec.ids[ok], t[ok] + minutes[ok] + 60.0)
    feel_b[receiver[ok][conf.accepted] - 2] += FEEL_B

    assert not ok.all() and not conf.accepted.all()
    assert (confirmed, refused) == (int(minutes[ok][conf.accepted].sum()), int((~conf.accepted).sum()))
    _same(a, b, "timebank")
    assert np.array_equal(feel_a, feel_b) and feel_a[1] == FEEL_B  # member 3 helped twice, felt once
    assert a.timebank.ledger.total() == 0
    for m in range(2, 10):
        assert a.timebank.balance(m) == b.timebank.balance(m)
        assert a.timebank.ledger.history(m).equals(b.timebank.ledger.history(m))


def test_repair_day_is_the_batch_methods():
    from twin.engine.schedule import TransitionQueue

    a, b = Services(), Services()
    reporter, category = np.array([4, 5, 6, 7]), np.array([0, 1, 2, 3])
    building, channel, priority = np.array([1, 2, 3, 1]), np.array([0, 1, 2, 0]), np.array([0, 1, 2, 0])
    t = np.array([10.0, 20.0, 30.0, 40.0])
    ids = services_day.submit_day(a.repair, reporter, category, building, channel, priority, t, a.log)
    out = b.repair.submit_batch(reporter, category, building, 0, channel, priority, True, t)
    assert np.array_equal(ids, out.ids)
    # dispatch all, start three, complete two, rate one well, one badly and one never completed (refused)
    q = TransitionQueue()
    q.push(np.array([50.0, 60.0, 70.0, 80.0]), Action.dispatch, ids, np.array([0, 1, 0, 2]))
    q.push(np.array([90.0, 95.0, 99.0]), Action.start, ids[:3])
    q.push(np.array([120.0, 130.0]), Action.complete, ids[:2])
    q.push(np.array([300.0, 310.0, 320.0]), Action.rate, ids[:3], np.array([5, 1, 4]))
    rows = q.pop_until(1440.0)
    feel_a, feel_b = np.zeros(8, np.float32), np.zeros(8, np.float32)
    completed = services_day.repair_day(a.repair, rows, 2.0, feel_a, a.log)
    done = 0
    for action in Action:
        run = rows[rows["action"] == action]
        if len(run) == 0:
            continue
        o = b.repair._act(action, run["ticket"], run["t"], arg=run["arg"])
        done += int(o.accepted.sum()) if action == Action.complete else 0
        if action == Action.rate:
            ok = o.accepted
            np.add.at(feel_b, b.repair.state.reporter[run["ticket"][ok]], 2.0 * (run["arg"][ok] - 3))
            assert not ok.all()  # the ticket never completed cannot be rated
    assert completed == done == 2
    _same(a, b, "repair")
    assert np.array_equal(feel_a, feel_b) and feel_a.any()


def test_the_batch_methods_call_the_cores_as_the_engine_does():
    """After an engine run, the batch methods (the live server's path) compile no core again: the
    engine's warmup runs leave them compiled for the live server's first requests too."""
    import json
    import subprocess
    import sys

    script = """
import json
import numpy as np
import twin
from twin.services import points, repair, timebank
from twin.services.community import Services
from twin.warmup import WARMUP_RUNS

cores = [points._earn_core, points._redeem_core, timebank._record_core, timebank._settle_core,
         repair._submit_core, repair._transition_core]
scenario, overrides = WARMUP_RUNS[0]
twin.Twin(twin.load_scenario(scenario, overrides + ["sim.days=20", "progress=false"])).run()
engine = [len(core.signatures) for core in cores]
s = Services()
s.points.enroll_batch([0, 1])
s.points.earn_batch([0, 1], [0, 0], [0, 0], 1, [1.0, 1.0])
s.points.redeem_batch([0], [0], [2.0])
tb = s.timebank
tb.register_batch(tb.admin, [2, 3])
record = tb.record_batch([2], [2], [3], [30], 0, [1.0]).ids
tb.confirm_batch([3], record, [2.0])
ticket = s.repair.submit_batch([0], [0], [0], [0], [0], [0], True, [0.0]).ids
s.repair.dispatch_batch(ticket, [0], [1.0])
s.repair.rate_batch(ticket, [5], [4.0])
print(json.dumps([engine, [len(core.signatures) for core in cores]]))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=900)
    engine, batch = json.loads(done.stdout.strip().splitlines()[-1])
    assert min(engine) >= 1 and batch == engine, (engine, batch)


def test_cores_keep_no_journal_for_a_ledger_without_one():
    s = Services()
    s.points.ledger._journal = False  # as Ledger(journal=False): the cores enter nothing
    s.points.enroll_batch([0, 1])
    feel = np.zeros(2, np.float32)
    services_day.points_day(s.points, np.array([0, 1]), np.array([0, 0]), np.array([0, 0]), np.array([1, 1]),
                            np.array([1.0, 2.0]), np.array([0]), np.array([0]), np.array([3.0]), FEEL_A, FEEL_B,
                            feel, s.log)
    assert len(s.points.ledger.history(3)) == 0 and s.points.ledger.total() == 0
    assert s.points.balance(1) == 10 and len(s.log) == 2 + 2  # enrolments, then two claims (0 cannot afford)


def test_staff_schedule_no_other_actions():
    import pytest

    from twin.engine.schedule import TransitionQueue

    s = Services()
    q = TransitionQueue()
    q.push(np.array([5.0]), Action.escalate, np.array([0]))
    with pytest.raises(ValueError, match="staff do not schedule escalate"):
        services_day.repair_day(s.repair, q.pop_until(1440.0), 0.0, np.zeros(1, np.float32), s.log)

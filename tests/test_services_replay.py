"""The event log and replay: the schema helpers, runs, and ``Services.replay`` on a mixed log.

Events are the record: replaying a log through fresh services must reproduce
every service's state and re-emit the very same events.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from twin.services import events as ev
from twin.services import reasons
from twin.services._batch import Outcome
from twin.services.events import EVENT_DTYPE, EventKind, EventLog
from twin.services.reasons import EXCEPTIONS, Reason, raise_for

KINDS = [int(k) for k in EventKind]


# ------------------------------------------------------------------ schema
def test_make_broadcasts_scalars_against_arrays():
    e = ev.make(EventKind.Transferred, 5.0, actor=[1, 2, 3], amount=7)
    assert len(e) == 3 and e.dtype == EVENT_DTYPE
    assert list(e["actor"]) == [1, 2, 3] and list(e["amount"]) == [7, 7, 7] and list(e["t"]) == [5.0] * 3
    assert (e["kind"] == EventKind.Transferred).all() and (e["subject"] == 0).all()


def test_make_with_only_scalars_is_one_event_and_empty_columns_are_none():
    assert len(ev.make(EventKind.TopicOpened, 1.0, subject=4)) == 1
    assert len(ev.make(EventKind.TopicOpened, np.zeros(0), subject=np.zeros(0, np.int64))) == 0


def test_make_refuses_columns_of_different_lengths():
    with pytest.raises(ValueError, match="differ in length"):
        ev.make(EventKind.Transferred, [1.0, 2.0], actor=[1, 2, 3])


def test_event_kinds_and_reasons_have_unique_numbers():
    assert len(set(KINDS)) == len(KINDS)
    assert len({int(r) for r in Reason}) == len(Reason) and Reason.Accepted == 0


# -------------------------------------------------------------------- log
def test_the_log_keeps_order_across_growth_and_is_read_only():
    log = EventLog(capacity=1)
    batches = [ev.make(EventKind.Transferred, float(i), actor=np.arange(i)) for i in range(6)]
    for b in batches:
        log.append(b)
    assert len(log) == 15 and np.array_equal(log.events, np.concatenate(batches))
    with pytest.raises(ValueError):
        log.events["actor"][0] = 99


def test_to_frame_names_the_kinds():
    log = EventLog()
    log.append(ev.make(EventKind.PointsEarned, 1.0, actor=3))
    log.append(ev.make(EventKind.TicketRated, 2.0, amount=5))
    df = log.to_frame()
    assert list(df["kind"].astype(str)) == ["PointsEarned", "TicketRated"]
    assert list(df["actor"]) == [3, 0] and len(ev.to_frame(ev.empty(0))) == 0


@given(st.lists(st.sampled_from(KINDS[:4]), max_size=40))
def test_runs_are_maximal_same_kind_stretches_that_rebuild_the_log(kinds):
    events = ev.empty(len(kinds))
    events["kind"] = kinds
    events["actor"] = np.arange(len(kinds))
    pieces = list(ev.runs(events))
    assert all((rows["kind"] == kind).all() for kind, rows in pieces)
    assert all(a[0] != b[0] for a, b in zip(pieces, pieces[1:]))  # maximal: neighbours differ
    rebuilt = np.concatenate([rows for _, rows in pieces]) if pieces else ev.empty(0)
    assert np.array_equal(rebuilt, events)


# ---------------------------------------------------------- shared plumbing
def test_every_refusal_has_an_exception_class_of_the_same_name():
    for reason in Reason:
        if reason is Reason.Accepted:
            continue
        cls = EXCEPTIONS[reason]
        assert cls.__name__ == reason.name and cls.reason is reason
        assert getattr(reasons, reason.name) is cls and issubclass(cls, reasons.ServiceError)
        with pytest.raises(cls, match=reason.name):
            raise_for(int(reason), "what was refused")
    raise_for(0)  # accepted: nothing raised


def test_outcome_single_returns_the_new_id_or_raises():
    assert Outcome(np.array([0], np.int16), ids=np.array([7])).single() == 7
    assert Outcome(np.array([0], np.int16)).single() is None
    with pytest.raises(reasons.UnknownTicket):
        Outcome(np.array([Reason.UnknownTicket], np.int16), ids=np.array([-1])).single()


# ------------------------------------------------------- mixed log replay
VOTERS = ([1, 2, 3, 4, 5, 6], [1, 1, 2, 3, 4, 5], [True] * 6)


def _policies():
    from twin.services.community import ServicePolicies
    from twin.services.voting import VotingPolicy

    return ServicePolicies(voting=VotingPolicy(notice_minutes=0))


def _community():
    """Services with residents enrolled, members registered and endowed, and one open topic."""
    from twin.services.community import Services

    s = Services(_policies())
    s.voting.register_voters(*VOTERS)
    s.points.enroll_batch(np.arange(6))
    s.timebank.register_batch(0, np.arange(2, 8), household=[1, 1, 2, 3, 4, 5])
    s.timebank.endow_batch(0, np.arange(2, 8), 300)
    topic = s.voting.propose(1, "plurality", 3)
    s.voting.screen(topic)
    s.voting.notice(topic, t=0.0)
    s.voting.open(topic, t=0.0)
    return s


def _fresh_for_replay():
    from twin.services.community import Services

    return Services(_policies())  # the electorate, like everything else, comes from the log


def _replay_matches(live, same_state):
    """Replay ``live``'s log into fresh services: same state, and the same log, event for event."""
    fresh = _fresh_for_replay()
    fresh.replay(live.log.events, live.log.detail_rows())
    same_state(fresh.snapshot(), live.snapshot())
    assert np.array_equal(fresh.log.events, live.log.events)


def test_a_day_of_mixed_commands_replays_exactly(same_state):
    s = _community()
    s.points.earn(0, "waste_sorting_supervision", 1, t=60.0)
    ticket = s.repair.submit("plumbing", "leak", building=2, unit=301, reporter=3, t=61.0)
    s.timebank.confirm(s.timebank.record(2, 3, 45, t=62.0), by=3, t=63.0)
    s.voting.cast(0, 2, [1], t=64.0)
    s.repair.dispatch(ticket, 4, t=70.0)
    s.points.earn_batch([1, 2, 2], [2, 2, 2], [5, 5, 5], [2, 1, 1], 80.0)  # one duplicate
    s.repair.start(ticket, t=90.0)
    s.voting.cast_batch([0, 0, 0], [3, 4, 3], [[0], [1], [2]], 95.0)       # one duplicate ballot
    s.repair.complete(ticket, t=150.0)
    s.points.penalise(1, 500, t=151.0)
    s.repair.reopen(ticket, actor=3, t=160.0)      # not fixed after all
    s.repair.dispatch(ticket, 1, t=170.0)
    s.repair.start(ticket, t=180.0)
    s.repair.complete(ticket, t=190.0)
    s.repair.rate(ticket, 4, t=200.0)
    s.timebank.dispute(s.timebank.record(4, 2, 30, t=220.0), by=2, t=221.0)
    s.voting.close(0, t=300.0)
    s.voting.resolve(0, t=301.0)
    _replay_matches(s, same_state)


def test_replay_keeps_kinds_no_service_owns_without_executing_them(same_state):
    s = _community()
    s.log.append(ev.make(EventKind.AlertRaised, 5.0, actor=9, subject=1, code=2))
    s.log.append(ev.make(EventKind.Transferred, 6.0, actor=1, target=2, amount=3))
    s.points.earn(0, 0, 1, t=7.0)
    _replay_matches(s, same_state)  # the engine's and the bare ledger's events pass through as they are


# commands as (service, batch method, columns...) with ids drawn from small ranges so that
# many are accepted and every kind of refusal also happens
COMMANDS = st.lists(st.one_of(
    st.tuples(st.just("earn"), st.integers(0, 6), st.integers(0, 3), st.integers(0, 6), st.integers(1, 3)),
    st.tuples(st.just("redeem"), st.integers(0, 6), st.integers(0, 1)),
    st.tuples(st.just("penalise"), st.integers(0, 5), st.integers(1, 60), st.just(0)),
    st.tuples(st.integers(2, 8), st.integers(2, 8), st.integers(5, 90)).map(   # the provider records
        lambda c: ("record", c[0], c[0], c[1], c[2], 5)),
    st.tuples(st.just("confirm"), st.sampled_from([0, 2, 3, 4, 5, 8]), st.integers(0, 8)),
    st.tuples(st.just("submit"), st.integers(0, 6), st.integers(-1, 9), st.integers(0, 3), st.integers(0, 99),
              st.just(1), st.just(1)),
    st.tuples(st.just("dispatch"), st.integers(0, 6), st.integers(0, 4)),
    st.tuples(st.just("start"), st.integers(0, 6)),
    st.tuples(st.just("complete"), st.integers(0, 6)),
    st.tuples(st.just("rate"), st.integers(0, 6), st.integers(0, 6)),
    st.tuples(st.just("cast"), st.just(0), st.integers(0, 7), st.integers(0, 3)),     # option 3 is invalid
), max_size=50)
ROUTE = {"earn": ("points", "earn_batch"), "redeem": ("points", "redeem_batch"),
         "penalise": ("points", "penalise_batch"), "record": ("timebank", "record_batch"),
         "confirm": ("timebank", "confirm_batch"), "submit": ("repair", "submit_batch"),
         "dispatch": ("repair", "dispatch_batch"), "start": ("repair", "start_batch"),
         "complete": ("repair", "complete_batch"), "rate": ("repair", "rate_batch"),
         "cast": ("voting", "cast_batch")}


def _run(s, cmds, t0=10.0):
    """Consecutive commands of one kind go in one batch; time moves forward a minute per batch."""
    i, t = 0, t0
    while i < len(cmds):
        j = i
        while j < len(cmds) and cmds[j][0] == cmds[i][0]:
            j += 1
        cols = [np.array([c[k] for c in cmds[i:j]]) for k in range(1, len(cmds[i]))]
        service, method = ROUTE[cmds[i][0]]
        if method == "cast_batch":
            cols[2] = cols[2].reshape(-1, 1)  # one-option ballots
        getattr(getattr(s, service), method)(*cols, t=t)
        i, t = j, t + 1.0


@given(COMMANDS)
def test_random_mixed_logs_replay_to_the_live_state(same_state, cmds):
    s = _community()
    _run(s, cmds)
    _run(s, cmds[::-1], t0=1000.0)  # the same again, reversed: duplicates, second steps
    _replay_matches(s, same_state)


def test_a_reserved_log_keeps_its_events_and_grows_past_the_reservation():
    log = EventLog(capacity=4)
    first = ev.make(EventKind.PointsEarned, np.arange(3.0), actor=np.arange(3))
    log.append(first)
    log.reserve(100)
    log.reserve(10)  # less than it has: nothing changes
    assert len(log._buf) == 100 and np.array_equal(log.events, first)
    more = ev.make(EventKind.PointsRedeemed, np.arange(3.0, 200.0), actor=np.arange(197))
    log.append(more)
    assert len(log) == 200 and np.array_equal(log.events[3:], more) and np.array_equal(log.events[:3], first)


def test_a_twin_reserves_room_for_its_run_so_the_log_is_never_copied_while_it_runs():
    from twin import load_scenario
    from twin.engine import Twin

    for overrides in (["community.households=300", "community.buildings=6", "sim.days=60"],
                      ["community.households=120", "community.buildings=3", "sim.days=200"]):
        tw = Twin(load_scenario("default", overrides + ["progress=false"]))
        buffer = tw.log._buf
        tw.run()
        assert tw.log._buf is buffer and len(tw.log) > len(buffer) / 2, (overrides, len(tw.log), len(buffer))

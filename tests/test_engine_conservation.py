"""Conservation over a whole run: books balance, and the event log is the complete record."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import twin
from twin.services.community import Services
from twin.services.events import EventKind


@pytest.fixture(scope="module")
def run():
    cfg = twin.load_scenario("default", ["community.households=250", "community.buildings=5", "sim.days=75",
                                         "progress=false", "residents.activity_base=-4.5"])
    tw = twin.Twin(cfg)
    result = tw.run()
    return tw, result


def test_ledgers_sum_to_zero(run):
    tw, _ = run
    assert tw.services.points.ledger.total() == 0
    assert tw.services.timebank.ledger.total() == 0


def test_points_issued_minus_redeemed_minus_penalties_is_what_residents_hold(run):
    tw, result = run
    p = tw.services.points
    ev = result.event_log
    issued = int(ev["amount"][ev["kind"] == EventKind.PointsEarned].sum())
    redeemed = int(ev["amount"][ev["kind"] == EventKind.PointsRedeemed].sum())
    penalised = int(ev["amount"][ev["kind"] == EventKind.PointsPenalised].sum())
    assert issued > 0 and redeemed > 0
    assert issued == p.issued == result.summary["points_issued"]
    assert issued - redeemed - penalised == int(p.resident_balances().sum())
    assert (p.resident_balances() >= 0).all()


def test_time_bank_floors_hold(run):
    tw, _ = run
    tb = tw.services.timebank
    members = tb.role >= 0
    members[tb.endowment] = False
    assert (tb.ledger.balances[: len(tb.role)][members] >= tb.ledger.floors[: len(tb.role)][members]).all()
    assert tw.services.timebank.minutes_exchanged() > 0


def test_replaying_the_log_reproduces_every_service(run, same_state):
    """Every accepted command left exactly one event: re-executing the log rebuilds the same state and log."""
    tw, result = run
    services = Services(tw.services.policies)
    services.replay(result.event_log, tw.services.log.detail_rows())  # + ballots still sealed at the end
    same_state(services.snapshot(), tw.services.snapshot())
    assert np.array_equal(services.log.events, result.event_log)


def test_tickets_follow_their_lifecycle_in_time(run):
    _, result = run
    ev = result.event_log
    t = {k: dict(zip(ev["subject"][ev["kind"] == k].tolist(), ev["t"][ev["kind"] == k].tolist()))
         for k in (EventKind.TicketSubmitted, EventKind.TicketDispatched, EventKind.TicketStarted,
                   EventKind.TicketCompleted)}
    assert len(t[EventKind.TicketCompleted]) > 10
    for ticket, done in t[EventKind.TicketCompleted].items():
        assert t[EventKind.TicketSubmitted][ticket] <= t[EventKind.TicketDispatched][ticket] \
            <= t[EventKind.TicketStarted][ticket] <= done


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**32), households=st.integers(20, 120), days=st.integers(3, 20),
       dispatch=st.sampled_from(["fifo", "nearest", "skill"]), method=st.sampled_from(["plurality", "approval",
                                                                                       "borda", "irv"]),
       floor=st.sampled_from([0, -120]), reward=st.floats(0.0, 2.0))
def test_any_small_community_keeps_its_books_and_its_log(same_state, seed, households, days, dispatch, method, floor,
                                                        reward):
    """Whatever the seed, size and policies: books at zero, no floor broken, the log replays exactly."""
    cfg = twin.load_scenario("default", [
        f"seed={seed}", f"community.households={households}", f"community.buildings={max(1, households // 40)}",
        f"sim.days={days}", f"policies.dispatch={dispatch}", f"policies.voting_method={method}",
        f"policies.timebank_elder_floor_minutes={floor}", f"residents.reward_effect={reward}",
        "residents.propose_rate_per_month=20", "progress=false"])
    tw = twin.Twin(cfg)
    result = tw.run()
    p, tb = tw.services.points, tw.services.timebank
    assert p.ledger.total() == 0 and tb.ledger.total() == 0
    assert (p.resident_balances() >= 0).all()
    n = len(tb.role)
    parties = (tb.role == 0) | (tb.role == 1)
    assert (tb.ledger.balances[:n][parties] >= tb.ledger.floors[:n][parties]).all()
    replayed = Services(tw.services.policies)
    replayed.replay(result.event_log, tw.services.log.detail_rows())
    same_state(replayed.snapshot(), tw.services.snapshot())

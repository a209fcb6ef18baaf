"""Points (积分制): the default tables, every rule and refusal, conservation, batch and replay.

``NaivePoints`` states the rules once with Python sets and dicts; the compiled
kernels are checked against it on random command sequences.
"""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from twin.services import reasons
from twin.services._inputs import MAX_ID
from twin.services.events import EventKind, EventLog
from twin.services.points import Activity, Item, Points, PointsRules
from twin.services.reasons import Reason, UnknownActivity, UnknownItem

R = Reason
DAY = 1440.0
WASTE, MEETING, VOLUNTEER, SUGGESTION = range(4)
VOUCHER, HOUSEKEEPING, PARKING, STAR = range(4)


def _raises(reason, call, *args, **kwargs):
    with pytest.raises(reasons.ServiceError) as info:
        call(*args, **kwargs)
    assert type(info.value) is getattr(reasons, reason.name) and info.value.reason is reason
    return info.value


@pytest.fixture
def points():
    p = Points(EventLog())
    p.enroll_batch([0, 1, 2])
    return p


# ---------------------------------------------------------- default tables
def test_default_activities_are_the_chengdu_table():
    # 参与垃圾分类督导 10分/次, 参与社区议事会 20分/次, 志愿服务 30分/小时, 建议被采纳 50分/条
    acts = PointsRules().activities
    assert [(a.points, a.unit) for a in acts] == [(10, "time"), (20, "time"), (30, "hour"), (50, "time")]
    assert all(a.daily_cap == 0 for a in acts)


def test_default_catalog_is_the_chengdu_table():
    # 100分 = 10元超市券, 200分 = 家政服务, 500分 = 停车月卡优惠, 1000分 = 社区之星
    cat = PointsRules().catalog
    assert [i.cost for i in cat] == [100, 200, 500, 1000]
    assert all(i.stock == -1 for i in cat)  # unlimited unless a policy says otherwise


def test_codes_are_positions_and_names_resolve():
    rules = PointsRules()
    assert rules.activity_code("volunteer_service") == VOLUNTEER
    assert rules.item_code("community_star_honour") == STAR
    with pytest.raises(UnknownActivity, match="known:"):
        rules.activity_code("jogging")
    with pytest.raises(UnknownItem, match="known:"):
        rules.item_code("yacht")


@pytest.mark.parametrize("bad, field", [
    (dict(points=0), "points"), (dict(points=5, unit="minute"), "unit"), (dict(points=5, daily_cap=-1), "daily_cap"),
    (dict(points=4.5), "points"), (dict(points=10.0), "points"), (dict(points=True), "points"),
    (dict(points="10"), "points"), (dict(points=5, daily_cap=2.5), "daily_cap"), (dict(points=2**63), "points"),
])
def test_invalid_activity_definitions_are_rejected(bad, field):
    with pytest.raises(ValueError, match=field):
        Activity("x", **bad)


@pytest.mark.parametrize("bad, field", [(dict(cost=0), "cost"), (dict(cost=10, stock=-2), "stock"),
                                        (dict(cost=9.5), "cost"), (dict(cost=10, stock=1.5), "stock")])
def test_invalid_item_definitions_are_rejected(bad, field):
    with pytest.raises(ValueError, match=field):
        Item("x", **bad)


# ------------------------------------------------------------------- earn
@pytest.mark.parametrize("activity, units, expected", [
    (WASTE, 1, 10), (MEETING, 1, 20), (VOLUNTEER, 1, 30), (VOLUNTEER, 3, 90), (SUGGESTION, 1, 50), (WASTE, 2, 20),
])
def test_earn_awards_points_per_unit(points, activity, units, expected):
    assert points.earn(0, activity, occurrence=7, units=units) == expected
    assert points.balance(0) == expected and points.issued == expected


def test_earn_by_activity_name(points):
    assert points.earn(1, "deliberation_meeting", 3) == 20


def test_earn_logs_one_event_with_everything_needed_to_replay(points):
    points.earn(2, VOLUNTEER, occurrence=11, units=2, t=90.0)
    e = points.log.events[-1]
    assert (e["kind"], e["actor"], e["subject"], e["code"], e["amount"], e["extra"], e["t"]) == (
        EventKind.PointsEarned, 2, 11, VOLUNTEER, 60, 2, 90.0)


def test_same_occurrence_twice_is_a_duplicate_claim(points):
    points.earn(0, WASTE, occurrence=5)
    _raises(R.DuplicateClaim, points.earn, 0, WASTE, 5, t=3 * DAY)  # even on another day
    assert points.balance(0) == 10


def test_a_claim_is_keyed_by_resident_activity_and_occurrence(points):
    points.earn(0, WASTE, 5)
    points.earn(0, MEETING, 5)
    points.earn(1, WASTE, 5)
    points.earn(0, WASTE, 6)
    assert points.balance(0) == 40 and points.balance(1) == 10


def test_duplicates_inside_one_batch_are_refused_after_the_first(points):
    out = points.earn_batch([0, 0, 0], [WASTE, WASTE, WASTE], [1, 1, 2])
    assert list(out.reasons) == [0, R.DuplicateClaim, 0]


def _capped(cap=25, **kw):
    rules = PointsRules(activities=(Activity("sorting", 10, "time", daily_cap=cap),
                                    Activity("volunteer", 30, "hour", daily_cap=60)), **kw)
    p = Points(EventLog(), rules)
    p.enroll_batch([0, 1])
    return p


def test_daily_cap_refuses_claims_beyond_it_until_the_next_day():
    p = _capped()
    out = p.earn_batch(0, 0, [1, 2, 3], 1, [10.0, 20.0, 30.0])
    assert list(out.reasons) == [0, 0, R.DailyCapReached]
    assert p.balance(0) == 20
    assert p.earn(0, 0, 4, t=DAY + 1) == 10  # a new day
    assert p.earn(0, 0, 5, t=DAY + 2) == 10
    _raises(R.DailyCapReached, p.earn, 0, 0, 6, t=2 * DAY - 1)


def test_daily_cap_is_per_resident_and_per_activity():
    p = _capped()
    p.earn_batch(0, 0, [1, 2], 1, 0.0)
    assert p.earn(1, 0, 1) == 10                   # another resident
    assert p.earn(0, 1, 1, units=2) == 60          # another activity
    _raises(R.DailyCapReached, p.earn, 0, 1, 2)


def test_a_single_claim_above_the_cap_is_refused_and_leaves_no_trace():
    p = _capped()
    before = p.snapshot()
    _raises(R.DailyCapReached, p.earn, 0, 1, 1, units=3, t=5 * DAY)  # 90 > 60
    after = p.snapshot()
    for key in before:
        assert np.array_equal(np.asarray(before[key]), np.asarray(after[key])), key


def test_a_claim_refused_by_the_cap_may_be_made_again_another_day():
    p = _capped()
    p.earn_batch(0, 0, [1, 2], 1, 0.0)
    _raises(R.DailyCapReached, p.earn, 0, 0, 3)
    assert p.earn(0, 0, 3, t=DAY) == 10  # a refused claim is not on record


@pytest.mark.parametrize("activity", [-1, 4, 99])
def test_unknown_activity_is_refused(points, activity):
    _raises(R.UnknownActivity, points.earn, 0, activity, 1)


@pytest.mark.parametrize("resident", [3, 10**6, MAX_ID - 1])
def test_earning_for_a_resident_not_enrolled_is_refused(points, resident):
    _raises(R.UnknownAccount, points.earn, resident, WASTE, 1)


@pytest.mark.parametrize("call", ["enroll", "earn", "redeem", "penalise", "balance"])
@pytest.mark.parametrize("resident, reason", [(-1, R.InvalidId), (MAX_ID, R.InvalidId), (10**9, R.InvalidId),
                                              (0.5, R.NotAnInteger), ("0", R.NotAnInteger),
                                              (True, R.NotAnInteger), (2**64, R.NotAnInteger)])
def test_a_resident_id_must_be_an_integer_within_the_bound(points, call, resident, reason):
    args = {"enroll": (), "earn": (WASTE, 1), "redeem": (VOUCHER,), "penalise": (5,), "balance": ()}[call]
    before, logged = points.snapshot(), len(points.log)
    _raises(reason, getattr(points, call), resident, *args)
    assert len(points.log) == logged and len(points.enrolled) < 1000
    assert points.snapshot().keys() == before.keys()
    assert all(np.array_equal(points.snapshot()[k], before[k]) for k in before if k != "claims")


@pytest.mark.parametrize("call, args, reason", [
    ("earn", (0, WASTE, 1, 1.5), R.NotAnInteger), ("earn", (0, WASTE, 1, "2"), R.NotAnInteger),
    ("earn", (0, WASTE, 1.5), R.NotAnInteger), ("earn", (0, 1.5, 1), R.NotAnInteger),
    ("earn", (0, WASTE, 1, 1, math.nan), R.InvalidTime), ("earn", (0, WASTE, 1, 1, math.inf), R.InvalidTime),
    ("earn", (0, WASTE, 1, 1, "60"), R.InvalidTime),
    ("redeem", (0, 0.5), R.NotAnInteger), ("redeem", (0, VOUCHER, math.nan), R.InvalidTime),
    ("penalise", (0, 2.5), R.NotAnInteger), ("penalise", (0, 5, 0.5), R.NotAnInteger),
    ("penalise", (0, 5, 0, -math.inf), R.InvalidTime), ("enroll", (7, math.nan), R.InvalidTime),
])
def test_single_commands_refuse_what_is_not_an_integer_or_a_time(points, call, args, reason):
    points.earn(0, SUGGESTION, 99, units=4)  # 200 points, so a redemption or penalty would go through
    before, logged = points.snapshot(), len(points.log)
    _raises(reason, getattr(points, call), *args)
    assert len(points.log) == logged and points.balance(0) == 200
    assert points.snapshot()["claims"] == before["claims"]


def test_volunteer_hours_with_a_fraction_are_refused_not_paid_as_whole_hours(points):
    out = points.earn_batch([0, 1, 2], VOLUNTEER, [1, 1, 1], np.array([1.5, 2.0, 0.999]), 10.0)
    assert [Reason(r).name for r in out.reasons] == ["NotAnInteger", "Accepted", "NotAnInteger"]
    assert [points.balance(r) for r in range(3)] == [0, 60, 0]
    assert out.events["extra"].tolist() == [2]


def test_a_batch_refuses_bad_values_one_command_at_a_time(points):
    out = points.earn_batch(np.array([0, -1, 1, 2, 0], dtype=object), WASTE, [1, 1, 1, 1, 2], 1,
                            [0.0, 0.0, math.nan, 0.0, 1.0])
    assert [Reason(r).name for r in out.reasons] == ["Accepted", "InvalidId", "InvalidTime", "Accepted", "Accepted"]
    assert out.events["actor"].tolist() == [0, 2, 0] and out.events["t"].tolist() == [0.0, 0.0, 1.0]
    assert set(points.claims.keys()) == {(0, WASTE, 1), (2, WASTE, 1), (0, WASTE, 2)}


def test_units_whose_points_would_not_fit_int64_are_an_invalid_amount(points):
    wraps_to_14 = -(-2**64 // 30)  # 30 * this = 2**64 + 14: wrapped around, 14 points
    for units in (2**62, wraps_to_14):
        _raises(R.InvalidAmount, points.earn, 0, VOLUNTEER, 1, units=units)
    assert points.balance(0) == 0
    assert points.earn(0, VOLUNTEER, 1, units=(2**63 - 1) // 30) == 30 * ((2**63 - 1) // 30)
    assert points.issued == points.balance(0)


def test_a_huge_claim_cannot_slip_under_the_daily_cap():
    p = _capped()
    p.earn(0, 1, 1)  # 30 of the 60 a day
    _raises(R.DailyCapReached, p.earn, 0, 1, 2, units=(2**63 - 1) // 30)
    assert p.balance(0) == 30


@pytest.mark.parametrize("units", [0, -2])
def test_non_positive_units_are_refused(points, units):
    _raises(R.InvalidAmount, points.earn, 0, VOLUNTEER, 1, units=units)


def test_earn_refusals_come_in_order(points):
    out = points.earn_batch([9, 0, 0], [9, 9, 0], [1, 1, 1], [0, 0, 0])
    # unknown resident beats unknown activity beats invalid units
    assert list(out.reasons) == [R.UnknownAccount, R.UnknownActivity, R.InvalidAmount]
    points.earn(0, WASTE, 1)
    assert points.earn_batch([0], [WASTE], [1], [0]).reasons[0] == R.InvalidAmount  # units before duplicate


# ----------------------------------------------------------------- enrol
def test_enrolling_twice_is_refused(points):
    _raises(R.AlreadyRegistered, points.enroll, 1)
    out = points.enroll_batch([5, 5, 1])
    assert list(out.reasons) == [0, R.AlreadyRegistered, R.AlreadyRegistered]
    assert points.balance(5) == 0


def test_enrolling_an_id_beyond_the_bound_is_refused_before_anything_grows(points):
    size, accounts = len(points.enrolled), points.ledger.n
    out = points.enroll_batch([10**9, 5, -3, 2.5, 5, MAX_ID, 4], t=[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, math.nan])
    assert [Reason(r).name for r in out.reasons] == [
        "InvalidId", "Accepted", "InvalidId", "NotAnInteger", "AlreadyRegistered", "InvalidId", "InvalidTime"]
    assert out.events["actor"].tolist() == [5]
    assert len(points.enrolled) == max(size, 16) and points.ledger.n <= accounts + 16
    assert not points.enrolled[4] and points.enrolled[5]


def test_enrolling_many_residents_grows_every_table():
    p = Points()
    p.enroll_batch(np.arange(0, 1000, 3))
    p.earn(999, WASTE, 1)
    assert p.balance(999) == 10 and len(p.resident_balances()) >= 1000


# ----------------------------------------------------------------- redeem
def test_redeem_moves_the_cost_to_the_redemption_account(points):
    points.earn(0, SUGGESTION, 1, units=3)  # 150
    points.redeem(0, VOUCHER, t=4.0)
    assert points.balance(0) == 50 and points.redeemed == 100
    e = points.log.events[-1]
    assert (e["kind"], e["actor"], e["code"], e["amount"]) == (EventKind.PointsRedeemed, 0, VOUCHER, 100)


def test_redeem_by_item_name(points):
    points.earn(0, SUGGESTION, 1, units=4)
    points.redeem(0, "free_housekeeping_service")
    assert points.balance(0) == 0


def test_redeeming_beyond_the_balance_is_refused(points):
    points.earn(0, SUGGESTION, 1)
    _raises(R.InsufficientBalance, points.redeem, 0, VOUCHER)
    assert points.balance(0) == 50 and points.redeemed == 0


@pytest.mark.parametrize("item", [-1, 4])
def test_unknown_item_is_refused(points, item):
    _raises(R.UnknownItem, points.redeem, 0, item)


def test_unknown_resident_cannot_redeem(points):
    _raises(R.UnknownAccount, points.redeem, 7, VOUCHER)


def _stocked():
    rules = PointsRules(catalog=(Item("mug", 10, stock=1), Item("soap", 5, stock=0), Item("bag", 5)))
    p = Points(EventLog(), rules)
    p.enroll_batch([0, 1])
    p.earn_batch([0, 1], WASTE, 1, units=5)
    return p


def test_finite_stock_runs_out_and_restock_refills_it():
    p = _stocked()
    p.redeem(0, 0)
    _raises(R.OutOfStock, p.redeem, 1, 0)
    assert p.stock[0] == 0 and p.balance(1) == 50
    p.restock(0, 2, t=3.0)
    p.redeem(1, 0)
    assert p.stock[0] == 1
    e = p.log.events
    assert EventKind.ItemRestocked in e["kind"]


def test_out_of_stock_is_checked_before_the_balance():
    p = _stocked()
    p.enroll(2)  # no points at all
    _raises(R.OutOfStock, p.redeem, 2, 1)


def test_a_refused_redemption_takes_no_stock():
    p = _stocked()
    p.enroll(2)
    _raises(R.InsufficientBalance, p.redeem, 2, 0)
    assert p.stock[0] == 1


def test_unlimited_stock_never_runs_out():
    p = _stocked()
    out = p.redeem_batch([0] * 10, [2] * 10)
    assert out.accepted.all() and p.stock[2] == -1 and p.balance(0) == 0


@pytest.mark.parametrize("item, quantity, t, reason", [
    (9, 1, 0.0, R.UnknownItem), (0, 0, 0.0, R.InvalidAmount), (0, -3, 0.0, R.InvalidAmount),
    (2, 5, 0.0, R.InvalidAmount), (0, 2**63 - 1, 0.0, R.InvalidAmount), (0.5, 1, 0.0, R.NotAnInteger),
    (0, 1.5, 0.0, R.NotAnInteger), (0, "2", 0.0, R.NotAnInteger), (0, 1, math.nan, R.InvalidTime),
])
def test_restock_refusals(item, quantity, t, reason):
    p = _stocked()
    logged = len(p.log)
    _raises(reason, p.restock, item, quantity, t)
    assert list(p.stock) == [1, 0, -1] and len(p.log) == logged


# --------------------------------------------------------------- penalties
def test_penalty_takes_points_to_the_penalty_account(points):
    points.earn(0, SUGGESTION, 1)
    assert points.penalise(0, 20, cause=3, t=8.0) == 20
    assert points.balance(0) == 30 and points.penalised == 20
    e = points.log.events[-1]
    assert (e["kind"], e["actor"], e["code"], e["amount"], e["extra"]) == (EventKind.PointsPenalised, 0, 3, 20, 0)


def test_penalty_floors_at_zero_and_records_the_shortfall(points):
    points.earn(0, WASTE, 1)
    assert points.penalise(0, 25) == 10
    assert points.balance(0) == 0
    e = points.log.events[-1]
    assert (e["amount"], e["extra"]) == (10, 15)
    assert points.penalise(0, 5) == 0                  # nothing left: accepted, all shortfall
    assert points.log.events[-1]["extra"] == 5 and points.balance(0) == 0


@pytest.mark.parametrize("amount", [0, -4])
def test_non_positive_penalty_is_refused(points, amount):
    _raises(R.InvalidAmount, points.penalise, 0, amount)


def test_penalty_on_an_unknown_resident_is_refused(points):
    _raises(R.UnknownAccount, points.penalise, 99, 5)


# ---------------------------------------------------------------- queries
def test_balance_of_an_unknown_resident_is_refused(points):
    _raises(R.UnknownAccount, points.balance, 3)
    _raises(R.InvalidId, points.balance, -1)


def test_a_residents_history_shows_earn_redeem_and_penalty(points):
    points.earn(0, SUGGESTION, 1, units=3, t=1.0)
    points.redeem(0, VOUCHER, t=2.0)
    points.penalise(0, 80, t=3.0)
    h = points.ledger.history(0 + 3)  # resident accounts start after issuer, redeemed, penalised
    assert list(h["amount"]) == [150, -100, -50]
    assert list(h["balance"]) == [150, 50, 0]
    assert list(h["t"]) == [1.0, 2.0, 3.0]


# -------------------------------------------------------- the naive twin
def is_int64(x):
    """An integer an int64 holds: an int (not a bool) or a float without fraction."""
    if isinstance(x, float):
        return math.isfinite(x) and x.is_integer() and -2**63 <= x < 2**63
    return isinstance(x, int) and not isinstance(x, bool) and -2**63 <= x < 2**63


def form(resident, *codes, t):
    """The input checks every command starts with, in argument order (``t`` comes last)."""
    if not is_int64(resident):
        return R.NotAnInteger
    if not 0 <= resident < MAX_ID:
        return R.InvalidId
    if not all(map(is_int64, codes)):
        return R.NotAnInteger
    if not math.isfinite(t):
        return R.InvalidTime
    return R.Accepted


class NaivePoints:
    """The points rules with plain Python containers, in the documented order."""

    def __init__(self, rules):
        self.per_unit = [a.points for a in rules.activities]
        self.cap = [a.daily_cap for a in rules.activities]
        self.cost = [i.cost for i in rules.catalog]
        self.stock = [i.stock for i in rules.catalog]
        self.balance, self.claims, self.today = {}, set(), {}
        self.issued = self.redeemed = self.penalised = 0

    def enroll(self, r, t):
        if form(r, t=t):
            return form(r, t=t)
        r = int(r)
        if r in self.balance:
            return R.AlreadyRegistered
        self.balance[r] = 0
        return R.Accepted

    def earn(self, r, a, occ, units, t):
        if form(r, a, occ, units, t=t):
            return form(r, a, occ, units, t=t)
        r, a, occ, units = map(int, (r, a, occ, units))
        if r not in self.balance:
            return R.UnknownAccount
        if not 0 <= a < len(self.per_unit):
            return R.UnknownActivity
        if units <= 0:
            return R.InvalidAmount
        if (r, a, occ) in self.claims:
            return R.DuplicateClaim
        pts, day = self.per_unit[a] * units, math.floor(t / DAY)
        last, earned = self.today.get((r, a), (None, 0))
        earned = earned if last == day else 0
        if self.cap[a] and earned + pts > self.cap[a]:
            return R.DailyCapReached
        self.today[(r, a)] = (day, earned + pts)
        self.claims.add((r, a, occ))
        self.balance[r] += pts
        self.issued += pts
        return R.Accepted

    def redeem(self, r, item, t):
        if form(r, item, t=t):
            return form(r, item, t=t)
        r, item = int(r), int(item)
        if r not in self.balance:
            return R.UnknownAccount
        if not 0 <= item < len(self.cost):
            return R.UnknownItem
        if self.stock[item] == 0:
            return R.OutOfStock
        if self.balance[r] < self.cost[item]:
            return R.InsufficientBalance
        self.balance[r] -= self.cost[item]
        self.redeemed += self.cost[item]
        if self.stock[item] > 0:
            self.stock[item] -= 1
        return R.Accepted

    def penalise(self, r, amount, cause, t):
        if form(r, amount, cause, t=t):
            return form(r, amount, cause, t=t)
        r, amount = int(r), int(amount)
        if r not in self.balance:
            return R.UnknownAccount
        if amount <= 0:
            return R.InvalidAmount
        applied = min(amount, self.balance[r])
        self.balance[r] -= applied
        self.penalised += applied
        return R.Accepted


RULES = PointsRules(
    activities=(Activity("sorting", 10), Activity("meeting", 20, daily_cap=40),
                Activity("volunteer", 30, "hour", daily_cap=60), Activity("suggestion", 50)),
    catalog=(Item("voucher", 100), Item("towel", 30, stock=2), Item("gone", 20, stock=0)),
)
# mostly valid values; now and then one that is not an integer, an id beyond the bound or no time
T = st.sampled_from([0.0, 10.0, 1439.0, 1440.0, 2000.0, 5000.0] * 3 + [math.nan, math.inf])
ODD = st.sampled_from([2.5, -0.5, 3.0])
RESIDENT = st.integers(-1, 6) | st.sampled_from([MAX_ID, 1.5])
COMMANDS = st.lists(st.one_of(
    st.tuples(st.just("enroll"), st.integers(0, 6) | st.sampled_from([-1, MAX_ID, 0.5, 3.0]), T),
    st.tuples(st.just("earn"), RESIDENT, st.integers(-1, 4) | ODD, st.integers(0, 4), st.integers(-1, 3) | ODD, T),
    st.tuples(st.just("redeem"), RESIDENT, st.integers(-1, 3) | ODD, T),
    st.tuples(st.just("penalise"), RESIDENT, st.integers(-2, 80) | ODD, st.integers(0, 2) | ODD, T),
), max_size=60)
BATCH = {"enroll": "enroll_batch", "earn": "earn_batch", "redeem": "redeem_batch", "penalise": "penalise_batch"}


def _fresh(log=None):
    p = Points(log, RULES)
    p.enroll_batch([0, 1, 2, 3])
    return p


def _run_in_batches(p, cmds):
    """Feed consecutive commands of one kind as one batch; return every reason in order."""
    out, i = [], 0
    while i < len(cmds):
        j = i
        while j < len(cmds) and cmds[j][0] == cmds[i][0]:
            j += 1
        cols = [np.array([c[k] for c in cmds[i:j]]) for k in range(1, len(cmds[i]))]
        out += list(getattr(p, BATCH[cmds[i][0]])(*cols).reasons)
        i = j
    return out


@given(COMMANDS)
def test_kernels_match_the_naive_rules(cmds):
    p, naive = _fresh(), NaivePoints(RULES)
    for r in range(4):
        naive.enroll(r, 0.0)
    expected = [getattr(naive, c[0])(*c[1:]) for c in cmds]
    assert _run_in_batches(p, cmds) == expected
    assert {r: p.balance(r) for r in naive.balance} == naive.balance
    assert (p.issued, p.redeemed, p.penalised) == (naive.issued, naive.redeemed, naive.penalised)
    assert list(p.stock) == naive.stock
    assert set(p.claims.keys()) == naive.claims


@given(COMMANDS)
def test_points_are_conserved_and_never_negative(cmds):
    p = _fresh()
    _run_in_batches(p, cmds)
    assert p.issued - p.redeemed - p.penalised == int(p.resident_balances().sum())
    assert p.ledger.total() == 0
    assert (p.resident_balances() >= 0).all()


@pytest.mark.parametrize("op", ["enroll", "earn", "redeem", "penalise"])
@given(data=st.data())
def test_batch_of_n_equals_n_batches_of_one(batch_equals_singles, op, data):
    cmds = data.draw(COMMANDS.map(lambda cs: [c for c in cs if c[0] == op]))
    if not cmds:
        return

    def build():
        p = _fresh(EventLog())
        p.earn_batch([0, 1, 2], [3, 3, 3], [100, 100, 100], [1, 3, 5])  # 50, 150, 250 points to spend
        return p

    cols = [np.array([c[k] for c in cmds]) for k in range(1, len(cmds[0]))]
    batch_equals_singles(build, BATCH[op], cols)


@given(COMMANDS, st.lists(st.integers(1, 3), max_size=2))
def test_replaying_the_log_reproduces_the_service(same_state, cmds, restocks):
    log = EventLog()
    live = _fresh(log)
    _run_in_batches(live, cmds)
    for q in restocks:
        live.restock(1, q)
    _run_in_batches(live, cmds[::-1])
    relog = EventLog()
    replayed = Points(relog, RULES)
    replayed.replay(log.events)
    same_state(live.snapshot(), replayed.snapshot())
    assert np.array_equal(relog.events, log.events)


def test_many_residents_enrolled_one_by_one_replay_to_the_same_state(same_state):
    # arrays grow by doubling: one-by-one and one-batch enrolment leave different
    # capacities, which must not show in the state
    log = EventLog()
    live = Points(log)
    for r in range(40):
        live.enroll(r)
    live.earn(39, WASTE, occurrence=1)
    replayed = Points()
    replayed.replay(log.events)  # the enrolments replay as one batch
    same_state(live.snapshot(), replayed.snapshot())

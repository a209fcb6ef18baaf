"""The double-entry ledger: every rule, every refusal, history, and the batch properties.

The compiled batch kernel is checked against ``naive_transfers``, a plain
Python loop over a list of balances that states the rules once, in order.
"""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from twin.services import events as ev
from twin.services import reasons
from twin.services.events import EventKind, EventLog
from twin.services.ledger import NO_FLOOR, Ledger
from twin.services.reasons import Reason

R = Reason
INT64_MAX = 2**63 - 1


def is_int64(x):
    """An integer an int64 holds: an int (not a bool) or a float without fraction."""
    if isinstance(x, float):
        return math.isfinite(x) and x.is_integer() and -2**63 <= x < 2**63
    return isinstance(x, int) and not isinstance(x, bool) and -2**63 <= x <= INT64_MAX


def naive_transfers(balances, floors, commands):
    """The ledger's rules spelled out: returns (reasons, balances) after ``commands`` in order."""
    balances, n, out = list(balances), len(balances), []
    for src, dst, amount in commands:
        if not all(map(is_int64, (src, dst, amount))):
            out.append(R.NotAnInteger)
            continue
        src, dst, amount = int(src), int(dst), int(amount)  # 7.0 is the integer 7: exact arithmetic, not float
        if not (0 <= src < n and 0 <= dst < n):
            out.append(R.UnknownAccount)
        elif amount <= 0:
            out.append(R.InvalidAmount)
        elif src == dst:
            out.append(R.SameAccount)
        elif balances[src] - amount < floors[src]:
            out.append(R.InsufficientBalance)
        elif balances[dst] + amount > INT64_MAX:
            out.append(R.InvalidAmount)
        else:
            balances[src] -= amount
            balances[dst] += amount
            out.append(R.Accepted)
    return out, balances


@pytest.fixture
def ledger():
    """issuer (no floor), two residents (floor 0), one overdraft account (floor -50)."""
    L = Ledger(EventLog())
    L.open_accounts(kind=[0, 1, 1, 2], floor=[NO_FLOOR, 0, 0, -50])
    return L


ISSUER, A, B, OVERDRAFT = 0, 1, 2, 3


def _raises(reason, call, *args):
    """The object layer raises the exception class named after ``reason``, carrying it."""
    with pytest.raises(reasons.ServiceError) as info:
        call(*args)
    assert type(info.value) is getattr(reasons, reason.name)
    assert type(info.value).__name__ == reason.name
    assert info.value.reason is reason
    assert reason.name in str(info.value)


# --------------------------------------------------------------- accounts
def test_open_accounts_returns_consecutive_ids_and_logs_kind_and_floor(ledger):
    ids = ledger.open_accounts(kind=[1, 2], floor=[0, -10], t=5.0)
    assert list(ids) == [4, 5]
    opened = ledger.log.events[ledger.log.events["kind"] == EventKind.AccountOpened]
    assert list(opened["actor"]) == [0, 1, 2, 3, 4, 5]
    assert list(opened["code"][-2:]) == [1, 2] and list(opened["amount"][-2:]) == [0, -10]
    assert list(opened["t"][-2:]) == [5.0, 5.0]
    assert ledger.balance(4) == 0 and ledger.floors[5] == -10


def test_open_accounts_by_count_uses_one_kind_and_floor():
    L = Ledger()
    ids = L.open_accounts(kind=2, floor=-7, count=3)
    assert list(ids) == [0, 1, 2] and list(L.floors[:3]) == [-7] * 3 and list(L.kinds[:3]) == [2] * 3


def test_many_accounts_grow_the_arrays():
    L = Ledger()
    L.open_accounts(count=1000)
    assert L.n == 1000
    L.set_floor(0, -5)  # every floor is 0: let account 0 overdraw to have something to give
    L.transfer(0, 999, 5)
    assert L.balance(999) == 5 and L.total() == 0


# -------------------------------------------------------------- transfers
def test_transfer_moves_the_amount_and_keeps_the_sum_zero(ledger):
    ledger.transfer(ISSUER, A, 100, t=1.0)
    ledger.transfer(A, B, 30, t=2.0)
    assert (ledger.balance(ISSUER), ledger.balance(A), ledger.balance(B)) == (-100, 70, 30)
    assert ledger.total() == 0


def test_transfer_logs_one_transferred_event_per_accepted_command(ledger):
    out = ledger.transfer_batch([ISSUER, A, ISSUER], [A, B, B], [10, 50, 5], [1.0, 2.0, 3.0])
    assert list(out.reasons) == [R.Accepted, R.InsufficientBalance, R.Accepted]
    assert list(out.accepted) == [True, False, True]
    e = out.events
    assert list(e["kind"]) == [EventKind.Transferred] * 2
    assert list(e["actor"]) == [ISSUER, ISSUER] and list(e["target"]) == [A, B]
    assert list(e["amount"]) == [10, 5] and list(e["t"]) == [1.0, 3.0]
    assert np.array_equal(ledger.log.events[-2:], e)
    assert out.counts() == {"Accepted": 2, "InsufficientBalance": 1}


@pytest.mark.parametrize("src, dst", [(-1, A), (A, -1), (4, A), (A, 4), (10**12, A)])
def test_unknown_account_is_refused(ledger, src, dst):
    _raises(R.UnknownAccount, ledger.transfer, src, dst, 1)


@pytest.mark.parametrize("amount", [0, -1, -10**9])
def test_non_positive_amount_is_refused(ledger, amount):
    _raises(R.InvalidAmount, ledger.transfer, ISSUER, A, amount)


def test_transfer_to_the_same_account_is_refused(ledger):
    _raises(R.SameAccount, ledger.transfer, ISSUER, ISSUER, 1)


def test_floor_zero_allows_exactly_the_balance(ledger):
    ledger.transfer(ISSUER, A, 10)
    _raises(R.InsufficientBalance, ledger.transfer, A, B, 11)
    ledger.transfer(A, B, 10)
    assert ledger.balance(A) == 0


def test_negative_floor_allows_an_overdraft_down_to_the_floor(ledger):
    ledger.transfer(OVERDRAFT, A, 30)
    _raises(R.InsufficientBalance, ledger.transfer, OVERDRAFT, A, 21)
    ledger.transfer(OVERDRAFT, A, 20)
    assert ledger.balance(OVERDRAFT) == -50


def test_an_account_without_floor_can_issue_without_limit(ledger):
    ledger.transfer(ISSUER, A, 10**15)
    ledger.transfer(ISSUER, B, 10**15)
    assert ledger.balance(ISSUER) == -2 * 10**15 and ledger.total() == 0


@pytest.mark.parametrize("command, reason", [
    ((9, 9, 0), R.UnknownAccount),       # unknown beats invalid amount and same account
    ((A, A, 0), R.InvalidAmount),        # invalid amount beats same account
    ((A, A, 10**6), R.SameAccount),      # same account beats insufficient balance
])
def test_refusal_reasons_are_checked_in_order(ledger, command, reason):
    assert ledger.transfer_batch(*map(lambda x: [x], command)).reasons[0] == reason


def test_a_refused_transfer_changes_nothing_and_the_batch_goes_on(ledger):
    before = ledger.balances[: ledger.n].copy()
    logged = len(ledger.log)
    out = ledger.transfer_batch([A, ISSUER], [B, A], [1, 3])
    assert list(out.reasons) == [R.InsufficientBalance, R.Accepted]
    assert ledger.balance(A) == before[A] + 3 and len(ledger.log) == logged + 1


def test_order_inside_a_batch_defines_the_outcome(ledger):
    forward = ledger.transfer_batch([ISSUER, A], [A, B], [10, 10])
    assert list(forward.reasons) == [0, 0]
    other = Ledger()
    other.open_accounts(kind=[0, 1, 1], floor=[NO_FLOOR, 0, 0])
    backward = other.transfer_batch([A, ISSUER], [B, A], [10, 10])
    assert list(backward.reasons) == [R.InsufficientBalance, 0]


def test_apply_returns_reasons_without_logging(ledger):
    logged = len(ledger.log)
    out = ledger.apply([ISSUER, A], [A, A], [5, 5], 0.0)
    assert out.dtype == np.int16 and list(out) == [0, R.SameAccount]
    assert len(ledger.log) == logged and ledger.balance(A) == 5


# ------------------------------------------------------------------ inputs
@pytest.mark.parametrize("src, dst, amount", [
    (ISSUER, A, 2.5), (ISSUER, A, "5"), (ISSUER, A, True), (ISSUER, A, None), (ISSUER, A, math.nan),
    (ISSUER, A, 2**63), (0.5, A, 1), ("0", A, 1), (ISSUER, 1.5, 1), (ISSUER, A, 10**30),
])
def test_a_value_that_is_not_an_integer_is_refused_not_truncated(ledger, src, dst, amount):
    logged = len(ledger.log)
    _raises(R.NotAnInteger, ledger.transfer, src, dst, amount)
    assert ledger.balance(ISSUER) == 0 and ledger.balance(A) == 0 and len(ledger.log) == logged


@pytest.mark.parametrize("t", [math.nan, math.inf, -math.inf, "1", None, True])
def test_a_time_that_is_not_a_finite_number_is_refused(ledger, t):
    logged = len(ledger.log)
    with pytest.raises(reasons.InvalidTime):
        ledger.transfer(ISSUER, A, 5, t)
    assert ledger.balance(A) == 0 and len(ledger.log) == logged


def test_integral_floats_and_numpy_integers_are_integers(ledger):
    ledger.transfer(np.int8(ISSUER), float(A), 5.0, t=np.float32(2.0))
    assert ledger.balance(A) == 5 and ledger.log.events[-1]["amount"] == 5


def test_a_batch_refuses_bad_values_one_command_at_a_time(ledger):
    out = ledger.transfer_batch(np.array([ISSUER, ISSUER, ISSUER, ISSUER], dtype=object), [A, A, B, B],
                                np.array([1.5, 4.0, 3.0, 2.0]), [1.0, 2.0, math.nan, 4.0])
    assert [Reason(r).name for r in out.reasons] == ["NotAnInteger", "Accepted", "InvalidTime", "Accepted"]
    assert (ledger.balance(A), ledger.balance(B)) == (4, 2)
    assert out.events["t"].tolist() == [2.0, 4.0]


def test_no_balance_wraps_around_int64(ledger):
    """A destination that cannot hold the amount refuses it; a source without floor cannot underflow."""
    ledger.transfer(ISSUER, A, INT64_MAX)
    _raises(R.InvalidAmount, ledger.transfer, OVERDRAFT, A, 1)
    _raises(R.InsufficientBalance, ledger.transfer, ISSUER, B, 2)   # -INT64_MAX - 2 < INT64_MIN
    ledger.transfer(ISSUER, B, 1)
    assert ledger.balance(ISSUER) == -2**63 and ledger.total() == 0


@pytest.mark.parametrize("call, args, reason", [
    ("set_floor", (A, -2.5), R.NotAnInteger), ("set_floor", (1.5, 0), R.NotAnInteger),
    ("set_floor", (A, "0"), R.NotAnInteger), ("set_floor", (A, 0, math.nan), R.InvalidTime),
    ("balance", (1.5,), R.NotAnInteger), ("balance", ("1",), R.NotAnInteger),
])
def test_single_commands_and_queries_refuse_bad_values(ledger, call, args, reason):
    floors = ledger.floors[: ledger.n].copy()
    _raises(reason, getattr(ledger, call), *args)
    assert np.array_equal(ledger.floors[: ledger.n], floors)


@pytest.mark.parametrize("kwargs, reason", [
    (dict(kind=[1, 1.5]), R.NotAnInteger), (dict(floor=[0, "0"]), R.NotAnInteger),
    (dict(kind=1, floor=0, t=math.nan), R.InvalidTime),
])
def test_open_accounts_opens_all_or_none(kwargs, reason):
    L = Ledger(EventLog())
    _raises(reason, lambda: L.open_accounts(**kwargs))
    assert L.n == 0 and len(L.log) == 0


def test_batch_columns_of_different_lengths_are_an_error(ledger):
    with pytest.raises(ValueError, match="differ in length"):
        ledger.transfer_batch([0, 0], [1], [1, 2])


# ------------------------------------------------------------------ floors
def test_set_floor_changes_what_may_be_drawn_and_is_logged(ledger):
    ledger.set_floor(A, -20, t=4.0)
    ledger.transfer(A, B, 20)
    _raises(R.InsufficientBalance, ledger.transfer, A, B, 1)
    e = ledger.log.events[-2]
    assert (e["kind"], e["target"], e["amount"], e["t"]) == (EventKind.FloorChanged, A, -20, 4.0)


def test_raising_a_floor_above_the_balance_blocks_further_transfers_out(ledger):
    ledger.transfer(ISSUER, A, 10)
    ledger.set_floor(A, 8)
    _raises(R.InsufficientBalance, ledger.transfer, A, B, 3)
    ledger.transfer(A, B, 2)


def test_unknown_account_in_queries_and_set_floor(ledger):
    _raises(R.UnknownAccount, ledger.balance, 4)
    _raises(R.UnknownAccount, ledger.balance, -1)
    _raises(R.UnknownAccount, ledger.set_floor, 99, 0)


# ----------------------------------------------------------------- history
def test_history_lists_signed_amounts_counterparties_and_running_balance(ledger):
    ledger.transfer(ISSUER, A, 100, t=1.0)
    ledger.transfer(A, B, 30, t=2.0)
    ledger.transfer(ISSUER, B, 5, t=3.0)      # not A's: must not appear
    ledger.transfer(B, A, 10, t=4.0)
    h = ledger.history(A)
    assert list(h["t"]) == [1.0, 2.0, 4.0]
    assert list(h["counterparty"]) == [ISSUER, B, B]
    assert list(h["amount"]) == [100, -30, 10]
    assert list(h["balance"]) == [100, 70, 80]
    assert h["balance"].iloc[-1] == ledger.balance(A)


def test_history_skips_refused_transfers_and_is_empty_for_a_new_account(ledger):
    ledger.transfer_batch([A, ISSUER], [B, A], [5, 5])
    assert list(ledger.history(A)["amount"]) == [5]
    assert len(ledger.history(B)) == 0


def test_history_of_an_overdrawn_account_goes_negative(ledger):
    ledger.transfer(OVERDRAFT, A, 50)
    assert list(ledger.history(OVERDRAFT)["balance"]) == [-50]


def test_without_a_journal_history_is_empty():
    L = Ledger(journal=False)
    L.open_accounts(kind=[0, 1], floor=[NO_FLOOR, 0])
    L.transfer(0, 1, 5)
    assert len(L.history(1)) == 0 and L.balance(1) == 5


# -------------------------------------------------------------- properties
FLOORS = [NO_FLOOR, 0, 0, -50, -5, 0]
amounts = st.integers(-5, 120) | st.sampled_from([2.5, -0.5, 7.0, 2**62, INT64_MAX, 2**63])
commands = st.lists(st.tuples(st.integers(-1, len(FLOORS)), st.integers(-1, len(FLOORS)), amounts),
                    max_size=60)


def _column(values):
    """int64 as the twin passes columns; a column holding a float or a huge int as Python objects."""
    plain = all(isinstance(v, int) and abs(v) <= INT64_MAX for v in values)
    return np.array(values, np.int64) if plain else np.array(values, dtype=object)


def _fresh(log=None):
    L = Ledger(log)
    L.open_accounts(kind=[0, 1, 1, 2, 2, 1], floor=FLOORS)
    return L


def _ledger_state(L):
    return {"balances": L.balances[: L.n].copy(), "floors": L.floors[: L.n].copy(),
            "kinds": L.kinds[: L.n].copy(), "journal": L._j[: L._jn].copy()}


@given(commands)
def test_batch_kernel_matches_the_naive_rules(cmds):
    L = _fresh()
    src, dst, amount = (_column([c[i] for c in cmds]) for i in range(3))
    out = L.transfer_batch(src, dst, amount)
    expected_reasons, expected_balances = naive_transfers([0] * len(FLOORS), FLOORS, cmds)
    assert list(out.reasons) == expected_reasons
    assert list(L.balances[: L.n]) == expected_balances


@given(commands)
def test_random_batches_keep_the_sum_zero_and_every_floor(cmds):
    L = _fresh()
    for start in range(0, len(cmds), 7):
        chunk = cmds[start : start + 7]
        L.transfer_batch(*(_column([c[i] for c in chunk]) for i in range(3)))
        assert L.total() == 0
        assert (L.balances[: L.n] >= L.floors[: L.n]).all()


@given(commands)
def test_batch_of_n_equals_n_batches_of_one(batch_equals_singles, cmds):
    cols = [_column([c[i] for c in cmds]) for i in range(3)] + [np.arange(len(cmds), dtype=float)]
    batch_equals_singles(_fresh, "transfer_batch", cols, state=_ledger_state)


@given(commands, st.lists(st.tuples(st.integers(0, 5), st.integers(-60, 0)), max_size=3))
def test_replaying_the_log_reproduces_the_ledger(same_state, cmds, floor_changes):
    log = EventLog()
    live = _fresh(log)
    for account, floor in floor_changes:
        live.set_floor(account, floor, t=0.5)
    live.transfer_batch(*(_column([c[i] for c in cmds]) for i in range(3)), np.arange(len(cmds)))
    relog = EventLog()
    replayed = Ledger(relog)
    replayed.replay(log.events)
    same_state(_ledger_state(live), _ledger_state(replayed))
    assert np.array_equal(relog.events, log.events)


def test_transfer_batch_events_match_ev_make(ledger):
    # the batch path and the generic event constructor must agree column by column
    out = ledger.transfer_batch([ISSUER], [A], [7], [2.5])
    assert np.array_equal(out.events, ev.make(EventKind.Transferred, 2.5, actor=ISSUER, target=A, amount=7))

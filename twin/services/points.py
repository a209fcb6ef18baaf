"""Points (积分制): earn points for taking part, redeem them, lose them as a penalty.

Points live on a double-entry :class:`~twin.services.ledger.Ledger`:

* account 0, the *issuer*, has no floor; earning moves points from it to a
  resident, so ``-issuer`` is everything ever issued;
* account 1, the *redemption* account, receives redeemed points;
* account 2, the *penalty* account, receives penalties;
* every enrolled resident has an account with floor 0.

So at all times ``issued - redeemed - penalised == sum of residents' balances``.

The rules table maps activity → points per unit (a time, or an hour) and an
optional daily cap per resident; the catalog maps item → cost and stock.  The
default table is the one from the Chengdu case (成都武侯区社区积分银行).

Residents are ids ``0 .. MAX_ID - 1`` (:data:`twin.services._inputs.MAX_ID`):
the service keeps dense arrays up to the highest enrolled id (about 80 bytes
per id with the default four activities), so the bound is also what a stray
id could cost; ``enroll(10**9)`` is refused before anything grows.

A command is checked in this order, and the first failure is its reason.
First the form of each argument, in argument order (see
:mod:`twin.services._inputs`): a resident that is not an integer
(``NotAnInteger``) or outside ``[0, MAX_ID)`` (``InvalidId``), any other count,
code or amount that is not an integer (``NotAnInteger``: 1.5 hours are never
paid as 1), a time that is not a finite number (``InvalidTime``).  Then:

* enroll: AlreadyRegistered (enrolled, or listed earlier in the batch);
* earn: UnknownAccount (not enrolled) → UnknownActivity → InvalidAmount (units
  <= 0, or so many that the points would not fit an int64) → DuplicateClaim →
  DailyCapReached → the ledger's refusals;
* redeem: UnknownAccount → UnknownItem → OutOfStock → InsufficientBalance;
* penalise: UnknownAccount → InvalidAmount (amount <= 0).

A batch refuses each command on its own (the engine reads the reasons); the
single commands raise the exception named after the reason (an activity or
item given by name is looked up first: UnknownActivity, UnknownItem).
"""
from dataclasses import dataclass, field
from numbers import Integral

import numpy as np
from numba import types
from numba.typed import Dict

from twin._jit import kernel
from twin.services import events as ev
from twin.services._batch import Outcome, batch_length, grow
from twin.services._inputs import MAX_ID, finite_time, integer, integers, person_ids, times
from twin.services.event_rows import put_event
from twin.services.ledger import NO_FLOOR, Ledger, _check_transfer, enter
from twin.services.reasons import Reason, raise_for

ISSUER, REDEEMED, PENALISED = 0, 1, 2
_FIRST_RESIDENT = 3
UNLIMITED = -1
_INT64_MAX = int(np.iinfo(np.int64).max)


def _check_whole(what: str, name: str, value, lowest: int, meaning: str = "") -> None:
    """A rules-table number: an integer (never a bool or a float) >= ``lowest``."""
    if isinstance(value, bool) or not isinstance(value, Integral) or not lowest <= value <= _INT64_MAX:
        raise ValueError(f"{what}: {name} must be an integer >= {lowest}{meaning}, got {value!r}")


@dataclass(frozen=True)
class Activity:
    name: str
    points: int
    unit: str = "time"  # "time" or "hour"
    daily_cap: int = 0  # 0 = no cap

    def __post_init__(self):
        _check_whole(f"activity {self.name!r}", "points", self.points, 1)
        if self.unit not in ("time", "hour"):
            raise ValueError(f"activity {self.name!r}: unit must be 'time' or 'hour', got {self.unit!r}")
        _check_whole(f"activity {self.name!r}", "daily_cap", self.daily_cap, 0, " (0 = none)")


@dataclass(frozen=True)
class Item:
    name: str
    cost: int
    stock: int = UNLIMITED

    def __post_init__(self):
        _check_whole(f"item {self.name!r}", "cost", self.cost, 1)
        _check_whole(f"item {self.name!r}", "stock", self.stock, UNLIMITED, " (-1 = unlimited)")


def _default_activities():
    return (
        Activity("waste_sorting_supervision", 10, "time"),   # 参与垃圾分类督导 10分/次
        Activity("deliberation_meeting", 20, "time"),        # 参与社区议事会 20分/次
        Activity("volunteer_service", 30, "hour"),           # 志愿服务(如助老) 30分/小时
        Activity("adopted_suggestion", 50, "time"),          # 提出有效建议被采纳 50分/条
    )


def _default_catalog():
    return (
        Item("supermarket_voucher_10_yuan", 100),            # 100分 = 10元超市券
        Item("free_housekeeping_service", 200),              # 200分 = 免费家政服务1次
        Item("parking_monthly_discount", 500),               # 500分 = 社区停车月卡优惠
        Item("community_star_honour", 1000),                 # 1000分 = 年度"社区之星"荣誉
    )


@dataclass(frozen=True)
class PointsRules:
    """The rules table and the catalog.  Activity and item codes are their positions."""

    activities: tuple = field(default_factory=_default_activities)
    catalog: tuple = field(default_factory=_default_catalog)

    def activity_code(self, name: str) -> int:
        return _index_of(name, [a.name for a in self.activities], "activity")

    def item_code(self, name: str) -> int:
        return _index_of(name, [i.name for i in self.catalog], "item")


def _index_of(name, names, what):
    try:
        return names.index(name)
    except ValueError:
        reason = Reason.UnknownActivity if what == "activity" else Reason.UnknownItem
        raise_for(reason, f"unknown {what} {name!r}; known: {', '.join(names)}")


_UNKNOWN_ACCOUNT = int(Reason.UnknownAccount)
_INVALID_AMOUNT = int(Reason.InvalidAmount)
_UNKNOWN_ACTIVITY = int(Reason.UnknownActivity)
_DUPLICATE = int(Reason.DuplicateClaim)
_CAP = int(Reason.DailyCapReached)
_UNKNOWN_ITEM = int(Reason.UnknownItem)
_OUT_OF_STOCK = int(Reason.OutOfStock)
_POINTS_EARNED = int(ev.EventKind.PointsEarned)
_POINTS_REDEEMED = int(ev.EventKind.PointsRedeemed)


@kernel
def _earn(balances, floors, n_acc, enrolled, per_unit, cap, last_day, earned_today, claims,
          resident, activity, occurrence, units, t):
    """One earn command; returns (reason, points awarded)."""
    if resident < 0 or resident >= enrolled.shape[0] or not enrolled[resident]:
        return _UNKNOWN_ACCOUNT, 0
    if activity < 0 or activity >= per_unit.shape[0]:
        return _UNKNOWN_ACTIVITY, 0
    if units <= 0 or units > _INT64_MAX // per_unit[activity]:
        return _INVALID_AMOUNT, 0
    key = (resident, activity, occurrence)
    if key in claims:
        return _DUPLICATE, 0
    points = per_unit[activity] * units
    day = np.int64(t // 1440.0)
    slot = resident * per_unit.shape[0] + activity
    # a refused command must leave no trace (replay never sees it), so the
    # day's counter is only reset when the claim is accepted
    today = earned_today[slot] if last_day[slot] == day else 0
    if cap[activity] > 0 and points > cap[activity] - today:  # today + points > cap, without overflow
        return _CAP, 0
    account = resident + _FIRST_RESIDENT
    r = _check_transfer(balances, floors, n_acc, ISSUER, account, points)
    if r != 0:
        return r, 0
    balances[ISSUER] -= points
    balances[account] += points
    last_day[slot] = day
    earned_today[slot] = today + points
    claims[key] = True
    return 0, points


@kernel
def _earn_core(balances, floors, n_acc, enrolled, per_unit, cap, last_day, earned_today, claims, journal, jn,
               resident, activity, occurrence, units, t, out, events, ne):
    """Earn in command order: the batch method's core, which the engine calls
    directly with its day's commands (``twin.engine.services_day``).

    A command the input checks refused (``out[i] != 0``) keeps its reason.  An accepted one
    moves its points, enters the journal at row ``jn`` (see ``Ledger.reserve``) and writes its
    ``PointsEarned`` event at row ``ne`` of ``events``.  Returns the next journal and event rows.
    """
    for i in range(resident.shape[0]):
        if out[i] != 0:
            continue
        r, points = _earn(balances, floors, n_acc, enrolled, per_unit, cap, last_day, earned_today, claims,
                          resident[i], activity[i], occurrence[i], units[i], t[i])
        out[i] = r
        if r == 0:
            jn = enter(journal, jn, t[i], ISSUER, resident[i] + _FIRST_RESIDENT, points)
            ne = put_event(events, ne, _POINTS_EARNED, t[i], resident[i], occurrence[i], 0, points, activity[i],
                           units[i], 0)
    return jn, ne


@kernel
def _redeem(balances, floors, n_acc, enrolled, cost, stock, resident, item):
    if resident < 0 or resident >= enrolled.shape[0] or not enrolled[resident]:
        return _UNKNOWN_ACCOUNT
    if item < 0 or item >= cost.shape[0]:
        return _UNKNOWN_ITEM
    if stock[item] == 0:
        return _OUT_OF_STOCK
    account = resident + _FIRST_RESIDENT
    r = _check_transfer(balances, floors, n_acc, account, REDEEMED, cost[item])
    if r != 0:
        return r
    balances[account] -= cost[item]
    balances[REDEEMED] += cost[item]
    if stock[item] > 0:
        stock[item] -= 1
    return 0


@kernel
def _redeem_core(balances, floors, n_acc, enrolled, cost, stock, journal, jn, resident, item, t, out, events, ne):
    """Redeem in command order, as :func:`_earn_core` earns: each accepted command enters the
    journal and writes its ``PointsRedeemed`` event.  Returns the next journal and event rows."""
    for i in range(resident.shape[0]):
        if out[i] != 0:
            continue
        r = _redeem(balances, floors, n_acc, enrolled, cost, stock, resident[i], item[i])
        out[i] = r
        if r == 0:
            jn = enter(journal, jn, t[i], resident[i] + _FIRST_RESIDENT, REDEEMED, cost[item[i]])
            ne = put_event(events, ne, _POINTS_REDEEMED, t[i], resident[i], 0, 0, cost[item[i]], item[i], 0, 0)
    return jn, ne


@kernel
def _penalise(balances, floors, enrolled, resident, amount):
    """One penalty; returns (reason, applied).  Applies what the floor allows."""
    if resident < 0 or resident >= enrolled.shape[0] or not enrolled[resident]:
        return _UNKNOWN_ACCOUNT, 0
    if amount <= 0:
        return _INVALID_AMOUNT, 0
    account = resident + _FIRST_RESIDENT
    room = balances[account] - floors[account]
    applied = amount if amount < room else room
    if applied > 0:
        balances[account] -= applied
        balances[PENALISED] += applied
    else:
        applied = 0
    return 0, applied


@kernel
def _penalise_batch(balances, floors, enrolled, resident, amount, out, applied):
    """Penalise in command order; commands refused by the input checks (``out[i] != 0``) keep their reason."""
    for i in range(resident.shape[0]):
        if out[i] != 0:
            applied[i] = 0
            continue
        out[i], applied[i] = _penalise(balances, floors, enrolled, resident[i], amount[i])


_CLAIM = types.UniTuple(types.int64, 3)


@kernel
def new_claims():
    """An empty set of (resident, activity, occurrence) claims, usable inside kernels.

    Made by a cached kernel: ``Dict.empty`` called from Python compiles its constructor afresh in
    every process (0.2 s of each start), a kernel's is loaded from the cache (7 ms)."""
    return Dict.empty(key_type=_CLAIM, value_type=types.boolean)


class Points:
    """The points service.  Residents are non-negative integer ids, enrolled before use."""

    def __init__(self, log=None, rules: PointsRules | None = None):
        self.log = log
        self.rules = rules or PointsRules()
        self.ledger = Ledger()
        self.ledger.open_accounts(kind=[0, 1, 2], floor=[NO_FLOOR, 0, 0])
        self.per_unit = np.array([a.points for a in self.rules.activities], np.int64)
        self.cap = np.array([a.daily_cap for a in self.rules.activities], np.int64)
        self.cost = np.array([i.cost for i in self.rules.catalog], np.int64)
        self.stock = np.array([i.stock for i in self.rules.catalog], np.int64)
        self.enrolled = np.zeros(0, np.bool_)
        n_act = len(self.per_unit)
        self._last_day = np.full(0, -1, np.int64)
        self._earned_today = np.zeros(0, np.int64)
        self._n_act = n_act
        self.claims = new_claims()

    def _emit(self, events):
        if self.log is not None:
            self.log.append(events)
        return events

    # -------------------------------------------------------------- batch API
    def enroll_batch(self, resident, t=0.0) -> Outcome:
        """Open an account for each resident id (already enrolled: refused, nothing changes)."""
        n = batch_length(resident, t)
        out = np.zeros(n, np.int16)
        resident = person_ids(resident, n, out)
        t = times(t, n, out)
        valid = np.flatnonzero(out == 0)
        need = int(resident[valid].max(initial=-1)) + 1
        if need > len(self.enrolled):
            self.enrolled = grow(self.enrolled, need, fill=False)
            size = len(self.enrolled)
            self.ledger.open_accounts(kind=3, floor=0, count=size + _FIRST_RESIDENT - self.ledger.n)
            self._last_day = grow(self._last_day, size * self._n_act, fill=-1)
            self._earned_today = grow(self._earned_today, size * self._n_act)
        # a resident listed twice in one batch: the first enrols, the second is a duplicate
        first = np.zeros(n, bool)
        _, idx = np.unique(resident[valid], return_index=True)
        first[valid[idx]] = True
        taken = np.ones(n, bool)
        taken[valid] = self.enrolled[resident[valid]]
        out[(out == 0) & ~(first & ~taken)] = Reason.AlreadyRegistered
        ok = out == 0
        self.enrolled[resident[ok]] = True
        return Outcome(out, self._emit(ev.make(ev.EventKind.ResidentEnrolled, t[ok], actor=resident[ok])))

    def earn_batch(self, resident, activity, occurrence, units=1, t=0.0) -> Outcome:
        """Award points for activity occurrences; the same (resident, activity, occurrence) twice is a DuplicateClaim."""
        n = batch_length(resident, activity, occurrence, units, t)
        out = np.zeros(n, np.int16)
        resident = person_ids(resident, n, out)
        activity, occurrence, units = (integers(c, n, out) for c in (activity, occurrence, units))
        t = times(t, n, out)
        events = ev.empty(n)
        ne = self._earn_checked(resident, activity, occurrence, units, t, out, events, 0)
        return Outcome(out, self._emit(events[:ne]))

    def _earn_checked(self, resident, activity, occurrence, units, t, out, events, ne) -> int:
        """Earn the commands the input checks passed (``out == 0``; int64 and float64 columns)
        through the compiled core, which writes the accepted ones' events from row ``ne`` of
        ``events``; returns the next row.  :meth:`earn_batch` and the engine's day
        (``twin.engine.services_day``, whose commands are well formed by construction) both come here."""
        L = self.ledger
        journal, jn = L.reserve(len(resident))
        jn, ne = _earn_core(L.balances, L.floors, L.n, self.enrolled, self.per_unit, self.cap, self._last_day,
                            self._earned_today, self.claims, journal, jn, resident, activity, occurrence, units, t,
                            out, events, ne)
        L.entered(jn)
        return ne

    def redeem_batch(self, resident, item, t=0.0) -> Outcome:
        n = batch_length(resident, item, t)
        out = np.zeros(n, np.int16)
        resident, item, t = person_ids(resident, n, out), integers(item, n, out), times(t, n, out)
        events = ev.empty(n)
        ne = self._redeem_checked(resident, item, t, out, events, 0)
        return Outcome(out, self._emit(events[:ne]))

    def _redeem_checked(self, resident, item, t, out, events, ne) -> int:
        """Redeem checked commands through the compiled core, as :meth:`_earn_checked` earns."""
        L = self.ledger
        journal, jn = L.reserve(len(resident))
        jn, ne = _redeem_core(L.balances, L.floors, L.n, self.enrolled, self.cost, self.stock, journal, jn,
                              resident, item, t, out, events, ne)
        L.entered(jn)
        return ne

    def penalise_batch(self, resident, amount, cause=0, t=0.0) -> Outcome:
        """Take points away; the balance floors at zero and the shortfall is recorded (``extra``)."""
        n = batch_length(resident, amount, cause, t)
        out, applied = np.zeros(n, np.int16), np.empty(n, np.int64)
        resident = person_ids(resident, n, out)
        amount, cause = integers(amount, n, out), integers(cause, n, out)
        t = times(t, n, out)
        L = self.ledger
        _penalise_batch(L.balances, L.floors, self.enrolled, resident, amount, out, applied)
        ok = out == 0
        moved = ok & (applied > 0)
        L.journal(t[moved], resident[moved] + _FIRST_RESIDENT, PENALISED, applied[moved])
        return Outcome(out, self._emit(ev.make(ev.EventKind.PointsPenalised, t[ok], actor=resident[ok],
                                               code=cause[ok], amount=applied[ok], extra=(amount - applied)[ok])))

    def restock(self, item: int, quantity: int, t=0.0) -> None:
        """Add ``quantity`` to a finite stock; raises ``NotAnInteger``, ``InvalidTime``,
        ``UnknownItem``, ``InvalidAmount`` (not positive, an unlimited item, or beyond int64)."""
        item, quantity = integer(item, "restock item"), integer(quantity, "restock quantity")
        t = finite_time(t, f"restock item {item}")
        if not 0 <= item < len(self.stock):
            raise_for(Reason.UnknownItem, f"restock item {item}")
        if quantity <= 0 or self.stock[item] == UNLIMITED or quantity > _INT64_MAX - self.stock[item]:
            raise_for(Reason.InvalidAmount, f"restock {quantity} of item {item}")
        self.stock[item] += quantity
        self._emit(ev.make(ev.EventKind.ItemRestocked, t, code=item, amount=quantity))

    # ------------------------------------------------------ single commands
    def enroll(self, resident: int, t=0.0):
        self.enroll_batch([resident], [t]).single(f"enroll resident {resident}")

    def earn(self, resident: int, activity, occurrence: int, units: int = 1, t=0.0) -> int:
        """Award one claim; returns the points awarded."""
        code = self.rules.activity_code(activity) if isinstance(activity, str) else activity
        o = self.earn_batch([resident], [code], [occurrence], [units], [t])
        o.single(f"resident {resident} earning for activity {activity} occurrence {occurrence}")
        return int(o.events["amount"][0])

    def redeem(self, resident: int, item, t=0.0):
        code = self.rules.item_code(item) if isinstance(item, str) else item
        self.redeem_batch([resident], [code], [t]).single(f"resident {resident} redeeming {item}")

    def penalise(self, resident: int, amount: int, cause: int = 0, t=0.0) -> int:
        """Returns the points actually taken (at most the balance)."""
        o = self.penalise_batch([resident], [amount], [cause], [t])
        o.single(f"penalty of {amount} on resident {resident}")
        return int(o.events["amount"][0])

    # ---------------------------------------------------------------- queries
    def balance(self, resident: int) -> int:
        """A resident's points; raises ``NotAnInteger``, ``InvalidId``, ``UnknownAccount``."""
        resident = integer(resident, "resident")
        if not 0 <= resident < MAX_ID:
            raise_for(Reason.InvalidId, f"balance of resident {resident} (ids run 0..{MAX_ID - 1})")
        if not (resident < len(self.enrolled) and self.enrolled[resident]):
            raise_for(Reason.UnknownAccount, f"balance of resident {resident}")
        return int(self.ledger.balances[resident + _FIRST_RESIDENT])

    def resident_balances(self) -> np.ndarray:
        return self.ledger.balances[_FIRST_RESIDENT : _FIRST_RESIDENT + len(self.enrolled)]

    @property
    def issued(self) -> int:
        return -int(self.ledger.balances[ISSUER])

    @property
    def redeemed(self) -> int:
        return int(self.ledger.balances[REDEEMED])

    @property
    def penalised(self) -> int:
        return int(self.ledger.balances[PENALISED])

    def snapshot(self) -> dict:
        # arrays grow by doubling, so their length depends on how commands were
        # batched; the state is everything up to the highest enrolled id
        n = int(np.flatnonzero(self.enrolled)[-1]) + 1 if self.enrolled.any() else 0
        k = n * self._n_act
        return {"balances": self.ledger.balances[: _FIRST_RESIDENT + n].copy(), "enrolled": self.enrolled[:n].copy(),
                "stock": self.stock.copy(), "claims": sorted(self.claims.keys()),
                "earned_today": self._earned_today[:k].copy(), "last_day": self._last_day[:k].copy()}

    def replay(self, events: np.ndarray) -> None:
        """Re-execute this service's logged commands through the same batch methods."""
        K = ev.EventKind
        for kind, r in ev.runs(events):
            if kind == K.ResidentEnrolled:
                self.enroll_batch(r["actor"], r["t"])
            elif kind == K.PointsEarned:
                self.earn_batch(r["actor"], r["code"], r["subject"], r["extra"], r["t"])
            elif kind == K.PointsRedeemed:
                self.redeem_batch(r["actor"], r["code"], r["t"])
            elif kind == K.PointsPenalised:
                self.penalise_batch(r["actor"], r["amount"] + r["extra"], r["code"], r["t"])
            elif kind == K.ItemRestocked:
                for row in r:
                    self.restock(int(row["code"]), int(row["amount"]), float(row["t"]))


KINDS = frozenset({ev.EventKind.ResidentEnrolled, ev.EventKind.PointsEarned, ev.EventKind.PointsRedeemed,
                   ev.EventKind.PointsPenalised, ev.EventKind.ItemRestocked})

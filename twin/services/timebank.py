"""Time bank (时间银行): service minutes recorded, confirmed and spent, on a ledger.

A provider records minutes of service given to a receiver; the record stays
*pending* until the receiver confirms it, and confirming moves the minutes from
the receiver's account to the provider's.  Balances are signed: the books
always sum to zero, and each member may overdraw down to a floor (0 by
default).  An *endowment* account lets the admin back eligible elders
(``endow``) without ever minting from nowhere; it may go negative by at most
the policy's ``endowment_budget`` (its floor is ``-endowment_budget``).

The time-bank contract in the source texts checks the provider's balance
before crediting it and underflows the receiver's unsigned balance; here the
*receiver* pays and the floor is checked on the receiver, which is also what
``contracts/TimeBank.sol`` does.

**Who moves a member's minutes.**  Minutes leave a member's account only by
the member's own act (confirming as the receiver, bringing a dispute to
mediation as the receiver, a family transfer) or by two staff members: when
the policy sets ``staff_confirm``, a staff member may confirm (or uphold a
dispute) in the receiver's place if the record was made by *another* staff
member, still staff, and the confirmer is not a party to it.  By default
(``staff_confirm=False``) staff cannot confirm at all.  A dispute is resolved
by a staff member who is neither a party nor the record's recorder.

**Inputs.**  Every integer argument (ids, minutes, floors, kinds, roles,
households, record ids, ``uphold``) must be an integer, read as every service
reads one (:mod:`twin.services._inputs`): a fraction, NaN, text, a bool (except
for the yes/no ``uphold``) or a number beyond int64 is refused with NotAnInteger
(minutes of 10.9 never become 10).  Member ids (``by`` and every member named)
must lie in ``0..MAX_MEMBER_ID``, or the command is refused with InvalidId:
state arrays are indexed by member id, so the bound caps their size (about 26
bytes per id up to the highest registered, at most ~440 MB).  Enum codes outside
their enum (a service kind other than 0..5, a role other than -1..4) are refused
with UnknownKind, and a time that is not a finite number with InvalidTime.  These
four checks come first, in that order, for every operation; then each operation
checks in a fixed order (the contract follows the same order, so both refuse
with the same reason; NotAnInteger and InvalidId are the binding's, since the
chain sees int64 values and addresses, and the chain takes no time):

* ``register(by, member, role, household)``: UnknownKind (role) → InvalidRole
  (role not member or coordinator) → Unauthorized (``by`` not admin;
  coordinators may register plain members) → AlreadyRegistered.
* ``record(by, provider, receiver, minutes, kind)``: UnknownKind (kind) →
  UnknownMember (provider or receiver not a member or coordinator) →
  Unauthorized (``by`` is neither the provider nor a coordinator/admin) →
  SelfService → InvalidAmount.
* ``confirm(by, record)``: UnknownRecord → NotPending → Unauthorized (neither
  the receiver nor staff) → ConfirmationRequired (staff, but not a second staff
  member as above) → InsufficientBalance.
* ``cancel(by, record)``: UnknownRecord → NotPending → Unauthorized (not a
  party, a coordinator or the admin).
* ``dispute(by, record)``: UnknownRecord → NotPending → Unauthorized (not a party).
* ``resolve(by, record, uphold)``: UnknownRecord → NotDisputed → Unauthorized
  (not staff, or a party, or the recorder) → ConfirmationRequired (upholding a
  dispute the receiver did not raise, without a second staff member) →
  InsufficientBalance (when upheld).
* ``set_floor(by, member, floor)``: Unauthorized (not admin) → UnknownMember →
  InvalidAmount (floor > 0 or below ``MIN_FLOOR``).
* ``endow(by, member, minutes)``: Unauthorized (not admin) → UnknownMember (not
  a member or coordinator: the admin and the endowment cannot be endowed) →
  InvalidAmount → EndowmentExhausted (the budget would be exceeded).
* ``family_transfer(by, to, minutes)``: PolicyForbids (policy off, or not one
  household) → UnknownMember → InvalidAmount → InsufficientBalance.
* ``revoke(by, member)``: Unauthorized (not admin) → UnknownMember (not a member
  or coordinator) → InvalidRole (not a coordinator).  A coordinator becomes a
  plain member, keeping balance and floor.
* ``rotate_admin(by, new_admin)``: Unauthorized (not admin) → AlreadyRegistered
  (``new_admin`` is any registered id).  The new id becomes the admin and the
  old one is *retired* (registered, takes part in nothing, cannot come back).

Every InvalidAmount for minutes means ``minutes <= 0`` or ``minutes > MAX_MINUTES``:
with floors and the endowment's budget bounded too, no balance can leave int64
(the contract's int256 and the service's int64 agree everywhere).
"""
import numbers
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from twin._jit import kernel
from twin.services import events as ev
from twin.services._batch import Outcome, batch_length, grow
from twin.services._inputs import integers, refuse, times
from twin.services.event_rows import put_event
from twin.services.ledger import Ledger, _check_transfer, enter
from twin.services.reasons import Reason, raise_for


class Role(IntEnum):
    none = -1
    member = 0
    coordinator = 1
    endowment = 2
    admin = 3
    retired = 4   # a former admin (see ``rotate_admin``)


class RecordStatus(IntEnum):
    pending = 0
    confirmed = 1
    cancelled = 2
    disputed = 3


class ServiceKind(IntEnum):
    companionship = 0
    meal_delivery = 1
    cleaning = 2
    shopping = 3
    escort = 4
    other = 5


#: Bounds that keep every balance far inside int64 (the contract has the same):
#: one operation moves at most MAX_MINUTES, and no floor is below MIN_FLOOR.
MAX_MINUTES = 1_000_000_000
MIN_FLOOR = -1_000_000_000_000
#: Member ids are 0..MAX_MEMBER_ID (2**24 - 1): arrays are indexed by id.
MAX_MEMBER_ID = 2**24 - 1
#: The endowment's default budget, about 31,700 hours: a year of the default endowment policy
#: (4 hours a month, 13 monthly payments from day 0 to day 360) for the 605 residents aged 75+ of
#: the default 2,000-household community (1,887,600 minutes), rounded up.  A longer run, a larger
#: community or a richer endowment than planned runs into it.
DEFAULT_ENDOWMENT_BUDGET = 1_900_000


@dataclass
class TimeBankPolicy:
    """What a community decides about its time bank.

    member_floor : the lowest balance (minutes, <= 0) a newly registered member may reach.
    allow_family_transfer : whether members may give minutes to their own household.
    endowment_budget : minutes the endowment may issue in all (0..-MIN_FLOOR); ``endow``
        beyond it is refused with EndowmentExhausted.
    staff_confirm : whether a second staff member may confirm in the receiver's place (see
        the module docstring); False: only the receiver confirms.
    """

    member_floor: int = 0
    allow_family_transfer: bool = False
    endowment_budget: int = DEFAULT_ENDOWMENT_BUDGET
    staff_confirm: bool = False

    def __post_init__(self):
        for name, low, high in (("member_floor", MIN_FLOOR, 0), ("endowment_budget", 0, -MIN_FLOOR)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not low <= value <= high:
                raise ValueError(f"TimeBankPolicy.{name} must be an integer in {low}..{high} minutes, got {value!r}")
            setattr(self, name, int(value))


_OK = 0
_UNKNOWN_MEMBER = int(Reason.UnknownMember)
_ALREADY = int(Reason.AlreadyRegistered)
_SELF = int(Reason.SelfService)
_UNKNOWN_RECORD = int(Reason.UnknownRecord)
_NOT_PENDING = int(Reason.NotPending)
_NOT_DISPUTED = int(Reason.NotDisputed)
_UNAUTHORIZED = int(Reason.Unauthorized)
_POLICY = int(Reason.PolicyForbids)
_INVALID_AMOUNT = int(Reason.InvalidAmount)
_INVALID_ROLE = int(Reason.InvalidRole)
_INSUFFICIENT = int(Reason.InsufficientBalance)
_EXHAUSTED = int(Reason.EndowmentExhausted)
_CONFIRMATION = int(Reason.ConfirmationRequired)
_INVALID_ID = int(Reason.InvalidId)
_UNKNOWN_KIND = int(Reason.UnknownKind)
_ROLE_CODES = (int(min(Role)), int(max(Role)))  # the codes a role column may hold
_SERVICE_KIND_CODES = (int(min(ServiceKind)), int(max(ServiceKind)))

_MEMBER, _COORD, _ENDOW, _ADMIN, _RETIRED = 0, 1, 2, 3, 4
_PENDING, _CONFIRMED, _CANCELLED, _DISPUTED = 0, 1, 2, 3
#: Columns of ``TimeBank.records``: who gave, who received, minutes, service kind, status,
#: who recorded it, and whether the receiver raised its dispute (1) or not (0).
PROVIDER, RECEIVER, MINUTES, KIND, STATUS, RECORDER, RECEIVER_DISPUTED = range(7)


@kernel
def _bad_minutes(minutes):
    """Minutes one operation may not move (scalars in kernels, arrays in the vectorised checks)."""
    return (minutes <= 0) | (minutes > MAX_MINUTES)


@kernel
def _role_of(role, m):
    return role[m] if 0 <= m < role.shape[0] else -1


@kernel
def _is_staff(role, m):
    r = _role_of(role, m)
    return r == _COORD or r == _ADMIN


@kernel
def _is_party(role, m):
    r = _role_of(role, m)
    return r == _MEMBER or r == _COORD


@kernel
def _register(role, household, floors, member_floor, by, member, new_role, hh):
    if new_role != _MEMBER and new_role != _COORD:
        return _INVALID_ROLE
    r_by = _role_of(role, by)
    if not (r_by == _ADMIN or (r_by == _COORD and new_role == _MEMBER)):
        return _UNAUTHORIZED
    if role[member] != -1:
        return _ALREADY
    role[member] = new_role
    household[member] = hh
    floors[member] = member_floor if new_role == _MEMBER else 0
    return _OK


@kernel
def _record(role, rec, n_rec, by, provider, receiver, minutes, kind):
    """Append a pending record at row ``n_rec`` of ``rec`` (see the column names above)."""
    if not _is_party(role, provider) or not _is_party(role, receiver):
        return _UNKNOWN_MEMBER
    if by != provider and not _is_staff(role, by):
        return _UNAUTHORIZED
    if provider == receiver:
        return _SELF
    if _bad_minutes(minutes):
        return _INVALID_AMOUNT
    rec[n_rec, PROVIDER] = provider
    rec[n_rec, RECEIVER] = receiver
    rec[n_rec, MINUTES] = minutes
    rec[n_rec, KIND] = kind
    rec[n_rec, STATUS] = _PENDING
    rec[n_rec, RECORDER] = by
    rec[n_rec, RECEIVER_DISPUTED] = 0
    return _OK


@kernel
def _second_staff(role, rec, r, by, staff_confirm):
    """Whether staff member ``by`` may pay record ``r`` in its receiver's place (four eyes)."""
    recorder = rec[r, RECORDER]
    return (staff_confirm and _is_staff(role, by) and _is_staff(role, recorder) and by != recorder
            and by != rec[r, PROVIDER] and by != rec[r, RECEIVER])


@kernel
def _settle(role, rec, n_rec, balances, floors, n_acc, by, r, action, uphold, staff_confirm):
    """Confirm, cancel, dispute or resolve record ``r``; see the module docstring for the order."""
    if r < 0 or r >= n_rec:
        return _UNKNOWN_RECORD
    status = rec[r, STATUS]
    provider = rec[r, PROVIDER]
    receiver = rec[r, RECEIVER]
    if action == 3:  # resolve
        if status != _DISPUTED:
            return _NOT_DISPUTED
    elif status != _PENDING:
        return _NOT_PENDING
    party = by == provider or by == receiver
    if action == 0:  # confirm
        if by != receiver:
            if not _is_staff(role, by):
                return _UNAUTHORIZED
            if not _second_staff(role, rec, r, by, staff_confirm):
                return _CONFIRMATION
    elif action == 1:  # cancel
        if not (party or _is_staff(role, by)):
            return _UNAUTHORIZED
    elif action == 2:  # dispute
        if not party:
            return _UNAUTHORIZED
    else:
        if not _is_staff(role, by) or party or by == rec[r, RECORDER]:
            return _UNAUTHORIZED
        if uphold != 0 and rec[r, RECEIVER_DISPUTED] == 0 and not _second_staff(role, rec, r, by, staff_confirm):
            return _CONFIRMATION
    if action == 0 or (action == 3 and uphold != 0):
        reason = _check_transfer(balances, floors, n_acc, receiver, provider, rec[r, MINUTES])
        if reason != 0:
            return reason
        balances[receiver] -= rec[r, MINUTES]
        balances[provider] += rec[r, MINUTES]
        rec[r, STATUS] = _CONFIRMED
    elif action == 2:
        rec[r, STATUS] = _DISPUTED
        rec[r, RECEIVER_DISPUTED] = by == receiver
    else:
        rec[r, STATUS] = _CANCELLED
    return _OK


@kernel
def _revoke(role, by, member):
    if _role_of(role, by) != _ADMIN:
        return _UNAUTHORIZED
    if not _is_party(role, member):
        return _UNKNOWN_MEMBER
    if role[member] != _COORD:
        return _INVALID_ROLE
    role[member] = _MEMBER
    return _OK


@kernel
def _rotate_admin(role, household, floors, by, new_admin):
    if _role_of(role, by) != _ADMIN:
        return _UNAUTHORIZED
    if role[new_admin] != -1:
        return _ALREADY
    role[new_admin] = _ADMIN
    household[new_admin] = -1
    floors[new_admin] = 0
    role[by] = _RETIRED
    return _OK


#: The event each settling action (confirm, cancel, dispute, resolve) writes.
_SETTLE_KINDS = (int(ev.EventKind.ServiceConfirmed), int(ev.EventKind.ServiceCancelled),
                 int(ev.EventKind.ServiceDisputed), int(ev.EventKind.DisputeResolved))
_SERVICE_RECORDED = int(ev.EventKind.ServiceRecorded)


# Batch loops: rows refused by the input checks (``first``) keep that reason and touch nothing.
@kernel
def _register_batch(role, household, floors, member_floor, by, member, new_role, hh, first, out):
    for i in range(by.shape[0]):
        out[i] = first[i] if first[i] else _register(role, household, floors, member_floor, by[i], member[i],
                                                     new_role[i], hh[i])


@kernel
def _record_core(role, rec, n_rec, by, provider, receiver, minutes, kind, t, out, ids, events, ne):
    """Record in command order: the batch method's core, which the engine calls
    directly with its day's commands (``twin.engine.services_day``).

    A row the input checks refused (``out[i] != 0``) keeps its reason.  An accepted one becomes
    pending record ``ids[i]`` (``rec`` has room; -1 when refused) and writes its ``ServiceRecorded``
    event at row ``ne`` of ``events``.  Returns the record count and the next event row.
    """
    for i in range(by.shape[0]):
        r = out[i] if out[i] != 0 else _record(role, rec, n_rec, by[i], provider[i], receiver[i], minutes[i],
                                                kind[i])
        out[i] = r
        ids[i] = n_rec if r == 0 else -1
        if r == 0:
            ne = put_event(events, ne, _SERVICE_RECORDED, t[i], by[i], n_rec, receiver[i], minutes[i], kind[i],
                           provider[i], 0)
            n_rec += 1
    return n_rec, ne


@kernel
def _settle_core(role, rec, n_rec, balances, floors, n_acc, journal, jn, by, r, action, uphold, staff_confirm, t,
                 out, events, ne):
    """Confirm, cancel, dispute or resolve (``action`` 0..3) in command order, as :func:`_record_core`
    records: minutes that move enter the journal at row ``jn`` (see ``Ledger.reserve``), and each
    accepted command writes its event.  Returns the next journal and event rows."""
    for i in range(by.shape[0]):
        reason = out[i] if out[i] != 0 else _settle(role, rec, n_rec, balances, floors, n_acc, by[i], r[i],
                                                     action, uphold[i], staff_confirm)
        out[i] = reason
        if reason == 0:
            if action == 0 or (action == 3 and uphold[i] != 0):
                jn = enter(journal, jn, t[i], rec[r[i], RECEIVER], rec[r[i], PROVIDER], rec[r[i], MINUTES])
            ne = put_event(events, ne, _SETTLE_KINDS[action], t[i], by[i], r[i], 0, rec[r[i], MINUTES], 0,
                           uphold[i], 0)
    return jn, ne


@kernel
def _revoke_batch(role, by, member, first, out):
    for i in range(by.shape[0]):
        out[i] = first[i] if first[i] else _revoke(role, by[i], member[i])


@kernel
def _rotate_admin_batch(role, household, floors, by, new_admin, first, out):
    for i in range(by.shape[0]):
        out[i] = first[i] if first[i] else _rotate_admin(role, household, floors, by[i], new_admin[i])


def _flags(values):
    """A yes/no column with its bools as 0/1, so the integer check accepts them."""
    if isinstance(values, np.ndarray):
        return values.astype(np.int64) if values.dtype.kind == "b" else values
    if isinstance(values, (list, tuple)):
        return [int(v) if isinstance(v, (bool, np.bool_)) else v for v in values]
    return int(values) if isinstance(values, (bool, np.bool_)) else values


def check_inputs(n: int, columns: dict, ids=(), kinds=None, flags=(), t=None) -> tuple[dict, np.ndarray]:
    """The columns as int64 (and ``t`` as float64) and each row's first refusal from its inputs alone.

    NotAnInteger (any column, read as :func:`twin.services._inputs.integers` reads it; bools
    only in the yes/no columns named in ``flags``), then InvalidId (the member id columns named
    in ``ids``, outside ``0..MAX_MEMBER_ID``), then UnknownKind (``kinds``: column name ->
    (lowest, highest) code), then InvalidTime (``t``, when given).  The contract binding runs
    the first two itself (the chain sees int64 values and addresses, not ids).
    """
    cols, first = {}, np.zeros(n, np.int16)
    for name, values in columns.items():
        cols[name] = integers(_flags(values) if name in flags else values, n, first)
    for name in ids:
        refuse(first, cols[name].view(np.uint64) > MAX_MEMBER_ID, _INVALID_ID)  # negatives read as huge
    for name, (low, high) in (kinds or {}).items():
        refuse(first, (cols[name] < low) | (cols[name] > high), _UNKNOWN_KIND)
    if t is not None:
        cols["t"] = times(t, n, first)
    return cols, first


def enum_code(enum, value, what: str):
    """An enum code from a name or a number; an unknown name is refused (UnknownKind)."""
    if isinstance(value, str):
        if value not in enum.__members__:
            raise_for(Reason.UnknownKind, f"{what}: no {enum.__name__} {value!r}")
        return enum[value]
    return value


def enum_label(enum, value) -> str:
    try:
        return enum(value).name
    except (ValueError, TypeError):
        return repr(value)


def _one_id(value, what: str) -> int:
    """A single member id or record id argument of a query, checked like the batch columns."""
    reasons = np.zeros(1, np.int16)
    (col,) = integers([value], 1, reasons)
    raise_for(reasons[0], what)
    return int(col)


class TimeBank:
    """The time bank service.  ``*_batch`` methods take arrays; the rest are single commands.

    Member ids are integers in ``0..MAX_MEMBER_ID`` chosen by the caller (a resident id,
    say).  The admin (``admin``) and the endowment account (``endowment``) exist from
    construction; ``admin`` follows :meth:`rotate_admin`.
    """

    def __init__(self, log=None, policy: TimeBankPolicy | None = None, admin: int = 0, endowment: int = 1):
        if admin == endowment or not (0 <= min(admin, endowment) and max(admin, endowment) <= MAX_MEMBER_ID):
            raise ValueError(f"admin and endowment must be two distinct ids in 0..{MAX_MEMBER_ID}")
        self.log = log
        self.policy = policy or TimeBankPolicy()
        self.admin, self.endowment = admin, endowment
        self.ledger = Ledger()
        self.role = np.zeros(0, np.int8)
        self.household = np.zeros(0, np.int64)
        self.records = np.zeros((16, 7), np.int64)
        self.n_records = 0
        self._ensure(max(admin, endowment))
        self.role[admin], self.role[endowment] = _ADMIN, _ENDOW
        self.ledger.floors[endowment] = -self.policy.endowment_budget

    def _ensure(self, member_max: int) -> None:
        """Make room for member ids up to ``member_max`` (unregistered slots have role -1)."""
        need = int(member_max) + 1
        if need > len(self.role):
            self.role = grow(self.role, need, fill=-1)
            self.household = grow(self.household, need, fill=-1)
        if need > self.ledger.n:
            self.ledger.open_accounts(count=len(self.role) - self.ledger.n)

    def reserve_records(self, k: int) -> None:
        """Room for ``k`` more records (a compiled core appends them in place)."""
        self.records = grow(self.records, self.n_records + k)

    def _emit(self, events):
        if self.log is not None:
            self.log.append(events)
        return events

    # -------------------------------------------------------------- batch API
    def register_batch(self, by, member, role=Role.member, household=-1, t=0.0) -> Outcome:
        n = batch_length(by, member, role, household, t)
        c, first = check_inputs(n, {"by": by, "member": member, "role": role, "household": household},
                                ids=("by", "member"), kinds={"role": _ROLE_CODES}, t=t)
        by, member, role, household = c["by"], c["member"], c["role"], c["household"]
        self._ensure(member[first == 0].max(initial=0))
        out = np.empty(n, np.int16)
        _register_batch(self.role, self.household, self.ledger.floors, self.policy.member_floor,
                        by, member, role, household, first, out)
        ok = out == 0
        return Outcome(out, self._emit(ev.make(
            ev.EventKind.MemberRegistered, c["t"][ok], actor=by[ok], target=member[ok],
            code=role[ok], extra=household[ok], amount=self.ledger.floors[member[ok]])))

    def record_batch(self, by, provider, receiver, minutes, kind=ServiceKind.other, t=0.0) -> Outcome:
        n = batch_length(by, provider, receiver, minutes, kind, t)
        c, first = check_inputs(n, {"by": by, "provider": provider, "receiver": receiver, "minutes": minutes,
                                    "kind": kind},
                                ids=("by", "provider", "receiver"), kinds={"kind": _SERVICE_KIND_CODES},
                                t=t)
        by, provider, receiver, minutes, kind = (c[k] for k in ("by", "provider", "receiver", "minutes", "kind"))
        ids, events = np.empty(n, np.int64), ev.empty(n)
        ne = self._record_checked(by, provider, receiver, minutes, kind, c["t"], first, ids, events, 0)
        return Outcome(first, self._emit(events[:ne]), ids)

    def _record_checked(self, by, provider, receiver, minutes, kind, t, out, ids, events, ne) -> int:
        """Record the commands the input checks passed (``out == 0``; int64 and float64 columns)
        through the compiled core: each accepted one becomes record ``ids[i]`` and writes its event
        from row ``ne`` of ``events``; returns the next row.  :meth:`record_batch` and the engine's
        day (``twin.engine.services_day``) both come here."""
        self.reserve_records(len(by))
        n_records, ne = _record_core(self.role, self.records, self.n_records, by, provider, receiver, minutes,
                                     kind, t, out, ids, events, ne)
        self.n_records = int(n_records)
        return ne

    def _settle(self, action, by, record, t, uphold=1) -> Outcome:
        n = batch_length(by, record, t, uphold)
        c, first = check_inputs(n, {"by": by, "record": record, "uphold": uphold}, ids=("by",), flags=("uphold",),
                                t=t)
        events = ev.empty(n)
        ne = self._settle_checked(action, c["by"], c["record"], (c["uphold"] != 0).astype(np.int64), c["t"],
                                  first, events, 0)
        return Outcome(first, self._emit(events[:ne]))

    def _settle_checked(self, action, by, record, uphold, t, out, events, ne) -> int:
        """Confirm, cancel, dispute or resolve (``action`` 0..3) checked commands through the
        compiled core, as :meth:`_record_checked` records; returns the next event row."""
        L = self.ledger
        journal, jn = L.reserve(len(by))
        jn, ne = _settle_core(self.role, self.records, self.n_records, L.balances, L.floors, L.n, journal, jn,
                              by, record, action, uphold, bool(self.policy.staff_confirm), t, out, events, ne)
        L.entered(jn)
        return ne

    def confirm_batch(self, by, record, t=0.0) -> Outcome:
        return self._settle(0, by, record, t)

    def cancel_batch(self, by, record, t=0.0) -> Outcome:
        return self._settle(1, by, record, t)

    def dispute_batch(self, by, record, t=0.0) -> Outcome:
        return self._settle(2, by, record, t)

    def resolve_batch(self, by, record, uphold, t=0.0) -> Outcome:
        return self._settle(3, by, record, t, uphold)

    def _ledger_move(self, kind, first, by, src, dst, minutes, t, short=_INSUFFICIENT) -> Outcome:
        """Checks done (``first``; ``t`` checked), then a ledger transfer; logged as ``kind``.

        ``short`` is the reason given when the source would go below its floor.
        """
        out = first.astype(np.int16)
        todo = out == 0
        moved = self.ledger.apply(src[todo], dst[todo], minutes[todo], t[todo])
        # the ledger's own reasons are phrased for accounts; members are what callers know
        moved[moved == Reason.UnknownAccount] = Reason.UnknownMember
        moved[moved == Reason.InsufficientBalance] = short
        out[todo] = moved
        ok = out == 0
        return Outcome(out, self._emit(ev.make(kind, t[ok], actor=by[ok], target=dst[ok], amount=minutes[ok])))

    def endow_batch(self, by, member, minutes, t=0.0) -> Outcome:
        n = batch_length(by, member, minutes, t)
        c, first = check_inputs(n, {"by": by, "member": member, "minutes": minutes}, ids=("by", "member"), t=t)
        by, member, minutes, t = c["by"], c["member"], c["minutes"], c["t"]
        first = np.where(first != 0, first,
                         np.where(by != self.admin, _UNAUTHORIZED,
                                  np.where(~self._parties(member), _UNKNOWN_MEMBER,
                                           np.where(_bad_minutes(minutes), _INVALID_AMOUNT, _OK))))
        return self._ledger_move(ev.EventKind.Endowed, first, by, np.full(n, self.endowment), member, minutes, t,
                                 short=_EXHAUSTED)

    def family_transfer_batch(self, by, to, minutes, t=0.0) -> Outcome:
        n = batch_length(by, to, minutes, t)
        c, first = check_inputs(n, {"by": by, "to": to, "minutes": minutes}, ids=("by", "to"), t=t)
        by, to, minutes, t = c["by"], c["to"], c["minutes"], c["t"]
        hh_by, hh_to = self._households(by), self._households(to)
        same = (hh_by >= 0) & (hh_by == hh_to) & (by != to)
        first = np.where(first != 0, first,
                         np.where(~same | (not self.policy.allow_family_transfer), _POLICY,
                                  np.where(~self._parties(by) | ~self._parties(to), _UNKNOWN_MEMBER,
                                           np.where(_bad_minutes(minutes), _INVALID_AMOUNT, _OK))))
        return self._ledger_move(ev.EventKind.FamilyTransferred, first, by, by, to, minutes, t)

    def set_floor_batch(self, by, member, floor, t=0.0) -> Outcome:
        n = batch_length(by, member, floor, t)
        c, first = check_inputs(n, {"by": by, "member": member, "floor": floor}, ids=("by", "member"), t=t)
        by, member, floor = c["by"], c["member"], c["floor"]
        out = np.where(first != 0, first,
                       np.where(by != self.admin, _UNAUTHORIZED,
                                np.where(~self._parties(member), _UNKNOWN_MEMBER,
                                         np.where((floor > 0) | (floor < MIN_FLOOR), _INVALID_AMOUNT, _OK)))
                       ).astype(np.int16)
        ok = out == 0
        self.ledger.floors[member[ok]] = floor[ok]  # later commands in the batch win, as in order
        return Outcome(out, self._emit(ev.make(ev.EventKind.MemberFloorSet, c["t"][ok],
                                               actor=by[ok], target=member[ok], amount=floor[ok])))

    def revoke_batch(self, by, member, t=0.0) -> Outcome:
        n = batch_length(by, member, t)
        c, first = check_inputs(n, {"by": by, "member": member}, ids=("by", "member"), t=t)
        out = np.empty(n, np.int16)
        _revoke_batch(self.role, c["by"], c["member"], first, out)
        ok = out == 0
        return Outcome(out, self._emit(ev.make(ev.EventKind.RoleRevoked, c["t"][ok], actor=c["by"][ok],
                                               target=c["member"][ok], code=_MEMBER)))

    def rotate_admin_batch(self, by, new_admin, t=0.0) -> Outcome:
        n = batch_length(by, new_admin, t)
        c, first = check_inputs(n, {"by": by, "new_admin": new_admin}, ids=("by", "new_admin"), t=t)
        by, new_admin = c["by"], c["new_admin"]
        self._ensure(new_admin[first == 0].max(initial=0))
        out = np.empty(n, np.int16)
        _rotate_admin_batch(self.role, self.household, self.ledger.floors, by, new_admin, first, out)
        ok = out == 0
        if ok.any():
            self.admin = int(new_admin[ok][-1])
        return Outcome(out, self._emit(ev.make(ev.EventKind.AdminRotated, c["t"][ok], actor=by[ok],
                                               target=new_admin[ok])))

    def _roles(self, ids):
        inside = (ids >= 0) & (ids < len(self.role))
        return np.where(inside, self.role[np.clip(ids, 0, max(len(self.role) - 1, 0))], -1)

    def _parties(self, ids):
        """Members and coordinators: who can take part in exchanges (vectorised ``_is_party``)."""
        roles = self._roles(ids)
        return (roles == _MEMBER) | (roles == _COORD)

    def _households(self, ids):
        inside = (ids >= 0) & (ids < len(self.household)) & (self._roles(ids) >= 0)
        return np.where(inside, self.household[np.clip(ids, 0, max(len(self.household) - 1, 0))], -1)

    # ------------------------------------------------------ single commands
    def _by(self, by):
        return self.admin if by is None else by

    def register(self, member, role=Role.member, household=-1, by=None, t=0.0):
        what = f"register member {member} as {enum_label(Role, role)}"
        role = enum_code(Role, role, what)
        self.register_batch([self._by(by)], [member], [role], [household], [t]).single(what)

    def record(self, provider, receiver, minutes, kind=ServiceKind.other, by=None, t=0.0) -> int:
        what = f"record {minutes} min from {provider} to {receiver}"
        kind = enum_code(ServiceKind, kind, what)
        return self.record_batch([provider if by is None else by], [provider], [receiver], [minutes],
                                 [kind], [t]).single(what)

    def confirm(self, record, by, t=0.0):
        self.confirm_batch([by], [record], [t]).single(f"confirm record {record} by {by}")

    def cancel(self, record, by, t=0.0):
        self.cancel_batch([by], [record], [t]).single(f"cancel record {record} by {by}")

    def dispute(self, record, by, t=0.0):
        self.dispute_batch([by], [record], [t]).single(f"dispute record {record} by {by}")

    def resolve(self, record, uphold: bool, by, t=0.0):
        self.resolve_batch([by], [record], [uphold], [t]).single(f"resolve record {record} by {by}")

    def endow(self, member, minutes, by=None, t=0.0):
        self.endow_batch([self._by(by)], [member], [minutes], [t]).single(f"endow {minutes} min to {member}")

    def family_transfer(self, by, to, minutes, t=0.0):
        self.family_transfer_batch([by], [to], [minutes], [t]).single(f"give {minutes} min from {by} to {to}")

    def set_floor(self, member, floor, by=None, t=0.0):
        self.set_floor_batch([self._by(by)], [member], [floor], [t]).single(f"set floor of {member} to {floor}")

    def revoke(self, member, by=None, t=0.0):
        """Take the coordinator role from ``member`` (a plain member again)."""
        self.revoke_batch([self._by(by)], [member], [t]).single(f"revoke the coordinator role of {member}")

    def rotate_admin(self, new_admin, by=None, t=0.0):
        """Hand the admin role to the unregistered id ``new_admin``; the old admin is retired."""
        self.rotate_admin_batch([self._by(by)], [new_admin], [t]).single(f"hand the admin role to {new_admin}")

    # ---------------------------------------------------------------- queries
    def balance(self, member) -> int:
        what = f"balance of {member}"
        member = _one_id(member, what)
        if not 0 <= member <= MAX_MEMBER_ID:
            raise_for(Reason.InvalidId, what)
        if self._roles(np.array([member]))[0] < 0:
            raise_for(Reason.UnknownMember, what)
        return int(self.ledger.balances[member])

    def record_status(self, record) -> RecordStatus:
        what = f"record {record}"
        record = _one_id(record, what)
        if not 0 <= record < self.n_records:
            raise_for(Reason.UnknownRecord, what)
        return RecordStatus(int(self.records[record, STATUS]))

    def minutes_exchanged(self) -> int:
        """Minutes moved by confirmed records."""
        rec = self.records[: self.n_records]
        return int(rec[rec[:, STATUS] == _CONFIRMED, MINUTES].sum())

    def endowment_left(self) -> int:
        """Minutes the endowment may still issue."""
        return int(self.ledger.balances[self.endowment] - self.ledger.floors[self.endowment])

    def snapshot(self) -> dict:
        # arrays grow by doubling, so their length depends on how commands were
        # batched; the state is everything up to the highest registered id
        n = int(np.flatnonzero(self.role >= 0)[-1]) + 1
        return {"admin": self.admin, "role": self.role[:n].copy(), "household": self.household[:n].copy(),
                "balances": self.ledger.balances[:n].copy(), "floors": self.ledger.floors[:n].copy(),
                "records": self.records[: self.n_records].copy()}

    def replay(self, events: np.ndarray) -> None:
        """Re-execute this service's logged commands through the same batch methods."""
        K = ev.EventKind
        for kind, r in ev.runs(events):
            t = r["t"]
            if kind == K.MemberRegistered:
                self.register_batch(r["actor"], r["target"], r["code"], r["extra"], t)
            elif kind == K.ServiceRecorded:
                self.record_batch(r["actor"], r["extra"], r["target"], r["amount"], r["code"], t)
            elif kind == K.ServiceConfirmed:
                self.confirm_batch(r["actor"], r["subject"], t)
            elif kind == K.ServiceCancelled:
                self.cancel_batch(r["actor"], r["subject"], t)
            elif kind == K.ServiceDisputed:
                self.dispute_batch(r["actor"], r["subject"], t)
            elif kind == K.DisputeResolved:
                self.resolve_batch(r["actor"], r["subject"], r["extra"], t)
            elif kind == K.MemberFloorSet:
                self.set_floor_batch(r["actor"], r["target"], r["amount"], t)
            elif kind == K.Endowed:
                self.endow_batch(r["actor"], r["target"], r["amount"], t)
            elif kind == K.FamilyTransferred:
                self.family_transfer_batch(r["actor"], r["target"], r["amount"], t)
            elif kind == K.RoleRevoked:
                self.revoke_batch(r["actor"], r["target"], t)
            elif kind == K.AdminRotated:
                self.rotate_admin_batch(r["actor"], r["target"], t)


KINDS = frozenset({ev.EventKind.MemberRegistered, ev.EventKind.ServiceRecorded, ev.EventKind.ServiceConfirmed,
                   ev.EventKind.ServiceCancelled, ev.EventKind.ServiceDisputed, ev.EventKind.DisputeResolved,
                   ev.EventKind.MemberFloorSet, ev.EventKind.Endowed, ev.EventKind.FamilyTransferred,
                   ev.EventKind.RoleRevoked, ev.EventKind.AdminRotated})

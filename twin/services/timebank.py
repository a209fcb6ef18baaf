"""Time bank (时间银行): service minutes recorded, confirmed and spent, on a ledger.

A provider records minutes of service given to a receiver; the record stays
*pending* until the receiver (or a coordinator) confirms it, and confirming
moves the minutes from the receiver's account to the provider's.  Balances are
signed: the books always sum to zero, and each member may overdraw down to a
floor (0 by default).  An *endowment* account with no floor lets the admin
back eligible elders (``endow``) without ever minting from nowhere.

The time-bank contract in the source texts checks the provider's balance
before crediting it and underflows the receiver's unsigned balance; here the
*receiver* pays and the floor is checked on the receiver, which is also what
``contracts/TimeBank.sol`` does.

Checks run in a fixed order per operation (the contract follows the same
order, so both refuse with the same reason):

* ``register(by, member, role, household)``: InvalidRole (role not member or
  coordinator) → Unauthorized (``by`` not admin; coordinators may register
  plain members) → AlreadyRegistered.
* ``record(by, provider, receiver, minutes, kind)``: UnknownMember (provider or
  receiver not a member or coordinator) → Unauthorized (``by`` is neither the
  provider nor a coordinator/admin) → SelfService → InvalidAmount.
* ``confirm(by, record)``: UnknownRecord → NotPending → Unauthorized (not the
  receiver, a coordinator or the admin) → InsufficientBalance.
* ``cancel(by, record)``: UnknownRecord → NotPending → Unauthorized (not a
  party, a coordinator or the admin).
* ``dispute(by, record)``: UnknownRecord → NotPending → Unauthorized (not a party).
* ``resolve(by, record, uphold)``: UnknownRecord → NotDisputed → Unauthorized
  (not a coordinator/admin) → InsufficientBalance (when upheld).
* ``set_floor(by, member, floor)``: Unauthorized (not admin) → UnknownMember →
  InvalidAmount (floor > 0 or below ``MIN_FLOOR``).

Every InvalidAmount for minutes means ``minutes <= 0`` or ``minutes > MAX_MINUTES``:
with floors bounded too, no balance can leave int64 (the contract's int256 and
the service's int64 agree everywhere).
* ``endow(by, member, minutes)``: Unauthorized (not admin) → UnknownMember (not
  a member or coordinator: the admin and the endowment cannot be endowed) →
  InvalidAmount.
* ``family_transfer(by, to, minutes)``: PolicyForbids (policy off, or not one
  household) → UnknownMember → InvalidAmount → InsufficientBalance.
"""
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from twin._jit import kernel
from twin.services import events as ev
from twin.services._batch import Outcome, batch_length, column, grow
from twin.services.ledger import NO_FLOOR, Ledger, _check_transfer
from twin.services.reasons import Reason, raise_for


class Role(IntEnum):
    none = -1
    member = 0
    coordinator = 1
    endowment = 2
    admin = 3


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


@dataclass
class TimeBankPolicy:
    """What a community decides about its time bank.

    member_floor : the lowest balance (minutes, <= 0) a newly registered member may reach.
    allow_family_transfer : whether members may give minutes to their own household.
    """

    member_floor: int = 0
    allow_family_transfer: bool = False

    def __post_init__(self):
        if not MIN_FLOOR <= self.member_floor <= 0:
            raise ValueError(f"TimeBankPolicy.member_floor must be in {MIN_FLOOR}..0 minutes, got {self.member_floor}")


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

_MEMBER, _COORD, _ENDOW, _ADMIN = 0, 1, 2, 3

#: Bounds that keep every balance far inside int64 (the contract has the same):
#: one operation moves at most MAX_MINUTES, and no floor is below MIN_FLOOR.
MAX_MINUTES = 1_000_000_000
MIN_FLOOR = -1_000_000_000_000
_PENDING, _CONFIRMED, _CANCELLED, _DISPUTED = 0, 1, 2, 3


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
    """Append a pending record at row ``n_rec`` of ``rec`` (provider, receiver, minutes, kind, status)."""
    if not _is_party(role, provider) or not _is_party(role, receiver):
        return _UNKNOWN_MEMBER
    if by != provider and not _is_staff(role, by):
        return _UNAUTHORIZED
    if provider == receiver:
        return _SELF
    if _bad_minutes(minutes):
        return _INVALID_AMOUNT
    rec[n_rec, 0] = provider
    rec[n_rec, 1] = receiver
    rec[n_rec, 2] = minutes
    rec[n_rec, 3] = kind
    rec[n_rec, 4] = _PENDING
    return _OK


@kernel
def _settle(role, rec, n_rec, balances, floors, n_acc, by, r, action, uphold):
    """Confirm, cancel, dispute or resolve record ``r``; see the module docstring for the order."""
    if r < 0 or r >= n_rec:
        return _UNKNOWN_RECORD
    status = rec[r, 4]
    provider = rec[r, 0]
    receiver = rec[r, 1]
    if action == 3:  # resolve
        if status != _DISPUTED:
            return _NOT_DISPUTED
    elif status != _PENDING:
        return _NOT_PENDING
    party = by == provider or by == receiver
    if action == 0:  # confirm
        ok = by == receiver or _is_staff(role, by)
    elif action == 1:  # cancel
        ok = party or _is_staff(role, by)
    elif action == 2:  # dispute
        ok = party
    else:
        ok = _is_staff(role, by)
    if not ok:
        return _UNAUTHORIZED
    if action == 0 or (action == 3 and uphold):
        reason = _check_transfer(balances, floors, n_acc, receiver, provider, rec[r, 2])
        if reason != 0:
            return reason
        balances[receiver] -= rec[r, 2]
        balances[provider] += rec[r, 2]
        rec[r, 4] = _CONFIRMED
    elif action == 2:
        rec[r, 4] = _DISPUTED
    else:
        rec[r, 4] = _CANCELLED
    return _OK


@kernel
def _register_batch(role, household, floors, member_floor, by, member, new_role, hh, out):
    for i in range(by.shape[0]):
        out[i] = _register(role, household, floors, member_floor, by[i], member[i], new_role[i], hh[i])


@kernel
def _record_batch(role, rec, n_rec, by, provider, receiver, minutes, kind, out, ids):
    for i in range(by.shape[0]):
        out[i] = _record(role, rec, n_rec, by[i], provider[i], receiver[i], minutes[i], kind[i])
        ids[i] = n_rec if out[i] == 0 else -1
        n_rec += out[i] == 0
    return n_rec


@kernel
def _settle_batch(role, rec, n_rec, balances, floors, n_acc, by, r, action, uphold, out):
    for i in range(by.shape[0]):
        out[i] = _settle(role, rec, n_rec, balances, floors, n_acc, by[i], r[i], action, uphold[i])


_SETTLE_KIND = {0: ev.EventKind.ServiceConfirmed, 1: ev.EventKind.ServiceCancelled,
                2: ev.EventKind.ServiceDisputed, 3: ev.EventKind.DisputeResolved}


class TimeBank:
    """The time bank service.  ``*_batch`` methods take arrays; the rest are single commands.

    Member ids are non-negative integers chosen by the caller (a resident id,
    say).  The admin (``admin``) and the endowment account (``endowment``)
    exist from construction.
    """

    def __init__(self, log=None, policy: TimeBankPolicy | None = None, admin: int = 0, endowment: int = 1):
        if admin == endowment or min(admin, endowment) < 0:
            raise ValueError("admin and endowment must be two distinct non-negative ids")
        self.log = log
        self.policy = policy or TimeBankPolicy()
        self.admin, self.endowment = admin, endowment
        self.ledger = Ledger()
        self.role = np.zeros(0, np.int8)
        self.household = np.zeros(0, np.int64)
        self.records = np.zeros((16, 5), np.int64)
        self.n_records = 0
        self._ensure(max(admin, endowment))
        self.role[admin], self.role[endowment] = _ADMIN, _ENDOW
        self.ledger.floors[endowment] = NO_FLOOR

    def _ensure(self, member_max: int) -> None:
        """Make room for member ids up to ``member_max`` (unregistered slots have role -1)."""
        need = int(member_max) + 1
        if need > len(self.role):
            self.role = grow(self.role, need, fill=-1)
            self.household = grow(self.household, need, fill=-1)
        if need > self.ledger.n:
            self.ledger.open_accounts(count=len(self.role) - self.ledger.n)

    def _emit(self, events):
        if self.log is not None:
            self.log.append(events)
        return events

    # -------------------------------------------------------------- batch API
    def register_batch(self, by, member, role=Role.member, household=-1, t=0.0) -> Outcome:
        n = batch_length(by, member, role, household, t)
        by, member = column(by, n, np.int64), column(member, n, np.int64)
        role, household = column(role, n, np.int64), column(household, n, np.int64)
        if n and member.min() < 0:
            raise ValueError("member ids must be non-negative")
        self._ensure(member.max(initial=0))
        out = np.empty(n, np.int16)
        _register_batch(self.role, self.household, self.ledger.floors, self.policy.member_floor,
                        by, member, role, household, out)
        ok = out == 0
        return Outcome(out, self._emit(ev.make(
            ev.EventKind.MemberRegistered, column(t, n, np.float64)[ok], actor=by[ok], target=member[ok],
            code=role[ok], extra=household[ok], amount=self.ledger.floors[member[ok]])))

    def record_batch(self, by, provider, receiver, minutes, kind=ServiceKind.other, t=0.0) -> Outcome:
        n = batch_length(by, provider, receiver, minutes, kind, t)
        by, provider, receiver = (column(c, n, np.int64) for c in (by, provider, receiver))
        minutes, kind = column(minutes, n, np.int64), column(kind, n, np.int64)
        self.records = grow(self.records, self.n_records + n)
        out, ids = np.empty(n, np.int16), np.empty(n, np.int64)
        self.n_records = int(_record_batch(self.role, self.records, self.n_records, by, provider, receiver,
                                           minutes, kind, out, ids))
        ok = out == 0
        return Outcome(out, self._emit(ev.make(
            ev.EventKind.ServiceRecorded, column(t, n, np.float64)[ok], actor=by[ok], subject=ids[ok],
            target=receiver[ok], amount=minutes[ok], code=kind[ok], extra=provider[ok])), ids)

    def _settle(self, action, by, record, t, uphold=1) -> Outcome:
        n = batch_length(by, record, t, uphold)
        by, record, uphold = (column(c, n, np.int64) for c in (by, record, uphold))
        out = np.empty(n, np.int16)
        _settle_batch(self.role, self.records, self.n_records, self.ledger.balances, self.ledger.floors,
                      self.ledger.n, by, record, action, uphold, out)
        ok = out == 0
        if action == 0 or action == 3:
            moved = ok & (uphold != 0) if action == 3 else ok
            rec = self.records[record[moved]]
            self.ledger.journal(column(t, n, np.float64)[moved], rec[:, 1], rec[:, 0], rec[:, 2])
        return Outcome(out, self._emit(ev.make(
            _SETTLE_KIND[action], column(t, n, np.float64)[ok], actor=by[ok], subject=record[ok],
            amount=self.records[record[ok], 2] if ok.any() else 0, extra=uphold[ok])))

    def confirm_batch(self, by, record, t=0.0) -> Outcome:
        return self._settle(0, by, record, t)

    def cancel_batch(self, by, record, t=0.0) -> Outcome:
        return self._settle(1, by, record, t)

    def dispute_batch(self, by, record, t=0.0) -> Outcome:
        return self._settle(2, by, record, t)

    def resolve_batch(self, by, record, uphold, t=0.0) -> Outcome:
        return self._settle(3, by, record, t, uphold)

    def _ledger_move(self, kind, reasons_first, by, src, dst, minutes, t) -> Outcome:
        """A policy check (``reasons_first``) then a ledger transfer; logged as ``kind``."""
        t = column(t, len(by), np.float64)
        out = reasons_first.astype(np.int16)
        todo = out == 0
        out[todo] = self.ledger.apply(src[todo], dst[todo], minutes[todo], t[todo])
        # the ledger's own reasons are phrased for accounts; members are what callers know
        out[out == Reason.UnknownAccount] = Reason.UnknownMember
        ok = out == 0
        return Outcome(out, self._emit(ev.make(kind, t[ok], actor=by[ok], target=dst[ok], amount=minutes[ok])))

    def endow_batch(self, by, member, minutes, t=0.0) -> Outcome:
        n = batch_length(by, member, minutes, t)
        by, member, minutes = (column(c, n, np.int64) for c in (by, member, minutes))
        first = np.where(by != self.admin, _UNAUTHORIZED,
                         np.where(~self._parties(member), _UNKNOWN_MEMBER,
                                  np.where(_bad_minutes(minutes), _INVALID_AMOUNT, _OK)))
        return self._ledger_move(ev.EventKind.Endowed, first, by, np.full(n, self.endowment), member, minutes, t)

    def family_transfer_batch(self, by, to, minutes, t=0.0) -> Outcome:
        n = batch_length(by, to, minutes, t)
        by, to, minutes = (column(c, n, np.int64) for c in (by, to, minutes))
        hh_by, hh_to = self._households(by), self._households(to)
        same = (hh_by >= 0) & (hh_by == hh_to) & (by != to)
        first = np.where(~same | (not self.policy.allow_family_transfer), _POLICY,
                         np.where((self._roles(by) < 0) | (self._roles(to) < 0), _UNKNOWN_MEMBER,
                                  np.where(_bad_minutes(minutes), _INVALID_AMOUNT, _OK)))
        return self._ledger_move(ev.EventKind.FamilyTransferred, first, by, by, to, minutes, t)

    def set_floor_batch(self, by, member, floor, t=0.0) -> Outcome:
        n = batch_length(by, member, floor, t)
        by, member, floor = (column(c, n, np.int64) for c in (by, member, floor))
        out = np.where(by != self.admin, _UNAUTHORIZED,
                       np.where(~self._parties(member), _UNKNOWN_MEMBER,
                                np.where((floor > 0) | (floor < MIN_FLOOR), _INVALID_AMOUNT, _OK))).astype(np.int16)
        ok = out == 0
        self.ledger.floors[member[ok]] = floor[ok]  # later commands in the batch win, as in order
        return Outcome(out, self._emit(ev.make(ev.EventKind.MemberFloorSet, column(t, n, np.float64)[ok],
                                               actor=by[ok], target=member[ok], amount=floor[ok])))

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
    def register(self, member, role=Role.member, household=-1, by=None, t=0.0):
        role = Role[role] if isinstance(role, str) else role
        label = Role(role).name if role in set(Role) else role  # an invalid role must reach InvalidRole
        self.register_batch([self.admin if by is None else by], [member], [role], [household], [t]).single(
            f"register member {member} as {label}")

    def record(self, provider, receiver, minutes, kind=ServiceKind.other, by=None, t=0.0) -> int:
        kind = ServiceKind[kind] if isinstance(kind, str) else kind
        return self.record_batch([provider if by is None else by], [provider], [receiver], [minutes],
                                 [kind], [t]).single(f"record {minutes} min from {provider} to {receiver}")

    def confirm(self, record, by, t=0.0):
        self.confirm_batch([by], [record], [t]).single(f"confirm record {record} by {by}")

    def cancel(self, record, by, t=0.0):
        self.cancel_batch([by], [record], [t]).single(f"cancel record {record} by {by}")

    def dispute(self, record, by, t=0.0):
        self.dispute_batch([by], [record], [t]).single(f"dispute record {record} by {by}")

    def resolve(self, record, uphold: bool, by, t=0.0):
        self.resolve_batch([by], [record], [int(uphold)], [t]).single(f"resolve record {record} by {by}")

    def endow(self, member, minutes, by=None, t=0.0):
        self.endow_batch([self.admin if by is None else by], [member], [minutes], [t]).single(
            f"endow {minutes} min to {member}")

    def family_transfer(self, by, to, minutes, t=0.0):
        self.family_transfer_batch([by], [to], [minutes], [t]).single(f"give {minutes} min from {by} to {to}")

    def set_floor(self, member, floor, by=None, t=0.0):
        self.set_floor_batch([self.admin if by is None else by], [member], [floor], [t]).single(
            f"set floor of {member} to {floor}")

    # ---------------------------------------------------------------- queries
    def balance(self, member: int) -> int:
        if self._roles(np.array([member]))[0] < 0:
            raise_for(Reason.UnknownMember, f"balance of {member}")
        return int(self.ledger.balances[member])

    def record_status(self, record: int) -> RecordStatus:
        if not 0 <= record < self.n_records:
            raise_for(Reason.UnknownRecord, f"record {record}")
        return RecordStatus(int(self.records[record, 4]))

    def minutes_exchanged(self) -> int:
        """Minutes moved by confirmed records."""
        rec = self.records[: self.n_records]
        return int(rec[rec[:, 4] == _CONFIRMED, 2].sum())

    def snapshot(self) -> dict:
        # arrays grow by doubling, so their length depends on how commands were
        # batched; the state is everything up to the highest registered id
        n = int(np.flatnonzero(self.role >= 0)[-1]) + 1
        return {"role": self.role[:n].copy(), "household": self.household[:n].copy(),
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


KINDS = frozenset({ev.EventKind.MemberRegistered, ev.EventKind.ServiceRecorded, ev.EventKind.ServiceConfirmed,
                   ev.EventKind.ServiceCancelled, ev.EventKind.ServiceDisputed, ev.EventKind.DisputeResolved,
                   ev.EventKind.MemberFloorSet, ev.EventKind.Endowed, ev.EventKind.FamilyTransferred})

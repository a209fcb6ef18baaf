"""The time-bank contract behind the time-bank service's single-command API.

:class:`TimeBankContract` takes the same arguments as :class:`twin.services.timebank.TimeBank`
(integer member ids, ``by=`` the acting member) and refuses with the same exceptions, named by
:class:`~twin.services.reasons.Reason`; only the place the rules run differs.  Each member id
signs with its own key (:meth:`contracts.chain.Chain.member`), except the first admin's id, which
is the chain's account that deployed the contract.  The service's first checks (NotAnInteger,
InvalidId) run here, in the same order, since the chain sees int64 values and addresses rather
than the caller's numbers and ids; every other rule runs on chain.  :func:`mirror_timebank`
replays a service event log onto a fresh contract, so a run's books can be checked against the chain.
"""
import numpy as np

from contracts.chain import Chain
from twin.services import events as ev
from twin.services.reasons import Reason, ServiceError, raise_for
from twin.services.timebank import (KINDS, MAX_MEMBER_ID, Role, ServiceKind, TimeBankPolicy, check_inputs, enum_code,
                                    enum_label)

#: Largest page of addresses read in one call when summing balances.
_PAGE = 500


class MirrorDiverged(AssertionError):
    """The contract refused an event the service had accepted."""


class TimeBankContract:
    """``TimeBank.sol`` on a :class:`~contracts.chain.Chain`, deployed fresh or attached.

    Parameters
    ----------
    chain : Chain, optional
        Where the contract lives; a new embedded EVM by default.
    address : str, optional
        Attach to this deployed contract instead of deploying one; its admin must be
        ``chain.account`` and its endowment the address of ``endowment``.
    policy : TimeBankPolicy, optional
        ``member_floor``, ``allow_family_transfer``, ``endowment_budget`` and ``staff_confirm``,
        fixed at deployment.
    admin, endowment : int
        The service ids of the admin (``chain.account``) and of the endowment account.
    """

    def __init__(self, chain: Chain | None = None, address: str | None = None,
                 policy: TimeBankPolicy | None = None, admin: int = 0, endowment: int = 1):
        if admin == endowment or not (0 <= min(admin, endowment) and max(admin, endowment) <= MAX_MEMBER_ID):
            raise ValueError(f"admin and endowment must be two distinct ids in 0..{MAX_MEMBER_ID}")
        self.chain = chain or Chain()
        self.admin, self.endowment = admin, endowment
        self._operator = admin   # the id that signs with chain.account, whoever is admin later
        #: The receipt of the last transaction sent (gas used, logs).
        self.last_receipt = None
        if address is None:
            policy = policy or TimeBankPolicy()
            self.contract = self.chain.deploy("TimeBank", self.address_of(endowment), policy.member_floor,
                                              policy.allow_family_transfer, policy.endowment_budget,
                                              policy.staff_confirm)
        else:
            self.contract = self.chain.attach("TimeBank", address)
            for role, member in (("admin", admin), ("endowment", endowment)):
                on_chain = self.chain.call(self.contract, role)
                if on_chain != self.address_of(member):
                    raise ValueError(f"the contract's {role} is {on_chain}, not the address of id {member} "
                                     f"({self.address_of(member)}) on {self.chain!r}")
        self.policy = TimeBankPolicy(*(self.chain.call(self.contract, name) for name in (
            "memberFloor", "allowFamilyTransfer", "endowmentBudget", "staffConfirm")))

    @property
    def address(self) -> str:
        return self.contract.address

    def address_of(self, member: int) -> str:
        """The address standing for service member id ``member``."""
        return self._signer(member).address

    def _signer(self, member: int):
        return self.chain.account if int(member) == self._operator else self.chain.member(member)

    def _send(self, by: int, function: str, args, what: str):
        self.last_receipt = self.chain.transact(self._signer(by), self.contract, function, args, what)
        return self.last_receipt

    @staticmethod
    def _checked(what: str, ids: dict, values: dict | None = None, flags: dict | None = None) -> dict:
        """The service's input checks on one command: NotAnInteger (every argument), then InvalidId (``ids``).

        ``flags`` are yes/no arguments (a bool is an integer there).  Returns every argument as a
        Python int (saturated at int64's ends, as the service reads them).
        """
        columns = {**ids, **(values or {}), **(flags or {})}
        cols, first = check_inputs(1, columns, ids=tuple(ids), flags=tuple(flags or ()))
        if first[0]:
            raise_for(first[0], what)
        return {name: int(col[0]) for name, col in cols.items()}

    def _by(self, by):
        return self.admin if by is None else by

    @staticmethod
    def _record_id(record: int, what: str) -> int:
        # a uint256 cannot hold a negative id; the contract would refuse any id it does not hold
        if record < 0:
            raise_for(Reason.UnknownRecord, what)
        return record

    # ------------------------------------------------------------------ commands
    def register(self, member, role=Role.member, household=-1, by=None):
        what = f"register member {member} as {enum_label(Role, role)}"
        role = enum_code(Role, role, what)
        a = self._checked(what, {"by": self._by(by), "member": member}, {"role": role, "household": household})
        self._send(a["by"], "register", [self.address_of(a["member"]), a["role"], a["household"]], what)

    def record(self, provider, receiver, minutes, kind=ServiceKind.other, by=None, ref: int = 0) -> int:
        """Record minutes of service; returns the record id.  ``ref`` links an off-chain id."""
        what = f"record {minutes} min from {provider} to {receiver}"
        kind = enum_code(ServiceKind, kind, what)
        a = self._checked(what, {"by": provider if by is None else by, "provider": provider, "receiver": receiver},
                          {"minutes": minutes, "kind": kind})
        receipt = self._send(a["by"], "record", [self.address_of(a["provider"]), self.address_of(a["receiver"]),
                                                 a["minutes"], a["kind"], int(ref)], what)
        return int(self.chain.events(self.contract, "ServiceRecorded", receipt)[0]["id"])

    def _settle(self, function: str, verb: str, record, by, uphold=None):
        what = f"{verb} record {record} by {by}"
        a = self._checked(what, {"by": by}, {"record": record}, {"uphold": uphold} if uphold is not None else None)
        args = [self._record_id(a["record"], what)] + ([a["uphold"] != 0] if uphold is not None else [])
        self._send(a["by"], function, args, what)

    def confirm(self, record, by):
        self._settle("confirm", "confirm", record, by)

    def cancel(self, record, by):
        self._settle("cancel", "cancel", record, by)

    def dispute(self, record, by):
        self._settle("dispute", "dispute", record, by)

    def resolve(self, record, uphold: bool, by):
        self._settle("resolve", "resolve", record, by, uphold=uphold)

    def endow(self, member, minutes, by=None):
        what = f"endow {minutes} min to {member}"
        a = self._checked(what, {"by": self._by(by), "member": member}, {"minutes": minutes})
        self._send(a["by"], "endow", [self.address_of(a["member"]), a["minutes"]], what)

    def family_transfer(self, by, to, minutes):
        what = f"give {minutes} min from {by} to {to}"
        a = self._checked(what, {"by": by, "to": to}, {"minutes": minutes})
        self._send(a["by"], "familyTransfer", [self.address_of(a["to"]), a["minutes"]], what)

    def set_floor(self, member, floor, by=None):
        what = f"set floor of {member} to {floor}"
        a = self._checked(what, {"by": self._by(by), "member": member}, {"floor": floor})
        self._send(a["by"], "setFloor", [self.address_of(a["member"]), a["floor"]], what)

    def revoke(self, member, by=None):
        """Take the coordinator role from ``member``."""
        what = f"revoke the coordinator role of {member}"
        a = self._checked(what, {"by": self._by(by), "member": member})
        self._send(a["by"], "revoke", [self.address_of(a["member"])], what)

    def rotate_admin(self, new_admin, by=None):
        """Hand the admin role to the unregistered id ``new_admin`` (who signs with its member key)."""
        what = f"hand the admin role to {new_admin}"
        a = self._checked(what, {"by": self._by(by), "new_admin": new_admin})
        self._send(a["by"], "rotateAdmin", [self.address_of(a["new_admin"])], what)
        self.admin = a["new_admin"]

    # ------------------------------------------------------------------- queries
    def balance(self, member: int) -> int:
        """A registered member's balance; raises ``UnknownMember`` otherwise (as the service does)."""
        what = f"balance of {member}"
        member = self._checked(what, {"member": member})["member"]
        return int(self.chain.call(self.contract, "balanceOf", [self.address_of(member)], what))

    def balances(self, members) -> np.ndarray:
        """Balances of many member ids in one call (0 for ids never registered)."""
        return np.array(self.chain.call(self.contract, "balancesOf", [[self.address_of(m) for m in members]]),
                        dtype=np.int64)

    def record_status(self, record: int) -> int:
        """A record's status, numbered as :class:`twin.services.timebank.RecordStatus`."""
        what = f"record {record}"
        record = self._checked(what, {}, {"record": record})["record"]
        return int(self.chain.call(self.contract, "recordOf", [self._record_id(record, what)], what)[3])

    def total(self) -> int:
        """Sum of every registered account's balance on chain: zero, always."""
        n = self.chain.call(self.contract, "memberCount")
        total = 0
        for start in range(0, n, _PAGE):
            page = self.chain.call(self.contract, "memberPage", [start, _PAGE])
            total += sum(self.chain.call(self.contract, "balancesOf", [page]))
        return total


def mirror_timebank(events: np.ndarray, chain: Chain | None = None, policy: TimeBankPolicy | None = None,
                    admin: int = 0, endowment: int = 1) -> dict[int, int]:
    """Replay a service event log's time-bank events, in order, onto a freshly deployed contract.

    ``events`` is an event array (``twin.services.events.EVENT_DTYPE``); rows of other kinds are
    skipped.  ``policy``, ``admin`` and ``endowment`` must be those of the service that wrote
    the log.  Returns the contract's final balance of every account the log registered, plus the
    admin and the endowment, keyed by member id -- to compare with the service's balances.
    Raises :class:`MirrorDiverged` when the contract refuses an event the service accepted.
    """
    bank = TimeBankContract(chain, policy=policy, admin=admin, endowment=endowment)
    K = ev.EventKind
    record_ids: dict[int, int] = {}  # service record id -> contract record id
    members = {admin, endowment}
    for index, row in enumerate(events):
        kind = int(row["kind"])
        if kind not in KINDS:
            continue
        actor, subject, target = int(row["actor"]), int(row["subject"]), int(row["target"])
        amount, code, extra = int(row["amount"]), int(row["code"]), int(row["extra"])
        try:
            if kind == K.MemberRegistered:
                bank.register(target, code, extra, by=actor)
                members.add(target)
            elif kind == K.ServiceRecorded:
                record_ids[subject] = bank.record(extra, target, amount, code, by=actor, ref=subject)
            elif kind == K.ServiceConfirmed:
                bank.confirm(record_ids.get(subject, subject), by=actor)
            elif kind == K.ServiceCancelled:
                bank.cancel(record_ids.get(subject, subject), by=actor)
            elif kind == K.ServiceDisputed:
                bank.dispute(record_ids.get(subject, subject), by=actor)
            elif kind == K.DisputeResolved:
                bank.resolve(record_ids.get(subject, subject), extra != 0, by=actor)
            elif kind == K.MemberFloorSet:
                bank.set_floor(target, amount, by=actor)
            elif kind == K.Endowed:
                bank.endow(target, amount, by=actor)
            elif kind == K.FamilyTransferred:
                bank.family_transfer(actor, target, amount)
            elif kind == K.RoleRevoked:
                bank.revoke(target, by=actor)
            elif kind == K.AdminRotated:
                bank.rotate_admin(target, by=actor)
                members.add(target)
        except ServiceError as exc:
            raise MirrorDiverged(f"event {index} ({K(kind).name}) accepted by the service was refused on chain: "
                                 f"{exc}") from exc
    ids = sorted(members)
    return dict(zip(ids, (int(b) for b in bank.balances(ids))))

"""The time-bank contract behind the time-bank service's single-command API.

:class:`TimeBankContract` takes the same arguments as :class:`twin.services.timebank.TimeBank`
(integer member ids, ``by=`` the acting member) and refuses with the same exceptions, named by
:class:`~twin.services.reasons.Reason`; only the place the rules run differs.  Each member id
signs with its own key (:meth:`contracts.chain.Chain.member`), except the admin id, which is the
chain's account that deployed the contract.  :func:`mirror_timebank` replays a service event log
onto a fresh contract, so a run's books can be checked against the chain.
"""
import numpy as np

from contracts.chain import Chain
from twin.services import events as ev
from twin.services.reasons import Reason, ServiceError, raise_for
from twin.services.timebank import KINDS, Role, ServiceKind, TimeBankPolicy

#: Largest page of addresses read in one call when summing balances.
_PAGE = 500


def _role_name(role) -> str:
    try:
        return Role(role).name
    except ValueError:
        return f"role {role}"


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
        ``member_floor`` and ``allow_family_transfer``, fixed at deployment.
    admin, endowment : int
        The service ids of the admin (the deployer) and of the endowment account.
    """

    def __init__(self, chain: Chain | None = None, address: str | None = None,
                 policy: TimeBankPolicy | None = None, admin: int = 0, endowment: int = 1):
        if admin == endowment or min(admin, endowment) < 0:
            raise ValueError("admin and endowment must be two distinct non-negative ids")
        self.chain = chain or Chain()
        self.admin, self.endowment = admin, endowment
        #: The receipt of the last transaction sent (gas used, logs).
        self.last_receipt = None
        if address is None:
            policy = policy or TimeBankPolicy()
            self.contract = self.chain.deploy("TimeBank", self.address_of(endowment), policy.member_floor,
                                              policy.allow_family_transfer)
        else:
            self.contract = self.chain.attach("TimeBank", address)
            for role, member in (("admin", admin), ("endowment", endowment)):
                on_chain = self.chain.call(self.contract, role)
                if on_chain != self.address_of(member):
                    raise ValueError(f"the contract's {role} is {on_chain}, not the address of id {member} "
                                     f"({self.address_of(member)}) on {self.chain!r}")
        self.policy = TimeBankPolicy(self.chain.call(self.contract, "memberFloor"),
                                     self.chain.call(self.contract, "allowFamilyTransfer"))

    @property
    def address(self) -> str:
        return self.contract.address

    def address_of(self, member: int) -> str:
        """The address standing for service member id ``member``."""
        return self._signer(member).address

    def _signer(self, member: int):
        return self.chain.account if int(member) == self.admin else self.chain.member(member)

    def _send(self, by: int, function: str, args, what: str):
        self.last_receipt = self.chain.transact(self._signer(by), self.contract, function, args, what)
        return self.last_receipt

    @staticmethod
    def _record_id(record: int, what: str) -> int:
        # a uint256 cannot hold a negative id; the contract would refuse any id it does not hold
        if record < 0:
            raise_for(Reason.UnknownRecord, what)
        return int(record)

    # ------------------------------------------------------------------ commands
    def register(self, member, role=Role.member, household=-1, by=None):
        role = Role[role] if isinstance(role, str) else role
        if member < 0:
            raise ValueError("member ids must be non-negative")
        self._send(self.admin if by is None else by, "register",
                   [self.address_of(member), int(role), int(household)],
                   f"register member {member} as {_role_name(role)}")

    def record(self, provider, receiver, minutes, kind=ServiceKind.other, by=None, ref: int = 0) -> int:
        """Record minutes of service; returns the record id.  ``ref`` links an off-chain id."""
        kind = ServiceKind[kind] if isinstance(kind, str) else kind
        receipt = self._send(provider if by is None else by, "record",
                             [self.address_of(provider), self.address_of(receiver), int(minutes), int(kind),
                              int(ref)],
                             f"record {minutes} min from {provider} to {receiver}")
        return int(self.chain.events(self.contract, "ServiceRecorded", receipt)[0]["id"])

    def confirm(self, record, by):
        what = f"confirm record {record} by {by}"
        self._send(by, "confirm", [self._record_id(record, what)], what)

    def cancel(self, record, by):
        what = f"cancel record {record} by {by}"
        self._send(by, "cancel", [self._record_id(record, what)], what)

    def dispute(self, record, by):
        what = f"dispute record {record} by {by}"
        self._send(by, "dispute", [self._record_id(record, what)], what)

    def resolve(self, record, uphold: bool, by):
        what = f"resolve record {record} by {by}"
        self._send(by, "resolve", [self._record_id(record, what), bool(uphold)], what)

    def endow(self, member, minutes, by=None):
        self._send(self.admin if by is None else by, "endow", [self.address_of(member), int(minutes)],
                   f"endow {minutes} min to {member}")

    def family_transfer(self, by, to, minutes):
        self._send(by, "familyTransfer", [self.address_of(to), int(minutes)], f"give {minutes} min from {by} to {to}")

    def set_floor(self, member, floor, by=None):
        self._send(self.admin if by is None else by, "setFloor", [self.address_of(member), int(floor)],
                   f"set floor of {member} to {floor}")

    # ------------------------------------------------------------------- queries
    def balance(self, member: int) -> int:
        """A registered member's balance; raises ``UnknownMember`` otherwise (as the service does)."""
        return int(self.chain.call(self.contract, "balanceOf", [self.address_of(member)], f"balance of {member}"))

    def balances(self, members) -> np.ndarray:
        """Balances of many member ids in one call (0 for ids never registered)."""
        return np.array(self.chain.call(self.contract, "balancesOf", [[self.address_of(m) for m in members]]),
                        dtype=np.int64)

    def record_status(self, record: int) -> int:
        """A record's status, numbered as :class:`twin.services.timebank.RecordStatus`."""
        what = f"record {record}"
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
        except ServiceError as exc:
            raise MirrorDiverged(f"event {index} ({K(kind).name}) accepted by the service was refused on chain: "
                                 f"{exc}") from exc
    ids = sorted(members)
    return dict(zip(ids, (int(b) for b in bank.balances(ids))))

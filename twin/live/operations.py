"""The API's operations: every object-layer command and query of the four services, once.

Each :class:`Operation` names a service method, its HTTP route, the roles
that may call it and how the caller's identity binds the method's
parameters.  The request body's fields are the method's own parameters
(read from its signature), less those taken from the path, the clock
(``t``) or the caller — so a rule (a required field, a range, a
transition) lives in the service alone and the API cannot drift from it.

Identity rules, written once here and enforced by :func:`call`:

- ``acting``: the parameter that says who acts (``reporter``, ``by``,
  ``voter``, ``proposer``, ``screener``, ``actor``) is always the caller.
  Staff may name someone else only where ``on_behalf`` allows it (a hotline
  operator reporting for a resident).
- ``own``: a path id a resident may only use for themself (their balance,
  their history); staff may use any.
- ``owner``: a check a resident must pass on the subject (their own ticket).
"""
import functools
import inspect
import typing
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from twin.live.accounts import Principal
from twin.services.points import Points
from twin.services.reasons import EXCEPTIONS, Reason
from twin.services.repair import RepairDesk
from twin.services.timebank import TimeBank
from twin.services.voting import VotingDesk

EVERYONE = frozenset({"resident", "technician", "social_worker", "coordinator", "admin"})
STAFF = EVERYONE - {"resident"}
OFFICE = frozenset({"coordinator", "admin"})
FIELD = frozenset({"technician", "coordinator", "admin"})

_CLASSES = {"points": Points, "timebank": TimeBank, "repair": RepairDesk, "voting": VotingDesk}


@dataclass(frozen=True)
class Operation:
    service: str
    method: str
    http: str
    path: str
    roles: frozenset
    summary: str
    acting: str | None = None
    on_behalf: bool = False
    own: str | None = None
    owner: typing.Callable | None = None
    query: tuple = ()
    fixed: dict = field(default_factory=dict)
    present: typing.Callable | None = None

    @property
    def name(self) -> str:
        return f"{self.service}.{self.method}"

    @property
    def path_params(self) -> list[str]:
        return [p.strip("{}") for p in self.path.split("/") if p.startswith("{")]

    def body_fields(self) -> dict:
        """The method's parameters a client sends in the body: ``{name: (type, default)}``."""
        if self.http != "POST":
            return {}
        taken = set(self.path_params) | {"t", self.acting} | set(self.fixed)
        out = {}
        for p in _parameters(self.service, self.method):
            if p.name in taken:
                continue
            out[p.name] = (_type_of(p), ... if p.default is inspect.Parameter.empty else p.default)
        if self.acting and self.on_behalf:
            out[self.acting] = (int | None, None)
        return out


@functools.cache
def _takes_time(service: str, method: str) -> bool:
    """Whether the method has a ``t`` (the clock's), read once per method, not per request."""
    return any(p.name == "t" for p in _parameters(service, method))


def _parameters(service: str, method: str):
    signature = inspect.signature(getattr(_CLASSES[service], method))
    return [p for p in signature.parameters.values() if p.name != "self"]


def _type_of(p: inspect.Parameter):
    """A body field's type: the parameter's annotation, else what its default says."""
    if p.annotation is not inspect.Parameter.empty:
        annotation = p.annotation
        if isinstance(annotation, str):
            annotation = {"int": int, "float": float, "str": str, "bool": bool}.get(annotation, typing.Any)
        return annotation | None if p.default is None else annotation
    default = p.default
    if isinstance(default, IntEnum):
        return int | str
    if isinstance(default, bool):
        return bool
    if isinstance(default, (int, float, str)):
        return type(default)
    return typing.Any


# ------------------------------------------------------------ presenting results
def _ticket_for(principal: Principal, ticket: dict) -> dict:
    """A ticket as the caller may see it: contact details only for staff and the reporter."""
    if not principal.is_staff and ticket.get("reporter") != principal.id:
        ticket = {**ticket, "contact": None}
    return ticket


def _tally(result) -> dict:
    return {k: (v.tolist() if isinstance(v, np.ndarray) else [x.tolist() if isinstance(x, np.ndarray) else x
                                                              for x in v] if isinstance(v, list) else v)
            for k, v in vars(result).items()}


def _own_ticket(services, principal, args) -> bool:
    return principal.is_staff or services.repair.get(args["ticket"])["reporter"] == principal.id


def _assigned_ticket(services, principal, args) -> bool:
    return principal.role != "technician" or services.repair.get(args["ticket"])["worker"] == principal.id


def _rostered_worker(services, principal, args) -> bool:
    """The live desk's roster is its technician accounts: anyone else is an ``UnknownWorker``."""
    from twin.live.accounts import is_technician

    if not is_technician(services, args.get("worker")):
        _refuse(Reason.UnknownWorker, f"dispatch ticket {args.get('ticket')} to worker {args.get('worker')!r}, "
                                      "who has no technician account")
    return True


OPERATIONS: tuple[Operation, ...] = (
    # repair desk
    Operation("repair", "submit", "POST", "/repair/tickets", EVERYONE, "Report a repair (报事报修)",
              acting="reporter", on_behalf=True, present=lambda r, p: {"id": r}),
    Operation("repair", "list", "GET", "/repair/tickets", EVERYONE, "Tickets, a page at a time",
              query=(("status", str | None, None), ("page", int, 1), ("limit", int, 10)),
              present=lambda r, p: {**r, "data": [_ticket_for(p, t) for t in r["data"]]}),
    Operation("repair", "get", "GET", "/repair/tickets/{ticket}", EVERYONE, "One ticket",
              present=lambda r, p: _ticket_for(p, r)),
    Operation("repair", "dispatch", "POST", "/repair/tickets/{ticket}/dispatch", OFFICE,
              "Assign a technician (one with a technician account)", owner=_rostered_worker),
    Operation("repair", "start", "POST", "/repair/tickets/{ticket}/start", FIELD, "Start work",
              owner=_assigned_ticket),
    Operation("repair", "complete", "POST", "/repair/tickets/{ticket}/complete", FIELD, "Finish work",
              owner=_assigned_ticket),
    Operation("repair", "rate", "POST", "/repair/tickets/{ticket}/rate", frozenset({"resident"}),
              "Rate a completed ticket, once", owner=_own_ticket),
    Operation("repair", "cancel", "POST", "/repair/tickets/{ticket}/cancel", EVERYONE | OFFICE,
              "Cancel a ticket not yet started", acting="actor", owner=_own_ticket),
    Operation("repair", "reopen", "POST", "/repair/tickets/{ticket}/reopen", EVERYONE,
              "Reopen a completed ticket within the window", acting="actor", owner=_own_ticket),
    Operation("repair", "escalate", "POST", "/repair/tickets/{ticket}/escalate", EVERYONE,
              "Raise a ticket's priority", acting="actor", owner=_own_ticket),
    # points
    Operation("points", "enroll", "POST", "/points/residents/{resident}/enroll", OFFICE, "Enrol a resident"),
    Operation("points", "earn", "POST", "/points/residents/{resident}/earn", STAFF,
              "Award points for a verified activity"),
    Operation("points", "redeem", "POST", "/points/residents/{resident}/redeem", EVERYONE,
              "Redeem points for a catalogue item", own="resident"),
    Operation("points", "penalise", "POST", "/points/residents/{resident}/penalise", OFFICE, "Deduct points"),
    Operation("points", "balance", "GET", "/points/residents/{resident}/balance", EVERYONE, "A resident's balance",
              own="resident", present=lambda r, p: {"balance": r}),
    Operation("points", "history", "GET", "/points/residents/{resident}/history", EVERYONE,
              "A resident's points history", own="resident"),
    Operation("points", "catalogue", "GET", "/points/catalogue", EVERYONE, "What points buy"),
    # time bank
    Operation("timebank", "register", "POST", "/timebank/members", OFFICE, "Register a member", acting="by"),
    Operation("timebank", "record", "POST", "/timebank/records", EVERYONE,
              "Record help given (pending until the receiver confirms)", acting="by"),
    Operation("timebank", "confirm", "POST", "/timebank/records/{record}/confirm", EVERYONE,
              "Confirm help received", acting="by"),
    Operation("timebank", "cancel", "POST", "/timebank/records/{record}/cancel", EVERYONE,
              "Cancel a pending record", acting="by"),
    Operation("timebank", "dispute", "POST", "/timebank/records/{record}/dispute", EVERYONE,
              "Dispute a pending record", acting="by"),
    Operation("timebank", "resolve", "POST", "/timebank/records/{record}/resolve", OFFICE,
              "Resolve a dispute", acting="by"),
    Operation("timebank", "endow", "POST", "/timebank/members/{member}/endow", OFFICE,
              "Endow an elder from the endowment", acting="by"),
    Operation("timebank", "balance", "GET", "/timebank/members/{member}/balance", EVERYONE, "A member's balance",
              own="member", present=lambda r, p: {"balance": r}),
    Operation("timebank", "pending", "GET", "/timebank/records", EVERYONE, "Pending records (yours, or all for staff)"),
    # voting
    Operation("voting", "propose", "POST", "/voting/topics", EVERYONE, "Propose a topic (议事会)",
              acting="proposer", present=lambda r, p: {"id": r}),
    Operation("voting", "add_project", "POST", "/voting/topics/{topic}/projects", OFFICE,
              "Cost a participatory budget's next project", present=lambda r, p: {"option": r}),
    Operation("voting", "screen", "POST", "/voting/topics/{topic}/screen", OFFICE, "Screen a proposed topic",
              acting="screener"),
    Operation("voting", "notice", "POST", "/voting/topics/{topic}/notice", OFFICE, "Give notice of a topic"),
    Operation("voting", "open", "POST", "/voting/topics/{topic}/open", OFFICE, "Open a topic for voting"),
    Operation("voting", "cast", "POST", "/voting/topics/{topic}/ballots", frozenset({"resident"}),
              "Cast your ballot (secret)", acting="voter"),
    Operation("voting", "close", "POST", "/voting/topics/{topic}/close", OFFICE, "Close voting"),
    Operation("voting", "resolve", "POST", "/voting/topics/{topic}/resolve", OFFICE, "Count and decide",
              present=lambda r, p: _tally(r)),
    Operation("voting", "topic", "GET", "/voting/topics/{topic}", EVERYONE, "A topic's state and result"),
)


def _bind(op: Operation, principal: Principal, path: dict, body: dict) -> dict:
    args = {**path, **body, **op.fixed}
    if op.acting:
        named = args.get(op.acting)
        if named is None or not (op.on_behalf and principal.is_staff):
            args[op.acting] = principal.id
    return args


def _refuse(reason: Reason, what: str):
    raise EXCEPTIONS[reason](f"{what}: {reason.name}")


def call(op: Operation, services, principal: Principal, path: dict, body: dict, t: float):
    """Apply ``op`` for ``principal``: identity rules first, then the service's own method."""
    args = checked_args(op, services, principal, path, body, t)
    handler = _QUERIES.get(op.name)
    if handler is not None:
        result = handler(services, principal, **args)
    else:
        result = getattr(getattr(services, op.service), op.method)(**args)
    return presented(op, result, principal)


def checked_args(op: Operation, services, principal: Principal, path: dict, body: dict, t: float) -> dict:
    """The identity rules of ``op`` for ``principal`` (refused as ``Unauthorized``), then the method's arguments.

    The first half of :func:`call`, apart so that a run of commands applied with one batch call
    (:mod:`twin.live.batching`) passes the very same checks, command by command.
    """
    if principal.role not in op.roles:
        _refuse(Reason.Unauthorized, f"{op.name} is for {', '.join(sorted(op.roles))}, not a {principal.role}")
    args = _bind(op, principal, path, body)
    if not principal.is_staff:
        if op.own and args[op.own] != principal.id:
            _refuse(Reason.Unauthorized, f"{op.name} for {op.own} {args[op.own]} by resident {principal.id}")
    if op.owner is not None and not op.owner(services, principal, args):
        _refuse(Reason.Unauthorized, f"{op.name} on {path} by {principal.role} {principal.id}")
    if op.name not in _QUERIES and _takes_time(op.service, op.method):
        args["t"] = t
    return args


def presented(op: Operation, result, principal: Principal):
    """A method's result as ``op`` shows it to ``principal`` (the last step of :func:`call`)."""
    return op.present(result, principal) if op.present else result


# ---------------------------------------------------------- queries the object layer lacks in this shape
def _history(services, principal, resident):
    services.points.balance(resident)  # UnknownAccount for a stranger
    from twin.services.points import _FIRST_RESIDENT

    frame = services.points.ledger.history(resident + _FIRST_RESIDENT)
    return frame.to_dict(orient="records")


def _catalogue(services, principal):
    p = services.points
    return [{"item": i, "name": item.name, "cost": int(p.cost[i]), "stock": int(p.stock[i])}
            for i, item in enumerate(p.rules.catalog)]


def _pending(services, principal):
    from twin.services.timebank import MINUTES, PROVIDER, RECEIVER, STATUS, RecordStatus

    bank = services.timebank
    rec = bank.records[: bank.n_records]
    rows = np.flatnonzero(rec[:, STATUS] == RecordStatus.pending)
    mine = [int(r) for r in rows
            if principal.is_staff or principal.id in (int(rec[r, PROVIDER]), int(rec[r, RECEIVER]))]
    return [{"record": r, "provider": int(rec[r, PROVIDER]), "receiver": int(rec[r, RECEIVER]),
             "minutes": int(rec[r, MINUTES])} for r in mine]


def _topic(services, principal, topic):
    desk = services.voting
    state = desk.state(topic)
    out = {"topic": topic, "state": state}
    if state == "resolved":
        out["result"] = _tally(desk.result(topic))
    return out


_QUERIES = {"points.history": _history, "points.catalogue": _catalogue, "timebank.pending": _pending,
            "voting.topic": _topic}

"""Repair desk: tickets from submission to the resident's rating.

A ticket (报修) is submitted by a resident, a hotline operator, a grid worker or
a sensor; staff dispatch it to a worker, who starts and completes the work; the
reporter rates it once.  The lifecycle::

    submitted --dispatch--> dispatched --start--> in_progress --complete--> completed --rate--> rated
      ^   |                     |                                             |
      |   +--cancel--> cancelled <--cancel--+                                 |
      +---------------------- reopen (within the policy window) --------------+

    escalate (submitted, dispatched, in_progress): status unchanged, priority
    raised by the policy's step up to its maximum, escalation count + 1.

Every legal move is one entry of one table, ``TRANSITIONS[status, action]``
(the new status, or -1), and the kernel reads nothing else to decide legality.

Every refusal is a :class:`~twin.services.reasons.Reason`: a batch refuses
each command on its own, a single command raises the exception named after
it.  Checks run in this order, and the first failure is the command's reason:

1. Free text (single commands, before anything changes): a description,
   contact or comment longer than the policy's ``max_text_chars``
   (``TextTooLong``).  Then a category or channel given by name or member is
   resolved (``UnknownCategory``, ``UnknownKind``; ``NotAnInteger`` for a
   value that is neither a name nor an integer).
2. The form of each argument, in argument order (see
   :mod:`twin.services._inputs`): a ticket, worker, rating, category,
   building, unit, channel or priority that is not an integer
   (``NotAnInteger``: a rating of 4.5 is never stored as 4, a building ``"3"``
   is not 3); a reporter or actor that is not a person's id (``InvalidId``);
   a time that is not a finite number (``InvalidTime``).
3. A submission: a required field missing (``MissingField``: no category,
   i.e. ``NO_CATEGORY``, a building outside ``[0, MAX_BUILDING]``, a unit
   outside ``[0, LOCATION_BASE)``, no description); a category that is not a
   :class:`Category` (``UnknownCategory``); a channel that is not a
   :class:`Channel` or a priority outside ``0..max_priority`` (``UnknownKind``).
4. A move: unknown ticket (``UnknownTicket``); rating a rated ticket
   (``AlreadyRated``); a move the table forbids (``InvalidTransition``); a
   time before the ticket was submitted (``BeforeSubmission``; reopening
   submits it anew) or before it entered its current status
   (``InvalidTransition``: time runs forward per ticket, so waits are never
   negative); then the command's argument: a worker outside
   ``[0, n_workers)`` (``UnknownWorker``), a rating outside 1-5
   (``InvalidRating``), a reopen later than ``reopen_window_minutes`` after
   completion (``ReopenWindowExpired``).

Only ``has_description`` in :meth:`RepairDesk.submit_batch` is the calling
code's own column (a flag it computes, not a person's input): anything but
booleans there is a ``ValueError``, like batch columns of different lengths.
Every other column may carry what a person sent, so a bad value refuses its
own command only (the live server runs many people's requests as one batch).

Locations travel in events as one int64: ``location = building * LOCATION_BASE
+ unit`` (``LOCATION_BASE = 10_000``), so ``building, unit = divmod(location,
LOCATION_BASE)``.  Descriptions, comments and contact details stay in this
object's Python side tables: events carry ids only.

Batch methods run the module-level kernels, which take a :data:`Tickets` tuple
of arrays and scalars only, so the engine can call ``_submit`` and
``_transition`` from inside its own compiled loop.
"""
import contextlib
import math
from collections import namedtuple
from dataclasses import dataclass
from enum import IntEnum
from numbers import Integral, Real

import numpy as np

from twin._jit import kernel
from twin.services import events as ev
from twin.services._batch import Outcome, batch_length, column, grow
from twin.services._inputs import as_integer, integer, integers, person_ids, times
from twin.services.event_rows import put_event
from twin.services.events import Channel, EventKind
from twin.services.reasons import Reason, raise_for


class Category(IntEnum):
    """What is broken."""

    plumbing = 0
    electrical = 1
    elevator = 2
    public_area = 3
    gas = 4
    doors_windows = 5
    heating = 6
    greenery = 7
    security = 8
    other = 9


class Status(IntEnum):
    """Where a ticket is in its lifecycle."""

    submitted = 0
    dispatched = 1
    in_progress = 2
    completed = 3
    rated = 4
    cancelled = 5


class Action(IntEnum):
    """What a command does to an existing ticket (submission creates one)."""

    dispatch = 0
    start = 1
    complete = 2
    rate = 3
    cancel = 4
    reopen = 5
    escalate = 6


def _transition_table() -> np.ndarray:
    legal = {
        (Status.submitted, Action.dispatch): Status.dispatched,
        (Status.submitted, Action.cancel): Status.cancelled,
        (Status.submitted, Action.escalate): Status.submitted,
        (Status.dispatched, Action.start): Status.in_progress,
        (Status.dispatched, Action.cancel): Status.cancelled,
        (Status.dispatched, Action.escalate): Status.dispatched,
        (Status.in_progress, Action.complete): Status.completed,
        (Status.in_progress, Action.escalate): Status.in_progress,
        (Status.completed, Action.rate): Status.rated,
        (Status.completed, Action.reopen): Status.submitted,
    }
    table = np.full((len(Status), len(Action)), -1, np.int8)
    for (status, action), new_status in legal.items():
        table[status, action] = new_status
    table.flags.writeable = False
    return table


#: ``TRANSITIONS[status, action]``: the status after the action, or -1 when it is refused.
TRANSITIONS = _transition_table()

#: ``location = building * LOCATION_BASE + unit``; a unit must be below it.
LOCATION_BASE = 10_000
#: The highest building number whose locations fit in an int64.
MAX_BUILDING = int(np.iinfo(np.int64).max) // LOCATION_BASE - 1
#: The category of a submission that names none (refused with ``MissingField``).
NO_CATEGORY = -1
MIN_RATING, MAX_RATING = 1, 5
NO_WORKER = -1
NO_RATING = 0

#: The event kinds this desk emits and replays.
KINDS = frozenset({
    EventKind.TicketSubmitted, EventKind.TicketDispatched, EventKind.TicketStarted,
    EventKind.TicketCompleted, EventKind.TicketRated, EventKind.TicketCancelled,
    EventKind.TicketReopened, EventKind.TicketEscalated,
})
_EVENT_OF = {
    Action.dispatch: EventKind.TicketDispatched, Action.start: EventKind.TicketStarted,
    Action.complete: EventKind.TicketCompleted, Action.rate: EventKind.TicketRated,
    Action.cancel: EventKind.TicketCancelled, Action.reopen: EventKind.TicketReopened,
    Action.escalate: EventKind.TicketEscalated,
}
#: ``_EVENT_OF`` for compiled code: the event kind by action code.
_EVENT_KINDS = tuple(int(_EVENT_OF[a]) for a in Action)

#: The desk's state: one array per attribute, row = ticket id.  ``times[ticket, status]``
#: is when the ticket entered that status in its current cycle (NaN: not yet); the
#: ``in_progress`` column is when work started.
Tickets = namedtuple("Tickets", "status reporter category building unit channel "
                                "priority escalations reopens worker rating times")
_DTYPES = Tickets(np.int8, np.int64, np.int8, np.int64, np.int64, np.int8,
                  np.int64, np.int64, np.int64, np.int64, np.int8, np.float64)
_FILL = Tickets(0, 0, 0, 0, 0, 0, 0, 0, 0, NO_WORKER, NO_RATING, np.nan)
_TIME_NAMES = {Status.submitted: "submitted_at", Status.dispatched: "dispatched_at",
               Status.in_progress: "started_at", Status.completed: "completed_at",
               Status.rated: "rated_at", Status.cancelled: "cancelled_at"}

_N_CATEGORIES = len(Category)
_N_CHANNELS = len(Channel)  # channel codes run 0 .. len(Channel) - 1
_N_STATUSES = len(Status)
_SUBMITTED = int(Status.submitted)
_COMPLETED = int(Status.completed)
_RATED = int(Status.rated)
_DISPATCH = int(Action.dispatch)
_RATE = int(Action.rate)
_REOPEN = int(Action.reopen)
_ESCALATE = int(Action.escalate)
_START = int(Action.start)
_TICKET_SUBMITTED = int(EventKind.TicketSubmitted)
_COMPLETE = int(Action.complete)
_MISSING_FIELD = int(Reason.MissingField)
_UNKNOWN_TICKET = int(Reason.UnknownTicket)
_INVALID_TRANSITION = int(Reason.InvalidTransition)
_INVALID_RATING = int(Reason.InvalidRating)
_ALREADY_RATED = int(Reason.AlreadyRated)
_REOPEN_WINDOW_EXPIRED = int(Reason.ReopenWindowExpired)
_UNKNOWN_WORKER = int(Reason.UnknownWorker)
_BEFORE_SUBMISSION = int(Reason.BeforeSubmission)
_UNKNOWN_CATEGORY = int(Reason.UnknownCategory)
_UNKNOWN_KIND = int(Reason.UnknownKind)


@dataclass(frozen=True)
class RepairPolicy:
    """The desk's rules a planner may change; parameters only.

    Parameters
    ----------
    reopen_window_minutes : float
        How long after completion the ticket may still be reopened (the bound
        itself included).  Default one week.
    max_priority : int
        Priorities run from 0 to this; escalation stops here.
    escalation_step : int
        How much one escalation raises the priority.
    max_text_chars : int
        The longest description, contact or comment a single command accepts,
        in characters (``TextTooLong`` beyond).  Default 2,000: a long
        complaint fits, a pasted file does not.
    """

    reopen_window_minutes: float = 7 * 1440
    max_priority: int = 3
    escalation_step: int = 1
    max_text_chars: int = 2_000

    def __post_init__(self):
        window = self.reopen_window_minutes
        if isinstance(window, bool) or not isinstance(window, Real) or not (
                math.isfinite(window) and window >= 0):
            raise ValueError(f"RepairPolicy.reopen_window_minutes must be a finite number of "
                             f"minutes >= 0, got {window!r}")
        for name, lowest in (("max_priority", 0), ("escalation_step", 1), ("max_text_chars", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Integral) or value < lowest:
                raise ValueError(f"RepairPolicy.{name} must be an integer >= {lowest}, got {value!r}")


# --------------------------------------------------------------------- kernels
@kernel
def _submit(tickets, ticket, reporter, category, building, unit, channel, priority,
            has_description, t, max_priority):
    """Open row ``ticket`` (the next id) unless a field is missing or unknown; return the reason.

    The arrays must already have that row (``RepairDesk`` grows them before a batch).
    """
    if (category == NO_CATEGORY or building < 0 or building > MAX_BUILDING or unit < 0
            or unit >= LOCATION_BASE or not has_description):
        return _MISSING_FIELD
    if category < 0 or category >= _N_CATEGORIES:
        return _UNKNOWN_CATEGORY
    if channel < 0 or channel >= _N_CHANNELS or priority < 0 or priority > max_priority:
        return _UNKNOWN_KIND
    tickets.status[ticket] = _SUBMITTED
    tickets.reporter[ticket] = reporter
    tickets.category[ticket] = category
    tickets.building[ticket] = building
    tickets.unit[ticket] = unit
    tickets.channel[ticket] = channel
    tickets.priority[ticket] = priority
    tickets.escalations[ticket] = 0
    tickets.reopens[ticket] = 0
    tickets.worker[ticket] = NO_WORKER
    tickets.rating[ticket] = NO_RATING
    tickets.times[ticket, :] = np.nan
    tickets.times[ticket, _SUBMITTED] = t
    return 0


@kernel
def _submit_core(tickets, n_tickets, reporter, category, building, unit, channel, priority,
                 has_description, t, max_priority, reasons, ids, events, ne):
    """Submit in command order, numbering from ``n_tickets``: the batch method's core, and the
    engine's (``twin.engine.services_day``).

    Commands already refused by the input checks (``reasons[i] != 0``) keep their reason and
    touch nothing; an accepted one writes its ``TicketSubmitted`` event at row ``ne`` of
    ``events``.  Returns the new ticket count and the next event row.
    """
    for i in range(reporter.shape[0]):
        r = reasons[i]
        if r == 0:
            r = _submit(tickets, n_tickets, reporter[i], category[i], building[i], unit[i],
                        channel[i], priority[i], has_description[i], t[i], max_priority)
        reasons[i] = r
        if r == 0:
            ids[i] = n_tickets
            ne = put_event(events, ne, _TICKET_SUBMITTED, t[i], reporter[i], n_tickets,
                           building[i] * LOCATION_BASE + unit[i], priority[i], category[i], 0, channel[i])
            n_tickets += 1
        else:
            ids[i] = -1
    return n_tickets, ne


@kernel
def _transition(tickets, n_tickets, ticket, action, arg, t, n_workers, max_priority,
                escalation_step, reopen_window):
    """Apply ``action`` (an :class:`Action` code) to ``ticket`` at ``t``; return the reason.

    ``arg`` is the worker for ``dispatch``, the rating for ``rate``, unused
    otherwise.  ``n_workers < 0`` accepts any worker id >= 0.
    """
    if ticket < 0 or ticket >= n_tickets:
        return _UNKNOWN_TICKET
    status = tickets.status[ticket]
    if action == _RATE and status == _RATED:
        return _ALREADY_RATED
    new_status = TRANSITIONS[status, action]
    if new_status < 0:
        return _INVALID_TRANSITION
    if t < tickets.times[ticket, _SUBMITTED]:
        return _BEFORE_SUBMISSION
    if t < tickets.times[ticket, status]:
        return _INVALID_TRANSITION
    if action == _DISPATCH:
        if arg < 0 or (n_workers >= 0 and arg >= n_workers):
            return _UNKNOWN_WORKER
        tickets.worker[ticket] = arg
    elif action == _RATE:
        if arg < MIN_RATING or arg > MAX_RATING:
            return _INVALID_RATING
        tickets.rating[ticket] = arg
    elif action == _REOPEN:
        if t - tickets.times[ticket, _COMPLETED] > reopen_window:
            return _REOPEN_WINDOW_EXPIRED
        # A new cycle: waits are measured from the reopening; the old cycle stays in the log.
        tickets.times[ticket, :] = np.nan
        tickets.worker[ticket] = NO_WORKER
        tickets.reopens[ticket] += 1
    elif action == _ESCALATE:
        tickets.priority[ticket] = min(tickets.priority[ticket] + escalation_step, max_priority)
        tickets.escalations[ticket] += 1
        return 0  # same status: the time it was entered stays
    tickets.status[ticket] = new_status
    tickets.times[ticket, new_status] = t
    return 0


@kernel
def _transition_core(tickets, n_tickets, ticket, action, arg, actor, t, n_workers, max_priority,
                     escalation_step, reopen_window, reasons, events, ne):
    """Apply each command's ``action`` in command order: the batch methods' core, and the engine's
    (``twin.engine.services_day`` hands it a day's transitions, grouped by action, in one call).

    Commands already refused by the input checks (``reasons[i] != 0``) keep their reason and
    touch nothing.  An accepted one writes its event at row ``ne`` of ``events``: the worker
    dispatched (``target``), the worker who started or completed, the reporter and the rating,
    or the staff member (``actor``) and, for an escalation, the priority after it (``amount``).
    Returns the next event row.
    """
    for i in range(ticket.shape[0]):
        r = reasons[i]
        a = action[i]
        if r == 0:
            r = _transition(tickets, n_tickets, ticket[i], a, arg[i], t[i], n_workers,
                            max_priority, escalation_step, reopen_window)
        reasons[i] = r
        if r != 0:
            continue
        k = ticket[i]
        who, other, amount = actor[i], 0, 0
        if a == _DISPATCH:
            who, other = 0, arg[i]
        elif a == _START or a == _COMPLETE:
            who = tickets.worker[k]
        elif a == _RATE:
            who, amount = tickets.reporter[k], arg[i]
        elif a == _ESCALATE:
            amount = tickets.priority[k]
        ne = put_event(events, ne, _EVENT_KINDS[a], t[i], who, k, other, amount, 0, 0, 0)
    return ne


# ------------------------------------------------------------------ validation
def _member(enum, value, field: str):
    """``value`` (a member, its code, or its name; case, spaces and hyphens forgiven) as ``enum``.

    A value naming no member is refused with ``UnknownCategory`` (a :class:`Category`)
    or ``UnknownKind`` (any other enum); one that is neither text nor an integer
    with ``NotAnInteger``.
    """
    if isinstance(value, str):
        key = value.strip().lower().replace(" ", "_").replace("-", "_")
        if key in enum.__members__:
            return enum[key]
    else:
        code = integer(value, field)
        if code in enum._value2member_map_:
            return enum(code)
    unknown = Reason.UnknownCategory if enum is Category else Reason.UnknownKind
    raise_for(unknown, f"{field} must be one of {', '.join(enum.__members__)}, got {value!r}")


def _flag_column(field: str, values, n: int) -> np.ndarray:
    """Booleans (or 0/1); anything else is refused, since a shifted column would read as True."""
    flags = np.asarray(values)
    if flags.dtype != np.bool_ and not np.isin(flags, (0, 1)).all():
        raise ValueError(f"{field} must be booleans (or 0/1), got {flags.ravel()[:3].tolist()}")
    return column(flags, n, np.bool_)


def _positive_int(field: str, value) -> int:
    """A page or limit; digit strings (a REST query) are read as numbers."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{field} must be an integer >= 1, got {value!r}")
    return int(value)


def _or_none(value, missing):
    return None if value == missing else value


# ------------------------------------------------------------------------ desk
class RepairDesk:
    """Repair tickets.  ``*_batch`` methods take arrays; the rest are single commands.

    Parameters
    ----------
    log : EventLog, optional
        Where every accepted command's event is appended.
    policy : RepairPolicy
        Reopen window, priority range, escalation step.
    n_workers : int, optional
        The roster: workers are ids ``0 .. n_workers-1``, and dispatching to
        any other id is refused (``UnknownWorker``).  ``None`` accepts any id
        >= 0, for a caller that assigns its own staff (the twin's engine); a
        live desk is given its roster.  Ids are never reused, so a roster only
        grows, and replaying a log needs a roster at least as large.
    """

    def __init__(self, log=None, policy: RepairPolicy = RepairPolicy(), n_workers: int | None = None):
        if not isinstance(policy, RepairPolicy):
            raise TypeError(f"policy must be a RepairPolicy, got {type(policy).__name__}")
        if n_workers is not None and (isinstance(n_workers, bool) or not isinstance(n_workers, Integral)
                                      or n_workers < 0):
            raise ValueError(f"n_workers must be None (any worker) or an integer >= 0, got {n_workers!r}")
        self.log = log
        self.policy = policy
        self.n_workers = n_workers
        self.n_tickets = 0
        #: The arrays the kernels work on (capacity rows; the first ``n_tickets`` are tickets).
        self.state = Tickets._make(np.full((16, _N_STATUSES) if name == "times" else 16, fill, dtype)
                                   for name, fill, dtype in zip(Tickets._fields, _FILL, _DTYPES))
        self._rules = (-1 if n_workers is None else int(n_workers), int(policy.max_priority),
                       int(policy.escalation_step), float(policy.reopen_window_minutes))
        # Free text (description, contact, comment) is kept by the log beside the events
        # and committed with them (the live store puts it in its own table: events carry
        # ids only); a desk without a log keeps it here.
        self._details: dict[str, dict[int, str]] = log.details if log is not None else {}

    def _set_detail(self, ticket: int, field: str, text: str) -> None:
        if self.log is not None:
            self.log.detail(ticket, field, text)
        else:
            self._details.setdefault(field, {})[ticket] = text

    def _detail(self, ticket: int, field: str):
        return self._details.get(field, {}).get(ticket)

    # ---------------------------------------------------------------- batches
    def submit_batch(self, reporter, category, building, unit, channel, priority,
                     has_description=True, t=0.0) -> Outcome:
        """Open tickets in command order; ``ids`` are sequential from 0, -1 where refused.

        Each command is refused on its own (see the module docstring for the
        reasons and their order); ``has_description`` other than booleans is
        an error in the caller (``ValueError``).
        """
        n = batch_length(reporter, category, building, unit, channel, priority, has_description, t)
        reasons = np.zeros(n, np.int16)
        reporter = person_ids(reporter, n, reasons)
        category, building, unit, channel, priority = (
            integers(c, n, reasons) for c in (category, building, unit, channel, priority))
        has_description = _flag_column("has_description", has_description, n)
        t = times(t, n, reasons)
        ids, events = np.empty(n, np.int64), ev.empty(n)
        ne = self._submit_checked(reporter, category, building, unit, channel, priority, has_description, t,
                                  reasons, ids, events, 0)
        events = events[:ne]
        self._record(events)
        return Outcome(reasons, events, ids)

    def dispatch_batch(self, ticket, worker, t=0.0) -> Outcome:
        """Assign workers to submitted tickets."""
        return self._act(Action.dispatch, ticket, t, arg=worker)

    def start_batch(self, ticket, t=0.0) -> Outcome:
        """The assigned worker starts work on dispatched tickets."""
        return self._act(Action.start, ticket, t)

    def complete_batch(self, ticket, t=0.0) -> Outcome:
        """The assigned worker finishes work in progress."""
        return self._act(Action.complete, ticket, t)

    def rate_batch(self, ticket, rating, t=0.0) -> Outcome:
        """The reporters rate completed tickets, 1-5, once."""
        return self._act(Action.rate, ticket, t, arg=rating)

    def cancel_batch(self, ticket, actor, t=0.0) -> Outcome:
        """Cancel tickets not yet started."""
        return self._act(Action.cancel, ticket, t, actor=actor)

    def reopen_batch(self, ticket, actor, t=0.0) -> Outcome:
        """Send completed tickets back to ``submitted`` within the policy's window."""
        return self._act(Action.reopen, ticket, t, actor=actor)

    def escalate_batch(self, ticket, actor, t=0.0) -> Outcome:
        """Raise the priority of open tickets (status unchanged)."""
        return self._act(Action.escalate, ticket, t, actor=actor)

    def _act(self, action: Action, ticket, t, arg=0, actor=0) -> Outcome:
        n = batch_length(ticket, t, arg, actor)
        reasons = np.zeros(n, np.int16)
        ticket = integers(ticket, n, reasons)
        arg = integers(arg, n, reasons)
        actor = person_ids(actor, n, reasons)
        t = times(t, n, reasons)
        events = ev.empty(n)
        ne = self._transition_checked(ticket, np.full(n, int(action), np.int64), arg, actor, t, reasons, events, 0)
        events = events[:ne]
        self._record(events)
        return Outcome(reasons, events)

    def _submit_checked(self, reporter, category, building, unit, channel, priority, has_description, t, reasons,
                        ids, events, ne) -> int:
        """Open tickets for the commands the input checks passed (``reasons == 0``; int64, bool and
        float64 columns) through the compiled core: ``ids[i]`` the new ticket (-1 when refused), its
        event written from row ``ne`` of ``events``; returns the next row.  :meth:`submit_batch`
        and the engine's day (``twin.engine.services_day``) both come here."""
        self._reserve(self.n_tickets + len(t))
        n_tickets, ne = _submit_core(self.state, self.n_tickets, reporter, category, building, unit, channel,
                                     priority, has_description, t, self.policy.max_priority, reasons, ids, events, ne)
        self.n_tickets = int(n_tickets)
        return ne

    def _transition_checked(self, ticket, action, arg, actor, t, reasons, events, ne) -> int:
        """Checked transitions (an :class:`Action` code per row) through the compiled core, as
        :meth:`_submit_checked` opens tickets; returns the next event row."""
        return _transition_core(self.state, self.n_tickets, ticket, action, arg, actor, t, *self._rules, reasons,
                                events, ne)

    def _record(self, events: np.ndarray) -> None:
        if self.log is not None:
            self.log.append(events)

    def _unit(self):
        """One durable unit for a command's event and its free text (see ``EventLog.unit``)."""
        return self.log.unit() if self.log is not None else contextlib.nullcontext()

    def _reserve(self, need: int) -> None:
        if need > len(self.state.status):
            self.state = Tickets._make(grow(a, need, fill) for a, fill in zip(self.state, _FILL))

    # --------------------------------------------------------- single commands
    def submit(self, category=None, description=None, building=None, unit=None, channel="app",
               priority=1, contact=None, reporter=0, t=0.0) -> int:
        """Open one ticket and return its id; raises ``MissingField`` naming what is required.

        ``category`` and ``channel`` take members, codes or names (``"public area"``).
        ``description`` and ``contact`` stay in this desk's side tables, never in events.
        """
        self._check_text(description=description, contact=contact)
        category_code = NO_CATEGORY if category is None else int(_member(Category, category, "category"))
        has_description = isinstance(description, str) and bool(description.strip())
        what = (f"submit ticket (required: category, description, building, unit with "
                f"0 <= unit < {LOCATION_BASE}; got category={category!r}, building={building!r}, "
                f"unit={unit!r}, description {'given' if has_description else 'missing'})")
        with self._unit():  # the ticket and its free text are durable together or not at all
            ticket = self.submit_batch(
                [reporter], [category_code], [-1 if building is None else building],
                [-1 if unit is None else unit], [int(_member(Channel, channel, "channel"))], [priority],
                [has_description], [t]).single(what)
            self._set_detail(ticket, "description", description)
            if contact is not None:
                self._set_detail(ticket, "contact", contact)
        return ticket

    def dispatch(self, ticket: int, worker: int, t: float = 0.0) -> None:
        """Assign ``worker``; raises ``InvalidTransition``, ``UnknownWorker``, ... when refused."""
        self._single(Action.dispatch, ticket, t, arg=worker, detail=f" to worker {worker}")

    def start(self, ticket: int, t: float = 0.0) -> None:
        self._single(Action.start, ticket, t)

    def complete(self, ticket: int, t: float = 0.0) -> None:
        self._single(Action.complete, ticket, t)

    def rate(self, ticket: int, rating: int, comment: str = "", t: float = 0.0) -> None:
        """Rate once, after completion; the comment stays in this desk's side table."""
        self._check_text(comment=comment)
        with self._unit():
            self._single(Action.rate, ticket, t, arg=rating,
                         detail=f" with {rating} (allowed {MIN_RATING}-{MAX_RATING})")
            if comment:
                self._set_detail(ticket, "comment", comment)

    def cancel(self, ticket: int, actor: int = 0, t: float = 0.0) -> None:
        self._single(Action.cancel, ticket, t, actor=actor)

    def reopen(self, ticket: int, actor: int = 0, t: float = 0.0) -> None:
        self._single(Action.reopen, ticket, t, actor=actor,
                     detail=f" (window {self.policy.reopen_window_minutes} minutes after completion)")

    def escalate(self, ticket: int, actor: int = 0, t: float = 0.0) -> None:
        self._single(Action.escalate, ticket, t, actor=actor)

    def _single(self, action: Action, ticket, t, arg=0, actor=0, detail: str = "") -> None:
        code = as_integer(ticket)
        known = code is not None and 0 <= code < self.n_tickets
        status = Status(self.state.status[code]).name if known else "unknown"
        self._act(action, [ticket], [t], [arg], [actor]).single(
            f"{action.name} ticket {ticket} ({status}) at t={t}{detail}")

    def _check_text(self, **texts) -> None:
        """Refuse free text over the policy's limit (``TextTooLong``), before anything changes."""
        limit = self.policy.max_text_chars
        for field, text in texts.items():
            size = 0 if text is None else len(text if isinstance(text, str) else str(text))
            if size > limit:
                raise_for(Reason.TextTooLong, f"{field} of {size:,} characters (at most {limit:,})")

    # ----------------------------------------------------------------- queries
    def get(self, ticket: int) -> dict:
        """Everything known about one ticket; raises ``UnknownTicket``."""
        ticket = integer(ticket, "ticket")
        if not 0 <= ticket < self.n_tickets:
            raise_for(Reason.UnknownTicket, f"get ticket {ticket}")
        s = self.state
        times = s.times[ticket]
        return {
            "id": ticket,
            "status": Status(s.status[ticket]).name,
            "category": Category(s.category[ticket]).name,
            "description": self._detail(ticket, "description"),
            "building": int(s.building[ticket]),
            "unit": int(s.unit[ticket]),
            "location": int(s.building[ticket]) * LOCATION_BASE + int(s.unit[ticket]),
            "channel": Channel(s.channel[ticket]).name,
            "priority": int(s.priority[ticket]),
            "escalations": int(s.escalations[ticket]),
            "reopens": int(s.reopens[ticket]),
            "reporter": int(s.reporter[ticket]),
            "contact": self._detail(ticket, "contact"),
            "worker": _or_none(int(s.worker[ticket]), NO_WORKER),
            "rating": _or_none(int(s.rating[ticket]), NO_RATING),
            "comment": self._detail(ticket, "comment"),
            **{name: None if math.isnan(times[status]) else float(times[status])
               for status, name in _TIME_NAMES.items()},
        }

    def snapshot(self) -> dict[str, np.ndarray]:
        """Copies of every state array, trimmed to the tickets (side-table text excluded)."""
        return {name: a[: self.n_tickets].copy() for name, a in zip(Tickets._fields, self.state)}

    def replay(self, events: np.ndarray) -> None:
        """Re-execute this desk's own events (other kinds are skipped) through the batch methods.

        Replay into a desk with the same policy and workers, normally a fresh
        one; a run that does not reproduce its logged events exactly is a
        ``ValueError`` (a log from other rules, or one already applied).
        """
        for kind, rows in ev.runs(events):
            if kind not in KINDS:
                continue
            if kind == EventKind.TicketSubmitted:
                building, unit = np.divmod(rows["target"], LOCATION_BASE)
                outcome = self.submit_batch(rows["actor"], rows["code"], building, unit,
                                            rows["channel"], rows["amount"], True, rows["t"])
            elif kind == EventKind.TicketDispatched:
                outcome = self.dispatch_batch(rows["subject"], rows["target"], rows["t"])
            elif kind == EventKind.TicketStarted:
                outcome = self.start_batch(rows["subject"], rows["t"])
            elif kind == EventKind.TicketCompleted:
                outcome = self.complete_batch(rows["subject"], rows["t"])
            elif kind == EventKind.TicketRated:
                outcome = self.rate_batch(rows["subject"], rows["amount"], rows["t"])
            elif kind == EventKind.TicketCancelled:
                outcome = self.cancel_batch(rows["subject"], rows["actor"], rows["t"])
            elif kind == EventKind.TicketReopened:
                outcome = self.reopen_batch(rows["subject"], rows["actor"], rows["t"])
            else:
                outcome = self.escalate_batch(rows["subject"], rows["actor"], rows["t"])
            if not np.array_equal(outcome.events, rows):
                raise ValueError(f"replaying {len(rows)} {kind.name} events did not reproduce them "
                                 f"(refused: {outcome.counts()}); replay into a fresh desk with "
                                 f"the policy that wrote the log")

    def list(self, status=None, page=1, limit=10) -> dict:
        """Tickets in submission order, optionally of one status, a page at a time.

        Returns ``{"total", "page", "limit", "data"}`` where ``total`` counts all
        matching tickets and ``data`` holds :meth:`get` dicts of the page.
        """
        page = _positive_int("page", page)
        limit = _positive_int("limit", limit)
        statuses = self.state.status[: self.n_tickets]
        matching = (np.arange(self.n_tickets) if status is None
                    else np.flatnonzero(statuses == _member(Status, status, "status")))
        chosen = matching[(page - 1) * limit : page * limit]
        return {"total": len(matching), "page": page, "limit": limit,
                "data": [self.get(int(i)) for i in chosen]}

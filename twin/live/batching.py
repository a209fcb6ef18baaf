"""Runs of one operation applied with one call of its service's batch method, answered as one by one.

The services are batch-first: ``Points.earn`` is ``earn_batch`` with a batch of
one, plus the lookups before it (an activity's name) and the reading of its
outcome after it (the refusal raised with its message, the points awarded).
When the group commit (:mod:`twin.live.committer`) finds requests for the same
operation side by side, this module applies them with ONE call of that batch
method, and still answers each exactly as :func:`twin.live.app._answer` would
alone, with no rule of the service written a second time: each command's single
method is *played* on a stand-in for its service, twice.

1. Up to its batch call: the stand-in records the call's arguments (the
   command's row) and stops it there.  What the method refuses before that
   (an unknown activity's name) is that command's refusal.
2. After the one batch call over every row: the method runs again, and the
   stand-in answers its batch call with that command's own row of the outcome
   (its reason and its event), so the method raises or returns what it would
   have alone.

This holds because a batch method applies its rows in order, each seeing the
ones before it (the services guarantee it), and because what these single
methods do before their batch call reads only the rules table, which no command
changes.  Everything around the service call is shared with ``_answer``: the
caller's token looked up per command, the identity rules (:func:`checked_args`),
the ``Idempotency-Key`` answers kept in the same transaction and in command
order.  A command with the key of one already in the run is a retry: the run
is applied first, so the retry finds the first try's answer.  A command whose
values are not plain scalars (a list where a number belongs) is applied alone,
in its place.
"""
from dataclasses import dataclass, field

import numpy as np

from twin.live import accounts as acc
from twin.live.app import _answer, check_unicode, idempotency_field, keep_answer, kept_answer, succeeded
from twin.live.operations import checked_args, presented
from twin.live.problems import refusal
from twin.services._batch import Outcome
from twin.services.reasons import ServiceError

#: Operations applied in runs, and the batch method their single method calls, once.  Each of these
#: batch methods emits one event per accepted command and nothing for a refused one.
BATCH_METHODS = {"points.earn": "earn_batch", "points.redeem": "redeem_batch",
                 "points.penalise": "penalise_batch", "timebank.record": "record_batch",
                 "timebank.confirm": "confirm_batch"}

_PLAIN = (int, float, str, bool, type(None), np.generic)


class OperationCommand:
    """An operation request as a command of the group commit.

    Alone, ``command(services)`` is ``(status, content)`` as :func:`~twin.live.app._answer` gives it
    (``(401, None)`` when ``token`` has no account).  Commands with the same ``run_key`` (not None)
    side by side in a batch may be applied together by :meth:`apply_run`.
    ``who``: the caller, known already; else ``token``: looked up inside the writer, per command.
    ``clock()``: the live time, read when the command is applied.
    """

    __slots__ = ("op", "args", "payload", "key", "clock", "who", "token", "run_key")

    def __init__(self, op, args: dict, payload: dict, key, clock, *, who=None, token=None):
        if (who is None) == (token is None):
            raise ValueError("an operation command takes either who or token")
        self.op, self.args, self.payload, self.key, self.clock = op, args, payload, key, clock
        self.who, self.token = who, token
        # an ``owner`` check reads the state a run changes (a ticket's reporter): such operations go alone
        self.run_key = op.name if op.name in BATCH_METHODS and op.owner is None else None

    def principal(self, services):
        return self.who if self.token is None else acc.principal_for(services, self.token)

    def __call__(self, services):
        who = self.principal(services)
        if who is None:
            return 401, None
        return _answer(services, self.op, who, self.args, self.payload, self.clock(), self.key)

    @staticmethod
    def apply_run(services, commands, tally) -> list:
        """Apply ``commands`` (one ``run_key``, in arrival order); their answers, as each alone would get.

        ``tally["runs"]``, ``tally["commands"]``: batch calls made for two commands or more, and their commands.
        """
        return apply_run(services, commands, tally)


def apply_run(services, commands, tally) -> list:
    """See :meth:`OperationCommand.apply_run`."""
    op = commands[0].op
    run = _Run(services, op, tally)
    answers = [None] * len(commands)
    for i, command in enumerate(commands):
        who = command.principal(services)
        if who is None:
            answers[i] = (401, None)
            continue
        t = command.clock()  # read when alone it would be: before the kept answer is looked up
        key = idempotency_field(op, who, command.args, command.key)
        if key is not None and key in run.keys:
            run.flush(answers)  # a retry: its first try's answer is kept before it looks
        kept = kept_answer(services, key)
        if kept is not None:
            answers[i] = kept
            continue
        try:
            check_unicode(command.payload)
            args = checked_args(op, services, who, command.args, command.payload, t)
            row = run.row_of(args)
        except (ServiceError, ValueError) as refused:
            run.add(_Entry(i, key, who, answer=refusal(refused)), answers)
            continue
        if row is None:
            run.flush(answers)
            answers[i] = _answer(services, op, who, command.args, command.payload, t, command.key)
        else:
            run.add(_Entry(i, key, who, args=args, row=row), answers)
    run.flush(answers)
    return answers


@dataclass
class _Row:
    """One command's arguments to the batch method (each column's one value), positional and named."""

    values: tuple
    named: dict

    @property
    def shape(self):
        return len(self.values), tuple(sorted(self.named))


@dataclass
class _Entry:
    index: int
    key: str | None
    who: object
    args: dict | None = None
    row: _Row | None = None
    answer: tuple | None = None
    outcome: Outcome | None = None


@dataclass
class _Run:
    """The commands of a run not yet applied: refused ones (answer known) and rows for one batch call."""

    services: object
    op: object
    tally: object
    entries: list = field(default_factory=list)
    keys: set = field(default_factory=set)
    shape: tuple | None = None  # the queued rows' (see _Row.shape)

    def __post_init__(self):
        self.service = getattr(self.services, self.op.service)
        self.single = getattr(type(self.service), self.op.method)
        self.batch_method = BATCH_METHODS[self.op.name]

    def row_of(self, args: dict) -> _Row | None:
        """Play the single method up to its batch call: that call's row, or None if it is not one row of
        plain values (then the command is applied alone).  Raises what the method refuses before it."""
        calls = []

        def record(*columns, **named):
            calls.append((columns, named))
            raise _Recorded

        try:
            self.single(_StandIn(self.service, self.batch_method, record), **args)
        except _Recorded:
            pass
        if len(calls) != 1:
            return None
        columns, named = calls[0]
        if not all(_one_plain(c) for c in (*columns, *named.values())):
            return None
        return _Row(tuple(c[0] for c in columns), {k: v[0] for k, v in named.items()})

    def add(self, entry: _Entry, answers: list) -> None:
        """Queue ``entry``; a row in another shape than the queued ones applies those first."""
        if entry.row is not None:
            shape = entry.row.shape
            if self.shape is not None and shape != self.shape:
                self.flush(answers)
            self.shape = shape
        self.entries.append(entry)
        if entry.key is not None:
            self.keys.add(entry.key)

    def flush(self, answers: list) -> None:
        """Apply the rows with one batch call, then answer every entry in order, each answer kept under its key."""
        rows = [e for e in self.entries if e.row is not None]
        for entry, outcome in zip(rows, self._batch([e.row for e in rows])):
            entry.outcome = outcome
        for entry in self.entries:
            if entry.answer is None:
                try:
                    entry.answer = succeeded(self.op, presented(self.op, self._read(entry), entry.who))
                except (ServiceError, ValueError) as refused:
                    entry.answer = refusal(refused)
            answers[entry.index] = keep_answer(self.services, self.op, entry.key, entry.answer)
        self.entries, self.keys, self.shape = [], set(), None

    def _batch(self, rows: list) -> list:
        """One call of the batch method over ``rows``; each row's own outcome, as a batch of one."""
        if not rows:
            return []
        columns = [list(c) for c in zip(*(r.values for r in rows))]
        named = {k: [r.named[k] for r in rows] for k in rows[0].named}
        outcome = getattr(self.service, self.batch_method)(*columns, **named)
        accepted = outcome.reasons == 0
        if len(outcome.reasons) != len(rows) or len(outcome.events) != int(accepted.sum()):
            raise RunMismatch(f"{self.op.name}: {self.batch_method} did not give one event per accepted row")
        if len(rows) > 1:
            self.tally["runs"] += 1
            self.tally["commands"] += len(rows)
        event = np.cumsum(accepted) - 1
        return [Outcome(outcome.reasons[i:i + 1],
                        outcome.events[event[i]:event[i] + 1] if accepted[i] else outcome.events[:0],
                        None if outcome.ids is None else outcome.ids[i:i + 1])
                for i in range(len(rows))]

    def _read(self, entry: _Entry):
        """Play the single method again, its batch call answered by the command's own row of the outcome."""
        return self.single(_StandIn(self.service, self.batch_method, lambda *a, **k: entry.outcome), **entry.args)


class RunMismatch(RuntimeError):
    """A batch method did not answer row by row as this module relies on: a bug (the committer applies each alone)."""


class _Recorded(Exception):
    """Stops a single method at its batch call once the call's arguments are recorded."""


class _StandIn:
    """A service as its single method sees it while played: the batch call is ``answer``'s, the rest the service's.

    Setting an attribute is refused: a single method that changed its service outside the batch
    call could not be played (the committer would apply its commands alone).
    """

    __slots__ = ("_service", "_name", "_answer")

    def __init__(self, service, name: str, answer):
        object.__setattr__(self, "_service", service)
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_answer", answer)

    def __getattr__(self, name):
        return self._answer if name == self._name else getattr(self._service, name)

    def __setattr__(self, name, value):
        raise RunMismatch(f"a played single method set {name!r} on its service")


def _one_plain(column) -> bool:
    """Whether a batch argument is a list of one plain value (what concatenates into a column unchanged)."""
    return isinstance(column, (list, tuple)) and len(column) == 1 and isinstance(column[0], _PLAIN)

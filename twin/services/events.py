"""The one event schema every service (and the engine) emits, and the log.

Events are the record.  Each accepted command emits exactly one event, whose
columns carry everything needed to re-execute it, so replaying a log through
the services reproduces their state exactly (see ``Services.replay``).

Columns (all numeric; events carry ids, never names or free text):

==========  =======  ==========================================================
``t``       float64  simulated or wall time, minutes
``kind``    int16    :class:`EventKind`
``reason``  int16    a :class:`~twin.services.reasons.Reason`, for kinds that
                     record one (penalty shortfalls, refusals the engine logs)
``channel`` int8     :class:`Channel` the command came through
``actor``   int64    who acted (resident, member, worker, account)
``subject`` int64    what it acted on (ticket, record, topic, occurrence)
``target``  int64    the other party (destination account, receiver, worker,
                     location)
``amount``  int64    points, minutes, priority, rating ... (per kind)
``code``    int64    a category, activity, item, role, method or packed ballot
``extra``   int64    a second quantity (units, shortfall, flag) per kind
==========  =======  ==========================================================

Each :class:`EventKind` member's docstring-style comment names what its columns
mean.
"""
from contextlib import contextmanager
from enum import IntEnum

import numpy as np

EVENT_DTYPE = np.dtype(
    [
        ("t", "f8"),
        ("kind", "i2"),
        ("reason", "i2"),
        ("channel", "i1"),
        ("actor", "i8"),
        ("subject", "i8"),
        ("target", "i8"),
        ("amount", "i8"),
        ("code", "i8"),
        ("extra", "i8"),
    ]
)
FIELDS = EVENT_DTYPE.names


class Channel(IntEnum):
    """How a command reached a service."""

    system = 0
    app = 1
    hotline = 2
    grid_worker = 3
    sensor = 4
    offline = 5


class EventKind(IntEnum):
    # ledger: actor=account, code=account kind, amount=floor
    AccountOpened = 1
    # ledger: actor=source, target=destination, amount
    Transferred = 2
    # ledger: target=account, amount=new floor
    FloorChanged = 3
    # points: actor=resident, subject=occurrence, code=activity, amount=points, extra=units
    PointsEarned = 10
    # points: actor=resident, code=item, amount=cost
    PointsRedeemed = 11
    # points: actor=resident, code=cause, amount=applied, extra=shortfall
    PointsPenalised = 12
    # points: code=item, amount=added stock
    ItemRestocked = 13
    # points: actor=resident (an account opened with floor 0)
    ResidentEnrolled = 14
    # time bank: actor=who registered, target=member, code=role, extra=household, amount=floor
    MemberRegistered = 20
    # time bank: actor=who recorded, extra=provider, target=receiver, subject=record,
    # amount=minutes, code=service kind
    ServiceRecorded = 21
    # time bank: actor=who confirmed, subject=record, amount=minutes
    ServiceConfirmed = 22
    # time bank: actor=who cancelled, subject=record
    ServiceCancelled = 23
    # time bank: actor=who disputed, subject=record
    ServiceDisputed = 24
    # time bank: actor=coordinator, subject=record, extra=1 upheld (transfer) / 0 rejected
    DisputeResolved = 25
    # time bank: actor=admin, target=member, amount=floor
    MemberFloorSet = 26
    # time bank: actor=admin, target=elder, amount=minutes from the endowment
    Endowed = 27
    # time bank: actor=giver, target=family member, amount=minutes
    FamilyTransferred = 28
    # time bank: actor=admin, target=coordinator made a plain member again, code=new role
    RoleRevoked = 29
    # time bank: actor=old admin (retired), target=new admin
    AdminRotated = 30
    # repair: actor=reporter, subject=ticket, target=location, code=category, amount=priority
    TicketSubmitted = 40
    # repair: subject=ticket, target=worker
    TicketDispatched = 41
    # repair: subject=ticket
    TicketStarted = 42
    # repair: subject=ticket
    TicketCompleted = 43
    # repair: actor=reporter, subject=ticket, amount=rating (1-5)
    TicketRated = 44
    # repair: actor=who, subject=ticket
    TicketCancelled = 45
    # repair: actor=who, subject=ticket
    TicketReopened = 46
    # repair: actor=who, subject=ticket, amount=new priority
    TicketEscalated = 47
    # voting: actor=proposer, subject=topic, code=method, amount=number of options, extra=budget
    TopicProposed = 60
    # voting: actor=screener, subject=topic, extra=1 passed / 0 rejected
    TopicScreened = 61
    # voting: subject=topic, amount=notice minutes
    TopicNoticed = 62
    # voting: subject=topic
    TopicOpened = 63
    # voting: subject=topic, amount=eligible voters, extra=ballots counted
    TopicClosed = 64
    # voting: subject=topic, code=winner (-1 tie or none), extra=1 if carried
    TopicResolved = 65
    # voting: actor=voter, subject=topic (the ballot itself stays sealed until close: BallotCounted)
    BallotCast = 66
    # voting: subject=topic, code=option, amount=cost (participatory budget project)
    ProjectAdded = 67
    # voting: actor=voter, target=household, code=1 adult / 0 not (the electorate)
    VoterRegistered = 68
    # voting: subject=topic, code=packed preferences; one per counted ballot, published at close
    # in code order, so no ballot can be linked to the voter who cast it
    BallotCounted = 69
    # engine: actor=sensor/household, subject=alert id, code=alert type
    AlertRaised = 80
    # engine: actor=worker, subject=alert id
    AlertAttended = 81
    # engine: actor=household, code=ground-truth incident type (hidden from detectors)
    IncidentStarted = 82


def empty(n: int = 0) -> np.ndarray:
    """A zeroed event array of length ``n``."""
    return np.zeros(n, dtype=EVENT_DTYPE)


#: The columns :func:`make` fills, in its keyword order (``kind`` apart).
_MADE = ("t", "actor", "subject", "target", "amount", "code", "extra", "reason", "channel")


def make(kind, t, *, actor=0, subject=0, target=0, amount=0, code=0, extra=0,
         reason=0, channel=0) -> np.ndarray:
    """Build events column by column; scalars broadcast against arrays."""
    values = (t, actor, subject, target, amount, code, extra, reason, channel)
    ev = empty(common_length(values, "event"))
    ev["kind"] = kind
    for name, value in zip(_MADE, values):
        if not (type(value) is int and value == 0):  # the array is zeroed: a column of 0 is there already
            ev[name] = value
    return ev


def common_length(columns, what: str) -> int:
    """The length the array columns share (1 when all are scalars); raises naming the lengths otherwise."""
    n = None
    for value in columns:
        size = column_length(value)
        if size is None or size == n:
            continue
        if n is not None:
            sizes = {column_length(v) for v in columns} - {None}
            raise ValueError(f"{what} columns differ in length: {sorted(sizes)}")
        n = size
    return 1 if n is None else n


_SCALAR_TYPES = frozenset((int, float, bool, str, type(None)))


def column_length(value):
    """An array column's length, or None for a scalar (which broadcasts).  The engine and the
    services make thousands of small batches a day, so the common types skip ``np.ndim``."""
    if type(value) is np.ndarray:
        return value.size if value.ndim > 0 else None
    if type(value) in _SCALAR_TYPES or isinstance(value, (int, float, np.generic)):
        return None
    return np.size(value) if np.ndim(value) > 0 else None


class WriteFailed(RuntimeError):
    """A command could not be made durable; nothing of it was kept, so it can be retried.

    Raised by :class:`EventLog` when a sink (the live store) fails: a full disk,
    an I/O error, a lock.  The services have been rolled back to the log's
    committed state before this is raised, so memory still equals the store.
    """


class EventLog:
    """An append-only log of events, with free-text details, and optional durable sinks.

    ``append`` hands each batch to every sink (the SQLite store commits it)
    before it keeps it, so a caller that acknowledges after ``append`` never
    acknowledges something that is not durable.  Inside :meth:`unit`, the
    events and details of several calls are held back and reach the sinks
    together, in one call (one transaction), when the unit ends.

    A failed write, or an error inside a unit after something was appended,
    runs the ``on_failure`` callbacks (the services rebuild their state from
    the committed log) so that memory always equals what the sinks hold.

    Sinks are called as ``sink(events, details)`` with ``details`` a list of
    ``(subject, field, text)``: the free text some commands keep beside their
    events (events carry ids only).
    """

    def __init__(self, capacity: int = 1024):
        self._buf = empty(capacity)
        self._rows = _as_rows(self._buf)  # the same memory as bytes, one row an event (see _keep)
        self._n = 0
        self.sinks = []
        self.on_failure = []
        #: Committed free text: ``details[field][subject] = text``.
        self.details: dict[str, dict[int, str]] = {}
        self._pending = None  # (event batches, details) while a unit is open
        self._captured = None  # a list that takes appends instead (see :meth:`capture`)

    def __len__(self) -> int:
        return self._n

    def append(self, events: np.ndarray) -> None:
        if len(events) == 0:
            return
        if self._captured is not None:
            self._captured.append(events.copy())
        elif self._pending is not None:
            self._pending[0].append(events.copy())
        elif not self.sinks:  # nothing durable to write: kept at once (the twin's thousands of batches)
            self._keep(events)
        else:
            self._commit([events], [])

    def detail(self, subject: int, field: str, text: str | None) -> None:
        """Keep a free-text detail of ``subject`` (None erases it), committed with the events around it."""
        row = (int(subject), str(field), None if text is None else str(text))
        if self._captured is not None:
            return  # replay: details are restored from the store, not re-made
        if self._pending is not None:
            self._pending[1].append(row)
        else:
            self._commit([], [row])

    def detail_many(self, rows) -> None:
        """Keep many ``(subject, field, text)`` details at once, as :meth:`detail` keeps each (the
        sealed ballots of a batch: thousands a day).  Rows must already be ``(int, str, str | None)``."""
        if self._captured is not None:
            return  # replay: details are restored from the store, not re-made
        if self._pending is not None:
            self._pending[1].extend(rows)
        else:
            self._commit([], list(rows))

    @contextmanager
    def unit(self):
        """Make the appends and details inside one durable unit: all of them or none.

        Nested units join the outermost one.  If the body raises, nothing it
        appended is kept (and the services roll back when something was).
        """
        if self._pending is not None or self._captured is not None:
            yield
            return
        self._pending = pending = ([], [])
        try:
            yield
        except BaseException:
            self._pending = None
            if pending[0] or pending[1]:
                self._fail()
            raise
        self._pending = None
        self._commit(*pending)

    @contextmanager
    def capture(self):
        """Collect what is appended in the body into the yielded list, bypassing sinks and memory.

        Replay uses it to compare what the services re-emit with the log.
        """
        outer, self._captured = self._captured, []
        try:
            yield self._captured
        finally:
            self._captured = outer

    def restore(self, events: np.ndarray, details=()) -> None:
        """Keep already-durable events and details in memory without writing them again."""
        self._keep(events)
        self._keep_details([(int(subject), field, text) for subject, field, text in details])

    def detail_of(self, subject: int, field: str):
        """A detail's text as this unit sees it: its own pending writes first, then what is committed."""
        if self._pending is not None:
            for s, f, text in reversed(self._pending[1]):
                if s == subject and f == field:
                    return text
        return self.details.get(field, {}).get(subject)

    def detail_rows(self) -> list[tuple]:
        """The committed details as ``(subject, field, text)`` rows (what ``Services.replay`` takes)."""
        return [(subject, field, text) for field, texts in self.details.items() for subject, text in texts.items()]

    def clear(self) -> None:
        """Forget the events in memory (details stay; see ``Services``' rollback)."""
        self._n = 0

    def _commit(self, batches, details) -> None:
        if len(batches) == 1 and not self.sinks:
            events = batches[0]  # kept by copy below; a sink gets a copy of its own (the caller may reuse the array)
        else:
            events = join_records(batches, EVENT_DTYPE) if batches else empty()
        if len(events) == 0 and not details:
            return
        try:
            for sink in self.sinks:
                sink(events, details)
        except Exception as exc:
            self._fail()
            raise WriteFailed(f"the command was not recorded ({type(exc).__name__}: {exc}); "
                              "nothing of it was kept, so it can be retried") from exc
        self._keep(events)
        self._keep_details(details)

    def _fail(self) -> None:
        for callback in self.on_failure:
            callback()

    def reserve(self, n: int) -> None:
        """Room for ``n`` events in all, made now: a run that knows about how many events it will
        log skips the copies of growing (the whole log again at each doubling, into memory never
        touched before, which on some machines costs more than writing the events)."""
        if n > len(self._buf):
            self._grow(n)

    def _grow(self, capacity: int) -> None:
        grown = empty(capacity)  # zeroed lazily by the system: pages cost only once written
        rows = _as_rows(grown)
        rows[: self._n] = self._rows[: self._n]
        self._buf, self._rows = grown, rows

    def _keep(self, events: np.ndarray) -> None:
        k = len(events)
        if k == 0:
            return
        need = self._n + k
        if need > len(self._buf):
            self._grow(max(need, 2 * len(self._buf)))
        self._rows[self._n:need] = _as_rows(events)
        self._n = need

    def _keep_details(self, details) -> None:
        """Details as ``(int subject, field, text)`` rows (:meth:`detail` and :meth:`restore` make them so)."""
        kept = self.details
        for subject, field, text in details:  # sealed ballots: tens of thousands a year, so no method calls
            try:
                if text is None:
                    del kept[field][subject]
                else:
                    kept[field][subject] = text
            except KeyError:  # a field not kept yet, or erasing what is not there
                if text is not None:
                    kept[field] = {subject: text}

    @property
    def events(self) -> np.ndarray:
        """A read-only view of every event so far, in order."""
        view = self._buf[: self._n]
        view.flags.writeable = False
        return view

    def to_frame(self):
        """The log as a pandas DataFrame with readable ``kind`` names (``channel`` stays its code)."""
        import pandas as pd

        df = pd.DataFrame(self.events.copy())
        df["kind"] = pd.Categorical.from_codes(
            [_KIND_INDEX[k] for k in df["kind"]], categories=[k.name for k in EventKind]
        ) if len(df) else pd.Categorical([], categories=[k.name for k in EventKind])
        return df


def join_records(parts, dtype: np.dtype) -> np.ndarray:
    """One-dimensional arrays of the structured ``dtype`` joined end to end, as ``np.concatenate``
    would, but as bytes: ``np.concatenate`` promotes a structured dtype field by field first
    (44 us for six small parts, against 8).  At least one part."""
    return np.concatenate([np.ascontiguousarray(p, dtype).view(np.uint8) for p in parts]).view(dtype)


def _as_rows(events: np.ndarray) -> np.ndarray:
    """Events as a ``(n, itemsize)`` array of bytes over the same memory (a copy if not contiguous).

    The log copies rows as bytes: ten times faster than numpy's copy of a packed
    structured dtype, which goes field by field (0.3 s for a million events).
    """
    events = np.ascontiguousarray(events, dtype=EVENT_DTYPE)
    return np.frombuffer(events, np.uint8).reshape(len(events), EVENT_DTYPE.itemsize)


_KIND_INDEX = {int(k): i for i, k in enumerate(EventKind)}


def to_frame(events: np.ndarray):
    """Any event array as a DataFrame (see :meth:`EventLog.to_frame`)."""
    log = EventLog(max(1, len(events)))
    log.restore(events)
    return log.to_frame()


def as_json(seq: int, row) -> dict:
    """One event as a JSON object: ``seq`` (its place in the log, from 1), ``kind`` by name, the columns."""
    out = {"seq": int(seq)}
    for f in FIELDS:
        value = row[f].item()
        out[f] = EventKind(value).name if f == "kind" else value
    return out


def runs(events: np.ndarray):
    """Yield ``(kind, rows)`` for each maximal run of consecutive same-kind events.

    Replaying a run as one batch equals replaying its rows one by one (batch
    of N == N batches of one), so replay is batch-fast.
    """
    if len(events) == 0:
        return
    kinds = events["kind"]
    cuts = np.flatnonzero(kinds[1:] != kinds[:-1]) + 1
    start = 0
    for stop in list(cuts) + [len(events)]:
        yield EventKind(int(kinds[start])), events[start:stop]
        start = stop

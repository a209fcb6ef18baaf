"""The four services on one event log, in memory or on a SQLite store.

The twin hands them thousands of commands a day (through the batch methods'
compiled cores: ``twin.engine.services_day``); live operation opens them on a
store (:func:`open_services`) and calls the batch methods with batches of one.
"""
import pickle
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from twin.services import events as ev
from twin.services import snapshot
from twin.services.events import EventKind, EventLog, WriteFailed
from twin.services.points import Points, PointsRules
from twin.services.reasons import Reason, ServiceError
from twin.services.repair import RepairDesk, RepairPolicy
from twin.services.timebank import TimeBank, TimeBankPolicy
from twin.services.voting import VotingDesk, VotingPolicy

if TYPE_CHECKING:
    from twin.services.store import EventStore


@dataclass
class ServicePolicies:
    """The policy objects each service is built with (defaults: today's rules)."""

    points: PointsRules = field(default_factory=PointsRules)
    timebank: TimeBankPolicy = field(default_factory=TimeBankPolicy)
    repair: RepairPolicy = field(default_factory=RepairPolicy)
    voting: VotingPolicy = field(default_factory=VotingPolicy)


class Services:
    """Points, time bank, repair desk and voting sharing one event log.

    Memory equals the log: if a command's durable write fails, or a unit of
    commands (:meth:`unit`) raises after appending, the services rebuild
    their state from the committed events (see :meth:`_rollback`), so a
    failed command leaves nothing behind and can simply be retried.
    """

    def __init__(self, policies: ServicePolicies | None = None, log: EventLog | None = None,
                 n_workers: int | None = None):
        self.policies = policies or ServicePolicies()
        self.log = log if log is not None else EventLog()
        self.store = None
        self._snapshot_at = 0
        self._snapshot_state = None  # (events, state) of the last snapshot, for a fast rollback
        p = self.policies
        # how each service is built (and rebuilt in place by a rollback): class, policy, options
        self._specs = {"points": (Points, p.points, {}), "timebank": (TimeBank, p.timebank, {}),
                       "repair": (RepairDesk, p.repair, {"n_workers": n_workers}),
                       "voting": (VotingDesk, p.voting, {})}
        for name, (cls, policy, options) in self._specs.items():
            setattr(self, name, cls(self.log, policy, **options))
        #: Which service owns each event kind (the engine's and the bare ledger's kinds are absent).
        self.service_of = {k: name for name in SERVICE_NAMES for k in _kinds(name)}
        self.log.on_failure.append(self._rollback)

    def unit(self):
        """Several commands as one durable unit: all are kept, or none (``EventLog.unit``)."""
        return self.log.unit()

    def replay(self, events: np.ndarray, details=()) -> None:
        """Re-execute a log through the services, in order, and keep it as this log.

        ``details``: the free text kept beside the log, ``(subject, field, text)``
        rows (``EventStore.details()``, ``EventLog.detail_rows()``): ticket texts
        and the sealed ballots of topics still open.
        Events of other kinds (the engine's) are kept as they are.  Every
        service event must come out of its service exactly as logged: a
        command the rules now refuse, or one that comes out different, is
        :class:`ReplayMismatch` naming the event.
        """
        self.log.restore(ev.empty(), details)
        position = 0
        for kind, rows in ev.runs(events):
            name = self.service_of.get(kind)
            if name is not None:
                with self.log.capture() as made:
                    try:
                        getattr(self, name).replay(rows)
                    except (ValueError, ServiceError) as exc:
                        raise ReplayMismatch(position, rows[0], f"{name} refused it ({exc})") from exc
                _check_reproduced(name, position, rows, made)
            self.log.restore(rows)
            position += len(rows)

    def _rollback(self) -> None:
        """Rebuild every service from the log's committed events (memory = store again).

        Services are re-initialised in place, so references callers hold
        (``services.points`` ...) stay valid.
        """
        committed = self.log.events.copy()
        self.log.clear()
        for name, (_, policy, options) in self._specs.items():
            getattr(self, name).__init__(self.log, policy, **options)
        start = 0
        if self._snapshot_state is not None:  # from the last snapshot: a long log rolls back in seconds
            start, state = self._snapshot_state
            self.log.restore(committed[:start])
            snapshot.restore(self, state)
        self.replay(committed[start:])

    def snapshot(self) -> dict:
        """Everything that defines the services' state, for comparisons."""
        return {name: getattr(self, name).snapshot() for name in SERVICE_NAMES}

    def checkpoint(self) -> bool:
        """Keep a snapshot of the state in the store (see ``twin.services.snapshot``); False if no store."""
        if self.store is None or self.store.readonly or self.store.conn is None:
            return False
        state = snapshot.dumps(self)
        self.store.save_snapshot(self.log.events, snapshot.fingerprint(self.policies), state)
        self._snapshot_at = len(self.log)
        self._snapshot_state = (len(self.log), state)
        return True

    def checkpoint_if_due(self) -> None:
        """A snapshot when the log grew by ``SNAPSHOT_EVERY`` since the last one (or the last try).

        A snapshot is an optimisation, the log is the record: one that fails
        is tried again only after as many events more.
        """
        if self.store is None or self.store.conn is None or len(self.log) - self._snapshot_at < SNAPSHOT_EVERY:
            return
        try:
            self.checkpoint()
        except Exception:  # noqa: BLE001 - see the docstring
            self._snapshot_at = len(self.log)

    def close(self) -> None:
        """Snapshot when due, close the store and release its lock; idempotent."""
        if self.store is not None:
            self.checkpoint_if_due()
            self.store.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


SERVICE_NAMES = ("points", "timebank", "repair", "voting")

#: Closing a store snapshots the state when the log grew by at least this many events since the last one.
SNAPSHOT_EVERY = 10_000


def _check_reproduced(name: str, position: int, rows: np.ndarray, made: list) -> None:
    got = np.concatenate(made) if made else ev.empty()
    if len(got) == len(rows) and np.array_equal(got, rows):
        return
    k = min(len(got), len(rows))
    differ = np.flatnonzero(got[:k] != rows[:k])
    first = int(differ[0]) if len(differ) else k
    what = ("was refused or not re-emitted" if first >= len(got)
            else f"came out as {_describe(got[first])}")
    raise ReplayMismatch(position + first, rows[first], f"{name} {what}")


def _describe(row) -> str:
    kind = EventKind(int(row["kind"])).name
    cols = ", ".join(f"{f}={row[f]}" for f in ev.FIELDS if f != "kind" and row[f] != 0)
    return f"{kind}({cols})"


class ReplayMismatch(ValueError):
    """The log does not reproduce through the services (a log from other rules, or damaged)."""

    def __init__(self, position: int, row, why: str):
        self.position = position
        super().__init__(f"event #{position} {_describe(row)} did not replay: {why}; "
                         "open the store with the policies that wrote it, or restore it from a backup")


def _kinds(module: str) -> frozenset:
    import importlib

    return importlib.import_module(f"twin.services.{module}").KINDS


def _from_snapshot(store: "EventStore", policies, n_workers) -> "Services | None":
    """Services from the store's snapshot plus the events after it; None if there is none that fits."""
    services = Services(policies, n_workers=n_workers)
    kept = store.load_snapshot(snapshot.fingerprint(services.policies))
    if kept is None or len(kept[0]) == 0:
        return None
    events, state = kept
    # the snapshot's last event must be the store's event at that place: a cheap check it belongs here
    tail = store.load(after=len(events) - 1)
    if len(tail) == 0 or not np.array_equal(tail[:1], events[-1:]):
        return None
    try:
        services.log.restore(events, store.details())
        snapshot.restore(services, state)
        services._snapshot_at = len(events)
        services._snapshot_state = (len(events), state)
        services.replay(tail[1:])
    except (pickle.UnpicklingError, ValueError, TypeError, AttributeError, EOFError, KeyError):
        return None  # a snapshot that does not restore is ignored: the log is the record
    return services


def _from_log(store: "EventStore", policies, n_workers) -> "Services":
    services = Services(policies, n_workers=n_workers)
    services.replay(store.load(), store.details())
    return services


def open_services(path, policies: ServicePolicies | None = None, *, readonly: bool = False,
                  n_workers: int | None = None) -> Services:
    """Services backed by the SQLite store at ``path``: state is rebuilt from it, new events go to it.

    State comes from the store's latest snapshot plus the events after it
    when one fits these policies and rules, else from replaying the whole
    log (``twin.services.snapshot``).  The returned services hold the
    store's writer lock until :meth:`Services.close` (or the end of a
    ``with`` block); a second writer gets ``StoreLocked``.
    ``readonly=True`` opens beside a writer, without the lock, for looking only.
    """
    from twin.services.store import EventStore  # (not at import: the twin never opens a store)

    store = EventStore(path, readonly=readonly)
    try:
        services = _from_snapshot(store, policies, n_workers) or _from_log(store, policies, n_workers)
    except BaseException:
        store.close()
        raise
    services.log.sinks.append(store.sink)  # read-only: every write fails cleanly (WriteFailed)
    services.store = store
    return services


__all__ = ["Services", "ServicePolicies", "open_services", "ReplayMismatch", "WriteFailed", "EventLog", "EventKind", "Reason", "ServiceError",
           "Points", "PointsRules", "TimeBank", "TimeBankPolicy", "RepairDesk", "RepairPolicy", "VotingDesk",
           "VotingPolicy"]

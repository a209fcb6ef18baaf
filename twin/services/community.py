"""The four services on one event log, in memory or on a SQLite store.

The twin calls their batch methods with thousands of commands per tick; live
operation opens them on a store (:func:`open_services`) and calls the very
same methods with batches of one.
"""
from dataclasses import dataclass, field

import numpy as np

from twin.services import events as ev
from twin.services.events import EventKind, EventLog
from twin.services.points import Points, PointsRules
from twin.services.reasons import Reason, ServiceError
from twin.services.repair import RepairDesk, RepairPolicy
from twin.services.store import EventStore
from twin.services.timebank import TimeBank, TimeBankPolicy
from twin.services.voting import VotingDesk, VotingPolicy


@dataclass
class ServicePolicies:
    """The policy objects each service is built with (defaults: today's rules)."""

    points: PointsRules = field(default_factory=PointsRules)
    timebank: TimeBankPolicy = field(default_factory=TimeBankPolicy)
    repair: RepairPolicy = field(default_factory=RepairPolicy)
    voting: VotingPolicy = field(default_factory=VotingPolicy)


class Services:
    """Points, time bank, repair desk and voting sharing one event log."""

    def __init__(self, policies: ServicePolicies | None = None, log: EventLog | None = None):
        self.policies = policies or ServicePolicies()
        self.log = log if log is not None else EventLog()
        p = self.policies
        self.points = Points(self.log, p.points)
        self.timebank = TimeBank(self.log, p.timebank)
        self.repair = RepairDesk(self.log, p.repair)
        self.voting = VotingDesk(self.log, p.voting)
        self._by_kind = {}
        for service, module_kinds in ((self.points, _kinds("points")), (self.timebank, _kinds("timebank")),
                                      (self.repair, _kinds("repair")), (self.voting, _kinds("voting"))):
            self._by_kind.update({k: service for k in module_kinds})

    def replay(self, events: np.ndarray) -> None:
        """Re-execute a log through the services, in order (events of other kinds are skipped)."""
        for kind, rows in ev.runs(events):
            service = self._by_kind.get(kind)
            if service is not None:
                service.replay(rows)

    def snapshot(self) -> dict:
        """Everything that defines the services' state, for comparisons."""
        return {name: getattr(self, name).snapshot() for name in ("points", "timebank", "repair", "voting")}


def _kinds(module: str) -> frozenset:
    import importlib

    return importlib.import_module(f"twin.services.{module}").KINDS


def open_services(path, policies: ServicePolicies | None = None) -> Services:
    """Services backed by the SQLite store at ``path``: state is rebuilt from it, new events go to it."""
    store = EventStore(path)
    services = Services(policies)
    services.replay(store.load())
    services.log.sinks.append(store.sink)
    services.repair.load_details(store.details())
    services.repair.details_sink = store.put_detail
    services.store = store
    return services


__all__ = ["Services", "ServicePolicies", "open_services", "EventLog", "EventKind", "Reason", "ServiceError",
           "Points", "PointsRules", "TimeBank", "TimeBankPolicy", "RepairDesk", "RepairPolicy", "VotingDesk",
           "VotingPolicy"]

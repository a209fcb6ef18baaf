"""Fork: a what-if that starts from production's state now (``twin fork``).

Three steps, each a function:

- :func:`production_state` reads a production store read-only (beside a running
  server, whose writer lock it does not need): the roster, points and time-bank
  balances, pending time-bank records, open tickets and who holds them, open
  topics, and the store's clock.
- :func:`fork_twin` builds a :class:`~twin.engine.Twin` on that state: the roster
  becomes the engine's community arrays and production's log, renumbered into the
  engine's ids (:class:`EngineIds`), is replayed into the twin's services, so they
  hold exactly production's state; the twin then starts at production's minute
  and the open tickets' remaining work is scheduled (``Twin.start_from``).
- :func:`fork` runs ``n`` replications of two arms (today's policy and a proposed
  one) on the same seeds and compares them with ``twin compare``'s statistics.

Production's services keep the rules they run (``twin serve`` runs the services'
defaults): a fork continues production, so an arm may change staffing, dispatch,
residents, sensors and the engine's policies, not the services' rules or the
community (see :data:`FIXED_KEYS`).  No free text leaves the store: the fork
carries ids, and the sealed ballots of open topics only as the replay needs them.
"""
from __future__ import annotations

import dataclasses
import html
import json
from pathlib import Path

import numpy as np

from twin.services import snapshot
from twin.services.community import ServicePolicies, Services
from twin.services.events import EventKind
from twin.services.repair import LOCATION_BASE, Category, Status
from twin.services.timebank import PROVIDER, RECEIVER, MINUTES, KIND, STATUS, RecordStatus, Role, ServiceKind

#: Override keys a fork refuses: the community is production's roster, days and seeds are
#: the fork's own arguments, and production's services keep their rules (the module docstring).
FIXED_KEYS = ("community.", "sim.days", "seed", "queue_check.", "chain.", "policies.points.",
              "policies.voting_method", "policies.voting_quorum", "policies.voting_threshold",
              "policies.voting_eligibility", "policies.reopen_window_days",
              "policies.timebank_endowment_budget_minutes")


# ---------------------------------------------------------------- production's state
@dataclasses.dataclass
class ProductionState:
    """What production holds at ``minutes`` (minutes since the store's epoch), in production's ids.

    ``residents`` has one row per resident (``id``, ``household``, ``building``, ``adult``);
    a household the store does not place has building -1 (tickets are the only place
    the store names buildings: a household's is the one its members report from most).
    ``open_tickets`` rows: ``id``, ``status``, ``category``, ``building``, ``unit``,
    ``reporter``, ``worker`` (-1: nobody yet), ``since`` (when it entered its status),
    ``submitted_at``, ``channel``.  ``points`` and ``timebank`` map ids to balances;
    ``pending`` lists the time-bank records not yet settled; ``open_topics`` the
    topics not yet resolved or rejected.
    """

    store: Path
    minutes: float
    events: np.ndarray = dataclasses.field(repr=False)
    ballots: list = dataclasses.field(repr=False)
    residents: np.ndarray = dataclasses.field(repr=False)
    open_tickets: list
    points: dict
    timebank: dict
    pending: list
    open_topics: list

    @property
    def day(self) -> int:
        return int(self.minutes // 1440)


_RESIDENT = np.dtype([("id", "i8"), ("household", "i8"), ("building", "i8"), ("adult", "?")])


def production_state(store_path, at_minutes: float | None = None) -> ProductionState:
    """Read a production store read-only; ``at_minutes`` looks at an earlier moment (default: now).

    Now is the store's clock, but never before its last event (a store written with
    explicit times, a backfill say, is at least where its log ends).  An earlier moment
    replays the log up to it; a topic open then but closed since cannot be replayed (its
    sealed ballots were erased at its close): that is a ``ReplayMismatch``.
    """
    from twin.services.community import open_services
    from twin.services.store import EventStore

    path = Path(store_path)
    if at_minutes is None:
        services = open_services(path, readonly=True)
        try:
            events = services.log.events.copy()
            last = float(events["t"].max()) if len(events) else 0.0
            minutes = max(services.store.minutes_now(), last)
            ballots = _ballots(services.log.detail_rows())
            return _read_state(path, minutes, services, events, ballots)
        finally:
            services.close()
    with EventStore(path, readonly=True) as store:
        events = store.load()
        details = store.details()
    later = np.flatnonzero(events["t"] > at_minutes)
    events = events[: later[0]] if len(later) else events
    services = Services()
    services.replay(events, details)
    return _read_state(path, float(at_minutes), services, events, _ballots(details))


def _ballots(details) -> list:
    """The sealed ballots of open topics: the only free text a replay needs (no contacts, no descriptions)."""
    return [(s, f, t) for s, f, t in details if f.startswith("ballot/")]


def _read_state(path, minutes, services, events, ballots) -> ProductionState:
    voting, points, tb, desk = (services.voting.snapshot(), services.points, services.timebank.snapshot(),
                                services.repair.snapshot())
    residents = _roster(voting, points, tb, desk)
    open_ = np.flatnonzero(desk["status"] <= Status.in_progress)
    tickets = [{"id": int(k), "status": Status(desk["status"][k]).name, "category": Category(desk["category"][k]).name,
                "building": int(desk["building"][k]), "unit": int(desk["unit"][k]),
                "reporter": int(desk["reporter"][k]), "worker": int(desk["worker"][k]),
                "since": float(desk["times"][k, desk["status"][k]]),
                "submitted_at": float(desk["times"][k, Status.submitted]), "channel": int(desk["channel"][k])}
               for k in open_]
    enrolled = np.flatnonzero(points.enrolled)
    balances = points.resident_balances()
    members = np.flatnonzero((tb["role"] == Role.member) | (tb["role"] == Role.coordinator))
    rec = tb["records"]
    unsettled = np.flatnonzero((rec[:, STATUS] == RecordStatus.pending) | (rec[:, STATUS] == RecordStatus.disputed))
    pending = [{"record": int(r), "provider": int(rec[r, PROVIDER]), "receiver": int(rec[r, RECEIVER]),
                "minutes": int(rec[r, MINUTES]), "kind": ServiceKind(rec[r, KIND]).name,
                "status": RecordStatus(rec[r, STATUS]).name} for r in unsettled]
    from twin.services.voting import METHODS, REJECTED, RESOLVED, STATES

    topics = [{"id": int(k), "state": STATES[voting["topic_state"][k]], "method": METHODS[voting["topic_method"][k]],
               "options": int(voting["topic_n_options"][k]), "ballots": int(voting["topic_n_ballots"][k])}
              for k in np.flatnonzero(~np.isin(voting["topic_state"], (RESOLVED, REJECTED)))]
    return ProductionState(store=Path(path), minutes=float(minutes), events=events, ballots=ballots,
                           residents=residents, open_tickets=tickets,
                           points={int(i): int(balances[i]) for i in enrolled},
                           timebank={int(m): int(tb["balances"][m]) for m in members},
                           pending=pending, open_topics=topics)


def _roster(voting: dict, points, tb: dict, desk: dict) -> np.ndarray:
    """Residents as the store knows them: voters, points members and time-bank members with a household.

    A resident with no household on record lives alone; staff (time-bank members with no
    household, not voters, not in points) are no residents.
    """
    voter_hh = voting["voter_household"]
    voters = np.flatnonzero(voter_hh >= 0)
    tb_hh = tb["household"]
    in_tb = np.flatnonzero(((tb["role"] == Role.member) | (tb["role"] == Role.coordinator)) & (tb_hh >= 0))
    ids = np.union1d(np.union1d(voters, np.flatnonzero(points.enrolled)), in_tb)
    out = np.zeros(len(ids), _RESIDENT)
    out["id"] = ids
    household = np.full(len(ids), -1, np.int64)
    known_tb = ids < len(tb_hh)
    household[known_tb] = tb_hh[ids[known_tb]]
    is_voter = np.isin(ids, voters)
    household[is_voter] = voter_hh[ids[is_voter]]
    alone = household < 0
    household[alone] = -1 - ids[alone]  # a household of their own (production's household ids are >= 0)
    out["household"] = household
    out["adult"] = np.where(is_voter, voting["voter_adult"][np.minimum(ids, len(voter_hh) - 1)], True)
    out["building"] = _household_buildings(household, ids, desk)
    return out


def _household_buildings(household, ids, desk) -> np.ndarray:
    """Each resident's building: the one their household's members report from most (ties: the lowest), else -1."""
    reporter_hh = dict(zip(ids.tolist(), household.tolist()))
    counts: dict = {}
    for reporter, building in zip(desk["reporter"].tolist(), desk["building"].tolist()):
        hh = reporter_hh.get(reporter)
        if hh is not None:
            counts.setdefault(hh, {}).setdefault(building, 0)
            counts[hh][building] += 1
    best = {hh: min(c, key=lambda b: (-c[b], b)) for hh, c in counts.items()}
    return np.array([best.get(hh, -1) for hh in household.tolist()], np.int64)


# ---------------------------------------------------------------- production's ids → the engine's
class EngineIds:
    """Production's ids renumbered the way the engine numbers things.

    The engine wants buildings ``0..B-1``, households filling buildings in order and
    residents contiguous by household (``agents.community``), time-bank member
    ``resident + 2`` (0 and 1 are the bank's admin and endowment, as in production),
    and technicians ``0..T-1``.  So:

    - **buildings** are those production's tickets name, in id order (one building if
      none).  Households the store does not place fill the buildings that have no
      household first, then spread over all in order; a building left with no household
      is merged into the building with households at the same rank (its tickets move
      there: the store knows nothing else of it);
    - **households** are numbered by (building, production id), **residents** by
      (household, production id); anyone else who acted (staff, a hotline operator)
      gets an id after the residents, in id order;
    - **workers** who held a ticket are numbered in id order: production's first
      technician is the engine's technician 0;
    - a ticket whose reporter is no resident is filed in the name of its building's
      first resident (as the engine files a burst).
    """

    def __init__(self, state: ProductionState):
        r = state.residents
        if len(r) == 0:
            from twin.services.store import StoreError

            raise StoreError(f"{state.store} holds no residents: load the roster into the store "
                             "(twin serve --roster) before forking it")
        events = state.events
        named = np.unique(events["target"][events["kind"] == EventKind.TicketSubmitted] // LOCATION_BASE)
        self.building_ids = named if len(named) else np.array([-1])  # production's, in id order
        hh_keys, first = np.unique(r["household"], return_index=True)
        rank = np.full(len(hh_keys), -1, np.int64)  # each household's building, as a rank in building_ids
        known = r["building"][first] >= 0
        rank[known] = np.searchsorted(self.building_ids, r["building"][first][known])
        unplaced = np.flatnonzero(~known)
        empty = np.setdiff1d(np.arange(len(self.building_ids)), rank[known])
        n_rest = max(0, len(unplaced) - len(empty))
        rank[unplaced] = np.concatenate((empty, np.arange(n_rest) * len(self.building_ids) // max(1, n_rest)))[
            : len(unplaced)]
        occupied = np.unique(rank)
        #: the engine building of each production building (by rank); an empty one merges into the next
        self._engine_building = np.searchsorted(occupied, np.arange(len(self.building_ids))) % len(occupied)
        self.n_buildings = len(occupied)
        hh_building = self._engine_building[rank]
        order = np.lexsort((hh_keys, hh_building))
        self._hh_keys, self._hh_values = hh_keys, np.argsort(order)
        self.hh_building = hh_building[order]                 # engine building of engine household h
        res_hh = self.households(r["household"])
        res_order = np.lexsort((r["id"], res_hh))
        self.resident_ids = r["id"][res_order]                # production id of engine resident i
        self.household = res_hh[res_order]                    # engine household of engine resident i
        self.adult = r["adult"][res_order]
        self.n_residents = len(r)
        acted = [_column(events, c, kinds) for c, kinds in _person_columns().items()]
        acted += [m[m > 1] for m in (_column(events, c, kinds) for c, kinds in _member_columns().items())]
        others = np.setdiff1d(np.unique(np.concatenate(acted)), self.resident_ids)
        keys = np.concatenate((self.resident_ids, others))    # anyone else after the residents, in id order
        sort = np.argsort(keys, kind="stable")
        self._person_keys, self._person_values = keys[sort], sort
        self.worker_ids = np.unique(events["target"][events["kind"] == EventKind.TicketDispatched])
        self.first_resident = np.searchsorted(self.hh_building[self.household], np.arange(self.n_buildings))

    # each maps an array of production ids to the engine's
    def persons(self, ids) -> np.ndarray:
        return _lookup(self._person_keys, self._person_values, ids, "person")

    def members(self, ids) -> np.ndarray:
        """Time-bank members: 0 and 1 (admin, endowment) stay, a person ``p`` is ``persons(p) + 2``."""
        ids = np.asarray(ids, np.int64)
        high = ids > 1
        out = ids.copy()
        out[high] = self.persons(ids[high]) + 2
        return out

    def households(self, ids) -> np.ndarray:
        """Households; -1 (none) stays."""
        ids = np.asarray(ids, np.int64)
        out = ids.copy()
        some = ids != -1
        out[some] = _lookup(self._hh_keys, self._hh_values, ids[some], "household")
        return out

    def buildings(self, ids) -> np.ndarray:
        return self._engine_building[_lookup(self.building_ids, np.arange(len(self.building_ids)), ids, "building")]

    def workers(self, ids) -> np.ndarray:
        return _lookup(self.worker_ids, np.arange(len(self.worker_ids)), ids, "worker")

    def reporters(self, ids, engine_buildings) -> np.ndarray:
        """Residents keep their engine id; anyone else becomes their building's first resident."""
        ids = np.asarray(ids, np.int64)
        slot = np.minimum(np.searchsorted(self._person_keys, ids), len(self._person_keys) - 1)
        mapped = self._person_values[slot]
        resident = (self._person_keys[slot] == ids) & (mapped < self.n_residents)
        return np.where(resident, mapped, self.first_resident[engine_buildings])

    def remap(self, events: np.ndarray) -> np.ndarray:
        """A copy of production's log in the engine's ids (every column that holds an id, kind by kind)."""
        out = events.copy()
        kind = out["kind"]
        for column, kinds in _person_columns().items():
            rows = np.isin(kind, [int(k) for k in kinds])
            out[column][rows] = self.persons(events[column][rows])
        for column, kinds in _member_columns().items():
            rows = np.isin(kind, [int(k) for k in kinds])
            out[column][rows] = self.members(events[column][rows])
        for column, kinds in _household_columns().items():
            rows = np.isin(kind, [int(k) for k in kinds])
            out[column][rows] = self.households(events[column][rows])
        sub = kind == EventKind.TicketSubmitted
        building, unit = np.divmod(events["target"][sub], LOCATION_BASE)
        engine_building = self.buildings(building)
        out["target"][sub] = engine_building * LOCATION_BASE + unit
        reporter = self.reporters(events["actor"][sub], engine_building)
        out["actor"][sub] = reporter
        rated = kind == EventKind.TicketRated  # the desk rates in its reporter's name
        by_ticket = dict(zip(events["subject"][sub].tolist(), reporter.tolist()))
        out["actor"][rated] = [by_ticket[t] for t in events["subject"][rated].tolist()]
        dispatched = kind == EventKind.TicketDispatched
        out["target"][dispatched] = self.workers(events["target"][dispatched])
        working = (kind == EventKind.TicketStarted) | (kind == EventKind.TicketCompleted)  # in the worker's name
        out["actor"][working] = self.workers(events["actor"][working])
        return out

    def remap_ballots(self, ballots: list, by_household: bool) -> list:
        """Sealed ballots are kept under ``ballot/<voter>`` (``<household>`` when households vote)."""
        out = []
        for subject, field, text in ballots:
            key = int(field.split("/", 1)[1])
            key = int(self.households([key])[0] if by_household else self.persons([key])[0])
            out.append((subject, f"ballot/{key}", text))
        return out


def _lookup(keys, values, ids, what: str) -> np.ndarray:
    """``values`` at the place of each id in the sorted ``keys``; an id not there is a bug, said loudly."""
    ids = np.asarray(ids, np.int64)
    slot = np.minimum(np.searchsorted(keys, ids), max(len(keys) - 1, 0))
    if len(ids) and (len(keys) == 0 or not np.array_equal(keys[slot], ids)):
        raise ValueError(f"production's log names a {what} the roster does not know: "
                         f"{ids[keys[slot] != ids][:5].tolist() if len(keys) else ids[:5].tolist()}")
    return np.asarray(values)[slot]


def _column(events: np.ndarray, column: str, kinds) -> np.ndarray:
    return events[column][np.isin(events["kind"], [int(k) for k in kinds])]


def _person_columns() -> dict:
    """Columns that hold a person's id (points, repair, voting), by event kind (reporters are apart)."""
    K = EventKind
    return {"actor": (K.ResidentEnrolled, K.PointsEarned, K.PointsRedeemed, K.PointsPenalised, K.TicketCancelled,
                      K.TicketReopened, K.TicketEscalated, K.TopicProposed, K.TopicScreened, K.BallotCast,
                      K.VoterRegistered)}


def _member_columns() -> dict:
    """Columns that hold a time-bank member id, by event kind."""
    K = EventKind
    everyone = (K.MemberRegistered, K.ServiceRecorded, K.ServiceConfirmed, K.ServiceCancelled, K.ServiceDisputed,
                K.DisputeResolved, K.MemberFloorSet, K.Endowed, K.FamilyTransferred, K.RoleRevoked, K.AdminRotated)
    return {"actor": everyone,
            "target": (K.MemberRegistered, K.ServiceRecorded, K.MemberFloorSet, K.Endowed, K.FamilyTransferred,
                       K.RoleRevoked, K.AdminRotated),
            "extra": (K.ServiceRecorded,)}


def _household_columns() -> dict:
    K = EventKind
    return {"target": (K.VoterRegistered,), "extra": (K.MemberRegistered,)}


# ---------------------------------------------------------------- the forked twin
#: The services' rules production runs: ``twin serve`` opens its store with the services' defaults.
PRODUCTION_POLICIES = ServicePolicies()


class _Prepared:
    """Production's state in the engine's ids, made once per fork: every replication copies it."""

    def __init__(self, state: ProductionState):
        self.state = state
        self.ids = EngineIds(state)
        policies = PRODUCTION_POLICIES
        services = Services(policies)
        services.replay(self.ids.remap(state.events),
                        self.ids.remap_ballots(state.ballots, policies.voting.eligibility == "household"))
        self.events, self.details = services.log.events.copy(), services.log.detail_rows()
        self.blob = snapshot.dumps(services)

    def services(self):
        """A fresh copy of production's services (their own log), as a replication changes them."""
        services = Services(PRODUCTION_POLICIES)
        services.log.restore(self.events, self.details)
        snapshot.restore(services, self.blob)
        return services


def roster_community(ids: EngineIds, cfg, seed: int):
    """The engine's community arrays for production's roster (``agents.community.Community``).

    The store knows who lives in which household, who is an adult and (from tickets) in
    which building; the rest is derived deterministically from ``seed``, with the draw
    streams ``build_community`` uses for the same things:

    - buildings stand on ``build_community``'s map grid (``community.spacing_m``), with
      elevators drawn at ``facilities.elevator_share``;
    - ages: adults are elders (60-90) with the probability that makes ``community.elder_share``
      of the residents elders (as far as adults allow), else 18-59; minors 0-17.  Flags
      follow from age as in ``build_community`` (app use at ``community.app_literacy_*``),
      and so do engagement and the social network (household, building neighbours, friends);
    - an alone elder is an elder who is the whole household.
    """
    from agents.community import (FLAG_ADULT, FLAG_APP, FLAG_ELDER, FLAG_OLD_ELDER, OLD_ELDER_AGE, S_AGE, S_APP,
                                  S_ENGAGE, Community, build_community, social_network)
    from twin import rng

    cc = cfg.community
    B, n = ids.n_buildings, ids.n_residents
    layout = build_community(dataclasses.replace(cc, households=B, buildings=B), seed, cfg.facilities.elevator_share)
    household = ids.household.astype(np.int32)
    size = np.bincount(household, minlength=len(ids.hh_building))
    if size.max() > np.iinfo(np.int8).max:
        raise ValueError(f"a household of {size.max()} residents: the engine's households hold at most 127")
    hh_first = np.concatenate(([0], np.cumsum(size)[:-1])).astype(np.int32)
    adult = ids.adult.astype(bool)
    elder_p = min(1.0, cc.elder_share * n / max(1, int(adult.sum())))
    elder = adult & (rng.uniforms(seed, S_AGE, 0, n) < elder_p)
    v = rng.uniforms(seed, S_AGE, 1, n)
    age = np.where(elder, 60 + v * 31, np.where(adult, 18 + v * 42, v * 18)).astype(np.uint8)
    literacy = np.where(age >= 60, cc.app_literacy_elder, cc.app_literacy_adult)
    app = (age >= 12) & (rng.uniforms(seed, S_APP, 0, n) < literacy)
    flags = (adult * FLAG_ADULT | (age >= 60) * FLAG_ELDER | (age >= OLD_ELDER_AGE) * FLAG_OLD_ELDER
             | app * FLAG_APP).astype(np.uint8)
    engagement = (rng.uniforms(seed, S_ENGAGE, 0, n) ** 1.5).astype(np.float32)
    hh_building = ids.hh_building.astype(np.int32)
    res_building = hh_building[household]
    b_first = np.searchsorted(res_building, np.arange(B)).astype(np.int64)
    b_last = np.searchsorted(res_building, np.arange(B), side="right").astype(np.int64)
    indptr, indices = social_network(seed, household, hh_first, size.astype(np.int8), res_building, b_first,
                                     b_last, cc.friends_per_resident, cc.rewire_p)
    return Community(layout.building_x, layout.building_y, layout.has_elevator, hh_building, hh_first,
                     size.astype(np.int8), (size == 1) & ((age[hh_first] >= 60)), household, age, flags, engagement,
                     indptr, indices)


def fork_twin(state: ProductionState, cfg, seed: int | None = None):
    """A :class:`~twin.engine.Twin` on production's roster and state, at production's minute.

    ``cfg`` (a scenario's ``TwinConfig``) gives everything the store does not: staffing,
    the residents' behaviour, sensors, the engine's policies; ``seed`` replaces its seed.
    Before its first step the twin's services equal production's, in the engine's ids
    (:class:`EngineIds`); ``Twin.start_from`` schedules the open tickets' remaining work.
    """
    return _fork_twin(_Prepared(state), cfg if seed is None else dataclasses.replace(cfg, seed=int(seed)))


def _fork_twin(prepared: _Prepared, cfg):
    from twin.engine import Twin

    twin = Twin(cfg, community=roster_community(prepared.ids, cfg, int(cfg.seed)), services=prepared.services())
    twin.start_from(prepared.state.minutes)
    return twin


# ---------------------------------------------------------------- the comparison
@dataclasses.dataclass
class ForkResult:
    """Two arms forked from one production state, ``n`` paired replications each.

    ``rows``: per KPI each arm's mean and the paired difference with its 95% interval
    (``twin.compare.kpi_rows``); ``backlog[arm]``: open tickets at each day's end,
    replications × days; ``summaries[arm]``: every replication's KPIs.
    """

    store: str
    minutes: float
    days: int
    scenario: str
    baseline: list
    policy: list
    seeds: list
    rows: dict
    backlog: dict
    summaries: dict

    @property
    def first_day(self) -> int:
        return int(self.minutes // 1440)

    def table(self) -> str:
        from twin.compare import format_table

        return (f"forked {self.store} at minute {self.minutes:,.0f} (day {self.first_day}); "
                f"{self.days} days, {len(self.seeds)} paired seeds\n" + format_table(self.rows))

    def save(self, directory, plotly: str = "inline") -> Path:
        """Write ``fork.json`` (the record) and ``fork.html`` (differences, backlog per day with bands)."""
        from twin.results import _jsonable

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        record = {k: v for k, v in dataclasses.asdict(self).items() if k != "backlog"}
        record["backlog"] = {arm: b.tolist() for arm, b in self.backlog.items()}
        (d / "fork.json").write_text(json.dumps(_jsonable(record), indent=2))
        return _write_fork_page(self, d / "fork.html", plotly)


def check_overrides(overrides) -> None:
    """Refuse an override a fork cannot honour (:data:`FIXED_KEYS`), naming the key."""
    from twin.config import ConfigError

    for item in overrides:
        key = item.split("=", 1)[0].lstrip("+~")
        fixed = next((f for f in FIXED_KEYS if key == f.rstrip(".") or (f.endswith(".") and key.startswith(f))), None)
        if fixed is not None:
            raise ConfigError(f"{key} cannot be changed in a fork: the community is production's roster, days and "
                              "seeds are the fork's own (--days, --seed) and production's services keep their "
                              f"rules; a fork may not change {', '.join(FIXED_KEYS)}")


def fork(store, days: int, baseline_overrides=(), policy_overrides=(), n: int = 10, seed: int = 1, *,
         scenario: str = "default", at_minutes: float | None = None) -> ForkResult:
    """Project ``days`` from production's state now under two arms, ``n`` paired replications each.

    Both arms run the same seeds (common random numbers), so their difference is the
    policy's; each KPI's mean difference gets ``twin compare``'s 95% interval.  KPIs are
    those of a run, over the fork's days only, plus the backlog (open tickets at each
    day's end): ``backlog_tickets_mean`` over the days and ``backlog_tickets_end``.
    """
    from twin.compare import kpi_rows
    from twin.config import ConfigError, load_scenario

    if int(days) < 1 or int(n) < 1:
        raise ConfigError(f"a fork needs days >= 1 and n >= 1 replications, got days={days}, n={n}")
    arms = {}
    for arm, overrides in (("baseline", list(baseline_overrides)), ("policy", list(policy_overrides))):
        check_overrides(overrides)
        arms[arm] = (overrides, load_scenario(scenario, overrides + ["progress=false"]))
    prepared = _Prepared(production_state(store, at_minutes))
    seeds = list(range(int(seed), int(seed) + int(n)))
    summaries, backlog = {}, {}
    for arm, (_, cfg) in arms.items():
        runs = [_project(prepared, dataclasses.replace(cfg, seed=s), int(days)) for s in seeds]
        summaries[arm] = [r[0] for r in runs]
        backlog[arm] = np.array([r[1] for r in runs], float)
    return ForkResult(store=str(store), minutes=prepared.state.minutes, days=int(days), scenario=scenario,
                      baseline=arms["baseline"][0], policy=arms["policy"][0], seeds=seeds,
                      rows=kpi_rows(summaries["baseline"], summaries["policy"]), backlog=backlog, summaries=summaries)


def _project(prepared: _Prepared, cfg, days: int):
    """One replication: the forked twin run ``days``; its KPIs over those days and its daily backlog."""
    from twin.engine.kpis import summarise

    twin = _fork_twin(prepared, cfg)
    desk = twin.services.repair
    first_event, n_tickets = len(twin.log), desk.n_tickets
    open_then = np.flatnonzero(desk.state.status[:n_tickets] <= Status.in_progress)
    for _ in range(days):
        twin.step()
    events = twin.log.events[first_event:].copy()
    events["t"] -= prepared.state.day * 1440.0  # months of participation count from the fork
    tickets = np.concatenate((open_then, np.arange(n_tickets, desk.n_tickets)))
    times = desk.state.times[tickets]
    kpis = twin.kpis.frame()
    backlog = kpis["backlog"].to_numpy(float)
    summary = summarise(events, days=days, adults=int(twin.community.adults().sum()),
                        repair_times={"submitted": times[:, Status.submitted], "started": times[:, Status.in_progress],
                                      "completed": times[:, Status.completed]},
                        turnouts=twin.topics.turnouts, satisfaction_daily=kpis["satisfaction"].to_numpy())
    return {"backlog_tickets_mean": float(backlog.mean()), "backlog_tickets_end": float(backlog[-1]), **summary}, backlog


# ---------------------------------------------------------------- the page
def _write_fork_page(result: ForkResult, path: Path, plotly: str) -> Path:
    from twin.report import _differences_table, _figure_html, _write_page

    note = (f"forked <code>{html.escape(result.store)}</code> at minute {result.minutes:,.0f} "
            f"(day {result.first_day}) · {result.days} days · {len(result.seeds)} paired seeds · "
            f"scenario <b>{html.escape(result.scenario)}</b> · baseline "
            f"<code>{html.escape(' '.join(result.baseline) or '(as configured)')}</code> · policy "
            f"<code>{html.escape(' '.join(result.policy) or '(as configured)')}</code>")
    sections = [("Backlog per day (open tickets at the day's end)", _figure_html(_backlog_figure(result), "backlog")),
                ("Differences (policy − baseline, 95% CI)", _differences_table(result.rows))]
    return _write_page(path, "community-twin fork — baseline vs policy", f"<p class='meta'>{note}</p>", sections,
                       plotly)


def _backlog_figure(result: ForkResult):
    """Each arm's mean backlog per day, with a band holding the middle 90% of its replications."""
    import plotly.graph_objects as go

    from twin.report import RUN_COLOURS

    fig = go.Figure()
    days = result.first_day + np.arange(result.days)
    for i, (arm, backlog) in enumerate(result.backlog.items()):
        colour = RUN_COLOURS[i % len(RUN_COLOURS)]
        low, high = np.percentile(backlog, 5, axis=0), np.percentile(backlog, 95, axis=0)
        fig.add_trace(go.Scatter(x=np.concatenate((days, days[::-1])), y=np.concatenate((high, low[::-1])),
                                 fill="toself", fillcolor=_translucent(colour), line=dict(width=0),
                                 hoverinfo="skip", name=f"{arm}: middle 90% of replications"))
        fig.add_trace(go.Scatter(x=days, y=backlog.mean(axis=0), mode="lines+markers", line=dict(color=colour),
                                 name=f"{arm}: mean"))
    fig.update_layout(xaxis_title="day (the store's)", yaxis_title="open tickets", yaxis_rangemode="tozero",
                      hovermode="x unified", height=420, margin=dict(t=30, b=40))
    return fig


def _translucent(colour: str) -> str:
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},0.2)"


# ---------------------------------------------------------------- the command line
def cmd_fork(args) -> int:
    import sys

    if args.recording is not None:
        print(f"twin fork: --recording {args.recording} is not used yet: the fork starts from the store's state "
              "alone (live readings will seed the sensors once recordings exist)", file=sys.stderr)
    result = fork(args.store, args.days, args.baseline.split(), args.policy.split(), n=args.replications,
                  seed=args.seed, scenario=args.scenario, at_minutes=args.at)
    print(result.table())
    if args.out:
        result.save(args.out, plotly=args.plotly)
        print(f"\nfork folder: {args.out} (fork.json, fork.html)")
    return 0


def add_commands(sub) -> None:
    """``twin fork``, registered on the CLI's subparsers."""
    p = sub.add_parser("fork", help="a what-if from production's state now: two arms, paired replications",
                       description="Start the twin from a production store's state (roster, balances, open "
                                   "tickets and who holds them, pending time-bank records, open topics), run a "
                                   "baseline and a policy arm on the same seeds and print each KPI's mean "
                                   "difference with its 95% interval.  The store is read only: a running server "
                                   "may hold it.")
    p.add_argument("--store", required=True, help="the production store (twin serve --store)")
    p.add_argument("--recording", default=None, help="a recording of live messages (accepted; not used yet)")
    p.add_argument("--days", type=int, default=14, help="days to project")
    p.add_argument("--policy", required=True, metavar='"K=V..."',
                   help="overrides for the policy arm, quoted and space-separated (required)")
    p.add_argument("--baseline", default="", metavar='"K=V..."',
                   help="overrides for the baseline arm (default: the scenario as is)")
    p.add_argument("-n", "--replications", type=int, default=20, help="seeds per arm")
    p.add_argument("--seed", type=int, default=1, help="the first seed")
    p.add_argument("--at", type=float, default=None, metavar="MINUTES",
                   help="fork from this moment of the store (minutes since its epoch; default: now)")
    p.add_argument("-s", "--scenario", default="default",
                   help="the scenario that gives what the store does not (staff, behaviour, sensors)")
    p.add_argument("--out", default=None, metavar="DIR", help="write fork.json and fork.html here")
    p.add_argument("--plotly", choices=("inline", "cdn", "shared"), default="inline",
                   help="how the page carries plotly.js")
    p.set_defaults(func=cmd_fork)

"""A city: many communities stepped day by day in shards, sharing a district repair crew.

A city config (``scenarios/city/<name>.yaml``) lists communities — a scenario,
overrides, and ``count`` copies of that template — and what they share: a
district crew of technicians that takes repair overflow, city-wide KPIs and,
when it declares ``mediation:``, a district pool of mediators that takes the
disputes the communities' own mediation desks cannot serve in time (the rule is
:mod:`twin.city_mediation`'s; its exchange rides on the same daily step).

Community ``i`` (its place in the list, templates expanded in order) draws
from :func:`community_seed` of the city seed and ``i``, never from which shard
runs it, so the same seed gives the same per-community event logs and city
KPIs for any number of shards.

The daily exchange, run by a coordinator (this module's :func:`run_city`):

1. every shard steps each of its communities one day (``Twin.step``) and
   offers the tickets its crew cannot start in time (:func:`offers_of`);
2. the coordinator hands all offers to the :class:`District`, which assigns
   them in an order fixed by the tickets themselves (submission minute,
   community index, ticket id), never by the order shards answered;
3. each shard applies its communities' assignments before the next day
   (:func:`apply_assignments`), between days, through the engine's own queue
   of scheduled repair transitions: the engine itself is not changed.

The overflow rule (one sentence per step):

* At the end of day ``d`` a ticket is offered when it is still waiting for a
  worker (status ``submitted``), is not urgent (priority below 2: pipe bursts
  stay with their community, whose water flows until its own repair), and its
  community's crew will start it more than ``overflow_after_minutes`` after it
  was submitted.
* District technicians work ``shift_start_hour``-``shift_end_hour`` from day
  ``d + 1`` on; each offer goes, in the order above, to the technician free
  first (lowest index on a tie), who starts ``travel_minutes`` after setting
  out and works as long as the community's crew would have (the service time
  drawn at submission), so the district changes when the work is done, not
  how much there is.
* The district takes a ticket only if it starts it earlier than the
  community's crew would; otherwise the offer stays with the community.
* A taken ticket is dispatched to worker ``DISTRICT_WORKER + k`` (technician
  ``k``), started and completed at the district's times, and rated at
  completion plus the community's rating delay with the stars its reporter
  had drawn.  The community technician's planned time for it is not given
  back to other tickets (their day was planned when the ticket came in).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from pathlib import Path

import numpy as np

from twin import city_mediation as med
from twin.config import SCENARIO_DIR, ConfigError, did_you_mean
from twin.services.events import EventKind
from twin.services.repair import Action, Status

CITY_DIR = SCENARIO_DIR / "city"
DISTRICT_WORKER = 1_000_000  # district technician k is worker DISTRICT_WORKER + k in a community's log
URGENT_PRIORITY = 2  # the engine's priority of a pipe burst
S_CITY_SEED = 900  # the draw stream community seeds come from

OFFER = np.dtype([("community", "i8"), ("ticket", "i8"), ("submitted", "f8"), ("start", "f8"), ("duration", "f8")])
ASSIGNMENT = np.dtype([("community", "i8"), ("ticket", "i8"), ("worker", "i8"), ("dispatch", "f8"),
                       ("start", "f8"), ("done", "f8")])

#: How city KPIs come from the communities' summaries: totals, or means pooled with a weight
#: (each community's mean times how many things it averages over; see :func:`weights_of`).
SUMMED = ("points_issued", "points_redeemed", "timebank_hours_exchanged", "tickets_opened", "tickets_completed",
          "alerts_raised")
POOLED = {"participation_rate": "adults", "satisfaction_index": "adults", "turnout_mean": "adults",
          "repair_wait_minutes_mean": "tickets_started", "repair_resolution_minutes_mean": "tickets_completed",
          "repair_rating_mean": "tickets_rated", "alert_precision": "inactivity_alerts", "alert_recall": "incidents",
          "alert_response_minutes_mean": "alerts_attended"}


# ------------------------------------------------------------------ config
@dataclasses.dataclass(frozen=True)
class DistrictRule:
    """The district crew and when it takes overflow (see the module docstring)."""

    technicians: int = 2
    overflow_after_minutes: float = 240.0
    shift_start_hour: float = 8.0
    shift_end_hour: float = 20.0
    travel_minutes: float = 30.0

    def __post_init__(self):
        checks = (("technicians", self.technicians >= 0 and float(self.technicians).is_integer(),
                   "an integer >= 0 (0: no district crew)"),
                  ("overflow_after_minutes", self.overflow_after_minutes >= 0, "minutes >= 0"),
                  ("shift_start_hour", 0 <= self.shift_start_hour < self.shift_end_hour <= 24,
                   "hours with 0 <= shift_start_hour < shift_end_hour <= 24"),
                  ("travel_minutes", self.travel_minutes >= 0, "minutes >= 0"))
        for key, ok, allowed in checks:
            if not ok:
                raise ConfigError(f"district.{key}: {getattr(self, key)!r} is not allowed; allowed: {allowed}")
        object.__setattr__(self, "technicians", int(self.technicians))  # 2.0 in a YAML file is 2


@dataclasses.dataclass(frozen=True)
class CommunitySpec:
    """One community of the city: its place in the list, a label and its resolved config."""

    index: int
    label: str
    cfg: object  # twin.config.TwinConfig
    mediation: object = None  # its desk's policies.mediation.Mediation; None: the city has no mediation


@dataclasses.dataclass(frozen=True)
class CityConfig:
    name: str
    seed: int
    days: int
    communities: tuple  # of CommunitySpec
    district: DistrictRule
    mediation: object = None  # a twin.city_mediation.MediationRule; None: no mediation


_CITY_KEYS = {"name": "the city's name", "seed": "an integer in 0..2**63-1", "days": "an integer >= 1",
              "communities": "a list of {scenario, overrides, count, label}", "district": "the district crew",
              "mediation": "the district mediators and when disputes are referred"}
_ENTRY_KEYS = ("scenario", "overrides", "count", "label")


def cities() -> list[str]:
    """Names of the shipped city configs (``scenarios/city/*.yaml``)."""
    return sorted(p.stem for p in CITY_DIR.glob("*.yaml"))


def community_seed(city_seed: int, index: int) -> int:
    """Community ``index``'s seed: a draw keyed by the city seed and the index (never the shard)."""
    from twin import rng

    return int(rng.draw(int(city_seed), S_CITY_SEED, 0, int(index)) >> np.uint64(1))  # 0..2**63-1


def district_seed(city_seed: int) -> int:
    """The seed the district's own draws (its mediators' skills) come from: the city seed's, apart from any community's."""
    from twin import rng

    return int(rng.draw(int(city_seed), S_CITY_SEED, 1, 0) >> np.uint64(1))


def load_city(name: str = "city_demo", days: int | None = None, overrides: dict | None = None) -> CityConfig:
    """Read ``scenarios/city/<name>.yaml`` (or a path) into a validated :class:`CityConfig`.

    ``days`` replaces the config's; ``overrides`` replaces top-level keys (``seed``, ...).
    Every community's scenario is loaded here, so a bad value fails before anything runs.
    """
    import yaml

    path = Path(name) if str(name).endswith((".yaml", ".yml")) else CITY_DIR / f"{name}.yaml"
    if not path.exists():
        raise ConfigError(f"unknown city {name!r}; shipped cities: {', '.join(cities()) or 'none'}")
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: not a table of {', '.join(_CITY_KEYS)}")
    raw.update(overrides or {})
    if days is not None:
        raw["days"] = days
    raw.setdefault("name", path.stem)
    return city_config(raw)


def city_config(raw: dict) -> CityConfig:
    """A city from its table (the YAML file's contents), validated; see :func:`load_city`."""
    from policies._arms import split_arm
    from policies.mediation import Mediation

    _known_keys("", raw, _CITY_KEYS)
    seed, n_days = raw.get("seed", 1), raw.get("days", 30)
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**63:
        raise ConfigError(f"seed: {seed!r} is not allowed; allowed: {_CITY_KEYS['seed']}")
    if not isinstance(n_days, int) or isinstance(n_days, bool) or n_days < 1:
        raise ConfigError(f"days: {n_days!r} is not allowed; allowed: {_CITY_KEYS['days']}")
    district = raw.get("district") or {}
    if not isinstance(district, dict):
        raise ConfigError(f"district: {district!r} is not allowed; allowed: a table of "
                          f"{', '.join(f.name for f in dataclasses.fields(DistrictRule))}")
    _known_keys("district.", district, {f.name: "" for f in dataclasses.fields(DistrictRule)})
    try:
        rule = DistrictRule(**{k: v if k == "technicians" else float(v) for k, v in district.items()})
    except (TypeError, ValueError) as e:
        raise ConfigError(f"district: {e}") from None
    mediation = _mediation_rule(raw["mediation"]) if "mediation" in raw else None
    entries = raw.get("communities")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"communities: {entries!r} is not allowed; allowed: {_CITY_KEYS['communities']}")
    specs = []
    for k, entry in enumerate(entries):
        where = f"communities[{k}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: {entry!r} is not allowed; allowed: a table of {', '.join(_ENTRY_KEYS)}")
        _known_keys(f"{where}.", entry, dict.fromkeys(_ENTRY_KEYS, ""))
        count, extra = entry.get("count", 1), entry.get("overrides", [])
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ConfigError(f"{where}.count: {count!r} is not allowed; allowed: an integer >= 1")
        if not isinstance(extra, list) or not all(isinstance(o, str) for o in extra):
            raise ConfigError(f"{where}.overrides: {extra!r} is not allowed; allowed: a list of key=value strings")
        scenario = entry.get("scenario", "default")
        if mediation is None and any(o.startswith(f"{Mediation.name}.") for o in extra):
            raise ConfigError(f"{where}.overrides: {Mediation.name}.* overrides need the city's mediation: block; "
                              "allowed: scenario keys")
        for _ in range(count):
            index = len(specs)
            try:  # mediation.* overrides set the community's desk, the rest its scenario
                cfg, desk = split_arm(Mediation(), list(extra) + [f"sim.days={n_days}"], scenario,
                                      community_seed(seed, index))
            except ConfigError as e:
                raise ConfigError(f"{where}: {e}") from None
            desk = desk.set_params(households=cfg.community.households, days=n_days) if mediation else None
            specs.append(CommunitySpec(index, f"{entry.get('label', scenario)}-{index}", cfg, desk))
    return CityConfig(str(raw.get("name", "city")), seed, n_days, tuple(specs), rule, mediation)


def _mediation_rule(table) -> "med.MediationRule":
    """The city's ``mediation:`` block (an empty one: the defaults) as a validated rule."""
    fields = [f.name for f in dataclasses.fields(med.MediationRule)]
    table = {} if table is None else table
    if not isinstance(table, dict):
        raise ConfigError(f"mediation: {table!r} is not allowed; allowed: a table of {', '.join(fields)}")
    _known_keys("mediation.", table, dict.fromkeys(fields, ""))
    return med.MediationRule(**table)


def _known_keys(prefix: str, table: dict, allowed: dict) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(f"unknown key {prefix}{key}{did_you_mean(key, allowed)}; allowed keys: "
                              f"{', '.join(allowed)}")


def split(specs, shards: int) -> list[list]:
    """Communities dealt to ``shards`` shards round-robin by index (shard ``s`` gets ``s, s + shards, ...``)."""
    return [list(specs[s::shards]) for s in range(shards)]


# ------------------------------------------------------------ the exchange
def offers_of(index: int, twin, rule: DistrictRule) -> np.ndarray:
    """The tickets community ``index`` offers the district at the end of its last stepped day."""
    desk = twin.services.repair
    n, st = desk.n_tickets, desk.state
    rows = twin.transitions.pop_until(math.inf)
    _push_back(twin.transitions, rows)
    starts = rows[rows["action"] == Action.start]
    completes = rows[rows["action"] == Action.complete]
    ticket = starts["ticket"]
    waiting = (st.status[:n][ticket] == Status.submitted) & (st.priority[:n][ticket] < URGENT_PRIORITY)
    submitted = st.times[ticket, Status.submitted]
    late = waiting & (starts["t"] - submitted > rule.overflow_after_minutes)
    done = dict(zip(completes["ticket"].tolist(), completes["t"].tolist()))
    out = np.zeros(int(late.sum()), OFFER)
    out["community"], out["ticket"] = index, ticket[late]
    out["submitted"], out["start"] = submitted[late], starts["t"][late]
    out["duration"] = [done[int(t)] - s for t, s in zip(ticket[late], starts["t"][late])]
    return out


class District:
    """The district crew's state between days, and its rule for taking overflow."""

    def __init__(self, rule: DistrictRule):
        self.rule = rule
        self.free_at = np.zeros(rule.technicians)
        self.busy_minutes = 0.0
        self.taken = 0
        self.offered = 0

    def assign(self, offers: np.ndarray, day: int) -> np.ndarray:
        """Assignments for the offers made at the end of ``day`` (see the module docstring)."""
        r = self.rule
        self.offered += len(offers)
        if len(offers) == 0 or r.technicians == 0:
            return np.zeros(0, ASSIGNMENT)
        order = np.lexsort((offers["ticket"], offers["community"], offers["submitted"]))
        taken = []
        for o in offers[order]:
            k = int(np.argmin(self.free_at))
            begin = self._on_shift(max(self.free_at[k], (day + 1) * 1440.0))
            start = begin + r.travel_minutes
            if start >= o["start"]:
                continue  # the community's own crew gets there first
            done = start + o["duration"]
            self.free_at[k] = done
            self.busy_minutes += done - begin
            taken.append((o["community"], o["ticket"], DISTRICT_WORKER + k, begin, start, done))
        self.taken += len(taken)
        return np.array(taken, ASSIGNMENT)

    def _on_shift(self, t: float) -> float:
        """The first minute at or after ``t`` inside a district shift."""
        r = self.rule
        day, minute = divmod(t, 1440.0)
        if minute < r.shift_start_hour * 60:
            return day * 1440.0 + r.shift_start_hour * 60
        if minute >= r.shift_end_hour * 60:
            return (day + 1) * 1440.0 + r.shift_start_hour * 60
        return t


def apply_assignments(twin, assignments: np.ndarray) -> None:
    """Replace the community crew's scheduled transitions of the taken tickets by the district's."""
    if len(assignments) == 0:
        return
    q = twin.transitions
    rows = q.pop_until(math.inf)
    mine = np.isin(rows["ticket"], assignments["ticket"])
    rated = rows[mine & (rows["action"] == Action.rate)]
    _push_back(q, rows[~mine])
    a = assignments
    q.push(a["dispatch"], Action.dispatch, a["ticket"], a["worker"])
    q.push(a["start"], Action.start, a["ticket"])
    q.push(a["done"], Action.complete, a["ticket"])
    done = dict(zip(a["ticket"].tolist(), a["done"].tolist()))
    q.push(np.array([done[int(t)] for t in rated["ticket"]]) + twin.cfg.staff.rating_delay_minutes,
           Action.rate, rated["ticket"], rated["arg"])


def _push_back(q, rows: np.ndarray) -> None:
    for action in np.unique(rows["action"]):
        r = rows[rows["action"] == action]
        q.push(r["t"], Action(int(action)), r["ticket"], r["arg"])


# ------------------------------------------------------------------ shards
class Shard:
    """A set of communities stepped together, with their mediation desks; on Ray, one actor per shard."""

    def __init__(self, specs, rule: DistrictRule, mediation=None):
        from policies.mediation import Desk
        from twin.engine import Twin

        self.rule, self.mediation = rule, mediation
        self.twins = {s.index: Twin(s.cfg) for s in specs}
        self.labels = {s.index: s.label for s in specs}
        self.desks = {s.index: Desk(s.mediation, s.cfg.seed) for s in specs if mediation is not None}
        self.day = 0
        self.step_s = 0.0

    def residents(self) -> int:
        """Residents of the shard's communities (an answer also says the shard is built)."""
        return sum(int(t.community.n_residents) for t in self.twins.values())

    def step(self, assignments: np.ndarray, takes: np.ndarray) -> tuple:
        """Apply the district's assignments and takes, run each desk's morning and each community's day;
        return today's repair offers and mediation referrals."""
        t0 = time.perf_counter()
        out, referred = [np.zeros(0, OFFER)], [np.zeros(0, med.REFERRAL)]
        for index, twin in self.twins.items():
            apply_assignments(twin, assignments[assignments["community"] == index])
            if index in self.desks:
                desk = self.desks[index]
                med.hand_over(desk, takes[takes["community"] == index])
                desk.morning(self.day)
                referred.append(med.referrals_of(index, desk, self.mediation, self.day))
            twin.step()
            out.append(offers_of(index, twin, self.rule))
        self.day += 1
        self.step_s += time.perf_counter() - t0
        return np.concatenate(out), np.concatenate(referred)

    def finish(self) -> list[dict]:
        """Each community's summary, residents, pooling weights and event log."""
        from twin.results import Result

        out = []
        for index, twin in self.twins.items():
            result = Result.from_twin(twin)
            out.append({"index": index, "label": self.labels[index], "seed": twin.seed,
                        "residents": int(twin.community.n_residents), "summary": result.summary,
                        "weights": weights_of(result.event_log, int(twin.community.adults().sum())),
                        "events": result.event_log, "kpis": result.kpis, "shard_step_s": self.step_s})
            if index in self.desks:
                disputes = med.disputes_of(self.desks[index])
                out[-1].update(disputes=disputes, mediation=med.desk_kpis(disputes, self.desks[index].model.days))
        return out


def weights_of(events: np.ndarray, adults: int) -> dict:
    """How many things each pooled KPI of a community averages over (see :data:`POOLED`)."""
    k = events["kind"]
    raised = events[k == EventKind.AlertRaised]
    return {"adults": adults,
            "tickets_started": int((k == EventKind.TicketStarted).sum()),
            "tickets_completed": int((k == EventKind.TicketCompleted).sum()),
            "tickets_rated": int((k == EventKind.TicketRated).sum()),
            "inactivity_alerts": int((raised["code"] == 0).sum()),
            "incidents": int((k == EventKind.IncidentStarted).sum()),
            "alerts_attended": int((k == EventKind.AlertAttended).sum())}


def city_kpis(communities: list[dict]) -> dict:
    """City-wide KPIs: totals of counts, and means pooled over what each community averages over
    (and the same for the mediation KPIs, where the city runs mediation)."""
    out = {"communities": len(communities), "residents": sum(c["residents"] for c in communities)}
    out.update(_aggregate([(c["summary"], c["weights"]) for c in communities], SUMMED, POOLED))
    if communities and all("mediation" in c for c in communities):
        out.update(_aggregate([(c["mediation"], c["mediation"]) for c in communities],
                              med.MEDIATION_SUMMED, med.MEDIATION_POOLED))
    return out


def _aggregate(rows: list, summed, pooled: dict) -> dict:
    """Totals of ``summed`` and means of ``pooled`` over ``rows`` of (KPIs, weights), each mean weighted
    by the count it averages over (a community without a figure does not count)."""
    out = {key: sum(kpis[key] for kpis, _ in rows) for key in summed}
    for key, weight in pooled.items():
        pairs = [(kpis[key], weights[weight]) for kpis, weights in rows
                 if kpis[key] is not None and not math.isnan(kpis[key]) and weights[weight] > 0]
        total = sum(w for _, w in pairs)
        out[key] = sum(v * w for v, w in pairs) / total if total else math.nan
    return out


# ------------------------------------------------------------ coordinator
class _Local:
    """Shards in this process, called one after another."""

    def __init__(self, groups, rule, mediation):
        self.shards = [Shard(g, rule, mediation) for g in groups]

    def call(self, method: str, args: list) -> list:
        return [getattr(s, method)(*a) for s, a in zip(self.shards, args)]


class _Ray:
    """One Ray actor per shard; a call waits for every shard's answer, kept in shard order."""

    def __init__(self, groups, rule, mediation):
        import ray

        remote = ray.remote(Shard).options(scheduling_strategy="SPREAD")  # shards over the nodes
        self.ray = ray
        self.shards = [remote.remote(g, rule, mediation) for g in groups]

    def call(self, method: str, args: list) -> list:
        return self.ray.get([getattr(s, method).remote(*a) for s, a in zip(self.shards, args)])


def run_city(city: CityConfig, backend: str = "local", shards: int = 1, address: str | None = None) -> dict:
    """Run the city; returns its KPIs, the district's figures and every community's results.

    ``backend``: ``local`` (shards in this process) or ``ray`` (one actor per shard, on
    the cluster at ``address``, or a local instance).  The results do not depend on
    ``shards`` or ``backend``.
    """
    if backend not in ("local", "ray"):
        raise ConfigError(f"backend: {backend!r} is not allowed; allowed: local, ray")
    if not isinstance(shards, int) or shards < 1:
        raise ConfigError(f"shards: {shards!r} is not allowed; allowed: an integer >= 1")
    groups = [g for g in split(city.communities, min(shards, len(city.communities))) if g]
    t0 = time.perf_counter()
    if backend == "ray":
        from twin.sweep import ray_session

        with ray_session(address):
            return _coordinate(city, _Ray(groups, city.district, city.mediation), len(groups), t0)
    return _coordinate(city, _Local(groups, city.district, city.mediation), len(groups), t0)


def _coordinate(city: CityConfig, shards, n_shards: int, t0: float) -> dict:
    district = District(city.district)
    pool = None if city.mediation is None else med.DistrictPool(
        city.mediation, {s.index: (s.cfg.seed, s.mediation) for s in city.communities}, district_seed(city.seed))
    assignments, takes = np.zeros(0, ASSIGNMENT), np.zeros(0, med.TAKE)
    shards.call("residents", [()] * n_shards)  # every shard built
    setup_s, day_s = time.perf_counter() - t0, []
    for day in range(city.days):
        t_day = time.perf_counter()
        answers = shards.call("step", [(assignments, takes)] * n_shards)
        if day < city.days - 1:  # the last day's offers would be applied after the run's end
            assignments = district.assign(np.concatenate([a[0] for a in answers]), day)
            if pool is not None:  # referrals of this morning, taken the next
                takes = pool.take(np.concatenate([a[1] for a in answers]), day + 1)
        day_s.append(time.perf_counter() - t_day)
    communities = sorted((c for part in shards.call("finish", [()] * n_shards) for c in part),
                         key=lambda c: c["index"])
    wall = time.perf_counter() - t0
    out = {"name": city.name, "seed": city.seed, "days": city.days, "shards": n_shards,
           "kpis": city_kpis(communities),
           "district": {"technicians": city.district.technicians, "offered": district.offered,
                        "taken": district.taken, "busy_minutes": float(district.busy_minutes)},
           "communities": communities, "wall_s": wall, "setup_s": setup_s, "day_s": day_s}
    if pool is not None:
        out["mediation"] = pool.figures()
    return out


def save_city(result: dict, directory) -> Path:
    """Write ``city.json`` (KPIs, district, each community's summary), ``communities.csv`` and
    ``.parquet`` (units in the schema), the logs and, where the city runs mediation, each community's
    disputes (``disputes/NNNN.npy``)."""
    import pandas as pd

    from twin.results import _jsonable, write_parquet

    d = Path(directory)
    (d / "events").mkdir(parents=True, exist_ok=True)
    for c in result["communities"]:
        np.save(d / "events" / f"{c['index']:04d}.npy", c["events"])
        if "disputes" in c:
            (d / "disputes").mkdir(exist_ok=True)
            np.save(d / "disputes" / f"{c['index']:04d}.npy", c["disputes"])
    rows = [{"index": c["index"], "label": c["label"], "seed": c["seed"], "residents": c["residents"],
             **c["summary"], **c.get("mediation", {})} for c in result["communities"]]
    frame = pd.DataFrame(rows)
    frame.to_csv(d / "communities.csv", index=False)
    write_parquet(frame, d / "communities.parquet", community_columns(frame.columns))
    meta = {k: result[k] for k in ("name", "seed", "days", "shards", "kpis", "district", "mediation", "wall_s",
                                   "setup_s") if k in result}
    meta["communities"] = rows
    (d / "city.json").write_text(json.dumps(_jsonable(meta), indent=2))
    return d


#: The columns of ``communities.csv`` / ``.parquet`` that are not the communities' KPIs.
COMMUNITY_COLUMNS = {"index": ("", "the community's place in the city config (templates expanded in order)"),
                     "label": ("", "its template's label and copy number"),
                     "seed": ("", "its seed, drawn from the city seed and its index"),
                     "residents": ("count", "its residents")}


def community_columns(names) -> dict:
    """Unit and meaning of each column of the communities table: the fixed ones, then KPIs by their names."""
    from twin.results import tidy_unit

    return {n: COMMUNITY_COLUMNS.get(n) or (tidy_unit(n), "the community's KPI over the run") for n in names}


def default_out(name: str) -> Path:
    return Path("outputs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


def cores() -> int:
    """CPU cores this process may use (for figures per core)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# ------------------------------------------------------------------- CLI
def format_city(result: dict) -> str:
    """The city's KPIs and the district's work, as a table for terminals."""
    from twin.results import format_value, text_table, unit_of

    rows = [[k, format_value(v, unit_of(k)), unit_of(k)] for k, v in result["kpis"].items()]
    rows += [[f"district_{k}", format_value(v, "min" if "minutes" in k else ""), "min" if "minutes" in k else ""]
             for k, v in result["district"].items()]
    rows += [[f"district_mediation_{k}", format_value(v, ""), ""] for k, v in result.get("mediation", {}).items()]
    return text_table(["kpi", "value", "unit"], rows, "lrl")


def cmd_city(args) -> int:
    city = load_city(args.city, days=args.days, overrides={"seed": args.seed} if args.seed is not None else None)
    result = run_city(city, backend=args.backend, shards=args.shards, address=args.address)
    out = save_city(result, args.out or default_out(city.name))
    print(format_city(result))
    folders = "events/, disputes/" if "mediation" in result else "events/"
    print(f"\n{len(city.communities)} communities, {result['shards']} shard(s) on {args.backend}, "
          f"{result['wall_s']:.1f} s\ncity folder: {out} (city.json, communities.csv/.parquet, {folders})")
    return 0


def add_command(sub) -> None:
    """``twin city``: its options on the CLI's subcommand parser."""
    p = sub.add_parser("city", help="run a city: communities in shards sharing a district crew, day by day",
                       description="Run a city config (scenarios/city/NAME.yaml): its communities step one day "
                                   "at a time in shards (in this process, or one Ray actor per shard) and hand "
                                   "repair overflow to the district crew (and, where the config declares "
                                   "mediation:, dispute overflow to the district's mediators); the results do "
                                   "not depend on the number of shards. Writes city.json, communities.csv and "
                                   "each community's event log (and disputes).")
    p.add_argument("-s", "--city", default="city_demo", help="a shipped city config, or a path to one")
    p.add_argument("--backend", choices=("local", "ray"), default="local",
                   help="local: shards in this process; ray: one Ray actor per shard")
    p.add_argument("--shards", type=int, default=1, help="how many shards the communities are dealt to")
    p.add_argument("--address", default=None,
                   help="the Ray cluster to join (auto: the one this machine belongs to; default: a local one)")
    p.add_argument("--days", type=int, default=None, help="simulated days (default: the config's)")
    p.add_argument("--seed", type=int, default=None, help="the city seed (default: the config's)")
    p.add_argument("--out", default=None, metavar="DIR", help="the city folder (default: outputs/<city>-<time>/)")
    p.set_defaults(func=cmd_city)

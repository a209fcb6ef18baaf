"""The doorstep service station: separate windows per service class, or one integrated front desk.

Residents come for four classes of service (government, living, culture, health).  Each day's
visits are Poisson, spread over the opening hours by an hour-of-day profile (mornings busiest);
a visit needs one class, or with ``multi_share`` a second one too.  Two layouts serve them:

* ``windows``: each class has its own window and clerks (``window_staff``).  A visit that needs
  two classes queues at one window, then at the other.  A clerk whose window is empty idles
  while another window's queue grows.
* ``integrated`` (前台综合受理、后台分类处置): one queue at a front desk of generalists
  (``front_staff``), who take in every matter in one sitting.  A class listed in
  ``back_office_classes`` is routed to the back office (``back_staff`` specialists, pooled):
  the front clerk only takes it in (``intake_minutes``) and is free for the next resident;
  the resident waits for the back office and collects at the one output window
  (``pickup_minutes``).  Other classes the generalist does at the desk, ``generalist_factor``
  times a specialist's time.

Online booking (``booking_share`` of visits): a booked visit comes at a slot spread evenly over
the opening hours (not at the morning peak) and its documents are checked beforehand, so its
work takes ``booked_factor`` of the time.

Every draw is a hash of (seed, stream, day, visit) (``twin.rng``), so two layouts, or two
booking shares, see the same residents with the same needs: the differences are the layout's.

Reported per run (:class:`StationResult`): handling time (arrival → done), waits (time in
queues), satisfaction, the daily capacity (the fluid bound: the bottleneck's staff minutes a
day over its work minutes per visit) and the operating cost (staff-hours x wage).

Satisfaction is a documented assumption: a resident tolerates up to T minutes, T exponential
with mean ``tolerance_minutes``, and counts waiting ``wait_weight`` times (waiting feels longer
than being served), so a visit satisfies with probability
``exp(-(handling + (wait_weight - 1) * wait) / tolerance_minutes)``.  ``tolerance_minutes`` is
calibrated on a before-state satisfaction (see ``scenarios/case/pudong_satisfaction.yaml``).

:func:`fewest_staff` sizes a layout to a service level (the fewest staff whose mean wait is at
most a target), so two layouts' operating costs are compared at the same waits.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from policies._arms import split_arm
from policies.base import Policy

CLASSES = ("government", "living", "culture", "health")
LAYOUTS = ("windows", "integrated")

# Our streams in twin.rng: one per decision, so adding one never shifts another's draws.
_COUNT, _TIME, _CLASS, _MULTI, _SECOND, _BOOK, _WORK1, _WORK2 = (0x5354_0000 + k for k in range(8))


@dataclass
class Demand:
    """The visits of a run, the same for every layout: times in minutes from the first day's midnight."""

    arrival: np.ndarray      # minutes
    first: np.ndarray        # class index of the first need
    second: np.ndarray       # class index of the second need, -1 for none
    booked: np.ndarray       # bool
    work1: np.ndarray        # specialist minutes of the first need (booking already applied)
    work2: np.ndarray        # of the second need, 0 for none
    days: int


@dataclass
class StationResult:
    """What one run of the station gave; per-visit arrays in arrival order."""

    layout: str
    handling: np.ndarray     # arrival → done, minutes
    wait: np.ndarray         # minutes spent in queues
    satisfied: np.ndarray    # each visit's probability of a satisfied resident
    staff: int
    days: int
    capacity_per_day: float
    cost_per_day: float
    resource_waits: dict     # resource name → mean queue wait per request

    @property
    def visitors_per_day(self) -> float:
        return len(self.handling) / self.days

    def summary(self) -> dict:
        return {"layout": self.layout, "visitors_per_day": self.visitors_per_day,
                "handling_minutes_mean": _mean(self.handling), "wait_minutes_mean": _mean(self.wait),
                "wait_minutes_p90": float(np.quantile(self.wait, 0.9)) if len(self.wait) else math.nan,
                "satisfaction": _mean(self.satisfied), "staff": self.staff,
                "capacity_per_day": self.capacity_per_day, "cost_per_day": self.cost_per_day}

    def to_frame(self):
        """One row per visit: handling, wait, satisfaction probability."""
        import pandas as pd

        return pd.DataFrame({"handling_minutes": self.handling, "wait_minutes": self.wait,
                             "satisfaction": self.satisfied})


def _mean(x) -> float:
    x = np.asarray(x, float)
    return float(x.mean()) if len(x) else math.nan


def _uniforms(seed, stream, day, n) -> np.ndarray:
    from twin import rng

    return rng.uniforms(seed, stream, day, n) if n else np.zeros(0)


class ServiceStation(Policy):
    """A doorstep service station: demand, layout, staff and booking (see the module docstring)."""

    name = "service_station"

    def __init__(self, layout: str = "windows", households: int = 1000, days: int = 20,
                 visits_per_household_day: float = 0.135, class_mix=(0.4, 0.3, 0.1, 0.2),
                 work_minutes=(14.0, 8.0, 6.0, 10.0), multi_share: float = 0.3,
                 open_hour: float = 9.0, hour_profile=(1.6, 1.6, 1.2, 0.5, 0.7, 1.0, 0.8, 0.6),
                 window_staff=(2, 2, 1, 1), front_staff: int = 4, back_staff: int = 2,
                 back_office_classes=("government",), intake_minutes: float = 3.0,
                 pickup_minutes: float = 1.0, generalist_factor: float = 1.1, booking_share: float = 0.0,
                 booked_factor: float = 0.6, wage_per_hour: float = 40.0, tolerance_minutes: float = 200.0,
                 wait_weight: float = 1.5, target_wait_minutes: float | None = None):
        self.layout = layout
        self.households = households
        self.days = days
        self.visits_per_household_day = visits_per_household_day
        self.class_mix = class_mix
        self.work_minutes = work_minutes
        self.multi_share = multi_share
        self.open_hour = open_hour
        self.hour_profile = hour_profile
        self.window_staff = window_staff
        self.front_staff = front_staff
        self.back_staff = back_staff
        self.back_office_classes = back_office_classes
        self.intake_minutes = intake_minutes
        self.pickup_minutes = pickup_minutes
        self.generalist_factor = generalist_factor
        self.booking_share = booking_share
        self.booked_factor = booked_factor
        self.wage_per_hour = wage_per_hour
        self.tolerance_minutes = tolerance_minutes
        self.wait_weight = wait_weight
        self.target_wait_minutes = target_wait_minutes

    # ------------------------------------------------------------- checks
    def check(self) -> "ServiceStation":
        """Refuse values the station cannot run with, naming the key and what is allowed."""
        need = self.need

        need(self.layout in LAYOUTS, "layout", f"one of {', '.join(LAYOUTS)}")
        need(len(self.class_mix) == len(CLASSES) and min(self.class_mix) >= 0 and sum(self.class_mix) > 0,
             "class_mix", f"{len(CLASSES)} shares >= 0 ({', '.join(CLASSES)}), not all 0")
        need(len(self.work_minutes) == len(CLASSES) and min(self.work_minutes) > 0, "work_minutes",
             f"{len(CLASSES)} positive minutes")
        need(len(self.window_staff) == len(CLASSES) and min(self.window_staff) >= 1, "window_staff",
             f"{len(CLASSES)} whole numbers >= 1")
        need(set(self.back_office_classes) <= set(CLASSES), "back_office_classes", f"a subset of {CLASSES}")
        need(0 <= self.open_hour < 24, "open_hour", "an hour of the day in [0, 24)")
        need(len(self.hour_profile) >= 1 and min(self.hour_profile) >= 0 and sum(self.hour_profile) > 0
             and 0 <= self.open_hour and self.open_hour + len(self.hour_profile) <= 24, "hour_profile",
             "a weight >= 0 per opening hour, closing by midnight")
        for key in ("multi_share", "booking_share"):
            need(0 <= getattr(self, key) <= 1, key, "a share in [0, 1]")
        for key in ("households", "days", "front_staff"):
            need(int(getattr(self, key)) >= 1, key, "a whole number >= 1")
        need(self.back_staff >= (1 if self.back_office_classes else 0), "back_staff",
             "a whole number, >= 1 when back_office_classes is not empty")
        for key in ("visits_per_household_day", "tolerance_minutes", "booked_factor", "generalist_factor"):
            need(getattr(self, key) > 0, key, "a positive number")
        for key in ("intake_minutes", "pickup_minutes", "wage_per_hour"):
            need(getattr(self, key) >= 0, key, "a number >= 0")
        need(self.wait_weight >= 1, "wait_weight", "a number >= 1 (waiting counts at least as much as handling)")
        need(self.target_wait_minutes is None or self.target_wait_minutes > 0, "target_wait_minutes",
             "a positive number of minutes, or null (not sized)")
        return self

    # ------------------------------------------------------------- demand
    @property
    def open_minutes(self) -> float:
        return 60.0 * len(self.hour_profile)

    def demand(self, seed: int) -> Demand:
        """The run's visits, drawn from ``seed`` alone (the same for every layout)."""
        from twin import rng

        self.check()
        lam = self.households * self.visits_per_household_day
        mix = np.cumsum(np.asarray(self.class_mix, float) / sum(self.class_mix))
        profile = np.asarray(self.hour_profile, float)
        cdf = np.concatenate(([0.0], np.cumsum(profile) / profile.sum()))
        parts = []
        for day in range(int(self.days)):
            n = int(rng.poisson(lam, seed, _COUNT, day, 0))
            u = _uniforms(seed, _TIME, day, n)
            booked = _uniforms(seed, _BOOK, day, n) < self.booking_share
            # walk-ins follow the hour profile (inverse of its piecewise-linear CDF); booked slots are even
            hour = np.interp(u, cdf, np.arange(len(cdf)))
            hour = np.where(booked, u * len(profile), hour)
            first = np.searchsorted(mix, _uniforms(seed, _CLASS, day, n), side="right").clip(0, len(CLASSES) - 1)
            multi = _uniforms(seed, _MULTI, day, n) < self.multi_share
            # a second, different class: one of the other three, by the mix among them
            second = np.full(n, -1)
            u2 = _uniforms(seed, _SECOND, day, n)
            for i in np.flatnonzero(multi):
                w = np.asarray(self.class_mix, float).copy()
                w[first[i]] = 0.0
                if w.sum() > 0:
                    second[i] = int(np.searchsorted(np.cumsum(w / w.sum()), u2[i], side="right").clip(0, 3))
            means = np.asarray(self.work_minutes, float)
            scale = np.where(booked, self.booked_factor, 1.0)
            w1 = -np.log1p(-_uniforms(seed, _WORK1, day, n)) * means[first] * scale
            w2 = np.where(second >= 0, -np.log1p(-_uniforms(seed, _WORK2, day, n)) * means[second.clip(0)] * scale,
                          0.0)
            t = day * 1440.0 + (self.open_hour + hour) * 60.0
            parts.append((t, first, second, booked, w1, w2))
        cols = [np.concatenate(c) for c in zip(*parts)]  # days >= 1, so there is a part
        order = np.argsort(cols[0], kind="stable")
        return Demand(*(c[order] for c in cols), days=int(self.days))

    # ------------------------------------------------------------- the queue
    @property
    def staff(self) -> int:
        if self.layout == "windows":
            return int(sum(self.window_staff))
        return int(self.front_staff) + (int(self.back_staff) if self.back_office_classes else 0)

    @property
    def cost_per_day(self) -> float:
        """Operating cost: staff-hours of the opening hours times the wage."""
        return self.staff * self.open_minutes / 60.0 * self.wage_per_hour

    def run(self, seed: int = 0, demand: Demand | None = None) -> StationResult:
        """Serve the run's visits (``demand``, default drawn from ``seed``) with this layout."""
        import simpy

        self.check()
        d = self.demand(seed) if demand is None else demand
        env = simpy.Environment()
        n = len(d.arrival)
        done, waited = np.full(n, np.nan), np.zeros(n)
        waits: dict[str, list] = {}
        back = {CLASSES.index(c) for c in self.back_office_classes}
        if self.layout == "windows":
            windows = [simpy.Resource(env, int(c)) for c in self.window_staff]
        else:
            front = simpy.Resource(env, int(self.front_staff))
            office = simpy.Resource(env, int(self.back_staff)) if back else None

        def queue(resource, name, i, minutes):
            t0 = env.now
            with resource.request() as req:
                yield req
                waited[i] += env.now - t0
                waits.setdefault(name, []).append(env.now - t0)
                yield env.timeout(minutes)

        def visit(i):
            yield env.timeout(d.arrival[i] - env.now)
            needs = [(int(d.first[i]), d.work1[i])] + ([(int(d.second[i]), d.work2[i])] if d.second[i] >= 0 else [])
            if self.layout == "windows":
                for k, minutes in needs:
                    yield from queue(windows[k], CLASSES[k], i, minutes)
            else:
                desk = sum(self.intake_minutes if k in back else m * self.generalist_factor for k, m in needs)
                yield from queue(front, "front", i, desk)
                routed = [env.process(queue(office, "back", i, m)) for k, m in needs if k in back]
                if routed:
                    yield simpy.AllOf(env, routed)
                    yield env.timeout(self.pickup_minutes)
            done[i] = env.now

        for i in range(n):
            env.process(visit(i))
        env.run()
        handling = done - d.arrival
        felt = handling + (self.wait_weight - 1.0) * waited
        return StationResult(
            layout=self.layout, handling=handling, wait=waited, satisfied=np.exp(-felt / self.tolerance_minutes),
            staff=self.staff, days=d.days, capacity_per_day=self.capacity_per_day(d),
            cost_per_day=self.cost_per_day,
            resource_waits={k: float(np.mean(v)) for k, v in waits.items()})

    def capacity_per_day(self, demand: Demand) -> float:
        """Visitors a day the staff can serve at full use: the bottleneck's staff minutes over its minutes a visit.

        A fluid bound from the run's own mix of needs and work; the queue's waits grow
        without limit as the daily visitors near it.
        """
        n = len(demand.arrival)
        if n == 0:
            return math.nan
        needs = [(demand.first, demand.work1), (demand.second, demand.work2)]
        if self.layout == "windows":
            load = [sum(w[k == c].sum() for k, w in needs) / n for c in range(len(CLASSES))]
            staff = list(self.window_staff)
        else:
            back = np.isin(np.arange(len(CLASSES)), [CLASSES.index(c) for c in self.back_office_classes])
            front = sum(np.where(back[k.clip(0)], self.intake_minutes, w * self.generalist_factor)[k >= 0].sum()
                        for k, w in needs) / n
            office = sum(w[(k >= 0) & back[k.clip(0)]].sum() for k, w in needs) / n
            load, staff = [front, office], [self.front_staff, self.back_staff]
        return float(min(s * self.open_minutes / m for s, m in zip(staff, load) if m > 0))


# ------------------------------------------------------------------ sizing to a service level
def fewest_staff(station: ServiceStation, target_wait_minutes: float | None = None, seed: int = 0,
                 max_staff: int = 60) -> ServiceStation:
    """A copy of ``station`` with the fewest staff whose visits wait ``target_wait_minutes`` or less on average.

    ``target_wait_minutes`` defaults to the station's own.

    Greedy: start every window (or the front desk and the back office) at one clerk and add
    one where requests wait longest until the mean wait per visit meets the target.  Both
    layouts sized this way serve at the same waits, so their costs compare like for like.
    Raises ``ValueError`` if ``max_staff`` clerks are not enough.
    """
    s = ServiceStation(**station.get_params())
    target = s.target_wait_minutes if target_wait_minutes is None else target_wait_minutes
    if target is None:
        raise ValueError("fewest_staff needs a target_wait_minutes (the station has none)")
    d = s.demand(seed)
    if s.layout == "windows":
        s.window_staff = tuple(1 for _ in CLASSES)
    else:
        s.front_staff, s.back_staff = 1, (1 if s.back_office_classes else 0)
    while True:
        r = s.run(seed, d)
        if _mean(r.wait) <= target:
            return s
        if s.staff >= max_staff:
            raise ValueError(f"more than max_staff = {max_staff} clerks needed for a mean wait of {target} minutes")
        worst = max(r.resource_waits, key=r.resource_waits.get)
        if s.layout == "windows":
            staff = list(s.window_staff)
            staff[CLASSES.index(worst)] += 1
            s.window_staff = tuple(staff)
        elif worst == "front":
            s.front_staff += 1
        else:
            s.back_staff += 1


# ------------------------------------------------------------------ case studies
def case_arm(scenario: str, overrides, seed: int) -> dict:
    """One replication of one arm of a service-station case (``twin.cases`` calls it for ``model:`` cases).

    Overrides named ``service_station.<param>`` set :class:`ServiceStation` parameters; the
    scenario's give the households served (``community.households``) and the days
    (``sim.days``).  Returns the run's summary, plus ``capacity_vs_windows`` (capacity over
    that of the arm's separate windows, ``window_staff``, without booking, on the same
    residents) and, with ``target_wait_minutes``, ``cost_vs_windows`` (the operating cost of
    the layout sized to that mean wait, over that of the arm's separate windows sized to it).
    """
    cfg, station = split_arm(ServiceStation(), overrides, scenario, seed)
    station.set_params(households=cfg.community.households, days=cfg.sim.days)
    d = station.demand(seed)
    out = station.run(seed, d).summary()
    windows = ServiceStation(**{**station.get_params(), "layout": "windows", "booking_share": 0.0})
    out["capacity_vs_windows"] = out["capacity_per_day"] / windows.capacity_per_day(windows.demand(seed))
    if station.target_wait_minutes is not None:  # sizing runs the queue a dozen times: only when asked
        sized, sized_windows = fewest_staff(station, seed=seed), fewest_staff(windows, seed=seed)
        out["staff_sized"] = sized.staff
        out["cost_vs_windows"] = sized.cost_per_day / sized_windows.cost_per_day
    return {k: v for k, v in out.items() if k != "layout"}  # a case's KPIs are numbers

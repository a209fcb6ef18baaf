"""Waste collection: a fixed schedule against fill-triggered collection, routed and costed.

Bins fill as the sensors say (``DayReadings.bin_fill``: each building's bin fill at each
tick's end); :func:`fill_increments` recovers what was thrown in each tick, and
:func:`simulate` replays it under a collection policy with the engine's own rule — a round
that starts in a tick empties its bins before the tick's waste, and a bin is overflowing in
every tick that ends with it full.  Replaying the cleaners' rounds of the twin therefore gives
the twin's ``bin_overflow_hours`` exactly.

Every round is driven by a vehicle of limited capacity from the depot (the community's gate,
one street from the first building) over the community's path graph (:func:`path_graph`:
the streets between neighbouring buildings of the map's grid), routed by Clarke-Wright
savings and improved by 2-opt (:func:`plan_routes`), and costed in distance and crew hours
(:class:`Vehicle`).  :class:`FixedSchedule` empties every bin at set hours;
:class:`FillTriggered` looks at set hours and empties only the bins that would be full before
it next looks.  :func:`compare_collection` prices the fill-triggered policy against the
cheapest fixed schedule that keeps overflow as low.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from policies.base import Policy


# ------------------------------------------------------------------ the path graph
def path_graph(building_x, building_y, spacing_m: float):
    """Streets between buildings that are grid neighbours, plus the depot (node ``B``) by building 0.

    Edge weights are metres; node attribute ``pos`` is the place.
    """
    import networkx as nx

    x, y = np.asarray(building_x, float), np.asarray(building_y, float)
    B = len(x)
    g = nx.Graph()
    for b in range(B):
        g.add_node(b, pos=(x[b], y[b]))
    for i in range(B):
        for j in range(i + 1, B):
            dx, dy = abs(x[i] - x[j]), abs(y[i] - y[j])
            if min(dx, dy) < 1e-6 and abs(max(dx, dy) - spacing_m) < 1e-6:
                g.add_edge(i, j, weight=float(spacing_m))
    g.add_node(B, pos=(x[0] - spacing_m, y[0]))
    g.add_edge(B, 0, weight=float(spacing_m))
    return g


def distances(graph) -> np.ndarray:
    """Shortest-path metres between every pair; row and column 0 are the depot, ``1 + b`` building ``b``."""
    import networkx as nx

    depot = graph.number_of_nodes() - 1
    order = [depot, *range(depot)]
    d = nx.floyd_warshall_numpy(graph, nodelist=order, weight="weight")
    if not np.isfinite(d).all():
        raise ValueError("the path graph is not connected: some building cannot be reached from the depot")
    return np.asarray(d)


# ------------------------------------------------------------------ routing
def route_length(route, dist: np.ndarray) -> float:
    """Metres of depot → ``route`` stops in order → depot."""
    stops = [0, *route, 0]
    return float(sum(dist[a, b] for a, b in zip(stops, stops[1:])))


def two_opt(route: list, dist: np.ndarray) -> list:
    """Reverse segments of a route while that shortens it (the depot stays at both ends)."""
    best = [0, *route, 0]
    improved = True
    while improved:
        improved = False
        for i in range(1, len(best) - 2):
            for j in range(i + 1, len(best) - 1):
                a, b, c, d = best[i - 1], best[i], best[j], best[j + 1]
                if dist[a, c] + dist[b, d] < dist[a, b] + dist[c, d] - 1e-9:
                    best[i:j + 1] = best[i:j + 1][::-1]
                    improved = True
    return best[1:-1]


def plan_routes(dist: np.ndarray, stops, load, capacity: float) -> list:
    """Routes (lists of stops, depot = 0 left out) visiting every stop once within ``capacity``.

    Clarke-Wright savings: start with one route per stop and join route ends in order of the
    distance a join saves (``d0i + d0j - dij``) while the joined load fits; then 2-opt each.
    """
    stops = [int(s) for s in stops]
    load = dict(zip(stops, (float(v) for v in load)))
    too_big = [s for s in stops if load[s] > capacity]
    if too_big:
        raise ValueError(f"capacity {capacity} is smaller than the load at stop(s) {too_big[:5]}")
    route_of = {s: [s] for s in stops}
    route_load = {s: load[s] for s in stops}  # keyed by the route's first stop
    savings = sorted(((dist[0, i] + dist[0, j] - dist[i, j], i, j) for k, i in enumerate(stops)
                      for j in stops[k + 1:]), reverse=True)
    for saving, i, j in savings:
        if saving <= 0:
            break
        ri, rj = route_of[i], route_of[j]
        if ri is rj or route_load[ri[0]] + route_load[rj[0]] > capacity + 1e-9:
            continue
        if i not in (ri[0], ri[-1]) or j not in (rj[0], rj[-1]):
            continue  # only a route's ends can be joined
        left = ri if ri[-1] == i else ri[::-1]
        right = rj if rj[0] == j else rj[::-1]
        merged = left + right
        total = route_load.pop(ri[0]) + route_load.pop(rj[0])
        route_load[merged[0]] = total
        for s in merged:
            route_of[s] = merged
    routes, seen = [], set()
    for s in stops:
        r = route_of[s]
        if id(r) not in seen:
            seen.add(id(r))
            routes.append(two_opt(r, dist))
    return routes


# ------------------------------------------------------------------ costs
class Vehicle(Policy):
    """The collection vehicle and its crew: what a round costs."""

    name = "vehicle"

    def __init__(self, capacity_bins: float = 12.0, speed_km_per_h: float = 12.0, stop_minutes: float = 3.0,
                 unload_minutes: float = 15.0, crew: int = 2, crew_cost_per_hour: float = 30.0,
                 cost_per_km: float = 2.5):
        self.capacity_bins = capacity_bins
        self.speed_km_per_h = speed_km_per_h
        self.stop_minutes = stop_minutes
        self.unload_minutes = unload_minutes
        self.crew = crew
        self.crew_cost_per_hour = crew_cost_per_hour
        self.cost_per_km = cost_per_km

    def cost(self, km: float, stops: int, routes: int) -> dict:
        """Crew hours (driving, emptying each bin, unloading after each route) and money for a round."""
        hours = km / self.speed_km_per_h + (stops * self.stop_minutes + routes * self.unload_minutes) / 60.0
        crew_hours = hours * self.crew
        return {"km": km, "crew_hours": crew_hours, "cost": km * self.cost_per_km + crew_hours * self.crew_cost_per_hour}


# ------------------------------------------------------------------ policies
def _ticks_at(hours, tick_minutes: float) -> np.ndarray:
    """The ticks of a day in which a round at each of ``hours`` starts (the engine's rule)."""
    ticks_per_day = int(round(1440 / tick_minutes))
    hour0 = np.arange(ticks_per_day) * tick_minutes / 60.0
    step = tick_minutes / 60.0
    return np.array([any(h0 <= h < h0 + step for h in hours) for h0 in hour0])


class FixedSchedule(Policy):
    """Every bin emptied at the same hours each day (the cleaners' rounds)."""

    name = "fixed"

    def __init__(self, hours=(7.0, 19.0)):
        self.hours = tuple(float(h) for h in hours)

    def round_hours(self) -> tuple:
        return self.hours

    def select(self, fill, recent_per_hour, hours_to_next) -> np.ndarray:
        return np.ones(len(fill), bool)


class FillTriggered(Policy):
    """At each look, empty the bins the sensors say could be ``full_at`` full before the next look.

    "Could": at the bin's fastest pace over the last day of readings (a bin fills unevenly
    from hour to hour).  A vehicle that goes out anyway also empties the bins that would be
    ``full_at`` full within ``top_up_hours`` at their mean pace (an inventory "can-order"
    rule), so one trip serves what would soon need its own.
    """

    name = "fill"

    def __init__(self, hours=tuple(range(24)), full_at: float = 1.0, top_up_hours: float = 6.0):
        self.hours = tuple(float(h) for h in hours)
        self.full_at = full_at
        self.top_up_hours = top_up_hours

    def round_hours(self) -> tuple:
        return self.hours

    def select(self, fill, recent_per_hour, hours_to_next) -> np.ndarray:
        """The bins to empty now, from their fill and their fill per hour over the recent ticks."""
        if recent_per_hour.shape[1] == 0:
            return np.zeros(len(fill), bool)
        urgent = fill + recent_per_hour.max(axis=1) * hours_to_next >= self.full_at
        soon = fill + recent_per_hour.mean(axis=1) * max(hours_to_next, self.top_up_hours) >= self.full_at
        return urgent | (urgent.any() & soon)


# ------------------------------------------------------------------ replay
def fill_increments(bin_fill: np.ndarray, start=None) -> np.ndarray:
    """What went into each bin in each tick, from the fill the sensors read at the ticks' ends.

    ``bin_fill`` is buildings x ticks over consecutive days (``DayReadings.bin_fill`` side by
    side); ``start`` the fill before the first tick (default empty).  A reading below the one
    before means the bin was emptied at the tick's start, so the reading is the tick's waste.
    A silent tick (NaN) counts as the bin's mean tick, the next reading as what came since.
    """
    level = np.asarray(bin_fill, float)
    prev = np.concatenate((np.zeros((len(level), 1)) if start is None else np.asarray(start, float)[:, None],
                           level[:, :-1]), axis=1)
    silent = np.isnan(level)
    prev = _carry_forward(prev)
    inc = np.where(level >= prev, level - prev, level)
    mean = np.nanmean(np.where(silent, np.nan, inc), axis=1, keepdims=True)
    return np.where(silent, np.broadcast_to(np.nan_to_num(mean), inc.shape), inc)


def _carry_forward(a: np.ndarray) -> np.ndarray:
    """Each NaN replaced by the last reading before it in its row (0 before any)."""
    out = np.nan_to_num(a.copy())
    for k in range(1, a.shape[1]):
        gap = np.isnan(a[:, k])
        out[gap, k] = out[gap, k - 1]
    return out


def simulate(increments: np.ndarray, tick_minutes: float, policy, dist: np.ndarray,
             vehicle: Vehicle = Vehicle()) -> dict:
    """Replay the bins' waste under ``policy``; every round routed and costed.

    Returns ``overflow_hours`` (bin-hours full, as the twin counts them), ``km``,
    ``crew_hours``, ``cost``, ``rounds`` (rounds that emptied a bin), ``visits`` (bins emptied)
    and ``routes``.
    """
    B, T = increments.shape
    step_h = tick_minutes / 60.0
    ticks_per_day = int(round(1440 / tick_minutes))
    starts = _ticks_at(policy.round_hours(), tick_minutes)
    look = np.flatnonzero(starts)
    gap_ticks = np.diff(np.concatenate((look, [look[0] + ticks_per_day]))) if len(look) else []
    gap_of = dict(zip(look.tolist(), gap_ticks))
    fill = np.zeros(B, np.float32)
    total = {"overflow_hours": 0.0, "km": 0.0, "crew_hours": 0.0, "cost": 0.0, "rounds": 0, "visits": 0,
             "routes": 0}
    for k in range(T):
        tod = k % ticks_per_day
        if starts[tod]:
            recent = increments[:, max(0, k - ticks_per_day):k] / step_h
            chosen = np.flatnonzero(policy.select(fill, recent, gap_of[tod] * step_h))
            if len(chosen):
                load = np.maximum(fill[chosen], 1e-6)
                routes = plan_routes(dist, chosen + 1, load, vehicle.capacity_bins)
                km = sum(route_length(r, dist) for r in routes) / 1000.0
                for key, v in vehicle.cost(km, len(chosen), len(routes)).items():
                    total[key] += v
                total["rounds"] += 1
                total["visits"] += len(chosen)
                total["routes"] += len(routes)
                fill[chosen] = 0.0
        fill = (fill + increments[:, k]).astype(np.float32)  # float32 state, float64 sum: as the sensors' kernel
        total["overflow_hours"] += float((fill >= 1.0).sum()) * step_h
    return total


def fixed_schedules(max_rounds: int = 6, first_hour: float = 7.0) -> list:
    """Fixed schedules of 1 .. ``max_rounds`` rounds a day, evenly spaced from ``first_hour``."""
    return [FixedSchedule(tuple((first_hour + i * 24.0 / k) % 24 for i in range(k))) for k in range(1, max_rounds + 1)]


def compare_collection(increments: np.ndarray, tick_minutes: float, dist: np.ndarray,
                       fill: FillTriggered = FillTriggered(), vehicle: Vehicle = Vehicle(),
                       schedules=None) -> dict:
    """Fill-triggered collection against the cheapest fixed schedule with no more overflow.

    ``schedules`` are the fixed candidates (default :func:`fixed_schedules`).  Returns both
    policies' figures, every candidate's, and ``cost_change`` (fill-triggered cost over the
    matched fixed schedule's, minus 1); ``matched`` is None when no candidate overflows as
    little as the fill-triggered policy.
    """
    ours = simulate(increments, tick_minutes, fill, dist, vehicle)
    candidates = []
    for s in schedules if schedules is not None else fixed_schedules():
        candidates.append({"hours": list(s.hours), **simulate(increments, tick_minutes, s, dist, vehicle)})
    ok = [c for c in candidates if c["overflow_hours"] <= ours["overflow_hours"] + 1e-9]
    matched = min(ok, key=lambda c: c["cost"]) if ok else None
    return {"fill_triggered": ours, "fixed": matched, "candidates": candidates,
            "cost_change": ours["cost"] / matched["cost"] - 1.0 if matched else math.nan,
            "km_change": ours["km"] / matched["km"] - 1.0 if matched else math.nan,
            "crew_hours_change": ours["crew_hours"] / matched["crew_hours"] - 1.0 if matched else math.nan}


@dataclass
class BinHistory:
    """A run's bin readings, side by side over its days, and what the routes need of its map."""

    bin_fill: np.ndarray     # buildings x ticks
    tick_minutes: float
    dist: np.ndarray         # depot + buildings, metres

    @classmethod
    def from_twin(cls, twin, days: int) -> "BinHistory":
        """Step ``twin`` ``days`` days, keeping each day's bin readings (what the sensors sent)."""
        levels = []
        for _ in range(days):
            twin.step()
            levels.append(twin.readings.bin_fill)
        c = twin.community
        graph = path_graph(c.building_x, c.building_y, twin.cfg.community.spacing_m)
        return cls(np.concatenate(levels, axis=1), float(twin.cfg.sim.tick_minutes), distances(graph))

    def increments(self, capacity=None) -> np.ndarray:
        """Each bin's waste per tick as a share of the bin (:func:`fill_increments`).

        ``capacity``: each building's bins relative to what the sensors' fill assumes (the
        twin's buildings all have the same); a bin twice as big fills half as fast.
        """
        inc = fill_increments(self.bin_fill)
        return inc if capacity is None else inc / np.asarray(capacity, float)[:, None]

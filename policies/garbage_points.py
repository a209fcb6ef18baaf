"""Garbage points: waste dumped beside the bins, found by residents' calls or by cameras, cleared by cleaners.

Why this model: a Hangzhou community reported that AI cameras spotting garbage points, with
jobs sent to the cleaners automatically, cut the handling time from 2 hours on average to
15 minutes.  The model separates the two parts of that change, finding the point and
sending a cleaner, so each can be switched on alone.

* **Points** appear at each building during the cleaners' shift, a Poisson number a day
  (``points_per_building_day``), at uniform times.
* **Detection.**  ``calls``: some passer-by phones the property office after an
  exponential time (mean ``60 / calls_per_hour`` minutes: how often residents who see it
  bother to call).  ``camera``: a camera covers each building with probability
  ``camera_coverage`` and its recogniser, looking every ``camera_scan_minutes``, reports the
  point at its next look; points at uncovered buildings are still found by calls.
* **Dispatch.**  ``manual``: the office relays the job after an exponential time (mean
  ``office_minutes``) to the cleaner of the building's zone (the buildings split into
  contiguous zones, one per cleaner), who comes once done with earlier jobs.  ``auto``: the
  job goes at once to the cleaner who can be there first (free time plus the walk from where
  they are over the path graph of :mod:`policies.waste`).
* **Clearing.**  The cleaner walks (``walk_m_per_min``, the scenario's staff walking speed),
  clears the point (``clean_minutes``) and stays there.  Nobody works outside the shift: a
  job that comes later waits for the next morning.

Handling time is point appeared → cleared.  Every draw is made once per point from the seed
(a uniform, shaped by each arm's parameters), so two arms see the same points and luck.
``calls_per_hour`` is the behaviour parameter the Hangzhou case calibrates on the 2 hours.
"""
from __future__ import annotations

import math

import numpy as np

from policies.base import Policy

DETECTIONS = ("calls", "camera")
DISPATCHES = ("manual", "auto")

_POINTS = 0x4750_0001  # numpy seed-sequence stream of this model


def zones(buildings: int, cleaners: int) -> np.ndarray:
    """Each building's cleaner under manual dispatch: contiguous zones of nearly equal size."""
    return (np.arange(buildings) * cleaners) // buildings


def next_on_duty(t: float, shift: tuple) -> float:
    """``t`` (minutes) if inside a day's shift, else the start of the next shift."""
    start, end = shift[0] * 60.0, shift[1] * 60.0
    day, tod = divmod(t, 1440.0)
    if tod < start:
        return day * 1440.0 + start
    if tod >= end:
        return (day + 1) * 1440.0 + start
    return t


def first_arrival(free_at, place, building: int, ready: float, dist: np.ndarray, speed: float, shift: tuple):
    """The cleaner who reaches ``building`` first for a job ready at ``ready``, and when they set off."""
    best, best_at, best_leave = 0, math.inf, 0.0
    for j in range(len(free_at)):
        leave = next_on_duty(max(ready, free_at[j]), shift)
        at = leave + dist[1 + place[j], 1 + building] / speed
        if at < best_at - 1e-9:
            best, best_at, best_leave = j, at, leave
    return best, best_leave


class GarbagePoints(Policy):
    """Garbage points, how they are found and who is sent (see the module docstring)."""

    name = "garbage_points"

    def __init__(self, detection: str = "calls", dispatch: str = "manual", days: int = 30, buildings: int = 40,
                 points_per_building_day: float = 0.5, shift_hours=(7.0, 19.0), cleaners: int = 4,
                 calls_per_hour: float = 1.65, office_minutes: float = 20.0, camera_coverage: float = 0.95,
                 camera_scan_minutes: float = 5.0, clean_minutes: float = 8.0, walk_m_per_min: float = 70.0):
        self.detection = detection
        self.dispatch = dispatch
        self.days = days
        self.buildings = buildings
        self.points_per_building_day = points_per_building_day
        self.shift_hours = shift_hours
        self.cleaners = cleaners
        self.calls_per_hour = calls_per_hour
        self.office_minutes = office_minutes
        self.camera_coverage = camera_coverage
        self.camera_scan_minutes = camera_scan_minutes
        self.clean_minutes = clean_minutes
        self.walk_m_per_min = walk_m_per_min

    def check(self) -> "GarbagePoints":
        """Refuse values the model cannot run with, naming the key and what is allowed."""
        need = self.need

        need(self.detection in DETECTIONS, "detection", f"one of {', '.join(DETECTIONS)}")
        need(self.dispatch in DISPATCHES, "dispatch", f"one of {', '.join(DISPATCHES)}")
        for key in ("days", "buildings", "cleaners"):
            need(int(getattr(self, key)) >= 1, key, "a whole number >= 1")
        need(len(self.shift_hours) == 2 and 0 <= self.shift_hours[0] < self.shift_hours[1] <= 24,
             "shift_hours", "[start, end] hours of day with 0 <= start < end <= 24")
        need(0 <= self.camera_coverage <= 1, "camera_coverage", "a share in [0, 1]")
        for key in ("points_per_building_day", "office_minutes", "camera_scan_minutes", "clean_minutes"):
            need(getattr(self, key) >= 0, key, "a number >= 0")
        for key in ("calls_per_hour", "walk_m_per_min"):
            need(getattr(self, key) > 0, key, "a positive number")
        return self

    def points(self, seed: int) -> dict:
        """The run's points, ordered by when they appear, each with its uniform draws (the same in every arm)."""
        g = np.random.default_rng([seed, _POINTS])
        B, D = int(self.buildings), int(self.days)
        count = g.poisson(self.points_per_building_day, (D, B))
        day = np.repeat(np.repeat(np.arange(D), B), count.ravel())
        building = np.tile(np.arange(B), D).repeat(count.ravel())
        start, end = (h * 60.0 for h in self.shift_hours)
        n = len(day)
        u = g.random((5, n))  # appear, call, office, scan, clean
        covered = g.random(B) < self.camera_coverage
        t = day * 1440.0 + start + u[0] * (end - start)
        order = np.argsort(t, kind="stable")
        return {"t": t[order], "building": building[order], "u": u[:, order], "covered": covered}

    def run(self, cfg, community) -> "GarbagePointsRun":
        """The points of a scenario's community: its map, days, staff walking speed and seed.

        ``twin.cases`` calls this for the case (it builds the community: policies do not
        import the agents); the streets are :mod:`policies.waste`'s path graph.
        """
        from policies.waste import distances, path_graph

        dist = distances(path_graph(community.building_x, community.building_y, cfg.community.spacing_m))
        self.set_params(days=cfg.sim.days, buildings=len(community.building_x), walk_m_per_min=cfg.staff.walk_m_per_min)
        return GarbagePointsRun(self.simulate(dist, int(cfg.seed)))

    def simulate(self, dist: np.ndarray, seed: int = 0) -> dict:
        """Find, send and clear every point; ``dist`` is metres over the path graph (depot first)."""
        self.check()
        p = self.points(seed)
        t, building, u = p["t"], p["building"], p["u"]
        shift = tuple(float(h) for h in self.shift_hours)
        by_camera = (self.detection == "camera") & p["covered"][building]
        call = -(60.0 / self.calls_per_hour) * np.log1p(-u[1])
        scan = self.camera_scan_minutes * (1.0 - u[3])
        reported = t + np.where(by_camera, scan, call)
        office = -self.office_minutes * np.log1p(-u[2]) if self.dispatch == "manual" else np.zeros(len(t))
        ready = reported + office
        clean = -self.clean_minutes * np.log1p(-u[4])
        C = int(self.cleaners)
        zone = zones(int(self.buildings), C)
        place = np.array([int(np.flatnonzero(zone == j)[0]) if (zone == j).any() else 0 for j in range(C)])
        free_at = np.zeros(C)
        cleared = np.empty(len(t))
        speed = float(self.walk_m_per_min)
        for i in np.argsort(ready, kind="stable"):
            b = int(building[i])
            if self.dispatch == "auto":
                j, leave = first_arrival(free_at, place, b, ready[i], dist, speed, shift)
            else:
                j = int(zone[b])
                leave = next_on_duty(max(ready[i], free_at[j]), shift)
            arrive = leave + dist[1 + place[j], 1 + b] / speed
            cleared[i] = arrive + clean[i]
            free_at[j], place[j] = cleared[i], b
        handling = cleared - t
        found = reported - t
        return {"points": float(len(t)),
                "handling_minutes_mean": float(handling.mean()) if len(t) else math.nan,
                "handling_minutes_median": float(np.median(handling)) if len(t) else math.nan,
                "found_minutes_mean": float(found.mean()) if len(t) else math.nan,
                "by_camera_share": float(by_camera.mean()) if len(t) else math.nan,
                "cleared_within_30_share": float((handling <= 30).mean()) if len(t) else math.nan}


class GarbagePointsRun:
    """A run's figures, as a case reads them (``kpis()``)."""

    def __init__(self, figures: dict):
        self.figures = figures

    def kpis(self) -> dict:
        return dict(self.figures)

"""Forecast-driven staffing: as many technicians on each day's shift as the forecast work needs.

Fixed staffing puts the whole crew (``staff.technicians``) on every shift.  Forecast staffing
reads the twin's ticket history at the start of each week, forecasts the week's tickets by
category (:mod:`policies.forecast`), turns them into work minutes (each category's mean
service time plus a walk) and puts on each day the fewest technicians whose shift, filled to
``utilisation``, holds that work — never more than the crew, never fewer than
``min_technicians``.  Until ``warmup_days`` of history exist it staffs like the fixed policy.

The engine asks through its staffing hook (``Twin.technicians_on_shift``); the first
technicians of the crew work, and a ticket is given, on the day it arrives, to one of that
day's technicians (who may finish it on a later day).  :func:`staffing_figures` reads what a
run cost and what residents waited, for ``twin compare``-style paired comparisons.
"""
from __future__ import annotations

import math

import numpy as np

from policies.base import Policy
from policies.forecast import HORIZON_DAYS, DemandForecaster, calendar, daily_ticket_counts


class ForecastStaffing(Policy):
    """Technicians per day from next week's demand forecast (see the module docstring)."""

    name = "forecast"

    def __init__(self, utilisation: float = 0.6, warmup_days: int = 56, retrain_days: int = 28,
                 walk_minutes: float = 10.0, min_technicians: int = 1, n_estimators: int = 50):
        self.utilisation = utilisation
        self.warmup_days = warmup_days
        self.retrain_days = retrain_days
        self.walk_minutes = walk_minutes
        self.min_technicians = min_technicians
        self.n_estimators = n_estimators

    def technicians(self, twin, day: int) -> int:
        """How many technicians work ``day`` (the engine's staffing hook)."""
        crew = len(twin.technicians)
        if day < self.warmup_days:
            return crew
        origin = day - (day - self.warmup_days) % HORIZON_DAYS
        if getattr(self, "week_", None) != origin:
            self.week_, self.plan_ = origin, self._plan(twin, origin, crew)
        return int(self.plan_[day - origin])

    def _plan(self, twin, origin: int, crew: int) -> np.ndarray:
        """The week's technicians per day, from the tickets submitted before ``origin``."""
        categories = np.arange(len(twin._service_mean))
        counts = daily_ticket_counts(twin.log.events, origin, categories)
        cal = calendar(twin.seed, np.arange(origin + HORIZON_DAYS))
        if getattr(self, "fitted_at_", None) is None or origin - self.fitted_at_ >= self.retrain_days:
            self.forecaster_ = DemandForecaster(n_estimators=self.n_estimators).fit(counts, cal)
            self.fitted_at_ = origin
        tickets = np.maximum(self.forecaster_.predict(counts, cal, origin), 0.0)
        work = tickets @ (twin._service_mean + self.walk_minutes)
        st = twin.cfg.staff
        shift = (st.shift_end_hour - st.shift_start_hour) * 60.0
        need = np.ceil(work / (shift * self.utilisation)).astype(np.int64)
        return np.clip(need, min(self.min_technicians, crew), crew)


def run_staffed(twin, from_day: int = 0) -> dict:
    """Run ``twin`` to its last day and say what its staffing cost and gave from ``from_day`` on.

    ``staff_hours``: technicians' shift hours worked; ``technicians_mean``: per day;
    ``wait_minutes_mean``: submitted → work started, over the tickets submitted in those
    days that were started by the end (``not_started``: the others).
    """
    from twin.services.events import EventKind

    cfg = twin.cfg
    on_shift = []
    while twin.day < cfg.sim.days:
        on_shift.append(twin.technicians_working(twin.day))
        twin.step()
    st = cfg.staff
    days = np.asarray(on_shift[from_day:], float)
    ev = twin.log.events
    sub = ev[(ev["kind"] == EventKind.TicketSubmitted) & (ev["t"] >= from_day * 1440.0)]
    started = ev[ev["kind"] == EventKind.TicketStarted]
    start_of = dict(zip(started["subject"].tolist(), started["t"].tolist()))
    waits = np.array([start_of[s] - t for s, t in zip(sub["subject"].tolist(), sub["t"].tolist()) if s in start_of])
    return {"days": len(days), "staff_hours": float(days.sum()) * (st.shift_end_hour - st.shift_start_hour),
            "technicians_mean": float(days.mean()) if len(days) else math.nan,
            "wait_minutes_mean": float(waits.mean()) if len(waits) else math.nan,
            "wait_minutes_p90": float(np.quantile(waits, 0.9)) if len(waits) else math.nan,
            "tickets": int(len(sub)), "not_started": int(len(sub) - len(waits)),
            "technicians_by_day": days.astype(int).tolist(),
            "tickets_by_day": np.bincount((sub["t"] // 1440).astype(np.int64) - from_day,
                                          minlength=len(days))[:len(days)].tolist()}


FIXED_AGAINST_FORECAST = {"fixed": ["policies.staffing=fixed"], "forecast": ["policies.staffing=forecast"]}


def compare_staffing(twin_class, scenario: str, overrides: list[str], seeds, from_day: int,
                     arms: dict = FIXED_AGAINST_FORECAST) -> dict:
    """Staffing arms on the same seeds (common random numbers), each paired with the first arm.

    ``twin_class`` builds a twin from a config (``twin.engine.Twin``; policies never import
    the engine).  ``arms`` maps an arm's name to its overrides (beside ``overrides``); the
    demand is the same in every arm, only who works differs.  Returns each arm's runs (:func:`run_staffed`)
    and, for every other arm and figure, the mean difference arm − first arm with a 95%
    t-interval (:func:`twin.compare.paired_ci`).
    """
    from twin.compare import paired_ci
    from twin.config import load_scenario

    runs = {name: [run_staffed(twin_class(load_scenario(scenario, [*overrides, *extra, f"seed={s}", "progress=false"])),
                               from_day) for s in seeds]
            for name, extra in arms.items()}
    first, *others = runs
    figures = ("staff_hours", "technicians_mean", "wait_minutes_mean", "wait_minutes_p90")
    return {"runs": runs,
            "differences": {arm: {k: paired_ci([r[k] for r in runs[first]], [r[k] for r in runs[arm]])
                                  for k in figures} for arm in others}}

"""KPIs: a row per day while the twin runs, and the run's summary from the event log.

The summary's meanings are fixed by DESIGN.md ("KPI meanings"); every figure
is computed from the event log (or the services' state), never from a
shortcut kept beside it, so a replayed log gives the same summary.
"""
import math

import numpy as np

from twin.services.events import EventKind


_EARNED, _REDEEMED, _CAST, _STARTED = (int(k) for k in (EventKind.PointsEarned, EventKind.PointsRedeemed,
                                                          EventKind.BallotCast, EventKind.TicketStarted))


def _distinct(a: np.ndarray) -> int:
    """``len(np.unique(a))``, without ``np.unique``'s general machinery (a day has a few hundred)."""
    if len(a) == 0:
        return 0
    a = np.sort(a)
    return int(np.count_nonzero(a[1:] != a[:-1])) + 1


class DailyKpis:
    """Accumulates one row of figures per simulated day."""

    def __init__(self):
        self.rows = []
        self._row = None
        self._first_event = 0
        self._busy_before = 0.0

    def begin(self, day: int, n_events: int) -> None:
        self._row = {"day": day}
        self._first_event = n_events

    def add(self, **figures) -> None:
        for k, v in figures.items():
            self._row[k] = self._row.get(k, 0) + v

    def end(self, events: np.ndarray, *, satisfaction: float, technician_busy_minutes: float,
            technician_shift_minutes: float, backlog: int) -> None:
        day = events[self._first_event:]
        k = day["kind"]
        earned = k == _EARNED
        amount = day["amount"]
        r = self._row
        r["participants"] = _distinct(day["actor"][earned])
        r["points_issued"] = int(amount[earned].sum())
        r["points_redeemed"] = int(amount[k == _REDEEMED].sum())
        r["ballots"] = int(np.count_nonzero(k == _CAST))
        r["tickets_started"] = int(np.count_nonzero(k == _STARTED))
        r["satisfaction"] = satisfaction
        r["technician_utilisation"] = (technician_busy_minutes - self._busy_before) / technician_shift_minutes
        self._busy_before = technician_busy_minutes
        r["backlog"] = backlog
        for key in ("tickets_opened", "tickets_completed", "alerts", "timebank_minutes", "timebank_refused",
                    "bin_overflow_hours", "water_m3", "electricity_kwh", "faulty_meters",
                    "alert_response_minutes_sum"):
            r.setdefault(key, 0)
        self.rows.append(r)
        self._row = None

    def frame(self):
        import pandas as pd

        return pd.DataFrame(self.rows)


def _mean(a) -> float:
    return float(np.mean(a)) if len(a) else math.nan


def participation_months(days: int) -> int:
    """How many 30-day months ``participation_rate`` averages over: the whole ones (a run
    shorter than a month counts as one).  A partial last month would dilute the share."""
    return max(1, days // 30)


def monthly_participation(events: np.ndarray, adults: int, days: int) -> list[float]:
    """Each whole 30-day month's share of adults who earned points (``participation_rate`` is their mean)."""
    earned = events[events["kind"] == EventKind.PointsEarned]
    months = (earned["t"] // (30 * 1440)).astype(np.int64)
    return [_distinct(earned["actor"][months == m]) / max(1, adults) for m in range(participation_months(days))]


def summarise(events: np.ndarray, *, days: int, adults: int, repair_times: dict, turnouts: list,
              satisfaction_daily) -> dict:
    """The run's headline figures (see DESIGN.md "KPI meanings")."""
    k = events["kind"]
    earned = events[k == EventKind.PointsEarned]
    shares = monthly_participation(events, adults, days)
    raised = events[k == EventKind.AlertRaised]
    inactivity = raised[raised["code"] == 0]
    incidents = events[k == EventKind.IncidentStarted]
    detected = np.isin(incidents["subject"], inactivity["target"][inactivity["extra"] == 1])
    attended = events[k == EventKind.AlertAttended]
    confirmed = events[k == EventKind.ServiceConfirmed]
    rated = events[k == EventKind.TicketRated]
    wait = repair_times["started"] - repair_times["submitted"]
    resolution = repair_times["completed"] - repair_times["submitted"]
    return {
        "participation_rate": _mean(shares),
        "points_issued": int(earned["amount"].sum()),
        "points_redeemed": int(events["amount"][k == EventKind.PointsRedeemed].sum()),
        "timebank_hours_exchanged": float(confirmed["amount"].sum()) / 60.0,
        "tickets_opened": int((k == EventKind.TicketSubmitted).sum()),
        "tickets_completed": int((k == EventKind.TicketCompleted).sum()),
        "repair_wait_minutes_mean": _mean(wait[~np.isnan(wait)]),
        "repair_resolution_minutes_mean": _mean(resolution[~np.isnan(resolution)]),
        "repair_rating_mean": _mean(rated["amount"]),
        "alerts_raised": int(len(raised)),
        "alert_precision": _mean(inactivity["extra"] == 1),
        "alert_recall": _mean(detected),
        "alert_response_minutes_mean": _mean(attended["amount"]),
        "turnout_mean": _mean([x for x in turnouts if not math.isnan(x)]),
        "satisfaction_index": _mean(satisfaction_daily),
    }

"""The comparator: what the twin expected against what production did, window by window.

Both sides are event logs of the same schema — the twin's own, and
production's as its event feed delivered it — so one function,
:func:`window_metrics`, measures both.  Per window (a community day) it
counts tickets raised and completed, the mean response (submitted to work
started, for tickets started in the window) and repair time (started to
completed, for tickets completed in it), the backlog at the window's end,
alerts raised and their mean response.

:func:`differences` turns the windows into flags: for each metric, a
t-interval of the per-window difference (production minus twin) over the
windows so far, at a Bonferroni-corrected level so that the chance of any
false flag across all metrics is at most ``alpha`` (the stated error rate).
Windows are the units, not tickets: tickets of one day share a queue and are
not independent, days nearly are.  :func:`sensor_drift` compares a day's live
readings with the twin's simulated ones (two-sample Kolmogorov-Smirnov).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from twin.services.events import EventKind

METRICS = ("tickets_raised", "tickets_completed", "response_minutes", "repair_minutes", "backlog",
           "alerts_raised", "alert_response_minutes")


def window_metrics(events: np.ndarray, t0: float, t1: float) -> dict[str, float]:
    """The metrics of ``[t0, t1)`` from an event log (NaN where a mean has nothing to average)."""
    kind, t = events["kind"], events["t"]
    submitted = events[kind == EventKind.TicketSubmitted]
    started = events[kind == EventKind.TicketStarted]
    done = events[kind == EventKind.TicketCompleted]
    closed = events[np.isin(kind, (EventKind.TicketCompleted, EventKind.TicketCancelled))]
    in_window = (done["t"] >= t0) & (done["t"] < t1)
    started_in = started[(started["t"] >= t0) & (started["t"] < t1)]
    submit_t = dict(zip(submitted["subject"].tolist(), submitted["t"].tolist()))
    start_t = dict(zip(started["subject"].tolist(), started["t"].tolist()))
    responses = [ts - submit_t[s] for s, ts in zip(started_in["subject"].tolist(), started_in["t"].tolist())
                 if s in submit_t]
    repairs = [tc - start_t[s] for s, tc in zip(done["subject"][in_window].tolist(), done["t"][in_window].tolist())
               if s in start_t]
    alerts = events[(kind == EventKind.AlertRaised) & (t >= t0) & (t < t1)]
    attended = events[(kind == EventKind.AlertAttended) & (t >= t0) & (t < t1)]
    return {
        "tickets_raised": float(((submitted["t"] >= t0) & (submitted["t"] < t1)).sum()),
        "tickets_completed": float(in_window.sum()),
        "response_minutes": float(np.mean(responses)) if responses else math.nan,
        "repair_minutes": float(np.mean(repairs)) if repairs else math.nan,
        "backlog": float((submitted["t"] < t1).sum() - (closed["t"] < t1).sum()),
        "alerts_raised": float(len(alerts)),
        "alert_response_minutes": float(attended["amount"].mean()) if len(attended) else math.nan,
    }


@dataclass
class Difference:
    """One metric's production-minus-twin difference over the windows, with its interval."""
    metric: str
    windows: int
    twin_mean: float
    production_mean: float
    low: float
    high: float
    flagged: bool

    @property
    def difference(self) -> float:
        return self.production_mean - self.twin_mean


def differences(twin_rows: list[dict], production_rows: list[dict], alpha: float = 0.05,
                metrics=METRICS) -> list[Difference]:
    """Flag each metric whose per-window difference has an interval excluding zero.

    The level per metric is ``alpha / len(metrics)`` (Bonferroni), so with
    no real difference the chance that anything is flagged is at most
    ``alpha``.  A metric needs three windows where both sides have a value.
    """
    from scipy import stats

    level = alpha / len(metrics)
    out = []
    for m in metrics:
        a = np.array([r[m] for r in twin_rows], float)
        b = np.array([r[m] for r in production_rows], float)
        ok = ~np.isnan(a) & ~np.isnan(b)
        d = b[ok] - a[ok]
        n = len(d)
        if n < 3:
            out.append(Difference(m, n, _mean(a[ok]), _mean(b[ok]), math.nan, math.nan, False))
            continue
        half = stats.t.ppf(1 - level / 2, n - 1) * d.std(ddof=1) / math.sqrt(n)
        low, high = d.mean() - half, d.mean() + half
        flagged = bool(low > 0 or high < 0)
        out.append(Difference(m, n, float(a[ok].mean()), float(b[ok].mean()), float(low), float(high), flagged))
    return out


def sensor_drift(live: np.ndarray, simulated: np.ndarray, alpha: float = 0.01) -> dict:
    """Live against simulated readings of one kind (NaN ignored): KS statistic, p-value, drifted."""
    from scipy import stats

    a, b = live[~np.isnan(live)], simulated[~np.isnan(simulated)]
    if len(a) < 20 or len(b) < 20:
        return {"n_live": int(len(a)), "n_simulated": int(len(b)), "ks": math.nan, "p": math.nan, "drift": False}
    res = stats.ks_2samp(a, b)
    return {"n_live": int(len(a)), "n_simulated": int(len(b)), "ks": float(res.statistic), "p": float(res.pvalue),
            "drift": bool(res.pvalue < alpha)}


def _mean(x) -> float:
    return float(x.mean()) if len(x) else math.nan

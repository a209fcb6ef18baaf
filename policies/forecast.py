"""Next week's repair demand by category, forecast from the twin's own ticket history.

The source text's community demand model: a scikit-learn ``RandomForestRegressor`` on
weekday, month, holiday and temperature, here with lagged demand as well, trained on the
``TicketSubmitted`` events of the twin (or of production: the same events).  It is judged
the way a forecast should be — on held-out weeks against the seasonal-naive forecast (each
day as it was a week before), which any model worth running must beat.

The calendar the features come from is the twin's own: day 0 is a Monday, 1 January, a
year has 365 days, and the temperature comes from :class:`SeasonalWeather`, a yearly cycle
with daily noise keyed by the seed.  :func:`fault_factor` is how that calendar moves the
twin's fault rates (cold and heat break things; people at home on weekends and holidays
notice and report more); with the facilities section's defaults it is 1 and changes nothing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from policies.base import Policy
from twin import rng
from twin.services.events import EventKind

S_WEATHER = 720  # draw stream of the daily weather noise
DAYS_PER_YEAR = 365
HORIZON_DAYS = 7
LONG_LAG_DAYS = 28  # the longest lag a feature reads: the first origin a history can forecast from
COMFORT_C = 18.0    # the temperature at which nothing breaks for the weather's sake
_MONTH_STARTS = np.cumsum([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30])
#: public holidays by day of the year (New Year, Spring Festival, Qingming, Labour Day,
#: Dragon Boat, Mid-Autumn, National Day) — lunar ones at a typical date
HOLIDAYS = frozenset([0, *range(40, 47), 94, *range(120, 125), 160, 260, *range(273, 280)])


@dataclass(frozen=True)
class SeasonalWeather:
    """Daily mean temperature: a cosine over the year, coldest mid-January, plus daily noise."""

    mean_c: float = 16.0
    amplitude_c: float = 12.0
    coldest_day: int = 15
    noise_c: float = 3.0

    def temperature(self, seed: int, days) -> np.ndarray:
        days = np.asarray(days, np.int64)
        season = self.mean_c - self.amplitude_c * np.cos(2 * math.pi * ((days % DAYS_PER_YEAR) - self.coldest_day)
                                                         / DAYS_PER_YEAR)
        noise = np.array([rng.normal(seed, S_WEATHER, int(d), 0) for d in days.ravel()]).reshape(days.shape)
        return season + self.noise_c * noise


def calendar(seed: int, days, weather: SeasonalWeather = SeasonalWeather()) -> np.ndarray:
    """Columns weekday (0 = Monday), month (1..12), holiday (0/1), temperature (°C) of each day."""
    days = np.asarray(days, np.int64)
    doy = days % DAYS_PER_YEAR
    month = np.searchsorted(_MONTH_STARTS, doy, side="right")
    holiday = np.isin(doy, list(HOLIDAYS))
    return np.column_stack((days % 7, month, holiday, weather.temperature(seed, days))).astype(np.float64)


def fault_factor(seed: int, day: int, per_degree: float, weekend: float, holiday: float) -> float:
    """How much more often faults are reported on ``day`` than on a mild working day.

    ``per_degree`` is the extra share per °C the day is away from 18 °C; ``weekend`` and
    ``holiday`` multiply on those days.  Exactly 1.0 with the neutral values (0, 1, 1).
    """
    if per_degree == 0 and weekend == 1 and holiday == 1:
        return 1.0
    weekday, _, is_holiday, temp = calendar(seed, [day])[0]
    factor = 1.0 + per_degree * abs(temp - COMFORT_C)
    if weekday >= 5:
        factor *= weekend
    if is_holiday:
        factor *= holiday
    return factor


def daily_ticket_counts(events: np.ndarray, days: int, categories) -> np.ndarray:
    """Tickets submitted per day (rows ``0..days-1``) and category (columns, in ``categories``' order)."""
    sub = events[events["kind"] == EventKind.TicketSubmitted]
    day = (sub["t"] // 1440).astype(np.int64)
    counts = np.zeros((days, len(categories)))
    for j, c in enumerate(categories):
        np.add.at(counts[:, j], day[(sub["code"] == c) & (day < days)], 1)
    return counts


def features(counts: np.ndarray, cal: np.ndarray, origin: int) -> np.ndarray:
    """The rows that forecast days ``origin .. origin+6`` from what is known before ``origin``.

    Per row: the target day's calendar, the horizon (days ahead), and per category the
    count a week before the target day, the mean of the last week and of the last four.
    """
    past_week = counts[origin - HORIZON_DAYS:origin].mean(axis=0)
    past_month = counts[origin - LONG_LAG_DAYS:origin].mean(axis=0)
    rows = []
    for h in range(HORIZON_DAYS):
        day = origin + h
        rows.append(np.concatenate((cal[day], [h], counts[day - HORIZON_DAYS], past_week, past_month)))
    return np.array(rows)


def training_rows(counts: np.ndarray, cal: np.ndarray, until: int):
    """Features and targets of every origin whose week lies before day ``until`` (no later day is read)."""
    X, y = [], []
    for origin in range(LONG_LAG_DAYS, until - HORIZON_DAYS + 1):
        X.append(features(counts, cal, origin))
        y.append(counts[origin:origin + HORIZON_DAYS])
    if not X:
        raise ValueError(f"a forecast needs at least {LONG_LAG_DAYS + HORIZON_DAYS} days of history; got {until}")
    return np.concatenate(X), np.concatenate(y)


def seasonal_naive(counts: np.ndarray, origin: int) -> np.ndarray:
    """The baseline: each day of the week ahead as it was a week before."""
    return counts[origin - HORIZON_DAYS:origin].copy()


class DemandForecaster(Policy):
    """A random forest over calendar, weather and lagged demand; one model for all categories.

    ``fit(counts, cal)`` learns from a history (``counts``: days x categories; ``cal``: the
    :func:`calendar` of at least those days); ``predict(counts, cal, origin)`` gives the week
    from ``origin`` (days x categories), reading only the counts before ``origin``.
    """

    name = "random_forest"

    def __init__(self, n_estimators: int = 100, min_samples_leaf: int = 5, random_state: int = 42):
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.random_state = random_state

    def fit(self, counts: np.ndarray, cal: np.ndarray) -> "DemandForecaster":
        return self.fit_rows(*training_rows(counts, cal, len(counts)))

    def fit_rows(self, X: np.ndarray, y: np.ndarray) -> "DemandForecaster":
        from sklearn.ensemble import RandomForestRegressor

        self.model_ = RandomForestRegressor(n_estimators=self.n_estimators, min_samples_leaf=self.min_samples_leaf,
                                            random_state=self.random_state, n_jobs=1).fit(X, y)
        return self

    def predict(self, counts: np.ndarray, cal: np.ndarray, origin: int) -> np.ndarray:
        if not hasattr(self, "model_"):
            raise RuntimeError("DemandForecaster.predict before fit")
        return self.model_.predict(features(counts, cal, origin)).reshape(HORIZON_DAYS, -1)


def evaluate(forecaster: DemandForecaster, counts: np.ndarray, cal: np.ndarray, test_start: int) -> dict:
    """Errors over the whole weeks from ``test_start`` on, against the seasonal-naive baseline.

    Each week is forecast from its first day with the counts known then; the model is not
    refitted.  ``mae_week`` is the mean absolute error of each week's total by category (the
    demand a staffing plan is made for), ``mae_day`` the error per day and category;
    ``skill`` is ``1 - mae_week / mae_week_naive`` (positive: the model beats the baseline).
    """
    origins = range(test_start, len(counts) - HORIZON_DAYS + 1, HORIZON_DAYS)
    if not origins:
        raise ValueError(f"no whole week to test after day {test_start} of {len(counts)}")
    actual = np.array([counts[o:o + HORIZON_DAYS] for o in origins])
    model = np.array([forecaster.predict(counts, cal, o) for o in origins])
    naive = np.array([seasonal_naive(counts, o) for o in origins])
    out = {"weeks": len(origins)}
    for name, pred in (("", model), ("_naive", naive)):
        week_err = np.abs(pred.sum(axis=1) - actual.sum(axis=1))
        out[f"mae_week{name}"] = float(week_err.mean())
        out[f"mae_week{name}_by_category"] = week_err.mean(axis=0).tolist()
        out[f"mae_day{name}"] = float(np.abs(pred - actual).mean())
    out["skill"] = 1.0 - out["mae_week"] / out["mae_week_naive"]
    out["skill_day"] = 1.0 - out["mae_day"] / out["mae_day_naive"]
    return out


def backtest(counts: np.ndarray, cal: np.ndarray, test_weeks: int = 12,
             forecaster: DemandForecaster | None = None) -> dict:
    """Fit on everything before the last ``test_weeks`` weeks, then :func:`evaluate` on them."""
    test_start = len(counts) - test_weeks * HORIZON_DAYS
    forecaster = forecaster if forecaster is not None else DemandForecaster()
    forecaster.fit(counts[:test_start], cal)
    return evaluate(forecaster, counts, cal, test_start)

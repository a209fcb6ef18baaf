"""The demand forecast on the twin's own ticket history, and forecast-driven staffing.

The forecast must beat the seasonal-naive baseline on held-out weeks, and must not once its
features are shuffled against the targets (so the test can fail, and the skill is the
features'); the staffing policy must pay fewer staff-hours than fixed staffing on the same
demand (common random numbers) and follow that demand.
"""
import numpy as np
import pytest

from policies import forecast as F
from policies.staffing import compare_staffing
from twin import load_scenario
from twin.config import ConfigError
from twin.engine import Twin
from twin.services.repair import Category

DAYS = 728
TEST_WEEKS = 16
#: a community whose faults follow the weather and the calendar (the defaults have no season)
SEASONAL = ["community.households=600", "community.buildings=16", "facilities.household_faults_per_year=8",
            "facilities.faults_per_degree=0.1", "facilities.weekend_fault_factor=1.5",
            "facilities.holiday_fault_factor=1.5"]
CATEGORIES = [int(Category.plumbing), int(Category.electrical), int(Category.elevator), int(Category.public_area)]


@pytest.fixture(scope="module")
def history():
    twin = Twin(load_scenario("default", [*SEASONAL, f"sim.days={DAYS}", "progress=false"]))
    twin.run()
    counts = F.daily_ticket_counts(twin.log.events, DAYS, CATEGORIES)
    return counts, F.calendar(twin.seed, np.arange(DAYS))


def test_calendar_of_the_twin():
    cal = F.calendar(1, np.arange(2 * F.DAYS_PER_YEAR))
    weekday, month, holiday, temp = cal.T
    assert weekday[0] == 0 and weekday[5] == 5 and weekday[7] == 0  # day 0 is a Monday
    assert month[0] == 1 and month[31] == 2 and month[364] == 12 and month[365] == 1
    assert holiday[0] and holiday[273] and not holiday[10]
    january, july = temp[month == 1].mean(), temp[month == 7].mean()
    assert january < 8 < 20 < july, (january, july)
    assert np.array_equal(temp, F.calendar(1, np.arange(2 * F.DAYS_PER_YEAR))[:, 3])  # the seed decides
    assert not np.array_equal(temp, F.calendar(2, np.arange(2 * F.DAYS_PER_YEAR))[:, 3])


def test_neutral_calendar_leaves_fault_rates_alone():
    assert F.fault_factor(1, 20, 0.0, 1.0, 1.0) == 1.0
    assert F.fault_factor(1, 5, 0.0, 1.5, 1.0) == 1.5  # a Saturday
    assert F.fault_factor(1, 273, 0.0, 1.0, 2.0) == 2.0  # National Day (a Monday)


def test_the_season_reaches_the_tickets(history):
    counts, cal = history
    total = counts.sum(axis=1)
    weekday, _, holiday, temp = cal.T
    weekend = (weekday >= 5) & (holiday == 0)
    working = (weekday < 5) & (holiday == 0)
    assert total[weekend].mean() > 1.2 * total[working].mean()
    assert np.corrcoef(np.abs(temp - F.COMFORT_C), total)[0, 1] > 0.5


def test_forecast_beats_seasonal_naive_on_held_out_weeks(history):
    counts, cal = history
    report = F.backtest(counts, cal, TEST_WEEKS)
    print(f"forecast MAE {report['mae_week']:.2f} tickets/week/category (day {report['mae_day']:.2f}); "
          f"seasonal naive {report['mae_week_naive']:.2f} (day {report['mae_day_naive']:.2f}); "
          f"skill {report['skill']:.2f} (day {report['skill_day']:.2f})")
    assert report["weeks"] == TEST_WEEKS
    assert report["skill"] > 0.2 and report["skill_day"] > 0.1


def test_shuffled_features_do_not_beat_it(history):
    counts, cal = history
    test_start = DAYS - TEST_WEEKS * F.HORIZON_DAYS
    X, y = F.training_rows(counts, cal, test_start)
    for seed in (0, 1):
        shuffled = F.DemandForecaster().fit_rows(X[np.random.default_rng(seed).permutation(len(X))], y)
        report = F.evaluate(shuffled, counts, cal, test_start)
        print(f"shuffled {seed}: skill {report['skill']:.2f} (day {report['skill_day']:.2f})")
        assert report["skill"] < 0


def test_a_forecast_reads_nothing_from_its_week(history):
    counts, cal = history
    model = F.DemandForecaster(n_estimators=10).fit(counts[:200], cal)
    origin = 300
    future = counts.copy()
    future[origin:] = 99
    assert np.array_equal(model.predict(counts, cal, origin), model.predict(future, cal, origin))
    past = counts.copy()
    past[origin - 1] += 50
    assert not np.array_equal(model.predict(counts, cal, origin), model.predict(past, cal, origin))


def test_too_short_a_history_is_refused_in_words(history):
    counts, cal = history
    with pytest.raises(ValueError, match="at least 35 days"):
        F.DemandForecaster().fit(counts[:30], cal)
    with pytest.raises(RuntimeError, match="before fit"):
        F.DemandForecaster().predict(counts, cal, 100)


def test_staffing_choice_is_checked():
    with pytest.raises(ConfigError, match=r"policies.staffing.*'fixed', 'forecast'"):
        load_scenario("default", ["policies.staffing=weekly"])
    with pytest.raises(ConfigError, match="policies.staffing_utilisation"):
        load_scenario("default", ["policies.staffing_utilisation=0"])


def test_forecast_staffing_against_fixed_with_common_random_numbers():
    warmup = 56
    out = compare_staffing(Twin, "default", [*SEASONAL, "sim.days=364", "staff.technicians=8"], seeds=[1, 2],
                           from_day=warmup)
    fixed, forecast = out["runs"]["fixed"], out["runs"]["forecast"]
    diff = out["differences"]["forecast"]
    for f, g in zip(fixed, forecast):
        assert f["tickets"] == g["tickets"]  # the same demand in both arms
        print(f"fixed: {f['staff_hours']:.0f} staff-h, wait {f['wait_minutes_mean']:.1f} min; "
              f"forecast: {g['staff_hours']:.0f} staff-h, wait {g['wait_minutes_mean']:.1f} min")
    assert all(t == 8 for t in fixed[0]["technicians_by_day"])
    assert diff["staff_hours"]["high"] < 0
    # the crew follows the demand: busier days get more technicians
    for g in forecast:
        assert np.corrcoef(g["technicians_by_day"], g["tickets_by_day"])[0, 1] > 0.3
    assert diff["wait_minutes_mean"]["diff"] < 0.25 * np.mean([f["wait_minutes_mean"] for f in fixed])

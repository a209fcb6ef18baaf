"""The last named cases: Hangzhou routes and garbage points, Beijing Huitian satisfaction.

Unit tests of each new rule against a hand count or brute force; each case at a small
size with few replications (the full figures come from ``twin cases``); the policy-off arm
giving no effect; and mutation checks showing the statistical tests fail on a wrong input.
"""
import math

import numpy as np
import pytest

from policies import garbage_points as G
from policies import needs as N
from policies import waste as W
from policies._arms import split_arm
from twin import cases
from twin.collection_case import case_arm as routes_arm
from twin.config import ConfigError

TINY = ["community.households=240", "community.buildings=6", "sim.days=60"]
NEW = ("hangzhou_routes", "hangzhou_routes_alike_bins", "hangzhou_garbage_points", "beijing_huitian")


# ------------------------------------------------------------------ needs: the rules
def brute_force_allocation(need, budget, unit_cost, step=0.05):
    """Every split of the budget on a grid: the one with the least unmet need."""
    best, best_f = math.inf, None
    units = int(round(budget / step))
    for a in range(units + 1):
        for b in range(units + 1 - a):
            f = np.array([a, b, units - a - b]) * step
            unmet = float(np.dot(need, np.exp(-f / unit_cost)))
            if unmet < best:
                best, best_f = unmet, f
    return best, best_f


@pytest.mark.parametrize("need, budget", [((0.5, 0.2, 0.1), 3.0), ((0.3, 0.3, 0.3), 1.5), ((0.9, 0.01, 0.0), 2.0)])
def test_allocation_meets_as_much_need_as_brute_force(need, budget):
    f = N.allocate(need, budget, 1.0)
    assert f.sum() == pytest.approx(budget) and (f >= 0).all()
    best, _ = brute_force_allocation(np.array(need), budget, 1.0)
    ours = float(np.dot(need, np.exp(-f)))
    assert ours <= best + 1e-9  # the grid's best is never better than the optimum


def test_the_brute_force_check_catches_an_even_split():
    """Mutation check: the even split is not the optimum where needs differ, and the check says so."""
    need = np.array([0.5, 0.2, 0.1])
    best, _ = brute_force_allocation(need, 3.0, 1.0)
    assert float(np.dot(need, np.exp(-np.full(3, 1.0)))) > best + 1e-3


def test_satisfaction_falls_with_unmet_need_and_is_even_at_the_tolerance():
    p = N.satisfaction_probability([0.0, 0.5, 0.9, 1.5], tolerance=0.9, slope=0.1)
    assert (np.diff(p) < 0).all() and p[2] == pytest.approx(0.5)


def test_unmet_need_is_the_need_times_what_the_services_leave():
    needs = np.array([[1.0, 0.0], [0.5, 0.5]])
    u = N.unmet_need(needs, [math.log(2), 0.0], 1.0)  # half the first category met, none of the second
    assert np.allclose(u, [0.5, 0.25 + 0.5])


def test_the_survey_estimates_the_mean_need_within_its_sampling_error():
    model = N.Needs(households=4000, survey_sample=4000, response_rate=0.5, answer_noise=0.0)
    needs = model.needs(3)
    estimate, answered = model.survey(needs, 3, 1)
    assert 1800 < answered < 2200  # about half answer
    se = needs.std(axis=0) / math.sqrt(answered)
    assert (np.abs(estimate - needs.mean(axis=0)) < 4 * se).all()


def test_even_placement_stays_where_it_started_and_the_survey_rises_year_by_year():
    even = N.Needs(households=2000).run(1)
    assert {even[f"satisfaction_year_{y}"] for y in range(6)} == {even["satisfaction_start"]}
    survey = N.Needs(households=2000, placement="survey").run(1)
    years = [survey[f"satisfaction_year_{y}"] for y in range(6)]
    assert years[0] == even["satisfaction_start"]  # the same households and layout in 2018
    assert years[-1] > years[1] > years[0]


def test_a_survey_read_with_its_categories_mixed_up_does_not_help(monkeypatch):
    """Mutation check: the survey's effect needs the survey's answers about the right categories."""
    def gains(model_cls):
        return np.array([model_cls(households=2000, placement="survey").run(s)["satisfaction"]
                         - model_cls(households=2000).run(s)["satisfaction"] for s in (1, 2, 3)])

    right = gains(N.Needs)
    assert (right > 0.01).all()
    truthful = N.Needs.survey
    monkeypatch.setattr(N.Needs, "survey", lambda self, needs, seed, year: (
        truthful(self, needs, seed, year)[0][::-1], truthful(self, needs, seed, year)[1]))
    assert (gains(N.Needs) < 0.005).all()


def test_bad_needs_values_are_refused_by_name():
    with pytest.raises(ConfigError, match="needs.placement.*even, survey"):
        N.case_arm("default", ["needs.placement=asked"], 1)
    with pytest.raises(ConfigError, match="unknown key 'needs.budgett'; allowed keys: .*needs.budget"):
        N.case_arm("default", ["needs.budgett=3"], 1)


# ------------------------------------------------------------------ garbage points: the rules
def test_nobody_works_outside_the_shift():
    shift = (7.0, 19.0)
    assert G.next_on_duty(8 * 60.0, shift) == 8 * 60.0
    assert G.next_on_duty(6 * 60.0, shift) == 7 * 60.0
    assert G.next_on_duty(1440.0 + 19 * 60.0, shift) == 2 * 1440.0 + 7 * 60.0


def test_zones_split_the_buildings_among_the_cleaners():
    z = G.zones(10, 3)
    assert list(z) == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2] and set(z) == {0, 1, 2}


def brute_force_first(free_at, place, building, ready, dist, speed, shift):
    return min(range(len(free_at)), key=lambda j: (G.next_on_duty(max(ready, free_at[j]), shift)
                                                   + dist[1 + place[j], 1 + building] / speed, j))


def test_automatic_dispatch_sends_whoever_is_there_first():
    graph = W.path_graph(np.arange(6) * 60.0, np.zeros(6), 60.0)  # a street of six buildings
    dist = W.distances(graph)
    rng = np.random.default_rng(5)
    for _ in range(200):
        free_at = rng.uniform(400, 700, 3)
        place = rng.integers(0, 6, 3)
        b, ready = int(rng.integers(0, 6)), float(rng.uniform(420, 800))
        j, _ = G.first_arrival(free_at, place, b, ready, dist, 70.0, (7.0, 19.0))
        assert j == brute_force_first(free_at, place, b, ready, dist, 70.0, (7.0, 19.0))


def test_a_point_seen_at_once_is_cleared_after_the_walk():
    """Hand count: cameras that see at once, no clearing time: handling is the nearest cleaner's walk."""
    graph = W.path_graph(np.arange(4) * 60.0, np.zeros(4), 60.0)
    dist = W.distances(graph)
    model = G.GarbagePoints(detection="camera", dispatch="auto", days=1, buildings=4, cleaners=1,
                            points_per_building_day=0.0, camera_coverage=1.0, camera_scan_minutes=0.0,
                            clean_minutes=0.0)
    one = {"t": np.array([600.0]), "building": np.array([3]), "u": np.full((5, 1), 0.5),
           "covered": np.ones(4, bool)}
    model.points = lambda seed: one
    assert model.simulate(dist, 1)["handling_minutes_mean"] == pytest.approx(3 * 60.0 / 70.0)


def test_cameras_nowhere_leave_the_calls_as_they_were():
    dist = W.distances(W.path_graph(np.arange(8) * 60.0, np.zeros(8), 60.0))
    calls = G.GarbagePoints(days=10, buildings=8).simulate(dist, 2)
    blind = G.GarbagePoints(detection="camera", camera_coverage=0.0, days=10, buildings=8).simulate(dist, 2)
    assert blind == calls


def test_residents_who_call_sooner_get_points_found_sooner():
    """Mutation check of the calibrated rule: the calling rate moves the before figure, and the test sees it."""
    dist = W.distances(W.path_graph(np.arange(8) * 60.0, np.zeros(8), 60.0))
    slow, fast = (G.GarbagePoints(days=20, buildings=8, calls_per_hour=r).simulate(dist, 4) for r in (0.5, 3.0))
    assert slow["found_minutes_mean"] > 2 * fast["found_minutes_mean"]
    assert slow["handling_minutes_mean"] > fast["handling_minutes_mean"]


def test_bad_garbage_point_values_are_refused_by_name():
    with pytest.raises(ConfigError, match="garbage_points.dispatch.*manual, auto"):
        split_arm(G.GarbagePoints(), ["garbage_points.dispatch=radio"], "default", 1)
    with pytest.raises(ConfigError, match="garbage_points.shift_hours"):
        split_arm(G.GarbagePoints(), ["garbage_points.shift_hours=[20, 8]"], "default", 1)


# ------------------------------------------------------------------ routes: the case arm
def test_the_routes_case_prices_both_arms_on_the_same_bins():
    fixed = routes_arm("default", [*TINY, "waste.collection=fixed"], 1)
    fill = routes_arm("default", [*TINY, "waste.collection=fill"], 1)
    assert fixed["cost_vs_fixed"] == 1.0
    assert fill["cost_vs_fixed"] < 1.0 and fill["overflow_hours"] <= fixed["overflow_hours"]
    with pytest.raises(ConfigError, match="waste.collection.*fixed, fill"):
        routes_arm("default", [*TINY, "waste.collection=weekly"], 1)


def test_unlike_bins_are_what_the_fill_triggered_routes_save_on():
    """Mutation check: the saving changes with how unlike the bins are (the case's stated assumption)."""
    alike = routes_arm("default", [*TINY, "waste.collection=fill", "waste.bin_spread=0"], 1)
    unlike = routes_arm("default", [*TINY, "waste.collection=fill", "waste.bin_spread=0.5"], 1)
    assert unlike["cost_vs_fixed"] < alike["cost_vs_fixed"] < 1.0
    assert unlike["fixed_rounds_per_day"] > alike["fixed_rounds_per_day"]  # the fullest bin sets a fixed schedule


# ------------------------------------------------------------------ the cases, small
@pytest.fixture(scope="module", params=NEW)
def ran(request):
    return cases.run_case(cases.load_case(request.param), 3, extra=TINY, arms=("before", "after", "off"))


def test_each_new_case_states_role_source_and_calibration():
    for name in NEW:
        case = cases.load_case(name)
        file, line = case.source.split(":")
        assert file.endswith(".txt") and int(line) > 0 and case.quote
        assert case.role in ("calibration", "prediction") and case.tolerance > 0 and case.model
        for entry in case.calibrated:
            assert entry["param"].split(".")[0] in ("needs", "garbage_points", "waste")


def test_each_new_case_prints_reported_against_twin(ran):
    text = cases.table([ran])
    for arm in ran.case.reported:
        assert not math.isnan(ran.interval(arm)["mean"]), arm
        assert cases.verdict(ran, arm) in text


def test_each_new_case_effect_disappears_when_its_policy_is_off(ran):
    on, off = ran.effect(), ran.effect(arm="off")
    assert on["low"] > 0 or on["high"] < 0, on
    assert off["diff"] == pytest.approx(0.0, abs=1e-12), off


def test_huitian_before_holds_its_calibration_and_says_the_after_cannot_be_reached():
    res = cases.run_case(cases.load_case("beijing_huitian"), 3, extra=["community.households=3000"])
    assert cases.verdict(res, "before") == "reached"
    assert cases.verdict(res, "after").startswith("CANNOT reach")
    more = cases.run_case(cases.load_case("beijing_huitian"), 2, arms=("after",),
                          extra=["community.households=3000", "needs.added_budget_per_year=0.5"])
    assert more.interval("after")["mean"] > res.interval("after")["mean"] + 0.1  # what more services give


def test_garbage_points_before_holds_its_calibration():
    res = cases.run_case(cases.load_case("hangzhou_garbage_points"), 3, arms=("before",))
    assert abs(res.interval("before")["mean"] - 120) < 10

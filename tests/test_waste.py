"""Waste collection: the replay against the twin, routes against brute force, policies priced.

The brute-force router here is the planner's naive twin: every split of the stops into
loads that fit, every order of each, the shortest kept.
"""
import itertools
import math

import numpy as np
import pytest

from policies import waste as W
from twin import load_scenario
from twin.engine import Twin

DAYS = 28


@pytest.fixture(scope="module")
def run():
    cfg = load_scenario("default", [f"sim.days={DAYS}", "progress=false"])
    twin = Twin(cfg)
    history = W.BinHistory.from_twin(twin, DAYS)
    return cfg, twin, history


# ------------------------------------------------------------------ replay and graph
def test_replaying_the_cleaners_rounds_gives_the_twins_overflow(run):
    cfg, twin, history = run
    inc = history.increments()
    assert inc.shape == (cfg.community.buildings, DAYS * 24) and (inc > 0).all()
    kpi = float(twin.kpis.frame()["bin_overflow_hours"].sum())
    replay = W.simulate(inc, history.tick_minutes, W.FixedSchedule(cfg.staff.cleaner_round_hours), history.dist)
    assert kpi > 0 and replay["overflow_hours"] == kpi
    shifted = W.simulate(inc, history.tick_minutes, W.FixedSchedule([h + 1 for h in cfg.staff.cleaner_round_hours]),
                         history.dist)
    assert shifted["overflow_hours"] != kpi
    assert replay["visits"] == DAYS * len(cfg.staff.cleaner_round_hours) * cfg.community.buildings


def test_a_silent_bin_counts_its_usual_waste():
    level = np.array([[0.1, 0.2, np.nan, 0.5, 0.05, 0.15]])
    inc = W.fill_increments(level)
    # 0.1, 0.1, (silent: the mean), 0.3 since the last reading, emptied then 0.05, 0.1
    known = np.array([0.1, 0.1, 0.3, 0.05, 0.1])
    assert np.allclose(inc[0, [0, 1, 3, 4, 5]], known)
    assert np.isclose(inc[0, 2], known.mean())


def test_the_path_graph_is_the_street_grid(run):
    cfg, twin, history = run
    c = twin.community
    x = np.concatenate(([c.building_x[0] - cfg.community.spacing_m], c.building_x))
    y = np.concatenate(([c.building_y[0]], c.building_y))
    manhattan = np.abs(x[:, None] - x[None, :]) + np.abs(y[:, None] - y[None, :])
    assert np.allclose(history.dist, manhattan)


def test_an_unreachable_building_is_an_error():
    graph = W.path_graph([0.0, 60.0, 500.0], [0.0, 0.0, 0.0], 60.0)
    with pytest.raises(ValueError, match="not connected"):
        W.distances(graph)


# ------------------------------------------------------------------ routes
def brute_force(dist, stops, load, capacity):
    """The shortest total over every split of ``stops`` into loads that fit and every order of each."""
    best_tour = {}

    def tour(group):
        if group not in best_tour:
            best_tour[group] = min(W.route_length(list(p), dist) for p in itertools.permutations(group))
        return best_tour[group]

    def partitions(items):
        if not items:
            yield []
            return
        first, rest = items[0], items[1:]
        for k in range(len(rest) + 1):
            for others in itertools.combinations(rest, k):
                group = (first, *others)
                if sum(load[s] for s in group) <= capacity + 1e-9:
                    remaining = [s for s in rest if s not in others]
                    for tail in partitions(remaining):
                        yield [group, *tail]

    return min(sum(tour(g) for g in p) for p in partitions(list(stops)))


def instance(seed, n=6, side=4, spacing=60.0):
    rng = np.random.default_rng(seed)
    cells = rng.choice(side * side, n, replace=False)
    grid = W.path_graph([(b % side) * spacing for b in range(side * side)],
                        [(b // side) * spacing for b in range(side * side)], spacing)
    dist = W.distances(grid)
    stops = cells + 1
    load = dict(zip(stops.tolist(), rng.uniform(0.2, 1.0, n).tolist()))
    return dist, stops.tolist(), load, float(rng.uniform(1.0, 3.0))


def total(routes, dist):
    return sum(W.route_length(r, dist) for r in routes)


def check_valid(routes, stops, load, capacity):
    visited = [s for r in routes for s in r]
    assert sorted(visited) == sorted(stops), "every stop exactly once"
    for r in routes:
        assert sum(load[s] for s in r) <= capacity + 1e-9, "a route over capacity"


def test_routes_against_brute_force_on_small_instances():
    ratios = []
    for seed in range(30):
        dist, stops, load, capacity = instance(seed)
        routes = W.plan_routes(dist, stops, [load[s] for s in stops], capacity)
        check_valid(routes, stops, load, capacity)
        best = brute_force(dist, stops, load, capacity)
        assert total(routes, dist) >= best - 1e-6
        ratios.append(total(routes, dist) / best)
    print(f"savings + 2-opt over the optimum: mean {np.mean(ratios):.3f}, worst {max(ratios):.3f}, "
          f"optimal in {np.mean(np.isclose(ratios, 1.0)):.0%}")
    assert np.mean(ratios) < 1.05 and max(ratios) < 1.25


def test_the_brute_force_check_catches_a_poor_router():
    ratios = []
    for seed in range(30):
        dist, stops, load, capacity = instance(seed)
        one_each = [[s] for s in stops]  # valid, but a trip per stop
        ratios.append(total(one_each, dist) / brute_force(dist, stops, load, capacity))
    assert not (np.mean(ratios) < 1.05 and max(ratios) < 1.25)


def test_two_opt_untangles_a_crossing():
    graph = W.path_graph([0, 60, 0, 60], [0, 0, 60, 60], 60.0)
    dist = W.distances(graph)  # depot 0 beside building 0 (index 1)
    crossed = [1, 4, 2, 3]
    assert W.route_length(W.two_opt(crossed, dist), dist) < W.route_length(crossed, dist)


def test_a_load_over_capacity_is_refused_in_words():
    dist, stops, load, _ = instance(0)
    with pytest.raises(ValueError, match="capacity 0.1 is smaller than the load"):
        W.plan_routes(dist, stops, [load[s] for s in stops], 0.1)


# ------------------------------------------------------------------ policies priced
def report(name, c):
    fill, fixed = c["fill_triggered"], c["fixed"]
    print(f"{name}: fill-triggered {fill['cost']:.0f} ({fill['km']:.0f} km, {fill['crew_hours']:.0f} crew-h, "
          f"{fill['overflow_hours']:.0f} overflow bin-h) against fixed {fixed['hours']} {fixed['cost']:.0f} "
          f"({fixed['km']:.0f} km, {fixed['crew_hours']:.0f} crew-h, {fixed['overflow_hours']:.0f} overflow bin-h): "
          f"cost {c['cost_change']:+.1%}, km {c['km_change']:+.1%}, crew hours {c['crew_hours_change']:+.1%}")


def test_fill_triggered_costs_less_where_bins_differ(run):
    cfg, twin, history = run
    for seed in (11, 12):  # buildings whose bins hold 0.5 to 1.5 times the twin's
        capacity = np.random.default_rng(seed).uniform(0.5, 1.5, cfg.community.buildings)
        c = W.compare_collection(history.increments(capacity), history.tick_minutes, history.dist)
        report(f"bins that differ ({seed})", c)
        assert c["fixed"] is not None
        assert c["fill_triggered"]["overflow_hours"] <= c["fixed"]["overflow_hours"]
        assert c["cost_change"] < -0.2


def test_alike_bins_leave_fill_triggered_nothing_to_save(run):
    """The mechanism: with every bin filling alike, a fixed schedule on that pace is as good."""
    cfg, twin, history = run
    c = W.compare_collection(history.increments(), history.tick_minutes, history.dist)
    report("the twin's bins (all alike)", c)
    assert c["fixed"] is not None and abs(c["cost_change"]) < 0.05


def test_no_fixed_schedule_as_clean_is_said_plainly(run):
    cfg, twin, history = run
    c = W.compare_collection(history.increments(), history.tick_minutes, history.dist,
                             schedules=[W.FixedSchedule([7.0])])
    assert c["fixed"] is None and math.isnan(c["cost_change"])

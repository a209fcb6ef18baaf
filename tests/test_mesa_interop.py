"""``twin.mesa.CommunityModel``: the twin as a ``mesa.Model`` (step = one day, DataCollector, batch_run)."""
import numpy as np
import pandas as pd
import pytest
from mesa import DataCollector, batch_run

import twin
from twin.mesa import DAILY, CommunityModel

SMALL = {"community.households": 80, "community.buildings": 2}


def test_step_is_one_twin_day_and_gives_the_twins_own_run():
    model = CommunityModel("default", {**SMALL, "sim.days": 6}, seed=11)
    assert isinstance(model, __import__("mesa").Model)
    for day in range(4):
        model.step()
        assert model.day == day + 1 and model.running
    model.step(), model.step()
    assert model.day == 6 and not model.running
    model.step()  # past the horizon: nothing happens
    assert model.day == 6
    ref = twin.Twin(twin.load_scenario("default", ["community.households=80", "community.buildings=2",
                                                   "sim.days=6", "seed=11", "progress=false"])).run()
    assert np.array_equal(model.twin.log.events, ref.event_log)
    assert model.summary == pytest.approx(ref.summary, nan_ok=True)


def test_datacollector_rows_are_the_twins_days():
    model = CommunityModel("default", {**SMALL, "sim.days": 5}, seed=2)
    while model.running:
        model.step()
    frame = model.datacollector.get_model_vars_dataframe()
    assert list(frame.columns) == list(DAILY) and len(frame) == 5
    kpis = model.twin.kpis.frame()
    np.testing.assert_allclose(frame["satisfaction"], kpis["satisfaction"])
    assert list(frame["day"]) == list(kpis["day"]) == [0, 1, 2, 3, 4]


def test_custom_model_reporters_read_the_twins_arrays():
    model = CommunityModel("default", sim__days=3, community__households=60, community__buildings=2, seed=5,
                           model_reporters={"mean_fatigue": lambda m: float(m.twin.rule.fatigue.mean()), "seed": "seed"})
    model.run_model()
    frame = model.datacollector.get_model_vars_dataframe()
    assert len(frame) == 3 and (frame["mean_fatigue"] >= 0).all() and set(frame["seed"]) == {5}
    assert model.cfg.community.households == 60 and model.cfg.sim.days == 3
    assert isinstance(model.datacollector, DataCollector)


def test_seed_none_draws_a_seed_and_a_given_seed_reproduces():
    a, b = CommunityModel("default", {**SMALL, "sim.days": 2}), CommunityModel("default", {**SMALL, "sim.days": 2})
    assert a.seed != b.seed and a.cfg.seed == a.seed
    c, d = (CommunityModel("default", ["community.households=80", "community.buildings=2", "sim.days=2", "seed=9"])
            for _ in range(2))
    assert c.seed == d.seed == 9
    c.step(), d.step()
    assert np.array_equal(c.twin.log.events, d.twin.log.events)


def test_batch_run_sweeps_scenario_keys_and_reports_the_last_day():
    rows = batch_run(CommunityModel, {**SMALL, "sim.days": 4, "residents.reward_effect": [0.5, 1.5], "seed": [1, 2]},
                     max_steps=100, number_processes=1, display_progress=False)
    frame = pd.DataFrame(rows)
    assert len(frame) == 4 and set(frame["residents.reward_effect"]) == {0.5, 1.5}
    assert (frame["Step"] == 3).all() and (frame["day"] == 3).all()
    one = CommunityModel("default", {**SMALL, "sim.days": 4, "residents.reward_effect": 1.5}, seed=2)
    while one.running:
        one.step()
    row = frame[(frame["residents.reward_effect"] == 1.5) & (frame["seed"] == 2)].iloc[0]
    assert row["satisfaction"] == pytest.approx(one.today["satisfaction"])
    assert row["points_issued"] == one.today["points_issued"]


def test_a_misspelt_key_fails_at_construction():
    with pytest.raises(twin.ConfigError, match="households"):
        CommunityModel("default", {"community.housholds": 10})

"""Scenario configs: typed, validated at load time, errors that name the key and what is allowed."""
import pytest

import twin
from twin.config import ConfigError, TwinConfig, load_scenario, scenarios


def test_default_scenario_is_a_community_year():
    cfg = load_scenario("default")
    assert isinstance(cfg, TwinConfig)
    assert cfg.community.households == 2000 and cfg.sim.days == 365


def test_overrides_apply():
    cfg = load_scenario("default", ["community.households=500", "sim.days=90", "seed=7"])
    assert (cfg.community.households, cfg.sim.days, cfg.seed) == (500, 90, 7)


def test_every_shipped_scenario_loads():
    assert {"default", "queue_check", "chengdu_before"} <= set(scenarios())
    for name in scenarios():
        assert load_scenario(name).name == name


def test_a_misspelt_scenario_lists_the_shipped_ones_and_the_closest():
    with pytest.raises(ConfigError, match="unknown scenario 'defualt'; shipped scenarios: .*default.* "
                                          r"\(did you mean 'default'\?\)"):
        load_scenario("defualt")
    with pytest.raises(ConfigError) as e:
        load_scenario("zzz")
    assert "did you mean" not in str(e.value)


@pytest.mark.parametrize("override,expected", [
    ("community.housholds=3", ["community.housholds", "households", "did you mean 'households'"]),
    ("foo=1", ["'foo'", "community", "policies"]),
    ("staff.service_minutes.plumbin=3", ["plumbin", "plumbing"]),
])
def test_a_misspelt_key_names_it_and_the_allowed_keys(override, expected):
    with pytest.raises(ConfigError) as e:
        load_scenario("default", [override])
    for text in expected:
        assert text in str(e.value)


@pytest.mark.parametrize("override,expected", [
    ("sim.days=-1", ["sim.days", ">= 1"]),
    ("sim.days=abc", ["sim.days", "int"]),
    ("policies.dispatch=closest", ["policies.dispatch", "'fifo'", "'nearest'", "'skill'"]),
    ("policies.voting_method=dictator", ["policies.voting_method", "'borda'"]),
    ("community.elder_share=1.5", ["community.elder_share", "0..1"]),
    ("chain.mode=sometimes", ["chain.mode", "'anchor'"]),
    ("staff.shift_start_hour=21", ["shift", "start < end"]),
])
def test_a_bad_value_names_the_key_and_what_is_allowed(override, expected):
    with pytest.raises(ConfigError) as e:
        load_scenario("default", [override])
    for text in expected:
        assert text in str(e.value)


def test_unknown_scenario_lists_the_shipped_ones():
    with pytest.raises(ConfigError, match="queue_check"):
        load_scenario("nowhere")


def test_package_exports_the_api():
    assert twin.load_scenario is load_scenario
    assert twin.Twin.__name__ == "Twin"

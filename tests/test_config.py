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


# ---------------------------------------------------------------- composed scenarios kept on disk
@pytest.fixture
def config_cache(tmp_path, monkeypatch):
    """An empty cache of composed scenarios, and a count of the compositions Hydra makes."""
    import twin.config as config

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    composed = []
    compose = config._compose
    monkeypatch.setattr(config, "_compose", lambda *a: composed.append(a) or compose(*a))
    return composed


def test_a_scenario_composed_once_comes_back_from_the_disk_equal(config_cache):
    first = load_scenario("default", ["sim.days=12", "seed=5"])
    again = load_scenario("default", ["sim.days=12", "seed=5"])
    assert len(config_cache) == 1 and again == first and again is not first
    load_scenario("default", ["sim.days=13", "seed=5"])  # other overrides: composed
    load_scenario("default", ["seed=5", "sim.days=12"])  # the same, in another order: composed (order can matter)
    assert len(config_cache) == 3


def test_an_edited_scenario_file_is_composed_again(config_cache, tmp_path, monkeypatch):
    import shutil

    import twin.config as config

    scenarios_dir = tmp_path / "scenarios"
    shutil.copytree(config.SCENARIO_DIR, scenarios_dir)
    monkeypatch.setattr(config, "SCENARIO_DIR", scenarios_dir)
    assert load_scenario("queue_check").sim.days == 60
    path = scenarios_dir / "queue_check.yaml"
    path.write_text(path.read_text().replace("days: 60", "days: 61"))
    assert load_scenario("queue_check").sim.days == 61
    assert len(config_cache) == 2


def test_a_refused_config_is_never_kept(config_cache):
    for _ in range(2):
        with pytest.raises(ConfigError, match="households"):
            load_scenario("default", ["community.housholds=3"])
    assert len(config_cache) == 2


def test_a_damaged_or_unwritable_cache_only_costs_a_composition(config_cache, tmp_path, monkeypatch):
    from twin import _config_cache

    load_scenario("default", ["seed=9"])
    for kept in _config_cache.directory().glob("*.pickle"):
        kept.write_bytes(b"not a pickle")
    assert load_scenario("default", ["seed=9"]).seed == 9
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))  # the cache's folder cannot be made
    assert load_scenario("default", ["seed=9"]).seed == 9
    assert len(config_cache) == 3


def test_every_section_of_a_config_is_defined_in_the_schema_the_cache_key_covers():
    """The config cache keys on ``twin/config.py`` as the schema: a section class defined in
    another module could change without the key changing, and a kept config would lack its fields."""
    from twin.config import parts_of

    seen, todo = 0, [load_scenario("default")]
    while todo:
        node = todo.pop()
        assert type(node).__module__ == "twin.config", type(node)
        parts = parts_of(node)
        seen += len(parts)
        todo += parts
    assert seen >= 8  # the sections, the activity rules, the catalogue


def test_overrides_with_an_interpolation_are_always_composed(config_cache, monkeypatch):
    monkeypatch.setenv("TWIN_TEST_OUT", "/tmp/a")
    assert load_scenario("default", ["out=${oc.env:TWIN_TEST_OUT}"]).out == "/tmp/a"
    monkeypatch.setenv("TWIN_TEST_OUT", "/tmp/b")
    assert load_scenario("default", ["out=${oc.env:TWIN_TEST_OUT}"]).out == "/tmp/b"
    assert len(config_cache) == 2


def test_a_kept_config_is_checked_again_when_read_back(config_cache, monkeypatch):
    """The checks read names defined outside the schema (the dispatch policies): a kept config
    whose dispatch has since gone is refused, as a composed one would be, not run."""
    import policies

    assert load_scenario("default", ["policies.dispatch=skill"]).policies.dispatch == "skill"
    monkeypatch.setattr(policies, "DISPATCH_POLICIES", {k: v for k, v in policies.DISPATCH_POLICIES.items()
                                                        if k != "skill"})
    with pytest.raises(ConfigError, match="policies.dispatch"):
        load_scenario("default", ["policies.dispatch=skill"])
    assert len(config_cache) == 1  # it was read back, then refused


def test_while_checks_are_read_nothing_is_kept(config_cache):
    from twin import _config_cache
    from twin.config import reading_checks

    with reading_checks():
        load_scenario("default", ["seed=11"])
    assert not list(_config_cache.directory().glob("*.pickle"))

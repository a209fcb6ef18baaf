"""The parameter table: every config field described once, where it is defined, and the docs page current."""
import csv
import io
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path

import pytest

from twin import params
from twin.cli import main
from twin.config import ConfigError, TwinConfig, param

DOCS_PAGE = Path(__file__).parent.parent / "docs" / "parameters.md"


def _leaf_fields(node, prefix=""):
    """Every non-section field of the config, walked independently of twin.params."""
    for f_ in fields(node):
        default = f_.default_factory() if callable(f_.default_factory) else f_.default
        if is_dataclass(default):
            yield from _leaf_fields(type(default), f"{prefix}{f_.name}.")
        else:
            yield prefix + f_.name, f_


def test_every_config_field_has_a_meaning_and_a_unit():
    assert params.undescribed() == []
    for key, f_ in _leaf_fields(TwinConfig):
        assert f_.metadata.get("meaning", "").strip(), f"{key} has no meaning"
        assert f_.metadata.get("unit", "").strip(), f"{key} has no unit"
        assert f_.metadata.get("source", "").strip(), f"{key} has no source"


def test_a_field_without_a_description_is_reported():
    @dataclass
    class Section:
        described: float = param(1.0, "something", "m")
        bare: int = 3
        no_unit: float = param(2.0, "something else", "")

    assert params.undescribed(Section) == ["bare", "no_unit"]


def test_the_table_has_one_row_per_config_key_with_its_real_default():
    keys = [p.key for p in params.parameters()]
    assert len(keys) == len(set(keys))
    leaves = dict(_leaf_fields(TwinConfig))
    assert set(leaves) <= set(keys)
    cfg = TwinConfig()
    for p in params.parameters():
        if "[]" in p.key:
            continue
        value = cfg
        for part in p.key.split("."):
            value = getattr(value, part)
        assert p.default == value, p.key


def test_list_entries_are_described_key_by_key():
    keys = {p.key for p in params.parameters()}
    assert {"policies.points.activities[].points", "policies.points.activities[].per_week",
            "policies.points.catalog[].cost"} <= keys


def test_every_default_is_allowed_by_its_own_declared_values():
    cfg = TwinConfig()
    for key, f_ in _leaf_fields(TwinConfig):
        value = cfg
        for part in key.split("."):
            value = getattr(value, part)
        assert f_.metadata["allowed"].admits(value), key


def test_the_allowed_values_are_the_load_time_check():
    # the words in the table are the words of the error, for a key checked by its declared test
    row = next(p for p in params.parameters() if p.key == "community.elder_share")
    with pytest.raises(ConfigError, match=row.allowed.replace(".", r"\.")):
        TwinConfig().community.__class__(elder_share=1.5)


def test_the_committed_docs_page_is_current():
    assert DOCS_PAGE.read_text(encoding="utf-8") == params.to_markdown(), \
        "docs/parameters.md is out of date: run `twin params --out docs/parameters.md`"


def test_scenarios_show_what_they_change():
    changes = params.scenario_changes()
    assert changes["default"][1] == {}
    assert changes["chengdu_before"][1] == {"residents.reward_effect": 0.0}
    assert changes["queue_check"][1]["queue_check.enabled"] is True


def test_calibrated_parameters_name_their_case():
    rows = {p.key: p for p in params.parameters()}
    for key in ("residents.activity_base", "residents.reward_effect", "residents.peer_effect"):
        assert "Chengdu" in rows[key].source


def test_csv_has_the_same_rows(capsys):
    assert main(["params", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["key"] for r in rows] == [p.key for p in params.all_parameters()]
    assert set(rows[0]) == {"section", *params.COLUMNS}
    by_key = {r["key"]: r for r in rows}
    assert by_key["community.households"]["default"] == "2000"
    assert by_key["staff.cleaner_round_hours"]["default"] == "[7.0, 19.0]"


def test_cli_writes_the_page(tmp_path, capsys):
    out = tmp_path / "parameters.md"
    assert main(["params", "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == params.to_markdown()
    assert "| `community.households` |" in out.read_text(encoding="utf-8")


def test_an_unknown_format_is_a_clear_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["params", "--format", "xml"])
    assert e.value.code == 2
    assert "'md', 'csv'" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="format = 'xml'.*'md', 'csv'"):
        params.render("xml")


def test_markdown_cells_cannot_break_the_table():
    @dataclass
    class Section:
        odd: str = param("a|b", "pipes | and <tags>", "name")

    page = params._md_table(["key", "meaning"], [[p.key, p.meaning] for p in params.parameters(Section)])
    assert page[-1] == "| odd | pipes \\| and &lt;tags&gt; |"


# ------------------------------------------------------------------ beyond the scenario config
BLANK = {"", "?", "-", "—", "tbd", "todo"}


def test_every_row_has_a_meaning_a_unit_a_range_and_a_source():
    rows = params.all_parameters()
    assert len(rows) > len(params.parameters())  # the models and the city are in
    for p in rows:
        for column in ("meaning", "unit", "allowed", "source"):
            assert str(getattr(p, column)).strip().lower() not in BLANK, f"{p.key}: no {column}"


def test_every_model_parameter_is_described_and_no_description_is_stale():
    for cls, _ in params.model_classes():
        own = set(cls().get_params())
        described = set(params.MODEL_DESCRIPTIONS[cls.name])
        assert own - described == set(), f"{cls.name}: describe {sorted(own - described)} in MODEL_DESCRIPTIONS"
        assert described - own == set(), f"{cls.name}: {sorted(described - own)} are no longer parameters"
    assert set(params.MODEL_DESCRIPTIONS) == {cls.name for cls, _ in params.model_classes()}


def _case_keys():
    from twin.cases import case_names, load_case

    for name in case_names():
        case = load_case(name)
        for item in (*case.size, *case.before, *case.after, *case.policy_off):
            yield name, str(item).partition("=")[0]
        for entry in case.calibrated:
            yield name, entry["param"]


def test_every_key_a_case_sets_or_calibrates_is_in_the_table():
    keys = {p.key for p in params.all_parameters()}
    missing = sorted({(case, key) for case, key in _case_keys() if key not in keys
                      and not any(key.startswith(k + ".") for k in keys)})  # a dict entry: staff.service_minutes.x
    assert missing == [], missing


def test_calibrated_model_parameters_name_their_case():
    rows = {p.key: p for p in params.model_parameters()}
    assert "hangzhou_garbage_points" in rows["garbage_points.calls_per_hour"].source
    assert rows["needs.tolerance"].source.startswith("calibrated: beijing_huitian case")
    from twin.config import ASSUMED

    assert rows["garbage_points.cleaners"].source == ASSUMED


@pytest.mark.parametrize("key, bad", [("garbage_points.camera_coverage", 1.5), ("pet_code.red_at", 1),
                                      ("waste.bin_spread", 1.0), ("service_station.layout", "hall")])
def test_a_model_row_shows_the_words_of_the_models_own_refusal(key, bad):
    from policies._arms import split_arm

    row = next(p for p in params.model_parameters() if p.key == key)
    cls = next(c for c, _ in params.model_classes() if c.name == key.partition(".")[0])
    with pytest.raises(ConfigError) as refused:
        split_arm(cls(), [f"{key}={bad}"], "default", 1)
    assert row.allowed in str(refused.value)


def test_reading_a_models_checks_refuses_nothing_and_checks_refuse_again_after():
    from policies.garbage_points import GarbagePoints
    from policies.pet_code import PetCode
    from twin.config import reading_checks

    bad = GarbagePoints(camera_coverage=7.0)
    checks = params.declared_checks(bad)
    assert checks["camera_coverage"] == "a share in [0, 1]"
    assert params.declared_checks(PetCode())["red_at"] == "a whole number >= 2"  # a model's own ``require``
    with pytest.raises(ConfigError, match="camera_coverage"):
        bad.check()  # the model still refuses afterwards
    with pytest.raises(RuntimeError), reading_checks():
        raise RuntimeError("a reading that fails")
    with pytest.raises(ConfigError, match="camera_coverage"):
        bad.check()  # ... even after a reading that raised


def test_the_city_rows_come_from_the_city_config():
    from twin.city import load_city

    rows = {p.key: p for p in params.city_parameters()}
    city = load_city("city_demo")
    assert {f"district.{k}" for k in vars(city.district)} <= set(rows)
    assert rows["district.technicians"].allowed == "an integer >= 0 (0: no district crew)"
    with pytest.raises(ConfigError, match=r"district\.travel_minutes.*" + rows["district.travel_minutes"].allowed):
        load_city("city_demo", overrides={"district": {"travel_minutes": -5}})


def test_every_key_a_shipped_city_sets_is_in_the_table():
    import yaml

    from twin.city import CITY_DIR

    keys = {p.key for p in params.city_parameters()}
    for path in CITY_DIR.glob("*.yaml"):
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        for key, value in raw.items():
            if key == "communities":
                assert {f"communities[].{k}" for entry in value for k in entry} <= keys, path.name
            elif isinstance(value, dict):
                assert {f"{key}.{k}" for k in value} <= keys, path.name
            else:
                assert key in keys, (path.name, key)


def test_the_newer_parameters_are_in_the_table():
    keys = {p.key for p in params.all_parameters()}
    assert {"residents.awareness_initial", "residents.awareness_base_per_day", "residents.awareness_spread",
            "policies.staffing", "policies.elder_detector", "district.overflow_after_minutes",
            "garbage_points.calls_per_hour", "service_station.tolerance_minutes", "mediation.base_logit",
            "needs.tolerance", "pet_code.deduction_effect", "green_account.sorting_base",
            "waste.bin_spread", "mediation.refer_after_days", "mediation.min_local_skill"} <= keys

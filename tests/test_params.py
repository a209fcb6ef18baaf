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
    assert [r["key"] for r in rows] == [p.key for p in params.parameters()]
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

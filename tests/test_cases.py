"""Case studies: each case runs at a tiny size, its effect comes from its policy, and the verdicts are honest.

The full figures come from ``twin cases`` (a year of 1,000 households, ten
replications); here each case runs a few months of a small community, with
its rare events made frequent so that a few replications resolve the effect.
"""
import math

import pytest

from twin import cases
from twin.config import ConfigError

TINY = ["community.households=240", "community.buildings=6", "sim.days=60"]
FREQUENT = {  # rare hidden events made frequent, so that a tiny run has some
    "hangzhou_alerts": ["community.elders_alone_share=0.8", "sensors.incapacitation_per_elder_year=6"],
    "chaoyang_bursts": ["sensors.pipe_burst_per_building_year=40"],
}


def tiny(name, arms=cases.ARMS, replications=3):
    return cases.run_case(cases.load_case(name), replications, extra=TINY + FREQUENT.get(name, []), arms=arms)


@pytest.fixture(scope="module", params=cases.case_names())
def ran(request):
    return tiny(request.param, arms=("before", "after", "off"))


def test_every_case_names_its_source_line_and_role():
    assert {"chengdu", "hangzhou_alerts", "chaoyang_bursts"} <= set(cases.case_names())
    for name in cases.case_names():
        case = cases.load_case(name)
        file, line = case.source.split(":")
        assert file.endswith(".txt") and int(line) > 0 and case.quote, name
        assert case.role in cases.ROLES
        assert case.role != "validation" or not case.calibrated


def test_each_case_runs_and_prints_reported_against_twin(ran):
    text = cases.table([ran])
    case = ran.case
    assert case.name in text and case.role in text
    for arm in case.reported:
        assert not math.isnan(ran.interval(arm)["mean"]), arm
        assert f"reported {'≤ ' if case.compare == 'at_most' else ''}{case.reported[arm]:g}" in text
        assert cases.verdict(ran, arm) in text


def test_each_case_effect_comes_from_its_policy_and_disappears_when_it_is_off(ran):
    on, off = ran.effect(), ran.effect(arm="off")
    assert on["low"] > 0 or on["high"] < 0, on  # the policy moves its KPI
    assert off["diff"] == pytest.approx(0.0, abs=1e-9) or off["low"] <= 0 <= off["high"], off


def test_an_unreachable_figure_is_said_plainly():
    res = tiny("chaoyang_bursts", arms=("after",))
    assert res.interval("after")["low"] > 30  # the twin's repairs take longer than the report's 30 minutes
    assert cases.verdict(res, "after").startswith("CANNOT reach")


def test_a_calibration_out_of_tolerance_is_not_called_reached():
    res = tiny("chengdu", arms=("before", "after"), replications=2)
    res.case.reported = {"before": 0.15, "after": 0.9}
    assert cases.verdict(res, "after").startswith("CANNOT reach")


def test_the_page_draws_every_case(tmp_path):
    res = tiny("chengdu", arms=("before", "after"), replications=2)
    page = cases.write_page([res], tmp_path)
    assert "chengdu" in page.read_text(encoding="utf-8")
    assert "NaN" not in (tmp_path / "cases.json").read_text(encoding="utf-8")


def test_unknown_cases_and_keys_are_refused_by_name(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="unknown case 'nope'; shipped cases: .*chengdu"):
        cases.load_case("nope")
    (tmp_path / "bad.yaml").write_text("title: x\nreportd: {after: 1}\n", encoding="utf-8")
    monkeypatch.setattr(cases, "CASE_DIR", tmp_path)
    with pytest.raises(ConfigError, match="unknown key 'reportd'; allowed keys: .*reported"):
        cases.load_case("bad")


def test_twin_cases_prints_reported_against_twin_and_writes_the_page(tmp_path, capsys):
    from twin.cli import main

    assert main(["cases", "chengdu", "-n", "2", "--out", str(tmp_path), "--plotly", "cdn"]) == 0
    out = capsys.readouterr().out
    assert "reported 0.42" in out and "calibration" in out and "cases page:" in out
    assert (tmp_path / "cases.html").exists() and (tmp_path / "cases.json").exists()


@pytest.mark.parametrize("argv, message", [
    (["cases", "nope"], "unknown case 'nope'; shipped cases: beijing_huitian, chaoyang_bursts, chengdu"),
    (["cases", "chengdu", "-n", "1"], "-n = 1 is not allowed; expected at least 2 replications"),
])
def test_twin_cases_refuses_bad_input_in_one_line(argv, message, capsys):
    from twin.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err

"""The case studies in the source texts, reproduced by the default calibration.

* Chengdu, Wuhou (成都武侯区社区积分银行): a year of the points system took
  participation from 15% to 42%.
* Hangzhou (城市大脑·社区微脑): water/electricity anomalies of elders living alone
  trigger an alert and a social worker within 30 minutes.

The figures are the reported ones; the tolerance is what one simulated year
of a 1,000-household community can resolve.  These tests fail if the resident
rule or the default parameters drift away from what the case studies report.
"""
import pytest

import twin


def year(scenario, *overrides):
    cfg = twin.load_scenario(scenario, ["community.households=1000", "community.buildings=20", "progress=false",
                                        *overrides])
    return twin.Twin(cfg).run().summary


@pytest.mark.slow
def test_chengdu_points_raise_participation_from_15_to_42_percent():
    before = year("chengdu_before")["participation_rate"]
    after = year("default")["participation_rate"]
    assert before == pytest.approx(0.15, abs=0.06)
    assert after == pytest.approx(0.42, abs=0.06)


def test_hangzhou_alerts_answered_within_30_minutes():
    s = year("default", "sim.days=120")
    assert s["alerts_raised"] > 0
    assert s["alert_response_minutes_mean"] < 30

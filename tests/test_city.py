"""A city sharded by community: the district's overflow rule, the city KPIs, and one result for
any number of shards, in this process and on a local Ray instance (repair and mediation alike;
mediation's own rule is tested in test_city_mediation.py)."""
import dataclasses
import math

import numpy as np
import pytest

from twin import city
from twin.city import ASSIGNMENT, DISTRICT_WORKER, OFFER, District, DistrictRule
from twin.config import ConfigError
from twin.services.events import EventKind

# small communities, few days: one with a single technician so there is overflow to take, and
# one mediator with many disputes, so that the district's mediators have more offers than places
CITY_YAML = """\
name: test_city
seed: 7
days: 5
communities:
  - label: roomy  # first: shard 0 answers with another community's offers first when there are 2 shards
    overrides: [community.households=150, community.buildings=3, staff.technicians=2]
  - label: tight
    count: 3
    overrides: [community.households=120, community.buildings=3, staff.technicians=1,
                facilities.household_faults_per_year=6,
                mediation.disputes_per_household_year=12, mediation.mediators=1, mediation.max_cases=1]
district:
  technicians: 1
  overflow_after_minutes: 60
  travel_minutes: 20
  shift_start_hour: 0   # on call: it can start overnight, before the communities' crews
  shift_end_hour: 24
mediation:
  mediators: 1
  max_cases: 2
  refer_after_days: 0.5
"""


@pytest.fixture(scope="module")
def city_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("city") / "test_city.yaml"
    path.write_text(CITY_YAML)
    return path


@pytest.fixture(scope="module")
def one_shard(city_file):
    return city.run_city(city.load_city(str(city_file)), shards=1)


def fingerprint(result) -> dict:
    """What must not depend on the shards: every community's event log and disputes (bytes) and the
    city's figures."""
    logs = {c["index"]: c["events"].tobytes() for c in result["communities"]}
    disputes = {c["index"]: c["disputes"].tobytes() for c in result["communities"] if "disputes" in c}
    return {"logs": logs, "disputes": disputes, "kpis": result["kpis"], "district": result["district"],
            "mediation": result.get("mediation")}


def assert_same(a, b):
    fa, fb = fingerprint(a), fingerprint(b)
    differ = [i for i in fa["logs"] if fa["logs"][i] != fb["logs"].get(i)]
    assert not differ, f"event logs of communities {differ} differ"
    differ = [i for i in fa["disputes"] if fa["disputes"][i] != fb["disputes"].get(i)]
    assert not differ and fa["disputes"].keys() == fb["disputes"].keys(), f"disputes of communities {differ} differ"
    assert fa["district"] == fb["district"]
    assert fa["mediation"] == fb["mediation"]
    assert fa["kpis"].keys() == fb["kpis"].keys()
    for k, v in fa["kpis"].items():
        assert v == fb["kpis"][k] or (math.isnan(v) and math.isnan(fb["kpis"][k])), k


# ---------------------------------------------------------------- the rule
def offers(*rows):
    return np.array(list(rows), OFFER)


def test_overflow_goes_by_submission_then_community_then_ticket_whatever_the_arrival_order():
    rule = DistrictRule(technicians=1, shift_start_hour=8, shift_end_hour=20, travel_minutes=30)
    rows = offers((2, 5, 100.0, 5000.0, 60.0), (1, 9, 100.0, 5000.0, 60.0), (0, 3, 200.0, 5000.0, 60.0),
                  (1, 4, 100.0, 5000.0, 60.0))
    first = District(rule).assign(rows, day=0)
    for perm in ([3, 2, 1, 0], [2, 0, 3, 1]):
        assert District(rule).assign(rows[perm], day=0).tobytes() == first.tobytes()
    assert first[["community", "ticket"]].tolist() == [(1, 4), (1, 9), (2, 5), (0, 3)]
    # one technician, from day 1's shift start (minute 1440 + 480), each job after the last
    assert first["dispatch"].tolist() == [1920.0, 2010.0, 2100.0, 2190.0]
    assert first["start"].tolist() == [1950.0, 2040.0, 2130.0, 2220.0]
    assert first["done"].tolist() == [2010.0, 2100.0, 2190.0, 2280.0]
    assert (first["worker"] == DISTRICT_WORKER).all()


def test_the_district_takes_only_what_it_starts_sooner_and_works_its_shifts():
    rule = DistrictRule(technicians=2, shift_start_hour=8, shift_end_hour=20, travel_minutes=30)
    d = District(rule)
    # the community would start the first at minute 1900, before the district could (1950): not taken
    got = d.assign(offers((0, 1, 10.0, 1900.0, 60.0), (0, 2, 20.0, 3000.0, 700.0), (0, 3, 30.0, 9000.0, 700.0),
                          (0, 4, 40.0, 9000.0, 60.0)), day=0)
    assert got["ticket"].tolist() == [2, 3, 4]
    assert got["worker"].tolist() == [DISTRICT_WORKER, DISTRICT_WORKER + 1, DISTRICT_WORKER]  # the free one first
    # technician 0 is free at 1950 + 700 = 2650 (minute 1210 of day 1, after its 20:00 end): next shift
    assert got["dispatch"][2] == 2 * 1440.0 + 480
    assert d.offered == 4 and d.taken == 3
    assert d.busy_minutes == pytest.approx((730 + 730 + 90))
    none = District(dataclasses.replace(rule, technicians=0)).assign(offers((0, 2, 20.0, 3000.0, 700.0)), day=0)
    assert none.dtype == ASSIGNMENT and len(none) == 0


def test_the_test_city_gives_the_district_mediators_more_offers_than_they_take(one_shard):
    """Else the shard tests below would not see the order of the district's mediation at work."""
    assert 0 < one_shard["mediation"]["taken"] < one_shard["mediation"]["offers"]
    assert one_shard["kpis"]["disputes_referred"] == one_shard["mediation"]["taken"]


def test_a_community_hands_over_late_waiting_tickets_and_applies_the_districts_times(one_shard):
    """Through the engine's own queue: the taken tickets are dispatched to district workers."""
    assert one_shard["district"]["taken"] > 0
    dispatched = np.concatenate([c["events"][c["events"]["kind"] == EventKind.TicketDispatched]
                                 for c in one_shard["communities"]])
    by_district = dispatched[dispatched["target"] >= DISTRICT_WORKER]
    assert 0 < len(by_district) <= one_shard["district"]["taken"]


# ---------------------------------------------------------- city figures
def test_every_summary_kpi_has_a_city_aggregate():
    from twin.sweep import kpi_names

    assert sorted(city.SUMMED + tuple(city.POOLED)) == sorted(kpi_names())


def test_city_means_are_pooled_over_what_each_community_averages():
    base = dict.fromkeys(city.SUMMED, 1)
    weights = dict.fromkeys(set(city.POOLED.values()), 1)
    a = {"residents": 10, "summary": {**base, **dict.fromkeys(city.POOLED, 10.0)},
         "weights": {**weights, "tickets_started": 1}}
    b = {"residents": 30, "summary": {**base, **dict.fromkeys(city.POOLED, 20.0), "alert_recall": math.nan},
         "weights": {**weights, "tickets_started": 3}}
    k = city.city_kpis([a, b])
    assert k["residents"] == 40 and k["tickets_opened"] == 2
    assert k["repair_wait_minutes_mean"] == pytest.approx(17.5)  # (10*1 + 20*3) / 4
    assert k["participation_rate"] == pytest.approx(15.0)
    assert k["alert_recall"] == 10.0  # a community without a figure does not count


def test_community_seeds_come_from_the_city_seed_and_the_index(city_file):
    c = city.load_city(str(city_file))
    assert [s.cfg.seed for s in c.communities] == [city.community_seed(7, i) for i in range(4)]
    assert len({s.cfg.seed for s in c.communities}) == 4
    assert all(s.cfg.sim.days == 5 for s in c.communities)


@pytest.mark.parametrize("text, named", [
    ("seed: 1\ncomunities: []\n", "unknown key comunities (did you mean 'communities'?)"),
    ("communities:\n  - scenario: default\n    cout: 2\n", "communities[0].cout"),
    ("communities:\n  - count: 0\n", "communities[0].count"),
    ("communities:\n  - overrides: [staff.technicians=-1]\n", "communities[0]: staff.technicians"),
    ("communities:\n  - {}\ndistrict: {technicians: 1.5}\n", "district.technicians"),
    ("communities:\n  - {}\ndistrict: {techs: 1}\n", "allowed keys: technicians"),
    ("days: 0\ncommunities:\n  - {}\n", "days: 0"),
])
def test_a_bad_city_config_is_refused_naming_the_key(tmp_path, text, named):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        city.load_city(str(path))
    assert named in str(e.value)


def test_unknown_city_backend_or_shards_are_refused(city_file):
    assert "city_demo" in city.cities()
    with pytest.raises(ConfigError, match="shipped cities: .*city_demo"):
        city.load_city("no_such_city")
    c = city.load_city(str(city_file))
    with pytest.raises(ConfigError, match="allowed: local, ray"):
        city.run_city(c, backend="dask")
    with pytest.raises(ConfigError, match="shards"):
        city.run_city(c, shards=0)


# --------------------------------------------------- one result, any shards
def test_local_shards_give_the_same_logs_and_kpis(city_file, one_shard):
    c = city.load_city(str(city_file))
    for shards in (2, 4):
        assert_same(one_shard, city.run_city(c, shards=shards))


def test_the_comparison_catches_a_seed_taken_from_the_shard_order(city_file, one_shard, monkeypatch):
    """Mutation: a shard that seeds its communities by their place in the shard, not the city."""
    real_split = city.split

    def order_seeded(specs, shards):
        return [[dataclasses.replace(s, cfg=dataclasses.replace(s.cfg, seed=city.community_seed(7, k)))
                 for k, s in enumerate(group)] for group in real_split(specs, shards)]

    monkeypatch.setattr(city, "split", order_seeded)
    c = city.load_city(str(city_file))
    assert_same(one_shard, city.run_city(c, shards=1))  # with one shard the place is the index
    with pytest.raises(AssertionError, match="event logs of communities"):
        assert_same(one_shard, city.run_city(c, shards=2))


def test_the_comparison_catches_referrals_taken_in_the_order_shards_answered(city_file, one_shard, monkeypatch):
    """Mutation: the district's mediators take offers as they arrive (shard by shard), not in the
    disputes' own order."""
    from twin import city_mediation

    monkeypatch.setattr(city_mediation, "referral_order", lambda offers: np.arange(len(offers)))
    c = city.load_city(str(city_file))
    one = city.run_city(c, shards=1)
    assert_same(one, city.run_city(c, shards=4))  # arrival order is the community order here too
    with pytest.raises(AssertionError, match="disputes of communities"):
        assert_same(one, city.run_city(c, shards=2))


def test_ray_shards_give_the_same_logs_and_kpis(ray_local, city_file, one_shard):
    c = city.load_city(str(city_file))
    for shards in (1, 2, 4):
        result = city.run_city(c, backend="ray", shards=shards)
        assert result["shards"] == shards
        assert_same(one_shard, result)


def test_a_city_folder_holds_its_kpis_and_logs(one_shard, tmp_path):
    import json

    d = city.save_city(one_shard, tmp_path / "run")
    meta = json.loads((d / "city.json").read_text())
    assert meta["kpis"]["communities"] == 4 and len(meta["communities"]) == 4
    assert np.load(d / "events" / "0002.npy").tobytes() == one_shard["communities"][2]["events"].tobytes()
    assert np.load(d / "disputes" / "0002.npy").tobytes() == one_shard["communities"][2]["disputes"].tobytes()
    assert meta["mediation"]["taken"] == one_shard["mediation"]["taken"]
    assert meta["communities"][0]["disputes_filed"] == one_shard["communities"][0]["mediation"]["disputes_filed"]


def test_twin_city_runs_prints_the_city_and_writes_its_folder(city_file, tmp_path, capsys):
    from twin.cli import main

    assert main(["city", "-s", str(city_file), "--days", "2", "--shards", "2", "--out", str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out
    assert "repair_wait_minutes_mean" in out and "district_taken" in out and "2 shard(s) on local" in out
    assert "dispute_settlement_rate" in out and "district_mediation_taken" in out
    assert (tmp_path / "c" / "communities.csv").read_text().count("\n") == 5  # a header and four communities
    import pandas as pd

    from twin.results import column_units

    table = pd.read_parquet(tmp_path / "c" / "communities.parquet")
    assert table.equals(pd.read_csv(tmp_path / "c" / "communities.csv")[table.columns])
    units = column_units(tmp_path / "c" / "communities.parquet")
    assert units["repair_wait_minutes_mean"][0] == "min" and units["dispute_settlement_rate"][0] == "share"
    assert units["residents"] == ("count", "its residents")


def test_twin_city_refuses_an_unknown_city_in_one_line(capsys):
    from twin.cli import main

    assert main(["city", "-s", "no_such_city"]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown city 'no_such_city'" in err and "city_demo" in err

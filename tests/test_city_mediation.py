"""Mediation across communities: what a community offers, the order the district pool takes offers
in, that an empty pool leaves every desk as the standalone Shenzhen model runs it, that a pool
shortens the waits on the same seeds, and the refusals of bad mediation config.

The shard tests (1, 2, 4 shards, local and Ray, and the mutant pool that takes offers in shard
order) are in test_city.py, on its test city, which runs mediation too."""
import math

import numpy as np
import pytest

from policies.mediation import KINDS, Desk, Mediation
from twin import city
from twin.city_mediation import REFERRAL, TAKE, DistrictPool, MediationRule, referrals_of
from twin.config import ConfigError

# two busy communities (one mediator taking one case at a time, many disputes) and a calm one
BUSY = ["community.households=120", "community.buildings=3", "staff.technicians=2",
        "mediation.disputes_per_household_year=8", "mediation.mediators=1", "mediation.max_cases=1"]
CALM = ["community.households=150", "community.buildings=3", "staff.technicians=2"]


def city_of(seed=3, days=12, mediation=None, busy=BUSY) -> city.CityConfig:
    raw = {"name": "mediation_city", "seed": seed, "days": days,
           "communities": [{"label": "busy", "count": 2, "overrides": busy}, {"label": "calm", "overrides": CALM}]}
    if mediation is not None:
        raw["mediation"] = mediation
    return city.city_config(raw)


# --------------------------------------------------------------- the rule
def test_a_desk_offers_what_waited_too_long_and_what_no_local_mediator_is_skilled_for():
    model = Mediation(households=200, days=10, disputes_per_household_year=20, mediators=1, max_cases=1)
    desk = Desk(model, seed=5)
    for day in range(4):
        desk.morning(day)
    waiting = np.array(desk.waiting)
    late = 3 - desk.filed[waiting] > 1.0
    assert late.any() and not late.all()  # else the test below could not tell the rule apart
    got = referrals_of(2, desk, MediationRule(refer_after_days=1.0), day=3)
    assert got.dtype == REFERRAL and (got["community"] == 2).all()
    assert got["dispute"].tolist() == waiting[late].tolist()
    assert got["kind"].tolist() == desk.kind[waiting[late]].tolist()
    # its one mediator specialises in the first kind: the others lack a skill of 0.8, offered at once
    assert desk.skill[0, 0] >= 0.8 > desk.skill[0, 1:].max()
    unskilled = referrals_of(2, desk, MediationRule(refer_after_days=1.0, min_local_skill=0.8), day=3)
    expected = late | (desk.kind[waiting] != KINDS.index("elevator"))
    assert unskilled["dispute"].tolist() == waiting[expected].tolist() and expected.sum() > late.sum()


def pool_of(mediators=1, max_cases=2):
    model = Mediation(households=100, days=10)
    return DistrictPool(MediationRule(mediators=mediators, max_cases=max_cases),
                        {c: (100 + c, model) for c in range(3)}, seed=9)


def test_the_pool_takes_offers_by_filing_then_community_then_dispute_whatever_the_arrival_order():
    offers = np.array([(2, 5, 1.5, 0, 0.5), (1, 9, 1.5, 1, 0.5), (0, 3, 2.5, 2, 0.5), (1, 4, 1.5, 3, 0.5)], REFERRAL)
    first = pool_of().take(offers, morning=3)
    assert first.dtype == TAKE
    assert first[["community", "dispute"]].tolist() == [(1, 4), (1, 9)]  # two places: the first two in order
    for perm in ([3, 2, 1, 0], [2, 0, 3, 1]):
        assert pool_of().take(offers[perm], morning=3).tobytes() == first.tobytes()
    assert (first["morning"] == 3).all() and (first["end"] > 3).all()
    assert ((first["chance"] > 0) & (first["chance"] < 1)).all()


def test_a_taken_dispute_keeps_its_communitys_luck_and_the_pool_stays_busy_until_it_ends():
    pool = pool_of(mediators=1, max_cases=1)
    offer = np.array([(1, 7, 0.2, 2, 0.6)], REFERRAL)
    t = pool.take(offer, morning=1)[0]
    model = pool.communities[1][1]
    assert (bool(t["settled"]), t["end"]) == model.outcome(101, 7, pool.skill[t["mediator"], 2], 0.6, t["chance"], 1.0)
    assert len(pool.take(offer, morning=1)) == 0  # its one place is held
    assert len(pool.take(offer, morning=math.ceil(t["end"]))) == 1
    assert pool.figures() == {"mediators": 1, "offers": 3, "taken": 2, "settled": pool.settled}


# ------------------------------------------------------------- in the city
def test_a_pool_of_no_mediators_leaves_every_desk_as_the_standalone_model_runs_it():
    """Mutation check: the same comparison fails once the pool has mediators."""
    def compare(result, c):
        for spec, com in zip(c.communities, result["communities"]):
            alone = spec.mediation.run(spec.cfg.seed)
            d = com["disputes"]
            for name, col in (("filed", "filed"), ("resolved", "resolved"), ("settled", "settled"),
                              ("match_probability", "chance")):
                assert np.array_equal(getattr(alone, name), d[col], equal_nan=True), (spec.index, name)

    empty = city_of(mediation={"mediators": 0, "refer_after_days": 0})
    result = city.run_city(empty)
    compare(result, empty)
    assert result["kpis"]["disputes_referred"] == 0 and result["mediation"]["offers"] > 0
    # mediation never touches a community's day: the repair logs are those of a city without it
    plain = city.run_city(city_of(busy=[o for o in BUSY if not o.startswith("mediation.")]))
    assert [c["events"].tobytes() for c in plain["communities"]] == [c["events"].tobytes()
                                                                      for c in result["communities"]]
    assert "disputes_filed" not in plain["kpis"] and "mediation" not in plain
    staffed = city_of(mediation={"mediators": 2, "refer_after_days": 0})
    with pytest.raises(AssertionError):
        compare(city.run_city(staffed), staffed)


def pool_helps(with_pool: list, without: list) -> bool:
    """Paired on the same seeds: disputes wait less in every one, and more of them settle in all."""
    waits = [(a["kpis"]["dispute_days_waiting_mean"], b["kpis"]["dispute_days_waiting_mean"])
             for a, b in zip(with_pool, without)]
    settled = [(a["kpis"]["disputes_settled"], b["kpis"]["disputes_settled"]) for a, b in zip(with_pool, without)]
    return all(a < b for a, b in waits) and sum(a for a, _ in settled) > sum(b for _, b in settled)


def test_a_district_pool_shortens_the_waits_and_settles_more_on_the_same_seeds():
    """Honest effect check, with its mutation: an empty pool, or one never offered anything, fails it."""
    seeds = (1, 2, 3, 4)

    def runs(mediation):
        return [city.run_city(city_of(seed=s, days=10, mediation=mediation)) for s in seeds]

    without = runs({"mediators": 0})
    with_pool = runs({"mediators": 2, "max_cases": 2, "refer_after_days": 1})
    assert pool_helps(with_pool, without)
    assert all(r["kpis"]["disputes_filed"] == w["kpis"]["disputes_filed"] for r, w in zip(with_pool, without))
    assert not pool_helps(without, without)
    assert not pool_helps(runs({"mediators": 2, "max_cases": 2, "refer_after_days": 100}), without)


def test_city_mediation_kpis_are_pooled_over_the_communities(tmp_path):
    result = city.run_city(city_of(days=8, mediation={"mediators": 1, "refer_after_days": 1}))
    k, per = result["kpis"], [c["mediation"] for c in result["communities"]]
    for key in ("disputes_filed", "disputes_matched", "disputes_referred", "disputes_ended", "disputes_settled"):
        assert k[key] == sum(p[key] for p in per)
    assert k["dispute_settlement_rate"] == pytest.approx(k["disputes_settled"] / k["disputes_ended"])
    waits = sum(p["dispute_days_waiting_mean"] * p["disputes_filed"] for p in per)
    assert k["dispute_days_waiting_mean"] == pytest.approx(waits / k["disputes_filed"])
    d = np.concatenate([c["disputes"] for c in result["communities"]])
    settled = d[d["settled"] & ~np.isnan(d["resolved"])]
    assert k["dispute_days_to_settle_mean"] == pytest.approx((settled["resolved"] - settled["filed"]).mean())
    assert k["disputes_referred"] == result["mediation"]["taken"] == d["referred"].sum() > 0


def test_the_shipped_city_runs_mediation():
    c = city.load_city("city_demo", days=2)
    assert c.mediation is not None and all(s.mediation is not None for s in c.communities)
    assert c.communities[0].mediation.mediators < c.communities[-1].mediation.mediators  # estates are short


# ----------------------------------------------------------------- refusals
@pytest.mark.parametrize("text, named", [
    ("mediation: {refer_after: 1}\n", "unknown key mediation.refer_after (did you mean 'refer_after_days'?)"),
    ("mediation: {mediators: -1}\n", "mediation.mediators: -1 is not allowed; allowed: a whole number >= 0"),
    ("mediation: {method: vote}\n", "mediation.method: 'vote' is not allowed; allowed: one of rotation, greedy"),
    ("mediation: {specialties: [cats]}\n", "mediation.specialties: ['cats'] is not allowed; allowed: a list of kinds"),
    ("mediation: {min_local_skill: 2}\n", "mediation.min_local_skill: 2 is not allowed; allowed: a number in [0, 1]"),
    ("mediation: {refer_after_days: x}\n", "mediation.refer_after_days: 'x' is not allowed; allowed: days >= 0"),
    ("mediation: 3\n", "mediation: 3 is not allowed; allowed: a table of mediators, max_cases"),
    ("mediation: {}\ncommunities:\n  - overrides: [mediation.mediatorz=1]\n",
     "communities[0]: unknown key 'mediation.mediatorz'"),
    ("mediation: {}\ncommunities:\n  - overrides: [mediation.mediators=0]\n",
     "communities[0]: mediation.mediators = 0 is not allowed"),
    ("communities:\n  - overrides: [mediation.mediators=2]\n",
     "communities[0].overrides: mediation.* overrides need the city's mediation: block"),
])
def test_bad_mediation_config_is_refused_naming_the_key(tmp_path, text, named):
    path = tmp_path / "bad.yaml"
    path.write_text(text if "communities" in text else text + "communities:\n  - {}\n")
    with pytest.raises(ConfigError) as e:
        city.load_city(str(path))
    assert named in str(e.value) and "\n" not in str(e.value)


def test_twin_city_refuses_bad_mediation_in_one_line(tmp_path, capsys):
    from twin.cli import main

    path = tmp_path / "bad.yaml"
    path.write_text("communities:\n  - {}\nmediation: {method: vote}\n")
    assert main(["city", "-s", str(path)]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "mediation.method" in err and "Traceback" not in err

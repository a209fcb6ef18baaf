"""The twin against its Mesa reference: every KPI of summary.json agrees within confidence intervals.

The reference (``twin/reference/mesa_model.py``) rewrites the residents',
sensors', facilities' and staff's rules the plain Mesa way with its own
randomness, so the two agree only in distribution.  On a small community
(300 households, 45 days, incapacitation raised so that alerts and incidents
occur, proposals raised so that several topics close) we run the reference
over ``N_REF`` seeds and the twin over ``N_TWIN`` other seeds, and require,
for each KPI, that the twin's mean lie inside the reference's confidence
interval for it: Welch's two-sample t interval at family level ``ALPHA``
(Bonferroni over the KPIs).  The mutation tests change a rule for the twin
only and require the same comparison to fail on the KPI that rule drives:
the comparison can fail.  These mutations are about the smallest it detects
at this size; smaller drifts (a feeling constant changed by a third, say,
moving satisfaction by 0.03 points) hide in the replications' noise.
"""
import math

import numpy as np
import pytest
from scipy import stats

import twin
from twin.reference.mesa_model import (
    Building,
    Home,
    ReferenceModel,
    Resident,
    SocialWorker,
    Technician,
)

BASE = ["community.households=300", "community.buildings=6", "sim.days=45", "progress=false",
        "sensors.incapacitation_per_elder_year=20", "residents.propose_rate_per_month=6"]
N_REF, N_TWIN = 24, 32
ALPHA = 0.01          # family-wise level over all the KPIs
MIN_VALID = 10        # replications with a defined value (NaN: no closed topic, no incident ...)


def cfg(seed, extra=()):
    return twin.load_scenario("default", BASE + [f"seed={seed}"] + list(extra))


@pytest.fixture(scope="module")
def reference_runs():
    models = [ReferenceModel(cfg(10_000 + s)) for s in range(N_REF)]
    return models, [m.run() for m in models]


def twin_runs(extra=()):
    return [twin.Twin(cfg(20_000 + s, extra)).run().summary for s in range(N_TWIN)]


@pytest.fixture(scope="module")
def twin_summaries():
    return twin_runs()


def disagreements(twin_summaries, ref_summaries):
    """KPIs whose twin mean lies outside the reference's interval: {kpi: (twin mean, lo, hi)}."""
    keys = list(ref_summaries[0])
    level = 1 - ALPHA / len(keys)
    out = {}
    for k in keys:
        a = np.array([s[k] for s in twin_summaries], float)
        b = np.array([s[k] for s in ref_summaries], float)
        a, b = a[~np.isnan(a)], b[~np.isnan(b)]
        assert len(a) >= MIN_VALID and len(b) >= MIN_VALID, f"{k}: too few defined values to compare"
        va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
        se = math.sqrt(va + vb)
        if se == 0:
            lo = hi = b.mean()
        else:
            df = (va + vb) ** 2 / ((va**2 / (len(a) - 1) if va else 0) + (vb**2 / (len(b) - 1) if vb else 0))
            half = stats.t.ppf(0.5 + level / 2, df) * se
            lo, hi = b.mean() - half, b.mean() + half
        if not lo <= a.mean() <= hi:
            out[k] = (a.mean(), lo, hi)
    return out


def test_reference_is_one_object_per_agent_with_a_daily_datacollector(reference_runs):
    models, _ = reference_runs
    m = models[0]
    assert len(m.agents_by_type[Resident]) == len(m.people) > 600
    assert len(m.agents_by_type[Home]) == 300
    assert len(m.agents_by_type[Building]) == 6
    assert len(m.agents_by_type[Technician]) == m.cfg.staff.technicians
    assert len(m.agents_by_type[SocialWorker]) == m.cfg.staff.social_workers
    daily = m.datacollector.get_model_vars_dataframe()
    assert len(daily) == 45 and m.steps == 45 * 24
    assert daily["satisfaction"].mean() == pytest.approx(m.summary()["satisfaction_index"])


def test_reference_reports_every_summary_kpi(reference_runs, twin_summaries):
    _, refs = reference_runs
    assert list(refs[0]) == list(twin_summaries[0])
    # the scenario is informative: incidents, alerts, closed topics and repairs occur in every run
    for s in refs + twin_summaries:
        assert s["alerts_raised"] > 10 and s["tickets_completed"] > 10
        assert not math.isnan(s["alert_recall"]) and not math.isnan(s["turnout_mean"])


@pytest.mark.slow
def test_every_kpi_of_the_twin_lies_in_the_reference_interval(reference_runs, twin_summaries):
    _, refs = reference_runs
    bad = disagreements(twin_summaries, refs)
    assert not bad, "twin outside the Mesa reference's interval: " + "; ".join(
        f"{k}: twin {m:.4g} not in [{lo:.4g}, {hi:.4g}]" for k, (m, lo, hi) in bad.items())


@pytest.mark.slow
@pytest.mark.parametrize("mutation, moved", [
    ("residents.reward_effect=0.75", "participation_rate"),            # the resident rule (0.9)
    ("staff.alert_setout_minutes=8", "alert_response_minutes_mean"),   # the staff rule (10)
    ("residents.vote_engagement_effect=1.7", "turnout_mean"),          # the voting rule (2.0)
])
def test_a_rule_changed_in_the_twin_only_fails_the_comparison(reference_runs, mutation, moved):
    _, refs = reference_runs
    bad = disagreements(twin_runs([mutation]), refs)
    assert moved in bad, f"changing {mutation} for the twin only went unnoticed (failing: {sorted(bad)})"


def test_reference_runs_the_queue_check_demand():
    m = ReferenceModel(twin.load_scenario("queue_check", ["sim.days=3", "seed=4", "progress=false"]))
    s = m.run()
    assert 100 < s["tickets_opened"] < 200  # Poisson, 2 an hour for 72 hours, nothing else
    assert all(tk["reporter"] is None for tk in m.tickets.values())
    waits = m.repair_waits()
    assert len(waits) > 90 and (waits >= 0).all() and s["repair_wait_minutes_mean"] == pytest.approx(waits.mean())

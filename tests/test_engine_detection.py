"""Detection: with sensor faults off, every incapacitated elder is found, as fast as the staff model implies."""
import math

import numpy as np
import pytest

import twin
from twin.services.events import EventKind


@pytest.fixture(scope="module")
def run():
    cfg = twin.load_scenario("default", [
        "community.households=400", "community.buildings=8", "community.elders_alone_share=0.8", "sim.days=40",
        "sensors.faults=false", "sensors.incapacitation_per_elder_year=10", "sensors.away_day_prob=0",
        "sensors.smoke_per_household_year=0", "staff.social_workers=3", "progress=false"])
    tw = twin.Twin(cfg)
    return tw, tw.run()


def test_recall_is_one_without_device_faults(run):
    _, result = run
    ev = result.event_log
    assert (ev["kind"] == EventKind.IncidentStarted).sum() >= 10
    assert result.summary["alert_recall"] == 1.0


def test_true_alerts_come_within_the_threshold_after_onset(run):
    tw, result = run
    ev = result.event_log
    onset = {int(r["subject"]): r["t"] for r in ev[ev["kind"] == EventKind.IncidentStarted]}
    hours = tw.cfg.policies.alert_hours_without_water
    start_h = tw.cfg.policies.alert_day_start_hour
    for r in ev[(ev["kind"] == EventKind.AlertRaised) & (ev["extra"] == 1)]:
        t0 = onset[int(r["target"])]
        # the dry spell counts daytime hours only: at most the threshold after onset or after daybreak
        day_start = math.floor(t0 / 1440) * 1440 + start_h * 60
        assert r["t"] - max(t0, day_start) <= hours * 60 + 60 + 1e-6 or r["t"] > day_start + 1440


def test_response_times_are_what_the_staff_model_implies(run):
    """Re-derive each arrival from first principles: the chosen worker leaves when free, walks, arrives."""
    tw, result = run
    c, st = tw.community, tw.cfg.staff
    ev = result.event_log
    raised = {int(r["subject"]): r for r in ev[ev["kind"] == EventKind.AlertRaised]}
    attended = ev[ev["kind"] == EventKind.AlertAttended]
    assert len(attended) == len(raised) > 0
    free_at = np.zeros(len(tw.social_workers))
    pos = np.tile(tw.office, (len(free_at), 1))
    for r in attended:  # logged in dispatch order
        alert = raised[int(r["subject"])]
        w = int(r["actor"])
        b = c.hh_building[int(alert["actor"])]
        site = np.array([c.building_x[b], c.building_y[b]], float)
        leave = max(alert["t"] + st.alert_setout_minutes, free_at[w])
        arrive = leave + np.hypot(*(site - pos[w])) / st.walk_m_per_min
        assert r["t"] == pytest.approx(arrive, abs=1e-6)
        assert r["amount"] == round(arrive - alert["t"])
        free_at[w] = arrive + st.alert_visit_minutes
        pos[w] = site

"""Detection: with sensor faults off, every incapacitated elder is found, as fast as the staff model implies."""
import math

import numpy as np
import pytest

import twin
from twin.services.events import EventKind


SCENARIO = ["community.households=400", "community.buildings=8", "community.elders_alone_share=0.8", "sim.days=40",
            "sensors.faults=false", "sensors.incapacitation_per_elder_year=10", "sensors.away_day_prob=0",
            "sensors.smoke_per_household_year=0", "staff.social_workers=3", "progress=false"]


@pytest.fixture(scope="module")
def run():
    tw = twin.Twin(twin.load_scenario("default", SCENARIO))
    return tw, tw.run()


def test_recall_is_one_without_device_faults(run):
    _, result = run
    ev = result.event_log
    assert (ev["kind"] == EventKind.IncidentStarted).sum() >= 10
    assert result.summary["alert_recall"] == 1.0


def alert_deadline(onset, hours, start_h, end_h, tick):
    """The latest minute the inactivity alert may come for an incident starting at ``onset``.

    The detector counts a day's hours without water between ``start_h`` and
    ``end_h``, tick by tick, and the meter may still show water in the tick
    of the fall: ``hours`` after the first tick boundary past the onset (or
    past daybreak).  When the day's window ends first, the count starts again
    at the next daybreak.
    """
    day = math.floor(onset / 1440) * 1440
    begin = day + math.ceil((max(onset, day + start_h * 60) - day) / tick) * tick
    if begin + hours * 60 <= day + end_h * 60:
        return begin + hours * 60
    return day + 1440 + math.ceil(start_h * 60 / tick) * tick + hours * 60


def untimely_alerts(result, policies, tick):
    """True inactivity alerts before their onset, after their deadline or outside the day's window.

    Returns ``[(alert minute, onset minute, deadline)]``.
    """
    ev = result.event_log
    onset = {int(r["subject"]): r["t"] for r in ev[ev["kind"] == EventKind.IncidentStarted]}
    start_h, end_h = policies.alert_day_start_hour, policies.alert_day_end_hour
    out = []
    for r in ev[(ev["kind"] == EventKind.AlertRaised) & (ev["extra"] == 1)]:
        t, t0 = float(r["t"]), float(onset[int(r["target"])])
        due = alert_deadline(t0, policies.alert_hours_without_water, start_h, end_h, tick)
        since_midnight = t - 1440 * math.ceil(t / 1440 - 1)  # in (0, 1440]: an alert can end the day's last tick
        if not (t0 < t <= due + 1e-6 and start_h * 60 < since_midnight <= end_h * 60 + 1e-6):
            out.append((t, t0, due))
    return out


def test_true_alerts_come_within_the_threshold_after_onset(run):
    tw, result = run
    ev = result.event_log
    assert ((ev["kind"] == EventKind.AlertRaised) & (ev["extra"] == 1)).sum() >= 10
    assert untimely_alerts(result, tw.cfg.policies, tw.cfg.sim.tick_minutes) == []


def test_a_detector_waiting_an_hour_longer_than_the_policy_is_late(run):
    tw, _ = run
    hours = tw.cfg.policies.alert_hours_without_water
    slower = twin.Twin(twin.load_scenario("default", SCENARIO + [f"policies.alert_hours_without_water={hours + 1}"]))
    late = untimely_alerts(slower.run(), tw.cfg.policies, tw.cfg.sim.tick_minutes)
    assert len(late) >= 10, late  # most of them: an alert is due the very tick the threshold is reached


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



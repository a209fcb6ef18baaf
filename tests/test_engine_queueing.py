"""The twin's repair queue against queueing theory (nobody here wrote Erlang C).

Scenario ``queue_check``: Poisson arrivals, exponential service, no travel,
FIFO dispatch, technicians always on shift — an M/M/c queue.  The mean wait
(submitted → work started) must match Erlang C within statistical tolerance
over independent replications, and Little's law must hold on the event log.
"""
import math

import numpy as np
import pytest

import twin
from twin.services.events import EventKind


def erlang_c_wait(lam: float, mu: float, c: int) -> float:
    """Mean wait in queue of M/M/c (Erlang C), from Kleinrock, Queueing Systems vol. 1, eq. 3.40-3.43."""
    a = lam / mu
    rho = a / c
    assert rho < 1
    top = a**c / math.factorial(c) / (1 - rho)
    p_wait = top / (sum(a**k / math.factorial(k) for k in range(c)) + top)
    return p_wait / (c * mu - lam)


def test_erlang_c_reduces_to_mm1():
    # M/M/1: Wq = rho / (mu - lambda)
    lam, mu = 0.8, 1.0
    assert erlang_c_wait(lam, mu, 1) == pytest.approx(lam / mu / (mu - lam))


def queue_run(seed, c, arrivals_per_hour, service_mean, days):
    cfg = twin.load_scenario("queue_check", [f"seed={seed}", f"staff.technicians={c}", f"sim.days={days}",
                                             f"queue_check.arrivals_per_hour={arrivals_per_hour}",
                                             f"queue_check.service_minutes_mean={service_mean}",
                                             "community.households=40", "community.buildings=2", "progress=false"])
    return twin.Twin(cfg).run()


def ticket_times(result, kind):
    ev = result.event_log
    rows = ev[ev["kind"] == kind]
    out = np.full(int(ev["subject"][ev["kind"] == EventKind.TicketSubmitted].max()) + 1, np.nan)
    out[rows["subject"]] = rows["t"]
    return out


def mean_wait(result, warmup_days=5, cooldown_days=5):
    sub = ticket_times(result, EventKind.TicketSubmitted)
    start = ticket_times(result, EventKind.TicketStarted)
    end = result.kpis["day"].max() + 1
    keep = (sub >= warmup_days * 1440) & (sub < (end - cooldown_days) * 1440)
    assert not np.isnan(start[keep]).any(), "every ticket in the window must have started"
    return float(np.mean(start[keep] - sub[keep]))


@pytest.mark.slow
@pytest.mark.parametrize("c,arrivals_per_hour,service_mean", [(1, 0.8, 45.0), (3, 3.0, 45.0)])
def test_mean_wait_matches_erlang_c(c, arrivals_per_hour, service_mean):
    waits = [mean_wait(queue_run(seed, c, arrivals_per_hour, service_mean, days=120)) for seed in range(1, 9)]
    expected = erlang_c_wait(arrivals_per_hour / 60.0, 1.0 / service_mean, c)
    mean = np.mean(waits)
    se = np.std(waits, ddof=1) / math.sqrt(len(waits))
    # 99.9% two-sided t interval over 8 replications
    assert abs(mean - expected) < 5.41 * se, (mean, expected, se)
    assert abs(mean - expected) < 0.2 * expected  # and not merely a wide interval


def test_queue_is_fifo_without_travel():
    r = queue_run(3, 2, 2.0, 45.0, days=20)
    ev = r.event_log
    sub = ticket_times(r, EventKind.TicketSubmitted)
    disp = ticket_times(r, EventKind.TicketDispatched)
    start = ticket_times(r, EventKind.TicketStarted)
    done = ~np.isnan(start)
    assert np.array_equal(disp[done], start[done])  # no travel
    order = np.argsort(sub[done], kind="stable")
    assert np.all(np.diff(disp[done][order]) >= -1e-9)  # first come, first dispatched
    assert len(ev)


def test_littles_law_on_the_event_log():
    """L = lambda * W, with L the time-average number of open tickets, on one sample path."""
    r = queue_run(5, 2, 2.0, 45.0, days=60)
    sub = ticket_times(r, EventKind.TicketSubmitted)
    comp = ticket_times(r, EventKind.TicketCompleted)
    horizon = float(np.nanmax(comp))
    closed = ~np.isnan(comp)
    assert closed.mean() > 0.99
    sub, comp = sub[closed], comp[closed]
    # time-average number in system, integrated from the log's own step function
    times = np.concatenate((sub, comp))
    steps = np.concatenate((np.ones(len(sub)), -np.ones(len(comp))))
    order = np.argsort(times, kind="stable")
    n_in_system = np.cumsum(steps[order])
    L = float(np.sum(n_in_system[:-1] * np.diff(times[order]))) / (horizon - sub.min())
    lam = len(sub) / (horizon - sub.min())
    W = float(np.mean(comp - sub))
    assert L == pytest.approx(lam * W, rel=0.01)
